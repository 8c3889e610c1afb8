"""The dispatch board loads what its rows show up front: as many SELECTs for 30 rides as for 3."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from referral_hub.accounts.models import Organization, Role, User
from referral_hub.directory import operations as directory
from referral_hub.extensions import db
from referral_hub.referrals import operations as ops
from referral_hub.transport import board as board_ops
from referral_hub.transport.models import Driver, Leg, Ride, RideMode, RideStatus, Vehicle
from tests.conftest import counting_selects

DAY = date(2026, 12, 1)
STATUSES = [RideStatus.REQUESTED, RideStatus.SCHEDULED, RideStatus.PICKED_UP]


def add_rides(app, vendor_id: int, provider_id: int, team_id: int, responder_id: int, n: int):
    """n rides of DAY, each with its own client, program, site, driver and vehicle."""
    tz = ZoneInfo("America/Chicago")
    with app.test_request_context():
        provider = db.session.get(Organization, provider_id)
        team = db.session.get(Organization, team_id)
        responder = db.session.get(User, responder_id)
        start = db.session.query(Ride).count()
        for i in range(start, start + n):
            program = directory.create_program(provider, name=f"Program {i}", categories=["food"])
            site = directory.create_site(
                provider,
                name=f"Site {i}",
                address_1=f"{100 + i} Lake St",
                postal_code="55407",
                latitude=44.95,
                longitude=-93.26,
            )
            directory.offer_at(program, site, open_24_7=True)
            client = ops.create_client(team, responder, display_name=f"Client {i}")
            consent = ops.record_consent(client, program, responder, method="verbal")
            referral = ops.send_referral(
                client=client,
                program=program,
                user=responder,
                organization=team,
                consent=consent,
                site=site,
            )
            driver = Driver(organization_id=vendor_id, first_name=f"Driver {i}")
            vehicle = Vehicle(organization_id=vendor_id, label=f"Van {i}", seats=6)
            db.session.add_all([driver, vehicle])
            db.session.flush()
            pickup = datetime(DAY.year, DAY.month, DAY.day, 7, tzinfo=tz) + timedelta(
                minutes=20 * i
            )
            db.session.add(
                Ride(
                    referral_id=referral.id,
                    leg=Leg.OUTBOUND,
                    mode=RideMode.VENDOR,
                    status=STATUSES[i % len(STATUSES)],
                    vendor_org_id=vendor_id,
                    site_id=site.id,
                    pickup_label=f"Corner {i}",
                    window_start_at=pickup,
                    window_end_at=pickup + timedelta(minutes=20),
                    eta_latest_at=pickup + timedelta(minutes=45),
                    driver_id=driver.id,
                    vehicle_id=vehicle.id,
                )
            )
        db.session.commit()


def board_selects(app, vendor_id: int) -> tuple[int, int]:
    """SELECTs for the board and everything a row shows, in a fresh session; and the rows."""
    with app.test_request_context(), counting_selects(app) as statements:
        board = board_ops.dispatch_board({vendor_id}, DAY)
        shown = [
            (
                row.ride.driver.first_name,
                row.ride.vehicle.label,
                row.ride.referral.client.display_name,
                row.ride.referral.program.name,
                row.ride.site.address_1,
            )
            for row in board.rows
        ]
    assert all(all(cell for cell in row) for row in shown)
    return len(statements), len(shown)


def test_board_queries_do_not_grow_with_the_rides(app, make_org, make_user):
    vendor = make_org("transport_vendor")
    provider = make_org("provider")
    team = make_org("responder_team")
    responder = make_user(Role.RESPONDER, org=team)
    args = (vendor.id, provider.id, team.id, responder.id)

    add_rides(app, *args, n=3)
    few, shown = board_selects(app, vendor.id)
    assert shown == 3
    add_rides(app, *args, n=27)
    many, shown = board_selects(app, vendor.id)
    assert shown == 30
    assert few == many, (few, many)
