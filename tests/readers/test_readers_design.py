"""The randomisation of a reading session: seeded, balanced left/right, repeats, opaque ids, per-reader orders."""

from __future__ import annotations

from collections import Counter

import pytest

from explorer.errors import ExplorerError
from explorer.readers.design import make_cases, make_design, reader_order
from explorer.readers.options import ReadingOptions
from tests.readers.conftest import LABELS, make_recons


def _sides(recons, design):
    return [tuple(recons[i].label for i in item.images) for item in design.items if item.repeat == 0]


def test_two_afc_cases_pair_every_label_on_each_slice_and_condition():
    recons = make_recons(subjects=5)
    cases = make_cases(recons, "2afc")
    assert len(cases) == 5 * 2 * 3  # subjects x conditions x pairs of 3 labels
    for case in cases:
        a, b = (recons[i] for i in case.images)
        assert a.subject == b.subject and a.condition == b.condition and a.label != b.label
    assert len(make_cases(recons, "2afc", [("LABELALPHA", "LABELGAMMA")])) == 10
    with pytest.raises(ExplorerError, match="no reconstructions labelled"):
        make_cases(recons, "2afc", [("LABELALPHA", "nope")])
    with pytest.raises(ExplorerError, match="given twice"):
        make_cases(recons, "2afc", [("LABELALPHA", "LABELBETA"), ("LABELBETA", "LABELALPHA")])


@pytest.mark.parametrize("subjects", [4, 7])
def test_left_right_placement_is_balanced_for_every_pair_and_every_method(subjects):
    recons = make_recons(subjects=subjects)
    design = make_design(recons, "2afc", seed=5)
    sides = _sides(recons, design)
    per_pair = Counter()
    for left, right in sides:
        per_pair[(min(left, right), max(left, right), left)] += 1
    for a in LABELS:
        for b in LABELS:
            if a < b:
                n = per_pair[(a, b, a)] + per_pair[(a, b, b)]
                assert n == 2 * subjects and abs(per_pair[(a, b, a)] - per_pair[(a, b, b)]) <= 1
    left_counts = Counter(left for left, _ in sides)
    shown = Counter(label for pair in sides for label in pair)
    for label in LABELS:  # each method is on the left in about half of its comparisons
        assert abs(left_counts[label] - shown[label] / 2) <= 1


def test_the_design_is_seeded():
    recons = make_recons(subjects=6)
    a, b, c = (make_design(recons, "2afc", seed=s, repeats=0.3) for s in (1, 1, 2))
    assert _sides(recons, a) == _sides(recons, b)
    assert [i.case for i in a.items] == [i.case for i in b.items]
    assert _sides(recons, a) != _sides(recons, c) or [i.case for i in a.items] != [i.case for i in c.items]
    # the item ids are fresh random tokens each build: they carry nothing a reader could decode
    assert {i.item_id for i in a.items}.isdisjoint({i.item_id for i in b.items})


def test_repeats_show_a_fraction_again_and_a_two_afc_repeat_swaps_sides():
    recons = make_recons(subjects=5)
    design = make_design(recons, "2afc", seed=0, repeats=0.2)
    first = [i for i in design.items if i.repeat == 0]
    again = [i for i in design.items if i.repeat == 1]
    assert len(first) == len(design.cases) == 30 and len(again) == 6
    by_case = {i.case: i for i in first}
    assert len({i.case for i in again}) == 6
    for item in again:
        assert item.images == by_case[item.case].images[::-1]
    likert = make_design(recons, "likert", repeats=0.5)
    assert sum(i.repeat for i in likert.items) == len(likert.cases) // 2
    for bad in (-0.1, 1.5):
        with pytest.raises(ExplorerError, match="repeats"):
            make_design(recons, "likert", repeats=bad)


def test_reader_orders_are_seeded_per_reader_repeats_last_and_never_back_to_back():
    recons = make_recons(subjects=4)
    design = make_design(recons, "likert", seed=3, repeats=0.25)
    items = list(design.items)
    orders = {r: reader_order(items, 3, r) for r in (1, 2, 3)}
    assert orders[1] == reader_order(items, 3, 1)  # seeded
    assert orders[1] != orders[2] != orders[3]  # each reader their own order
    assert reader_order(items, 3, 1, shared=True) == reader_order(items, 3, 2, shared=True)
    for order in orders.values():
        assert sorted(order) == list(range(len(items)))
        repeats = [items[i].repeat for i in order]
        assert repeats == sorted(repeats)  # first showings, then repeats
        for x, y in zip(order, order[1:]):
            assert items[x].case != items[y].case
    for reader in range(1, 40):  # the one-repeat edge case: never straight after its original
        one = make_design(make_recons(subjects=1, labels=LABELS[:2], conditions=(("clean", "clean"),)), "likert",
                          seed=reader, repeats=0.5)
        order = reader_order(list(one.items), reader, reader)
        assert one.items[order[-1]].case != one.items[order[-2]].case


def test_detection_needs_lesion_present_and_absent_cases_and_options_are_checked():
    recons = make_recons(lesion=True)
    cases = make_cases(recons, "detection")
    assert {c.lesion for c in cases} == {True, False}
    with pytest.raises(ExplorerError, match="with and without a lesion"):
        make_cases([r for r in recons if r.lesions], "detection")
    for kwargs, message in [({"task": "ranking"}, "task must be one of"),
                            ({"task": "detection", "show_reference": True}, "cannot show the reference"),
                            ({"criteria": ("overall", "beauty")}, "unknown criterion 'beauty'"),
                            ({"criteria": ()}, "at least one criterion"),
                            ({"repeats": 2}, "repeats must be a fraction"),
                            ({"order": "random"}, "order must be one of"),
                            ({"dtype": "int8"}, "dtype must be one of"),
                            ({"conditions": ("noise",)}, "unknown condition 'noise'"),
                            ({"pairs": (("a", "b"),)}, "pairs are for 2AFC"),
                            ({"max_subjects": 0}, "max subjects"),
                            ({"seed": -1}, "seed must be")]:
        with pytest.raises(ExplorerError, match=message):
            ReadingOptions(**kwargs)
