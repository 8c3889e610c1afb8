"""Small-cell suppression: no count from 1 to 10 is published, and none can be worked out
from the totals that are published beside it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referral_hub.insights.suppression import (
    SMALL_DISPLAY,
    WITHHELD_DISPLAY,
    AtLeast,
    Mark,
    Published,
    Relation,
    bounds,
    exposed,
    pinned,
    publish,
    suppress,
    suppress_table,
    table_cells,
)

# Counts as they come: many zeros and small ones, some large.
counts = st.one_of(
    st.integers(min_value=0, max_value=12),
    st.integers(min_value=0, max_value=60),
    st.integers(min_value=0, max_value=5000),
)
matrices = st.integers(min_value=1, max_value=6).flatmap(
    lambda n_cols: st.lists(
        st.lists(counts, min_size=n_cols, max_size=n_cols), min_size=1, max_size=6
    )
)


def component(start, relations):
    """Every cell linked to `start` through the relations."""
    seen, frontier = {start}, [start]
    while frontier:
        cell = frontier.pop()
        for relation in relations:
            if cell in relation.cells:
                for other in relation.cells:
                    if other not in seen:
                        seen.add(other)
                        frontier.append(other)
    return seen


def assert_safe(values, marks, relations, orders=()):
    # Subtraction: every relation containing a hidden cell holds another hidden cell.
    for relation in relations:
        hidden = [c for c in relation.cells if marks[c] is not Mark.SHOWN]
        assert len(hidden) != 1, (relation, hidden)
    assert exposed(marks, relations) == []
    for key, value in values.items():
        if 1 <= value <= 10:
            assert marks[key] is Mark.SMALL, key
        if marks[key] is Mark.SMALL:
            assert 1 <= value <= 10
        if marks[key] is Mark.WITHHELD:
            assert value == 0 or value >= 11  # "*" never stands for a small count
    # What a reader can narrow: the true value stays inside, and no small count is pinned
    # unless its whole group is hidden (then nothing is left to hide).
    ranges = bounds(values, marks, relations, orders)
    for key, (low, high) in ranges.items():
        assert low <= values[key] <= high, key
    for key in pinned(values, marks, relations, orders):
        assert all(marks[c] is not Mark.SHOWN for c in component(key, relations)), key


@settings(max_examples=300, deadline=None)
@given(matrices)
def test_no_hidden_cell_can_be_recovered_from_published_totals(matrix):
    values, relations = table_cells(matrix)
    marks = suppress(values, relations)
    assert_safe(values, marks, relations)

    table = suppress_table(matrix)
    published = {("total",): table.total}
    for i, row in enumerate(table.cells):
        published[("row", i)] = table.row_totals[i]
        for j, cell in enumerate(row):
            published[("cell", i, j)] = cell
    for j, cell in enumerate(table.column_totals):
        published[("column", j)] = cell
    for key, cell in published.items():
        # What leaves: the true value when shown, nothing at all when hidden.
        assert cell.value == (values[key] if not cell.hidden else None)
        assert cell.display not in {str(n) for n in range(1, 11)}
        # Recompute every published relation from the published numbers only.
    for relation in relations:
        total, parts = published[relation.total], [published[p] for p in relation.parts]
        hidden = [c for c in [total, *parts] if c.hidden]
        if not hidden:
            assert total.value == sum(p.value for p in parts)
        else:
            assert len(hidden) >= 2


@st.composite
def grouped_counts(draw):
    """Two nested measures (sent >= accepted) over categories x programs and categories x
    months, the shape the transparency page publishes."""
    n_cats = draw(st.integers(1, 4))
    n_months = draw(st.integers(1, 4))
    programs = [draw(st.integers(1, 4)) for _ in range(n_cats)]
    values, relations, orders = {}, [], []
    for measure in ("sent", "accepted"):
        for c in range(n_cats):
            for p in range(programs[c]):
                for m in range(n_months):
                    key = (measure, "pm", c, p, m)
                    if measure == "sent":
                        values[key] = draw(counts)
                    else:
                        values[key] = draw(st.integers(0, values[("sent", "pm", c, p, m)]))
        # Published: programs and months per category, categories, months, the total.
        for c in range(n_cats):
            for p in range(programs[c]):
                values[(measure, "p", c, p)] = sum(
                    values[(measure, "pm", c, p, m)] for m in range(n_months)
                )
            for m in range(n_months):
                values[(measure, "cm", c, m)] = sum(
                    values[(measure, "pm", c, p, m)] for p in range(programs[c])
                )
            values[(measure, "c", c)] = sum(
                values[(measure, "p", c, p)] for p in range(programs[c])
            )
        for m in range(n_months):
            values[(measure, "m", m)] = sum(values[(measure, "cm", c, m)] for c in range(n_cats))
        values[(measure, "all")] = sum(values[(measure, "c", c)] for c in range(n_cats))
        for c in range(n_cats):
            relations.append(
                Relation((measure, "c", c), tuple((measure, "p", c, p) for p in range(programs[c])))
            )
            relations.append(
                Relation((measure, "c", c), tuple((measure, "cm", c, m) for m in range(n_months)))
            )
        for m in range(n_months):
            relations.append(
                Relation((measure, "m", m), tuple((measure, "cm", c, m) for c in range(n_cats)))
            )
        relations.append(
            Relation((measure, "all"), tuple((measure, "c", c) for c in range(n_cats)))
        )
        relations.append(
            Relation((measure, "all"), tuple((measure, "m", m) for m in range(n_months)))
        )
    published = {k: v for k, v in values.items() if k[1] != "pm"}
    for key in published:
        if key[0] == "sent":
            orders.append(AtLeast(key, ("accepted", *key[1:])))
    return published, relations, orders


@settings(max_examples=150, deadline=None)
@given(grouped_counts())
def test_grouped_tables_with_orders_stay_safe(case):
    values, relations, orders = case
    marks = suppress(values, relations, orders)
    assert_safe(values, marks, relations, orders)


def test_a_single_small_cell_in_a_row_takes_the_next_smallest_with_it():
    table = suppress_table([[5, 30, 40], [50, 60, 70]])
    assert [c.display for c in table.cells[0]] == [SMALL_DISPLAY, WITHHELD_DISPLAY, "40"]
    # The columns now hold one hidden cell each: the second row's pair follows.
    assert [c.display for c in table.cells[1]] == [WITHHELD_DISPLAY, WITHHELD_DISPLAY, "70"]
    assert [c.display for c in table.row_totals] == ["75", "180"]
    assert table.total.display == "255"


def test_zero_is_published_and_small_counts_are_not():
    table = suppress_table([[0, 0], [0, 0]])
    assert table.total.display == "0"
    assert all(c.display == "0" for row in table.cells for c in row)
    table = suppress_table([[3]])
    assert table.cells[0][0].display == SMALL_DISPLAY
    assert table.row_totals[0].display == SMALL_DISPLAY
    assert table.total.display == SMALL_DISPLAY


def test_a_hidden_pair_that_the_ranges_pin_gets_a_third():
    # 1 + 11 = 12: with "<11" at least 1 and "*" at least 11, the pair pins both values.
    values = {"total": 112, "a": 1, "b": 11, "c": 100}
    relation = Relation("total", ("a", "b", "c"))
    naive = {"total": Mark.SHOWN, "a": Mark.SMALL, "b": Mark.WITHHELD, "c": Mark.SHOWN}
    assert pinned(values, naive, [relation]) == {"a"}
    marks = suppress(values, [relation])
    assert marks["c"] is Mark.WITHHELD
    assert pinned(values, marks, [relation]) == set()


def test_orders_are_part_of_the_audit():
    # sent = 12 is withheld, accepted = 12 is shown: the reader knows sent >= 12.
    values = {"sent_all": 13, "sent_a": 1, "sent_b": 12, "acc_b": 12}
    relations = [Relation("sent_all", ("sent_a", "sent_b"))]
    marks = {"sent_all": Mark.SHOWN, "sent_a": Mark.SMALL, "sent_b": Mark.WITHHELD}
    marks["acc_b"] = Mark.SHOWN
    assert pinned(values, marks, relations, [AtLeast("sent_b", "acc_b")]) == {"sent_a"}
    marks = suppress(values, relations, [AtLeast("sent_b", "acc_b")])
    assert pinned(values, marks, relations, [AtLeast("sent_b", "acc_b")]) == set()


def test_publish_drops_hidden_values():
    cells = publish({"a": 4, "b": 40}, {"a": Mark.SMALL, "b": Mark.WITHHELD})
    assert cells["a"] == Published(None, Mark.SMALL)
    assert cells["b"].as_data() == WITHHELD_DISPLAY
    assert cells["a"].as_data() == SMALL_DISPLAY


def test_inconsistent_input_is_refused():
    with pytest.raises(ValueError, match="add up"):
        suppress({"t": 5, "a": 1}, [Relation("t", ("a",))])
    with pytest.raises(ValueError, match="non-negative"):
        suppress({"a": -1}, [])
    with pytest.raises(ValueError, match="order"):
        suppress({"a": 1, "b": 2}, [], [AtLeast("a", "b")])
