"""The design of a reading session, without storage or reconstruction: what each case shows, the seeded left/right
placement of 2AFC pairs (balanced), the repeats, the opaque item ids and each reader's seeded order.

Vocabulary (used by the whole package):

* a **reconstruction** (:class:`Reconstruction`): one image of one slice ("subject") by one method instance under
  one condition, with its reference, metrics and lesion ground truth;
* a **case** (:class:`Case`): what one answer is about: one reconstruction (Likert, detection) or two reconstructions
  of the same subject and condition by two methods (2AFC);
* an **item** (:class:`Item`): one presentation of a case to the readers, under an opaque id; a repeated case has a
  second item (``repeat=1``; a 2AFC repeat shows the pair with its sides swapped).

Nothing here names a method to a reader: item ids are random tokens (:mod:`secrets`) and carry no order.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from explorer.errors import ExplorerError
from explorer.readers.tasks import AFC, DETECTION, check_task

#: Condition kinds: what was done to the measurement (or the object) before the method reconstructed it.
CONDITION_KINDS: dict[str, str] = {
    "clean": "the undersampled measurement as acquired",
    "attack": "a worst-case k-space perturbation of relative size eps (the adversarial attack)",
    "lesion": "a small synthetic lesion inserted into the object before undersampling (ground truth known)",
    "shift": "a slice from a shifted distribution (another anatomy, contrast or dataset) than the methods were set up on",
}
DETECTION_KINDS = ("clean", "lesion")  # a detection session: lesion absent (clean) and present (inserted lesion)


@dataclass(frozen=True)
class Lesion:
    """An inserted lesion's ground truth in the shown image's pixels.

    Attributes:
        row, col: centre pixel (row 0 at the top); box: half-open ``(row0, col0, row1, col1)`` of its footprint;
        size: its side / diameter in pixels; contrast: relative amplitude; shape: ``"square"``, ``"disk"``...
    """

    row: int
    col: int
    box: tuple[int, int, int, int]
    size: int = 0
    contrast: float = 0.0
    shape: str = ""

    def as_dict(self) -> dict:
        return {"row": self.row, "col": self.col, "box": list(self.box), "size": self.size, "contrast": self.contrast,
                "shape": self.shape}

    @staticmethod
    def from_dict(d: dict) -> Lesion:
        return Lesion(int(d["row"]), int(d["col"]), tuple(int(v) for v in d["box"]), int(d.get("size", 0)),
                      float(d.get("contrast", 0.0)), str(d.get("shape", "")))


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """One reconstructed image and what the session's key records about it.

    Attributes:
        subject: the source slice (``"<data>#<slice>"``): the unit the analysis resamples as a "case" of the field.
        condition: e.g. ``"clean"``, ``"attack eps=0.04"``, ``"lesion"``, ``"shift:sample:brain"``.
        kind: the condition's kind (:data:`CONDITION_KINDS`).
        label / method: the method instance's label and registry name.
        image: magnitude ``(h, w)`` float32; reference: the fully sampled reference ``(h, w)`` or ``None``.
        metrics: ``{"ssim", "psnr", "nmse"}`` of ``image`` against ``reference`` (``metric`` definition) or ``None``.
        lesions: ground truth of inserted lesions (``kind == "lesion"``).
        data / slice / eps / config / experiment: provenance (``config`` JSON of the method's configuration).
        study_metrics: the study table's metrics of the same unit, when built from a study folder (a cross-check).
    """

    subject: str
    condition: str
    kind: str
    label: str
    method: str
    image: np.ndarray
    reference: np.ndarray | None = None
    metrics: dict | None = None
    lesions: tuple[Lesion, ...] = ()
    data: str = ""
    slice: int = -1
    eps: float | None = None
    config: str = "{}"
    experiment: str = ""
    metric: str = "fastmri"
    study_metrics: dict | None = None


@dataclass(frozen=True)
class Case:
    """What one answer is about: ``images`` (indices into the reconstructions; 2AFC: the pair in the session's
    label order), the shared ``subject`` and ``condition``, and whether a lesion is present."""

    images: tuple[int, ...]
    subject: str
    condition: str
    lesion: bool = False


@dataclass(frozen=True)
class Item:
    """One presentation of a case: opaque ``item_id``, the ``case`` index, ``repeat`` (0 first showing, 1 repeat) and
    ``images`` in display order (2AFC: ``(left, right)``)."""

    item_id: str
    case: int
    repeat: int
    images: tuple[int, ...]


@dataclass(frozen=True)
class Design:
    """The cases of a session and their items (first showings, then repeats)."""

    cases: tuple[Case, ...]
    items: tuple[Item, ...]


def labels_in_order(recons: list[Reconstruction]) -> list[str]:
    """Method labels in order of first appearance."""
    return list(dict.fromkeys(r.label for r in recons))


def check_pairs(pairs, labels: list[str]) -> list[tuple[str, str]]:
    """2AFC pairs: ``None`` -> every pair of ``labels`` (in their order); else each pair of two different known labels.

    Raises:
        ExplorerError: an unknown label, a pair of one label, a pair given twice.
    """
    if pairs is None:
        return list(combinations(labels, 2))
    out = []
    for pair in pairs:
        if len(pair) != 2 or pair[0] == pair[1]:
            raise ExplorerError(f"a 2AFC pair is two different method labels, got {pair!r}")
        for label in pair:
            if label not in labels:
                raise ExplorerError(f"2AFC pair {pair[0]}/{pair[1]}: no reconstructions labelled {label!r} "
                                    f"(labels: {', '.join(labels)})")
        if tuple(pair) in out or tuple(pair[::-1]) in out:
            raise ExplorerError(f"2AFC pair {pair[0]}/{pair[1]} is given twice")
        out.append((pair[0], pair[1]))
    return out


def make_cases(recons: list[Reconstruction], task: str, pairs=None) -> list[Case]:
    """The cases of a session: one per reconstruction (Likert, detection), or one per 2AFC pair of labels on each
    (subject, condition) that has both.

    Raises:
        ExplorerError: no case at all; a detection session without lesion-present or lesion-absent cases.
    """
    check_task(task)
    if task != AFC:
        cases = [Case((i,), r.subject, r.condition, bool(r.lesions)) for i, r in enumerate(recons)]
        if task == DETECTION and cases and (all(c.lesion for c in cases) or not any(c.lesion for c in cases)):
            raise ExplorerError("a detection session needs cases with and without a lesion (clean and lesion)")
    else:
        labels = labels_in_order(recons)
        chosen = check_pairs(pairs, labels)
        groups: dict[tuple[str, str], dict[str, int]] = {}
        for i, r in enumerate(recons):
            groups.setdefault((r.subject, r.condition), {})[r.label] = i
        cases = [Case((found[a], found[b]), subject, condition, bool(recons[found[a]].lesions))
                 for (subject, condition), found in groups.items() for a, b in chosen if a in found and b in found]
    if not cases:
        raise ExplorerError("no cases: the source holds no reconstructions for this task"
                            + (" (2AFC needs two methods on the same slice and condition)" if task == AFC else ""))
    return cases


def balanced_sides(keys: list, rng: np.random.Generator) -> list[bool]:
    """For each 2AFC case (``keys``: its pair of labels) whether its first image goes left: within every pair, half of
    the cases (one more or less, at random, when the count is odd) show the first image on the left, arranged at
    random."""
    out = [True] * len(keys)
    groups: dict = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        n = len(members)
        lefts = [True] * (n // 2) + [False] * (n // 2)
        if n % 2:
            lefts.append(bool(rng.integers(2)))
        for index, left in zip(rng.permutation(members), lefts):
            out[int(index)] = left
    return out


def make_design(recons: list[Reconstruction], task: str, seed: int = 0, repeats: float = 0.0, pairs=None) -> Design:
    """Cases, their seeded left/right placement (2AFC, balanced per pair of labels), seeded repeats and opaque ids.

    Args:
        repeats: the fraction of cases (0..1, rounded to a whole number of cases) shown a second time.

    Raises:
        ExplorerError: a fraction outside [0, 1]; see :func:`make_cases`.
    """
    if not (isinstance(repeats, (int, float)) and 0.0 <= float(repeats) <= 1.0):
        raise ExplorerError(f"repeats must be a fraction in [0, 1], got {repeats!r}")
    cases = make_cases(recons, task, pairs)
    rng = np.random.default_rng([int(seed), 29])
    if task == AFC:
        labels = [tuple(recons[i].label for i in c.images) for c in cases]
        sides = balanced_sides(labels, rng)
        shown = [c.images if left else c.images[::-1] for c, left in zip(cases, sides)]
    else:
        shown = [c.images for c in cases]
    count = int(round(float(repeats) * len(cases)))
    repeated = sorted(int(i) for i in rng.choice(len(cases), size=count, replace=False)) if count else []
    ids: set[str] = set()

    def new_id() -> str:
        while True:
            token = "i" + secrets.token_hex(5)
            if token not in ids:
                ids.add(token)
                return token

    items = [Item(new_id(), i, 0, shown[i]) for i in range(len(cases))]
    items += [Item(new_id(), i, 1, shown[i][::-1]) for i in repeated]  # a 2AFC repeat swaps the sides
    return Design(tuple(cases), tuple(items))


def reader_order(items: list[Item], seed: int, reader: int, shared: bool = False) -> list[int]:
    """A reader's order of the items (indices into ``items``): the first showings in a seeded random order, then the
    repeats in another, a repeat never straight after its own first showing.

    Args:
        seed: the session's seed; reader: the reader's number (ignored when ``shared``: every reader the same order).
    """
    rng = np.random.default_rng([int(seed), 0 if shared else int(reader), 7])
    first = [i for i, item in enumerate(items) if item.repeat == 0]
    again = [i for i, item in enumerate(items) if item.repeat > 0]
    first = [first[int(j)] for j in rng.permutation(len(first))]
    again = [again[int(j)] for j in rng.permutation(len(again))]
    if again and first and items[again[0]].case == items[first[-1]].case:
        if len(again) > 1:
            again = again[1:] + again[:1]
        elif len(first) > 1:
            first[0], first[-1] = first[-1], first[0]
    return first + again


__all__ = ["CONDITION_KINDS", "Case", "balanced_sides", "DETECTION_KINDS", "Design", "Item", "Lesion", "Reconstruction",
           "check_pairs", "labels_in_order", "make_cases", "make_design", "reader_order"]
