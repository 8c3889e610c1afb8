"""insights: daily referral tallies, hourly screening tallies

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 22:00:00

Also an index for the times to accept and to handoff (accepted referrals only).

The tallies are filled from the referrals already there. The rewrite is this revision's
own copy (tables as they are at this revision), not the app's insights.tallies, so that a
later change to the app cannot change what this migration does.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op
from flask import current_app

from referral_hub.insights.localtime import offset_steps

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GROUP = ["day", "program_id", "provider_org_id", "referring_org_id"]


def _group_columns():
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("provider_org_id", sa.Integer(), nullable=False),
        sa.Column("referring_org_id", sa.Integer(), nullable=True),
    ]


def _keys(table):
    return [
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"],
            name=op.f(f"fk_{table}_program_id_programs"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_org_id"], ["organizations.id"],
            name=op.f(f"fk_{table}_provider_org_id_organizations"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["referring_org_id"], ["organizations.id"],
            name=op.f(f"fk_{table}_referring_org_id_organizations"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def _stamps():
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]
COUNTS = [
    "sent", "accepted", "declined", "handed_off", "no_show", "escalated", "completed",
    "rides_picked_up", "rides_on_time",
]


def upgrade():
    op.create_table(
        "referral_day_tallies",
        *_group_columns(),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS],
        *_stamps(),
        *_keys("referral_day_tallies"),
        sa.UniqueConstraint(
            "day", "program_id", "provider_org_id", "referring_org_id",
            name=op.f("uq_referral_day_tallies_day"),
        ),
    )
    with op.batch_alter_table("referral_day_tallies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_day_tallies_day_program_id", ["day", "program_id"], unique=False
        )
    op.create_table(
        "referral_day_codes",
        *_group_columns(),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        *_stamps(),
        *_keys("referral_day_codes"),
    )
    with op.batch_alter_table("referral_day_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_day_codes_day_program_id", ["day", "program_id"], unique=False
        )
    op.create_table(
        "screening_hour_tallies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour_of_week", sa.Integer(), nullable=False),
        sa.Column("referring_org_id", sa.Integer(), nullable=True),
        sa.Column("need", sa.String(length=60), nullable=True),
        *[sa.Column(n, sa.Integer(), nullable=False) for n in SCREENING_COUNTS],
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["referring_org_id"], ["organizations.id"],
            name=op.f("fk_screening_hour_tallies_referring_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_hour_tallies")),
    )
    with op.batch_alter_table("screening_hour_tallies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_screening_hour_tallies_day_hour_of_week", ["day", "hour_of_week"], unique=False
        )
    _fill(op.get_bind())
    _fill_screenings(op.get_bind())
    # Times to accept and to handoff read the accepted referrals only (Referral.__table_args__).
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referrals_accepted_sent_at",
            ["sent_at"],
            unique=False,
            postgresql_include=[
                "program_id", "provider_org_id", "referring_org_id", "status",
                "accepted_at", "handed_off_at",
            ],
            postgresql_where=sa.text("accepted_at IS NOT NULL"),
            sqlite_where=sa.text("accepted_at IS NOT NULL"),
        )


def _fill(connection) -> None:
    """Tally the referrals already sent (their rides too), by day in the city's time zone."""
    referrals = sa.table(
        "referrals",
        *[sa.column(n) for n in ("id", "program_id", "provider_org_id", "referring_org_id")],
        *[sa.column(n) for n in ("status", "reason_code", "outcome")],
        *[sa.column(n, sa.DateTime(timezone=True)) for n in (
            "sent_at", "accepted_at", "handed_off_at", "escalated_at"
        )],
    )
    rides = sa.table(
        "rides", sa.column("referral_id"), sa.column("leg"),
        *[sa.column(n, sa.DateTime(timezone=True)) for n in (
            "picked_up_at", "window_start_at", "window_end_at"
        )],
    )
    r, status = referrals.c, referrals.c.status
    low, high = connection.execute(sa.select(sa.func.min(r.sent_at), sa.func.max(r.sent_at))).one()
    if low is None:
        return
    day = _local_date(connection, r.sent_at, low, high)
    on_time = sa.and_(
        rides.c.picked_up_at >= rides.c.window_start_at,
        rides.c.picked_up_at <= rides.c.window_end_at,
    )
    ride_counts = (
        sa.select(
            rides.c.referral_id,
            sa.func.count().label("picked_up"),
            sa.func.count(sa.case((on_time, 1))).label("on_time"),
        )
        .where(
            rides.c.leg == "outbound",
            rides.c.picked_up_at.is_not(None),
            rides.c.window_start_at.is_not(None),
            rides.c.window_end_at.is_not(None),
        )
        .group_by(rides.c.referral_id)
        .subquery()
    )
    sent = sa.and_(r.sent_at.is_not(None), status != "entered_in_error")
    keys = [day, r.program_id, r.provider_org_id, r.referring_org_id]
    now = sa.literal(datetime.now(UTC), sa.DateTime(timezone=True))
    tallies = sa.table("referral_day_tallies", *[sa.column(n) for n in GROUP + COUNTS],
                       sa.column("created_at"), sa.column("updated_at"))
    connection.execute(
        tallies.insert().from_select(
            GROUP + COUNTS + ["created_at", "updated_at"],
            sa.select(
                *keys,
                sa.func.count(),
                sa.func.count(r.accepted_at),
                sa.func.count(sa.case((status == "declined", 1))),
                sa.func.count(r.handed_off_at),
                sa.func.count(sa.case((status == "no_show", 1))),
                sa.func.count(r.escalated_at),
                sa.func.count(sa.case((status == "completed", 1))),
                sa.cast(sa.func.coalesce(sa.func.sum(ride_counts.c.picked_up), 0), sa.Integer),
                sa.cast(sa.func.coalesce(sa.func.sum(ride_counts.c.on_time), 0), sa.Integer),
                now,
                now,
            )
            .select_from(referrals)
            .outerjoin(ride_counts, ride_counts.c.referral_id == r.id)
            .where(sent)
            .group_by(*keys),
        )
    )
    codes = sa.table("referral_day_codes", *[sa.column(n) for n in GROUP],
                     sa.column("status"), sa.column("code"), sa.column("count"),
                     sa.column("created_at"), sa.column("updated_at"))
    code = sa.case((status == "declined", r.reason_code), (status == "completed", r.outcome))
    connection.execute(
        codes.insert().from_select(
            GROUP + ["status", "code", "count", "created_at", "updated_at"],
            sa.select(*keys, status, code, sa.func.count(), now, now)
            .where(sent, status.in_(["declined", "completed"]))
            .group_by(*keys, status, code),
        )
    )


SCREENING_COUNTS = ["screenings", "no_eligible", "none_open", "no_capacity"]


def _local_date(connection, column, low, high):
    """The city date of a UTC timestamp column (between `low` and `high` on SQLite)."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    if connection.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone(tz.key, column), sa.Date)
    low, high = (v if isinstance(v, datetime) else datetime.fromisoformat(v) for v in (low, high))
    low, high = (v if v.tzinfo else v.replace(tzinfo=UTC) for v in (low, high))
    steps = offset_steps(tz, low, high)
    shift = sa.case(
        *[(column < steps[i + 1][0].strftime("%Y-%m-%d %H:%M:%S"), f"{steps[i][1]} seconds")
          for i in range(len(steps) - 1)],
        else_=f"{steps[-1][1]} seconds",
    ) if len(steps) > 1 else sa.literal(f"{steps[0][1]} seconds")
    return sa.func.date(sa.func.datetime(column, shift))


def _fill_screenings(connection) -> None:
    """Tally the screening records already kept: once each, and once per need named."""
    records = sa.table(
        "screening_records",
        sa.column("created_at", sa.DateTime(timezone=True)),
        *[sa.column(n) for n in ("hour_of_week", "referring_org_id", "needs")],
        *[sa.column(n, sa.Boolean()) for n in ("any_eligible", "any_open", "any_capacity")],
    )
    r = records.c
    low, high = connection.execute(
        sa.select(sa.func.min(r.created_at), sa.func.max(r.created_at))
    ).one()
    if low is None:
        return
    day = _local_date(connection, r.created_at, low, high)
    if connection.dialect.name == "postgresql":
        needs = sa.func.jsonb_array_elements_text(r.needs).table_valued("value").alias("need")
    else:
        needs = sa.func.json_each(r.needs).table_valued("value").alias("need")
    counts = [
        sa.func.count(),
        sa.func.count(sa.case((sa.not_(r.any_eligible), 1))),
        sa.func.count(sa.case((sa.and_(r.any_eligible, sa.not_(r.any_open)), 1))),
        sa.func.count(sa.case((sa.and_(r.any_open, sa.not_(r.any_capacity)), 1))),
    ]
    now = sa.literal(datetime.now(UTC), sa.DateTime(timezone=True))
    keys = [day, r.hour_of_week, r.referring_org_id]
    names = ["day", "hour_of_week", "referring_org_id", "need", *SCREENING_COUNTS]
    names += ["created_at", "updated_at"]
    tallies = sa.table("screening_hour_tallies", *[sa.column(n) for n in names])
    need = sa.func.coalesce(needs.c.value, "")
    for select in (
        sa.select(*keys, sa.null(), *counts, now, now).group_by(*keys),
        sa.select(*keys, need, *counts, now, now)
        .select_from(records)
        .outerjoin(needs, sa.true())
        .group_by(*keys, need),
    ):
        connection.execute(tallies.insert().from_select(names, select))


def downgrade():
    with op.batch_alter_table("screening_hour_tallies", schema=None) as batch_op:
        batch_op.drop_index("ix_screening_hour_tallies_day_hour_of_week")
    op.drop_table("screening_hour_tallies")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_accepted_sent_at")
    with op.batch_alter_table("referral_day_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_day_codes_day_program_id")
    op.drop_table("referral_day_codes")
    with op.batch_alter_table("referral_day_tallies", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_day_tallies_day_program_id")
    op.drop_table("referral_day_tallies")
