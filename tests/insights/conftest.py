"""A constructed referral history with known answers, around the week of 2 March 2026.

Times are given in the city's time zone (America/Chicago); daylight saving time starts on
Sunday 8 March 2026 at 02:00, so weeks and days must be cut in city time, not UTC.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from referral_hub.accounts.models import Organization, Role
from referral_hub.directory import operations as directory
from referral_hub.extensions import db
from referral_hub.referrals.models import Client, Referral, Status
from referral_hub.transport.models import Leg, Ride, RideMode, RideStatus

CITY = ZoneInfo("America/Chicago")


def local(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    """A moment in March 2026, city time, as an aware UTC datetime."""
    return datetime(2026, month, day, hour, minute, tzinfo=CITY).astimezone(UTC)


@dataclass
class History:
    housing: int  # program ids
    jobs: int
    provider_a: int  # organization ids
    provider_b: int
    team: int
    city: int
    referrals: dict[str, int]


def _referral(client: Client, program, site, referring_org: int, user: int, **fields) -> Referral:
    referral = Referral(
        client_id=client.id,
        program_id=program.id,
        site_id=site.id,
        provider_org_id=program.organization_id,
        referring_org_id=referring_org,
        referring_user_id=user,
        **fields,
    )
    db.session.add(referral)
    db.session.flush()
    return referral


def _ride(referral: Referral, *, leg=Leg.OUTBOUND, picked_up_after: float | None, status=None):
    """An outbound (or return) ride with a 30-minute window two hours after acceptance."""
    start = referral.accepted_at + timedelta(hours=2)
    db.session.add(
        Ride(
            referral_id=referral.id,
            leg=leg,
            mode=RideMode.VENDOR,
            status=status or RideStatus.DROPPED_OFF,
            window_start_at=start,
            window_end_at=start + timedelta(minutes=30),
            picked_up_at=None
            if picked_up_after is None
            else start + timedelta(minutes=picked_up_after),
        )
    )


@pytest.fixture
def history(app, make_org, make_user) -> History:
    """Eight counted referrals sent 2-6 March, plus ones outside or not counted.

    Youth Housing (housing; provider A; site ZIP 55415; target 4 h), sent by a responder:
      r1 accepted +1 h, handed off +5 h, completed "enrolled"; ride on time
      r2 accepted +3 h, handed off +10 h; ride picked up late
      r3 accepted +6 h, escalated, no-show; ride not picked up
      r4 declined "no_capacity"
      r5 still waiting, escalated
      r_sun_before  sent Sunday 1 March 23:30 (already 2 March in UTC)
      r_sun_after   sent Sunday 8 March 23:30 (9 March in UTC, after the clocks changed)
    Job Start (employment and legal; provider B; ZIP 55404-1234; target 24 h), sent by a
    coordinator of the city department:
      r6 accepted +2 h, handed off +20 h, completed "employed"; ride on time, return late
      r7 declined "not_eligible"; r8 declined "no_capacity"
      r9 entered in error; r10 a draft (never sent)
    """
    provider_a = make_org("provider")
    provider_b = make_org("provider")
    team = make_org("responder_team")
    responder = make_user(Role.RESPONDER, org=team)
    coordinator = make_user(Role.COORDINATOR)
    city = coordinator.primary_membership.organization_id
    with app.test_request_context():
        org_a = db.session.get(Organization, provider_a.id)
        org_b = db.session.get(Organization, provider_b.id)
        housing = directory.create_program(
            org_a, name="Youth Housing", categories=["housing"], response_target_hours=4
        )
        jobs = directory.create_program(
            org_b, name="Job Start", categories=["employment", "legal"], response_target_hours=24
        )
        site_a = directory.create_site(
            org_a,
            name="Housing office",
            address_1="1 Main St",
            postal_code="55415",
            latitude=44.97,
            longitude=-93.26,
        )
        site_b = directory.create_site(
            org_b,
            name="Job center",
            address_1="2 Lake St",
            postal_code="55404-1234",
            latitude=44.95,
            longitude=-93.26,
        )
        client_t = Client(organization_id=team.id, display_name="A", name_key="a")
        client_c = Client(organization_id=city, display_name="B", name_key="b")
        db.session.add_all([client_t, client_c])
        db.session.flush()

        def h(**kw):
            return _referral(client_t, housing, site_a, team.id, responder.id, **kw)

        def j(**kw):
            return _referral(client_c, jobs, site_b, city, coordinator.id, **kw)

        def after(sent: datetime, hours: float) -> datetime:
            return sent + timedelta(hours=hours)

        s1, s2, s3, s4, s5 = local(2, 9), local(2, 10), local(3, 9), local(3, 12), local(4, 12)
        s6, s7, s8 = local(2, 8), local(5, 8), local(5, 9)
        refs = {
            "r1": h(
                status=Status.COMPLETED,
                sent_at=s1,
                accepted_at=after(s1, 1),
                handed_off_at=after(s1, 5),
                outcome="enrolled",
                closed_at=after(s1, 30),
            ),
            "r2": h(
                status=Status.HANDED_OFF,
                sent_at=s2,
                accepted_at=after(s2, 3),
                handed_off_at=after(s2, 10),
            ),
            "r3": h(
                status=Status.NO_SHOW,
                sent_at=s3,
                escalated_at=after(s3, 4),
                accepted_at=after(s3, 6),
                closed_at=after(s3, 9),
            ),
            "r4": h(
                status=Status.DECLINED,
                sent_at=s4,
                reason_code="no_capacity",
                closed_at=after(s4, 2),
            ),
            "r5": h(status=Status.SENT, sent_at=s5, escalated_at=after(s5, 4)),
            "r_sun_before": h(status=Status.SENT, sent_at=local(1, 23, 30)),
            "r_sun_after": h(status=Status.SENT, sent_at=local(8, 23, 30)),
            "r6": j(
                status=Status.COMPLETED,
                sent_at=s6,
                accepted_at=after(s6, 2),
                handed_off_at=after(s6, 20),
                outcome="employed",
                closed_at=after(s6, 40),
            ),
            "r7": j(status=Status.DECLINED, sent_at=s7, reason_code="not_eligible"),
            "r8": j(status=Status.DECLINED, sent_at=s8, reason_code="no_capacity"),
            "r9": j(
                status=Status.ENTERED_IN_ERROR,
                sent_at=local(5, 10),
                accepted_at=local(5, 11),
            ),
            "r10": j(status=Status.DRAFT),
        }
        _ride(refs["r1"], picked_up_after=10)
        _ride(refs["r2"], picked_up_after=45)
        _ride(refs["r3"], picked_up_after=None, status=RideStatus.NO_SHOW)
        _ride(refs["r6"], picked_up_after=0)
        _ride(refs["r6"], leg=Leg.RETURN, picked_up_after=90)
        db.session.commit()
        return History(
            housing=housing.id,
            jobs=jobs.id,
            provider_a=provider_a.id,
            provider_b=provider_b.id,
            team=team.id,
            city=city,
            referrals={name: r.id for name, r in refs.items()},
        )


@pytest.fixture
def ctx(app):
    """Run queries inside a request context (the metrics read the app's time zone)."""
    with app.test_request_context():
        yield
