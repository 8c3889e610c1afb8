"""Command-line tools: `flask --app referral_hub seed|users ...`."""

from __future__ import annotations

import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from referral_hub import demo, synthetic
from referral_hub.accounts import operations as accounts
from referral_hub.accounts.models import Organization, Role, User
from referral_hub.core.errors import AppError
from referral_hub.directory.hsds_cli import hsds_cli
from referral_hub.extensions import db
from referral_hub.insights import synthetic_history, tallies
from referral_hub.insights.models import ReferralDayTally
from referral_hub.notify import client_messages
from referral_hub.notify.worker import register_job, worker_command
from referral_hub.portal.cli import portal_cli
from referral_hub.referrals import jobs as referral_jobs
from referral_hub.referrals import retention

seed_cli = AppGroup("seed", help="Load demo and synthetic data.")
retention_cli = AppGroup("retention", help="Anonymise client data after its retention time.")
users_cli = AppGroup("users", help="Create and list users, issue API tokens.")
insights_cli = AppGroup("insights", help="Maintain what the dashboards read.")


def _fail(exc: AppError) -> None:
    db.session.rollback()
    details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
    raise click.ClickException(f"{exc.message} {details}".strip())


@seed_cli.command("demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when any user exists already.")
def seed_demo(if_empty: bool) -> None:
    """Load the Minneapolis demo organizations, sites and users (safe to run again)."""
    if if_empty and db.session.scalar(select(func.count()).select_from(User)):
        click.echo("Database already has data; demo not loaded.")
        return
    try:
        report = demo.load_demo(current_app.config["DEMO_PASSWORD"])
    except AppError as exc:
        _fail(exc)
    db.session.commit()
    created = ", ".join(f"{n} {k}" for k, n in report.created.items()) or "nothing"
    updated = ", ".join(f"{n} {k}" for k, n in report.updated.items()) or "nothing"
    click.echo(f"Demo loaded. Created: {created}. Updated: {updated}.")


@seed_cli.command("synthetic")
@click.option("--programs", type=click.IntRange(1, 1_000_000), default=20000, show_default=True)
@click.option("--sites", type=click.IntRange(1, 2_000_000), default=50000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same data.")
def seed_synthetic(programs: int, sites: int, seed: int) -> None:
    """Build a large synthetic directory for benchmarks (once per database)."""
    try:
        counts = synthetic.build(programs, sites, seed)
    except synthetic.SyntheticExists as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("Synthetic directory: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


@seed_cli.command("synthetic-referrals")
@click.option("--referrals", type=click.IntRange(1, 5_000_000), default=100000, show_default=True)
@click.option("--days", type=click.IntRange(1, 3650), default=90, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def seed_synthetic_referrals(referrals: int, days: int, seed: int) -> None:
    """Bulk-insert a referral history over the loaded directory (for benchmarks)."""
    try:
        counts = synthetic.build_referrals(referrals, days=days, seed=seed)
    except synthetic.SyntheticExists as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("Synthetic referrals: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


@seed_cli.command("synthetic-history")
@click.option(
    "--referrals", type=click.IntRange(1, 10_000_000), default=1_000_000, show_default=True
)
@click.option("--days", type=click.IntRange(1, 3650), default=730, show_default=True)
@click.option("--seed", type=int, default=11, show_default=True, help="Same seed, same data.")
@click.option("--append", is_flag=True, help="Add to an earlier synthetic history.")
def seed_synthetic_history(referrals: int, days: int, seed: int, append: bool) -> None:
    """Build a referral history with events and rides over the loaded directory (benchmarks)."""
    started = time.perf_counter()
    try:
        counts = synthetic_history.build_history(referrals, days=days, seed=seed, append=append)
    except synthetic_history.CannotBuild as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(
        f"Synthetic history in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
    )


@users_cli.command("create")
@click.argument("email")
@click.option("--org", "org_slug", required=True, help="Organization short name (slug).")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", default=None, help="Display name (defaults to the e-mail's local part).")
@click.option("--locale", default=None)
@click.option(
    "--password",
    envvar="RH_USER_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Read from RH_USER_PASSWORD, else prompted.",
)
def users_create(email, org_slug, role, name, locale, password) -> None:
    """Create a user with a role in an organization."""
    org = db.session.scalar(select(Organization).where(Organization.slug == org_slug))
    if org is None:
        raise click.ClickException(f"No organization with short name {org_slug!r}.")
    try:
        user = accounts.create_user(
            email=email,
            name=name or email.split("@")[0],
            password=password,
            organization=org,
            role=role,
            locale=locale,
        )
    except AppError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"Created {user.email} as {role} at {org.slug}.")


@users_cli.command("list")
def users_list() -> None:
    """One user a line, tab-separated: email, organization, role (several joined by commas)."""
    for user in db.session.scalars(select(User).order_by(User.email)):
        ordered = sorted(user.memberships, key=lambda m: m.id)
        orgs = ",".join(m.organization.slug for m in ordered)
        roles = ",".join(m.role.value for m in ordered)
        click.echo(f"{user.email}\t{orgs}\t{roles}")


@users_cli.command("token")
@click.argument("email")
@click.option("--name", default="cli", help="A name to recognise the token by.")
@click.option("--days", type=int, default=None, help="Expire after this many days.")
def users_token(email: str, name: str, days: int | None) -> None:
    """Issue a personal API token; the token is the last word printed."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"No user {email!r}.")
    if not user.is_active:
        raise click.ClickException(f"{email} is deactivated.")
    try:
        _token, plain = accounts.create_api_token(user, name, expires_in_days=days)
    except AppError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"API token for {user.email} (shown once): {plain}")


@users_cli.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Deactivate a user: every session and token ends at once."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"No user {email!r}.")
    accounts.update_user(user, is_active=False)
    db.session.commit()
    click.echo(f"Deactivated {user.email}.")


@seed_cli.command("logins")
def seed_logins() -> None:
    """Print the demo logins (for `make run`)."""
    password = current_app.config["DEMO_PASSWORD"]
    for item in demo.demo_users():
        click.echo(f"  {item['role']:<15} {item['email']:<32} ({item['organization']})")
    click.echo(f"  password for all: {password}")


@retention_cli.command("run")
@click.option(
    "--days",
    type=click.IntRange(1, 36500),
    default=None,
    help="Days after the last referral closed (default: RETENTION_DAYS).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be anonymised; change nothing.")
def retention_run(days: int | None, dry_run: bool) -> None:
    """Anonymise clients whose last referral closed more than the retention time ago."""
    days = days or current_app.config["RETENTION_DAYS"]
    report = retention.anonymize_due(days, dry_run=dry_run)
    db.session.commit()
    verb = "Would anonymise" if dry_run else "Anonymised"
    click.echo(
        f"{verb} {report.clients} clients ({report.referrals} referrals) "
        f"closed more than {days} days ago."
    )


@insights_cli.command("rebuild-tallies")
def insights_rebuild_tallies() -> None:
    """Rewrite the daily referral tallies from the referrals (after restoring or bulk loading
    rows that no flush saw); the tallies are otherwise kept in step with every change."""
    tallies.rebuild(db.session.connection())
    db.session.commit()
    days, sent = db.session.execute(
        select(func.count(func.distinct(ReferralDayTally.day)), func.sum(ReferralDayTally.sent))
    ).one()
    click.echo(f"Tallied {sent or 0} referrals over {days} days.")


def register(app: Flask) -> None:
    app.cli.add_command(seed_cli)
    app.cli.add_command(insights_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(hsds_cli)
    app.cli.add_command(retention_cli)
    app.cli.add_command(portal_cli)
    app.cli.add_command(worker_command)
    # What the worker does on each pass besides delivering messages, in this order.
    register_job(referral_jobs.escalate)
    register_job(client_messages.queue_client_messages)
