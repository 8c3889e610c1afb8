"""Small-cell suppression for published tables, with complementary suppression.

The rule, as published on the transparency page:

* A count from 1 to 10 is never published: it is shown as "<11" (primary suppression).
* 0 is published as 0. A zero identifies nobody, and hiding zeros would blank most of the
  table for small programs. The price: a reader knows that "<11" means 1 to 10.
* Totals are computed from the true values, and published like any other count.
* Complementary suppression: a reader knows that each row, column or group adds up to its
  total. Whenever such a relation holds exactly one hidden value, that value could be
  worked out by subtraction, so one more value in it is hidden, shown as "*": the smallest
  non-zero published part, else the total (zeros only as a last resort). Repeated until no
  relation holds exactly one hidden value.
* Then an audit takes the reader's side: it knows every relation and order ("accepted is
  never more than sent"), that "<11" is 1 to 10 and "*" is 0 or at least 11, and narrows the
  range of every hidden value as far as those allow. While some "<11" value is pinned to a
  single number, the nearest published value is hidden too.

Everything here is pure: plain mappings of keys to counts in, marks out. Callers turn marks
into published cells with `publish`, which drops the true value of every hidden cell, so
nothing downstream can leak it by accident.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

SMALL_MIN = 1
SMALL_MAX = 10
SMALL_DISPLAY = "<11"
WITHHELD_DISPLAY = "*"
# Values a withheld ("*") cell can hold: published values are 0 or above SMALL_MAX.
WITHHELD_MIN_NONZERO = SMALL_MAX + 1
# The audit's fixed-point iteration stops here at the latest (it converges in a few rounds
# on real tables; the bound only guards against a pathological input).
MAX_AUDIT_ROUNDS = 500

Key = Hashable


class Mark(enum.StrEnum):
    SHOWN = "shown"
    SMALL = "small"  # 1 to 10: shown as "<11"
    WITHHELD = "withheld"  # hidden so that a small count cannot be worked out: "*"


@dataclass(frozen=True)
class Relation:
    """A relation the reader can rely on: `total` is the sum of `parts`."""

    total: Key
    parts: tuple[Key, ...]

    @property
    def cells(self) -> tuple[Key, ...]:
        return (self.total, *self.parts)


@dataclass(frozen=True)
class AtLeast:
    """An order the reader can rely on: `larger` >= `smaller` (accepted <= sent)."""

    larger: Key
    smaller: Key


@dataclass(frozen=True)
class Published:
    """A cell as it leaves the system: the value only when it is shown."""

    value: int | None
    mark: Mark

    @property
    def hidden(self) -> bool:
        return self.mark is not Mark.SHOWN

    @property
    def display(self) -> str:
        if self.mark is Mark.SMALL:
            return SMALL_DISPLAY
        if self.mark is Mark.WITHHELD:
            return WITHHELD_DISPLAY
        return str(self.value)

    def as_data(self) -> int | str:
        """The value for open data: an integer, or the marker text of a hidden count."""
        return self.value if self.value is not None else self.display


def is_small(value: int) -> bool:
    """Tell whether a count falls in the range that is never published (1 to 10)."""
    return SMALL_MIN <= value <= SMALL_MAX


def suppress(
    values: Mapping[Key, int],
    relations: Iterable[Relation],
    orders: Iterable[AtLeast] = (),
) -> dict[Key, Mark]:
    """Mark every cell shown, small or withheld, so no small count can be worked out.

    `values` holds every cell (parts and totals) with its true count; `relations` are the
    sums a reader knows hold; `orders` the inequalities a reader knows hold. Raises
    ValueError when a relation does not add up, a count is negative or a key is unknown.
    """
    relations = tuple(relations)
    orders = tuple(orders)
    _validate(values, relations, orders)
    marks = {key: Mark.SMALL if is_small(value) else Mark.SHOWN for key, value in values.items()}
    by_cell = _relations_by_cell(relations)
    position = {key: n for n, key in enumerate(values)}
    while True:
        _complete_relations(values, relations, marks, by_cell, position)
        leaks = pinned(values, marks, relations, orders)
        cell = next(
            (
                found
                for leak in sorted(leaks, key=position.__getitem__)
                if (found := _nearest_published(leak, values, marks, by_cell, position)) is not None
            ),
            None,
        )
        if cell is None:
            # No leak, or nothing left to hide around it (every cell of its group hidden).
            return marks
        marks[cell] = Mark.WITHHELD


def publish(values: Mapping[Key, int], marks: Mapping[Key, Mark]) -> dict[Key, Published]:
    """The cells as they may leave the system: hidden ones without their value."""
    return {
        key: Published(value if marks[key] is Mark.SHOWN else None, marks[key])
        for key, value in values.items()
    }


def exposed(marks: Mapping[Key, Mark], relations: Iterable[Relation]) -> list[tuple[Key, Relation]]:
    """Hidden cells that a relation would give away by subtraction (none, after `suppress`).

    A hidden cell is safe from subtraction when every relation that contains it contains
    at least one other hidden cell.
    """
    found = []
    for relation in relations:
        hidden = [cell for cell in relation.cells if marks[cell] is not Mark.SHOWN]
        if len(hidden) == 1:
            found.append((hidden[0], relation))
    return found


def bounds(
    values: Mapping[Key, int],
    marks: Mapping[Key, Mark],
    relations: Iterable[Relation],
    orders: Iterable[AtLeast] = (),
) -> dict[Key, tuple[float, float]]:
    """The range of every cell as a reader can narrow it from what is published.

    Interval propagation over the relations and orders, with "<11" in [1, 10] and "*" in
    {0} or [11, inf); shown cells are exact. Sound (the true value always stays inside) but
    not complete: it is the audit, not a proof against every linear-programming attack.
    """
    relations = tuple(relations)
    orders = tuple(orders)
    lo: dict[Key, float] = {}
    hi: dict[Key, float] = {}
    for key, mark in marks.items():
        if mark is Mark.SHOWN:
            lo[key] = hi[key] = values[key]
        elif mark is Mark.SMALL:
            lo[key], hi[key] = SMALL_MIN, SMALL_MAX
        else:
            lo[key], hi[key] = 0, math.inf

    def narrow(key: Key, low: float, high: float) -> bool:
        if marks[key] is Mark.SHOWN:
            return False
        new_lo, new_hi = max(lo[key], low), min(hi[key], high)
        if marks[key] is Mark.WITHHELD:
            # A withheld value is 0 or at least 11, never in between.
            if new_lo > 0:
                new_lo = max(new_lo, WITHHELD_MIN_NONZERO)
            if new_hi < WITHHELD_MIN_NONZERO:
                new_hi = min(new_hi, 0)
        if (new_lo, new_hi) == (lo[key], hi[key]):
            return False
        lo[key], hi[key] = new_lo, new_hi
        return True

    for _round in range(MAX_AUDIT_ROUNDS):
        changed = False
        for relation in relations:
            parts_lo = sum(lo[p] for p in relation.parts)
            finite_hi = sum(hi[p] for p in relation.parts if hi[p] != math.inf)
            unbounded = sum(1 for p in relation.parts if hi[p] == math.inf)
            parts_hi = math.inf if unbounded else finite_hi
            changed |= narrow(relation.total, parts_lo, parts_hi)
            for part in relation.parts:
                others_lo = parts_lo - lo[part]
                if hi[part] == math.inf:
                    others_hi = math.inf if unbounded > 1 else finite_hi
                else:
                    others_hi = math.inf if unbounded else finite_hi - hi[part]
                changed |= narrow(
                    part, lo[relation.total] - others_hi, hi[relation.total] - others_lo
                )
        for order in orders:
            changed |= narrow(order.larger, lo[order.smaller], math.inf)
            changed |= narrow(order.smaller, 0, hi[order.larger])
        if not changed:
            break
    return {key: (lo[key], hi[key]) for key in marks}


def pinned(
    values: Mapping[Key, int],
    marks: Mapping[Key, Mark],
    relations: Iterable[Relation],
    orders: Iterable[AtLeast] = (),
) -> set[Key]:
    """Small ("<11") cells a reader can narrow to one exact value."""
    ranges = bounds(values, marks, relations, orders)
    return {key for key, (low, high) in ranges.items() if marks[key] is Mark.SMALL and low == high}


# -- rows x columns ------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A suppressed rows x columns table with its row, column and grand totals."""

    cells: list[list[Published]]
    row_totals: list[Published]
    column_totals: list[Published]
    total: Published


def table_cells(matrix: Sequence[Sequence[int]]) -> tuple[dict[Key, int], list[Relation]]:
    """Keys, true values and relations of a table with totals.

    Keys: ("cell", row, column), ("row", row), ("column", column) and ("total",).
    """
    n_rows = len(matrix)
    n_cols = len(matrix[0]) if n_rows else 0
    if any(len(row) != n_cols for row in matrix):
        raise ValueError("every row needs the same number of columns")
    values: dict[Key, int] = {}
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            values[("cell", i, j)] = value
    for i, row in enumerate(matrix):
        values[("row", i)] = sum(row)
    for j in range(n_cols):
        values[("column", j)] = sum(row[j] for row in matrix)
    values[("total",)] = sum(sum(row) for row in matrix)
    relations = [
        Relation(("row", i), tuple(("cell", i, j) for j in range(n_cols))) for i in range(n_rows)
    ]
    relations += [
        Relation(("column", j), tuple(("cell", i, j) for i in range(n_rows))) for j in range(n_cols)
    ]
    relations.append(Relation(("total",), tuple(("row", i) for i in range(n_rows))))
    relations.append(Relation(("total",), tuple(("column", j) for j in range(n_cols))))
    return values, relations


def suppress_table(matrix: Sequence[Sequence[int]]) -> Table:
    """Suppress a rows x columns table of counts and its totals."""
    values, relations = table_cells(matrix)
    cells = publish(values, suppress(values, relations))
    n_rows = len(matrix)
    n_cols = len(matrix[0]) if n_rows else 0
    return Table(
        cells=[[cells[("cell", i, j)] for j in range(n_cols)] for i in range(n_rows)],
        row_totals=[cells[("row", i)] for i in range(n_rows)],
        column_totals=[cells[("column", j)] for j in range(n_cols)],
        total=cells[("total",)],
    )


# -- internals -----------------------------------------------------------------------------


def _validate(
    values: Mapping[Key, int], relations: Sequence[Relation], orders: Sequence[AtLeast]
) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"counts are non-negative integers: {key!r} = {value!r}")
    for relation in relations:
        unknown = [cell for cell in relation.cells if cell not in values]
        if unknown:
            raise ValueError(f"relation names unknown cells: {unknown!r}")
        if not relation.parts:
            raise ValueError(f"relation without parts: {relation.total!r}")
        if values[relation.total] != sum(values[p] for p in relation.parts):
            raise ValueError(f"relation does not add up: {relation.total!r}")
    for order in orders:
        if order.larger not in values or order.smaller not in values:
            raise ValueError(f"order names unknown cells: {order!r}")
        if values[order.larger] < values[order.smaller]:
            raise ValueError(f"order does not hold: {order!r}")


def _relations_by_cell(relations: Sequence[Relation]) -> dict[Key, list[Relation]]:
    by_cell: dict[Key, list[Relation]] = defaultdict(list)
    for relation in relations:
        for cell in relation.cells:
            by_cell[cell].append(relation)
    return by_cell


def _complete_relations(
    values: Mapping[Key, int],
    relations: Sequence[Relation],
    marks: dict[Key, Mark],
    by_cell: Mapping[Key, list[Relation]],
    position: Mapping[Key, int],
) -> None:
    """Hide one more cell in every relation that holds exactly one hidden cell, to a fixpoint."""
    changed = True
    while changed:
        changed = False
        for relation in relations:
            hidden = [cell for cell in relation.cells if marks[cell] is not Mark.SHOWN]
            if len(hidden) != 1:
                continue
            candidates = [cell for cell in relation.cells if marks[cell] is Mark.SHOWN]
            cell = min(
                candidates,
                key=lambda c: _cost(c, relation, values, marks, by_cell, position),
            )
            marks[cell] = Mark.WITHHELD
            changed = True


def _cost(
    cell: Key,
    relation: Relation,
    values: Mapping[Key, int],
    marks: Mapping[Key, Mark],
    by_cell: Mapping[Key, list[Relation]],
    position: Mapping[Key, int],
) -> tuple:
    """Order of preference for hiding: non-zero before zero, parts before totals, small first.

    Hiding a zero protects nothing a reader could not rule out when zeros are rarely hidden,
    and hiding a total spreads to the relations above it; among equal values, a cell that
    also completes another relation with a single hidden cell saves a later step.
    """
    lonely = sum(
        1
        for other in by_cell[cell]
        if other is not relation and sum(1 for c in other.cells if marks[c] is not Mark.SHOWN) == 1
    )
    return (values[cell] == 0, cell == relation.total, values[cell], -lonely, position[cell])


def _nearest_published(
    start: Key,
    values: Mapping[Key, int],
    marks: Mapping[Key, Mark],
    by_cell: Mapping[Key, list[Relation]],
    position: Mapping[Key, int],
) -> Key | None:
    """The best published cell to hide near a pinned one: its own relations first, then
    relations reached through hidden cells, breadth first."""
    seen_cells = {start}
    seen_relations: set[int] = set()
    frontier = [start]
    while frontier:
        relations = [
            relation
            for cell in frontier
            for relation in by_cell.get(cell, ())
            if id(relation) not in seen_relations
        ]
        for relation in relations:
            seen_relations.add(id(relation))
        options = [
            (_cost(cell, relation, values, marks, by_cell, position), cell)
            for relation in relations
            for cell in relation.cells
            if marks[cell] is Mark.SHOWN
        ]
        if options:
            return min(options, key=lambda option: option[0])[1]
        frontier = []
        for relation in relations:
            for cell in relation.cells:
                if cell not in seen_cells:
                    seen_cells.add(cell)
                    frontier.append(cell)
    return None
