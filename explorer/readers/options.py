"""How a reading session is built: :class:`ReadingOptions` (frozen, checked on creation), the settings every build
takes (:mod:`explorer.readers.session`)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from explorer.errors import ExplorerError
from explorer.readers.design import CONDITION_KINDS, DETECTION_KINDS
from explorer.readers.store import DTYPES
from explorer.readers.tasks import AFC, CRITERIA, DETECTION, LIKERT, check_criteria, check_task

ORDERS: dict[str, str] = {"per-reader": "each reader gets their own seeded order", "shared": "one order for all"}


@dataclass(frozen=True)
class ReadingOptions:
    """How a session is built (frozen: checked on creation; every bad value an :class:`ExplorerError`).

    Attributes:
        task: ``"likert"``, ``"2afc"`` or ``"detection"`` (:data:`~explorer.readers.tasks.TASKS`).
        seed: the seed of the left/right placement, the repeats and every reader's order.
        repeats: fraction of cases (0..1) shown a second time, after all first showings (intra-reader consistency).
        criteria: the Likert criteria asked (:data:`~explorer.readers.tasks.CRITERIA`).
        show_reference: show the fully sampled reference beside each case (never for detection: it shows the lesion).
        order: ``"per-reader"`` (default) or ``"shared"``.
        dtype: pixels stored as ``"float16"`` (default: half the size) or ``"float32"``.
        name: the session's name (default: the study's).
        conditions: condition kinds kept (default: all; detection: clean and lesion).
        methods: method labels kept (default: all).
        pairs: 2AFC pairs of labels (default: every pair).
        max_subjects: keep the first N slices (default: all).
    """

    task: str = LIKERT
    seed: int = 0
    repeats: float = 0.0
    criteria: tuple[str, ...] = tuple(CRITERIA)
    show_reference: bool = False
    order: str = "per-reader"
    dtype: str = "float16"
    name: str = ""
    conditions: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    pairs: tuple[tuple[str, str], ...] | None = None
    max_subjects: int | None = None

    def __post_init__(self) -> None:
        check_task(self.task)
        object.__setattr__(self, "criteria", check_criteria(self.criteria))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ExplorerError(f"seed must be an integer >= 0, got {self.seed!r}")
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, (int, float)) \
                or not math.isfinite(self.repeats) or not 0 <= self.repeats <= 1:
            raise ExplorerError(f"repeats must be a fraction in [0, 1], got {self.repeats!r}")
        if self.order not in ORDERS:
            raise ExplorerError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.dtype not in DTYPES:
            raise ExplorerError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.task == DETECTION and self.show_reference:
            raise ExplorerError("a detection session cannot show the reference (it shows the lesion)")
        for kind in self.conditions or ():
            if kind not in CONDITION_KINDS:
                raise ExplorerError(f"unknown condition {kind!r}; choose from {', '.join(CONDITION_KINDS)}")
        if self.conditions is not None and not self.conditions:
            raise ExplorerError("give at least one condition")
        if self.task == DETECTION and self.conditions is not None and set(self.conditions) != set(DETECTION_KINDS):
            raise ExplorerError("a detection session reads the clean and lesion conditions (absent and present)")
        if self.methods is not None and not self.methods:
            raise ExplorerError("give at least one method label")
        if self.pairs is not None and self.task != AFC:
            raise ExplorerError("pairs are for 2AFC sessions")
        if self.max_subjects is not None and (isinstance(self.max_subjects, bool) or not isinstance(self.max_subjects, int)
                                              or self.max_subjects < 1):
            raise ExplorerError(f"max subjects must be an integer >= 1, got {self.max_subjects!r}")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The condition kinds the session keeps."""
        if self.task == DETECTION:
            return DETECTION_KINDS
        return self.conditions or tuple(CONDITION_KINDS)

    def as_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


__all__ = ["ORDERS", "ReadingOptions"]
