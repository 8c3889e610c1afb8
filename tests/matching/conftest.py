"""A small constructed directory around downtown Minneapolis."""

from datetime import time

import pytest

from referral_hub.accounts.models import Organization
from referral_hub.directory import operations as directory
from referral_hub.extensions import db

CITY_HALL = (44.9773, -93.2654)
WEEKDAYS = [(d, time(9), time(17)) for d in range(5)]


@pytest.fixture
def build(app, make_org):
    """build(programs=[...]) creates programs with one site each; returns {slug: id}."""

    def do(*specs):
        org = make_org("provider")
        ids = {}
        with app.test_request_context():
            org = db.session.get(Organization, org.id)
            for n, spec in enumerate(specs):
                spec = dict(spec)
                lat, lon = spec.pop("at", CITY_HALL)
                site = directory.create_site(
                    org,
                    name=spec.pop("site_name", f"Site {spec['name']}"),
                    address_1=f"{100 + n} Main St",
                    postal_code=spec.pop("zip", "55415"),
                    latitude=lat,
                    longitude=lon,
                )
                hours = spec.pop("hours", WEEKDAYS)
                open_24_7 = spec.pop("open_24_7", False)
                capacity = spec.pop("capacity", ("capacity", None))
                areas = spec.pop("areas", [])
                program = directory.create_program(
                    org, categories=spec.pop("categories", ["housing"]), **spec
                )
                directory.set_capacity(program, *capacity)
                directory.set_service_areas(program, areas)
                directory.offer_at(program, site, open_24_7=open_24_7, weekly=hours)
                ids[program.name] = program.id
            db.session.commit()
        return ids

    return do
