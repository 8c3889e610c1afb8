"""A small referral world: a provider program, a responder team, a client with consent."""

from dataclasses import dataclass
from datetime import time

import pytest

from referral_hub.accounts.models import Organization, Role, User
from referral_hub.directory import operations as directory
from referral_hub.directory.models import Program, Site
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.referrals.lifecycle import Side
from referral_hub.referrals.models import Client, Consent, Referral


@dataclass
class World:
    provider: Organization
    team: Organization
    program: Program
    site: Site
    responder: User
    staff: User
    coordinator: User
    client: Client
    consent: Consent


@pytest.fixture
def world(app, make_org, make_user) -> World:
    provider = make_org("provider")
    team = make_org("responder_team")
    responder = make_user(Role.RESPONDER, org=team)
    staff = make_user(Role.PROVIDER_STAFF, org=provider)
    coordinator = make_user(Role.COORDINATOR)
    with app.test_request_context():
        org = db.session.get(Organization, provider.id)
        program = directory.create_program(
            org, name="Youth Housing", categories=["housing"], response_target_hours=4
        )
        directory.set_capacity(program, "capacity", 2)
        site = directory.create_site(
            org,
            name="Main office",
            address_1="1 Main St",
            postal_code="55415",
            latitude=44.97,
            longitude=-93.26,
        )
        directory.offer_at(program, site, weekly=[(d, time(9), time(17)) for d in range(5)])
        client = ops.create_client(
            db.session.get(Organization, team.id),
            db.session.get(User, responder.id),
            display_name="Amina",
            phone="612-555-0123",
            preferred_language="so",
            birth_year=1990,
        )
        consent = ops.record_consent(
            client, program, db.session.get(User, responder.id), method="verbal"
        )
        db.session.commit()
        ids = program.id, site.id, client.id, consent.id
    with app.test_request_context():
        program, site, client, consent = (
            db.session.get(Program, ids[0]),
            db.session.get(Site, ids[1]),
            db.session.get(Client, ids[2]),
            db.session.get(Consent, ids[3]),
        )
    return World(provider, team, program, site, responder, staff, coordinator, client, consent)


def referrer(world: World) -> ops.Actor:
    return ops.Actor(
        frozenset({Side.REFERRER}),
        user=db.session.get(User, world.responder.id),
        organization_id=world.team.id,
    )


def provider(world: World) -> ops.Actor:
    return ops.Actor(
        frozenset({Side.PROVIDER}),
        user=db.session.get(User, world.staff.id),
        organization_id=world.provider.id,
    )


@pytest.fixture
def send(app, world):
    """send() -> the id of a freshly sent referral (committed)."""

    def do(**kwargs) -> int:
        with app.test_request_context():
            referral = ops.send_referral(
                client=db.session.get(Client, world.client.id),
                program=db.session.get(Program, world.program.id),
                user=db.session.get(User, world.responder.id),
                organization=db.session.get(Organization, world.team.id),
                consent=db.session.get(Consent, world.consent.id),
                site=db.session.get(Site, world.site.id),
                **kwargs,
            )
            db.session.commit()
            return referral.id

    return do


def load(referral_id: int) -> Referral:
    return db.session.get(Referral, referral_id)
