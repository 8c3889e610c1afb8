"""`flask --app referral_hub hsds import|export`."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from referral_hub.directory import hsds_import, hsds_io
from referral_hub.extensions import db

hsds_cli = AppGroup("hsds", help="Import and export the directory as HSDS 3.0.")


@hsds_cli.command("import")
@click.argument("path", type=click.Path(path_type=Path))
def import_command(path: Path) -> None:
    """Import HSDS 3.0 JSON (a service, organization, list or Page) or a CSV data package.

    Records are matched by HSDS id, so importing again updates them. A record that fails
    validation is skipped whole and listed. Exits 1 when the input cannot be read, or when
    every record in it was skipped.
    """
    try:
        dataset = hsds_io.read(path)
    except hsds_io.InputError as exc:
        click.echo(f"Cannot read {path}: {exc}", err=True)
        raise SystemExit(1) from None
    report = hsds_import.import_dataset(dataset)
    db.session.commit()
    click.echo(f"Imported {path}:")
    for line in report.lines():
        click.echo(f"  {line}")
    if report.skipped and not report.imported:
        raise SystemExit(1)


@hsds_cli.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_command(directory: Path) -> None:
    """Write the directory as HSDS 3.0 JSON files and a CSV data package into DIRECTORY."""
    counts = hsds_io.export_directory(directory)
    summary = ", ".join(f"{count} {name}" for name, count in counts.items())
    click.echo(f"Exported {summary} to {directory}")
