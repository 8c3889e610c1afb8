"""Run the benchmark groups and merge their figures into bench/results.json."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# `python bench/run.py` puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's http package; import the groups as the `bench` package instead. This has
# to happen before anything imports http (urllib, multiprocessing's spawned workers, ...).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sqlite3  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from bench import http as http_group  # noqa: E402
from bench import insights as insights_group  # noqa: E402
from bench import match as match_group  # noqa: E402
from bench import portal as portal_group  # noqa: E402
from bench import referrals as referrals_group  # noqa: E402
from bench import transport as transport_group  # noqa: E402

Figures = dict[str, dict[str, float | str]]

# Explicit, not discovered from the file system: adding a group is a reviewed one-line change.
GROUPS: dict[str, Callable[[], Figures]] = {
    "http": http_group.run,
    "insights": insights_group.run,
    "match": match_group.run,
    "portal": portal_group.run,
    "referrals": referrals_group.run,
    "transport": transport_group.run,
}
RESULTS = BENCH_DIR / "results.json"


def machine() -> dict[str, object]:
    """What the figures were measured on; figures only compare on the same machine."""
    return {
        "cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        # Groups bench fresh databases in temporary directories; "match" also on the
        # local PostgreSQL server when it answers (its figures are named *_postgres_*).
        "database": f"SQLite {sqlite3.sqlite_version}",
    }


def load_results(path: Path) -> dict[str, object]:
    """The existing results file, or an empty one; a corrupt file is an error, not a reset."""
    if not path.exists():
        return {"figures": {}}
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("figures"), dict):
        raise SystemExit(f"{path}: not a results file (no 'figures' object); fix or delete it")
    return data


def check_figures(group: str, figures: object) -> Figures:
    """Make sure a group returned {name: {"value": number, "unit": str}}."""
    if not isinstance(figures, dict) or not figures:
        raise TypeError(f"group {group!r} returned no figures")
    for name, figure in figures.items():
        value = figure.get("value") if isinstance(figure, dict) else None
        unit = figure.get("unit") if isinstance(figure, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"group {group!r}: figure {name!r} has no numeric value")
        if not isinstance(unit, str):
            raise TypeError(f"group {group!r}: figure {name!r} has no unit")
    return figures


def save_results(path: Path, data: dict[str, object]) -> None:
    """Write the results atomically so an interrupted run never leaves half a file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def print_table(figures: Figures) -> None:
    """A plain aligned table: figure, value, unit."""
    rows = [("figure", "value", "unit")]
    rows += [(name, f"{fig['value']:g}", str(fig["unit"])) for name, fig in figures.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen groups, merge their figures into results.json, print what was measured."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(GROUPS), help="run just this group")
    args = parser.parse_args(argv)

    data = load_results(RESULTS)
    names = [args.only] if args.only else list(GROUPS)
    measured: Figures = {}
    failed: list[str] = []
    for name in names:
        print(f"[{name}] running...", file=sys.stderr)
        try:
            figures = check_figures(name, GROUPS[name]())
        except Exception:
            # Keep going: one broken group should not cost the figures of the others.
            traceback.print_exc()
            print(f"[{name}] FAILED", file=sys.stderr)
            failed.append(name)
            continue
        measured_at = datetime.now(UTC).isoformat(timespec="seconds")
        for fig_name, figure in figures.items():
            measured[fig_name] = {**figure, "measured_at": measured_at}

    if measured:
        # Figures of groups not run this time stay as they were.
        data["figures"] = {**data["figures"], **measured}  # type: ignore[dict-item]
        data["machine"] = machine()
        save_results(RESULTS, data)
        print_table(measured)
        print(f"\nwritten to {RESULTS}")
    if failed:
        print(f"failed groups: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
