"""Differencing across releases: nested populations and nested cells whose difference is a small group."""

from __future__ import annotations

import datetime as dt
from typing import Any

from renkei.hub.disclosure.differencing import Release, differencing_risks, population_contains
from renkei.hub.tables.display import TOTAL
from renkei.hub.tables.request import AgeBand, Category, Filter, HouseholdSize, Link, Measure, TableRequest

WARD = Category(column="ward")
SEX = Category(column="性別")


def _release(rid: str, request: TableRequest, n: dict[tuple[Any, ...], int], **kw: Any) -> Release:
    return Release(rid, request.model_dump(mode="json"), n, **kw)


def test_a_total_minus_its_part_is_found() -> None:
    by_ward = _release(
        "t1", TableRequest(dataset="juki", dimensions=[WARD]), {("w1",): 50, ("w2",): 80, (TOTAL,): 130}
    )
    by_ward_sex = _release(
        "t2",
        TableRequest(dataset="juki", dimensions=[WARD, SEX]),
        {
            ("w1", "M"): 47,
            ("w1", "F"): 3,
            ("w2", "M"): 40,
            ("w2", "F"): 40,
            ("w1", TOTAL): 50,
            (TOTAL, "M"): 87,
        },
        suppressed=frozenset({("w1", "F")}),
    )
    risks = differencing_risks(by_ward_sex, [by_ward], threshold=10)
    assert [(r.larger, r.smaller, r.difference, r.action) for r in risks] == [
        (("t1", ("w1",)), ("t2", ("w1", "M")), 3, "refuse")
    ]
    both_hidden = Release(
        "t2", by_ward_sex.request, by_ward_sex.n, suppressed=frozenset({("w1", "F"), ("w1", "M")})
    )
    assert (
        differencing_risks(both_hidden, [by_ward], threshold=10) == []
    )  # a suppressed part gives nothing away


def test_a_narrowed_filter_is_found_and_perturbation_sends_it_to_review() -> None:
    wide = TableRequest(
        dataset="juki", dimensions=[WARD], filters=[Filter(column="age", op="between", low=65)]
    )
    narrow = TableRequest(
        dataset="juki",
        dimensions=[WARD],
        filters=[Filter(column="age", op="between", low=65, high=74), Filter(column="性別", values=["F"])],
    )
    assert population_contains(wide, narrow) and not population_contains(narrow, wide)
    old = _release("old", wide, {("w1",): 40, ("w2",): 90}, perturbed=True)
    new = _release("new", narrow, {("w1",): 35, ("w2",): 20}, perturbed=True)
    risks = differencing_risks(new, [old], threshold=10)
    assert [(r.larger[1], r.smaller[1], r.difference, r.action) for r in risks] == [
        (("w1",), ("w1",), 5, "review")
    ]


def test_bands_inside_wider_bands_and_open_household_sizes() -> None:
    tens = TableRequest(dataset="juki", dimensions=[AgeBand(width=10, top=90)])
    fives = TableRequest(dataset="juki", dimensions=[AgeBand(width=5, top=90)])
    old = _release("tens", tens, {(80,): 30, (90,): 12, (TOTAL,): 42})
    new = _release("fives", fives, {(80,): 24, (85,): 6, (90,): 12, (TOTAL,): 42})
    risks = differencing_risks(new, [old], threshold=10)
    assert {(r.larger[1], r.smaller[1], r.difference) for r in risks} == {
        ((80,), (80,), 6)
    }  # 80–89 minus 80–84
    four_plus = TableRequest(dataset="juki", dimensions=[HouseholdSize(top=4)])
    six_plus = TableRequest(dataset="juki", dimensions=[HouseholdSize(top=6)])
    risks = differencing_risks(
        _release("six", six_plus, {(4,): 50, (5,): 2, (6,): 1}), [_release("four", four_plus, {(4,): 53})], 10
    )
    assert [(r.larger[1], r.smaller[1], r.difference) for r in risks] == [((4,), (4,), 3)]  # "4+" minus "4"


def test_overlapping_but_not_nested_populations_are_not_compared() -> None:
    a = TableRequest(dataset="juki", dimensions=[WARD], filters=[Filter(column="ward", values=["w1", "w2"])])
    b = TableRequest(dataset="juki", dimensions=[WARD], filters=[Filter(column="ward", values=["w2", "w3"])])
    assert not population_contains(a, b) and not population_contains(b, a)
    other_unit = TableRequest(dataset="juki", dimensions=[WARD], measure=Measure(kind="households"))
    assert not population_contains(TableRequest(dataset="juki", dimensions=[WARD]), other_unit)
    assert differencing_risks(_release("b", b, {("w2",): 5}), [_release("a", a, {("w2",): 9})], 10) == []


def test_links_and_periods_narrow_a_population() -> None:
    base = TableRequest(dataset="juki", dimensions=[WARD], periods=[dt.date(2024, 1, 1), dt.date(2025, 1, 1)])
    linked = base.model_copy(update={"links": [Link(dataset="kaigo")], "periods": [dt.date(2025, 1, 1)]})
    assert population_contains(base, linked) and not population_contains(linked, base)
    excluded = TableRequest(
        dataset="juki", dimensions=[WARD], filters=[Filter(column="ward", op="not_in", values=["w9"])]
    )
    only = TableRequest(dataset="juki", dimensions=[WARD], filters=[Filter(column="ward", values=["w1"])])
    assert population_contains(excluded, only)
    released = _release("old", base, {(TOTAL,): 100})
    risks = differencing_risks(_release("new", linked, {(TOTAL,): 95}), [released], 10)
    assert [(r.difference, r.action) for r in risks] == [(5, "refuse")]
