"""`flask --app referral_hub portal link REFERRAL_ID`: a fresh client link, printed once."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from referral_hub.core.errors import AppError
from referral_hub.extensions import db
from referral_hub.portal import operations as ops
from referral_hub.referrals.models import Referral

portal_cli = AppGroup("portal", help="Client pages: issue links.")


@portal_cli.command("link")
@click.argument("referral_id", type=int)
@click.option("--revoke", is_flag=True, help="Stop every link issued before this one.")
def link(referral_id: int, revoke: bool) -> None:
    """Issue a client link for a referral; the full URL is the last word printed."""
    referral = db.session.get(Referral, referral_id)
    if referral is None:
        raise click.ClickException(f"No referral #{referral_id}.")
    try:
        token = ops.issue_link(referral, None, revoke=revoke)
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"Client link for referral #{referral.id} (shown once): {ops.client_url(token)}")
