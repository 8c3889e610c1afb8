"""`flask --app referral_hub hsds import|export`."""

from __future__ import annotations

from flask.cli import AppGroup

hsds_cli = AppGroup("hsds", help="Import and export the directory as HSDS 3.0.")
