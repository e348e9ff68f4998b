"""The reading tasks of a session and the answers each takes: Likert ratings, two-alternative forced choice, lesion
detection. Pure definitions and checks (no storage): :func:`check_answer` turns what a page or a script submits into
the one canonical form that is stored, or raises :class:`~explorer.errors.ExplorerError`.

Answer forms (what :meth:`explorer.readers.reading.Reading.answer` takes; stored as JSON, canonical key order):

* ``"likert"``: ``{"ratings": {criterion: 1..5, ...}}``: every criterion of the session, integers 1 (worst) to 5
  (best; for ``artifacts`` 5 means none);
* ``"2afc"``: ``{"choice": "left" | "right"}``: the image the reader prefers;
* ``"detection"``: ``{"present": bool, "confidence": 1..5, "location": [row, col] | None}``: the location (pixel
  of the shown image, row 0 at the top) is required when ``present`` and must be ``None`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from explorer.errors import ExplorerError

LIKERT, AFC, DETECTION = "likert", "2afc", "detection"
TASKS: dict[str, str] = {
    LIKERT: "Likert ratings (1-5 with anchors) of one image on stated criteria",
    AFC: "two-alternative forced choice: which of two reconstructions of the same slice is better",
    DETECTION: "lesion detection: present or absent, the location clicked, confidence 1-5",
}
SCALE = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Criterion:
    """A Likert criterion: ``name`` (the key of an answer), ``title`` (what the reader reads), ``question`` and the
    ``anchors`` of the scale ``((1, text), ..., (5, text))``: 1 worst, 5 best."""

    name: str
    title: str
    question: str
    anchors: tuple[tuple[int, str], ...]

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "question": self.question,
                "anchors": {str(k): v for k, v in self.anchors}}


CRITERIA: dict[str, Criterion] = {c.name: c for c in (
    Criterion("overall", "Overall image quality", "How good is this image overall?",
              ((1, "non-diagnostic"), (2, "poor"), (3, "acceptable"), (4, "good"), (5, "excellent"))),
    Criterion("artifacts", "Artifacts", "How free of artifacts (aliasing, streaks, noise patterns, hallucinated "
              "structure) is this image?",
              ((1, "severe artifacts, non-diagnostic"), (2, "marked artifacts"), (3, "moderate artifacts"),
               (4, "minimal artifacts"), (5, "no artifacts"))),
    Criterion("sharpness", "Sharpness", "How sharp are edges and fine structures?",
              ((1, "severely blurred"), (2, "markedly blurred"), (3, "moderately blurred"), (4, "mildly blurred"),
               (5, "sharp"))),
    Criterion("confidence", "Diagnostic confidence", "How confident would you be making a diagnosis from this image?",
              ((1, "no confidence: non-diagnostic"), (2, "low"), (3, "moderate"), (4, "high"), (5, "full confidence"))),
)}
CONFIDENCE_ANCHORS: tuple[tuple[int, str], ...] = ((1, "very unsure"), (2, "unsure"), (3, "moderately sure"),
                                                   (4, "sure"), (5, "certain"))
INSTRUCTIONS: dict[str, str] = {
    LIKERT: "Rate the image on each criterion from 1 (worst) to 5 (best), using the anchors. Judge the image as it is "
            "shown; you may change window/level and zoom.",
    AFC: "Two reconstructions of the same slice are shown side by side. Choose the one you would rather read from; "
         "a choice is required even when they look alike.",
    DETECTION: "Decide whether the image contains a small focal lesion. If it does, click its centre. Give your "
               "confidence from 1 (very unsure) to 5 (certain) in your decision.",
}


@dataclass(frozen=True)
class TaskInfo:
    """What a reader is asked (returned by the reading API; it names no method).

    Attributes:
        kind: one of :data:`TASKS`; instructions: text for the reader.
        criteria: the Likert criteria (empty for the other tasks).
        confidence: the detection confidence anchors (empty for the other tasks).
        images: how many images each case shows (1, or 2 for ``"2afc"``: left and right).
        show_reference: whether each case also shows the fully sampled reference.
    """

    kind: str
    instructions: str
    criteria: tuple[Criterion, ...] = ()
    confidence: tuple[tuple[int, str], ...] = ()
    images: int = 1
    show_reference: bool = False

    def as_dict(self) -> dict:
        return {"kind": self.kind, "instructions": self.instructions,
                "criteria": [c.as_dict() for c in self.criteria],
                "confidence": {str(k): v for k, v in self.confidence}, "images": self.images,
                "show_reference": self.show_reference}


def check_task(kind: str) -> str:
    """``kind`` if it is one of :data:`TASKS`.

    Raises:
        ExplorerError: an unknown task.
    """
    if kind not in TASKS:
        raise ExplorerError(f"task must be one of {', '.join(TASKS)}, got {kind!r}")
    return kind


def check_criteria(names) -> tuple[str, ...]:
    """Criterion names (a list or a comma-separated string), known and not repeated.

    Raises:
        ExplorerError: none, an unknown or a repeated criterion.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = tuple(names)
    if not names:
        raise ExplorerError(f"give at least one criterion: {', '.join(CRITERIA)}")
    for name in names:
        if name not in CRITERIA:
            raise ExplorerError(f"unknown criterion {name!r}; choose from {', '.join(CRITERIA)}")
    if len(set(names)) != len(names):
        raise ExplorerError("each criterion may be given once")
    return names


def task_info(kind: str, criteria: tuple[str, ...] = tuple(CRITERIA), show_reference: bool = False) -> TaskInfo:
    """The :class:`TaskInfo` of a task."""
    check_task(kind)
    return TaskInfo(kind, INSTRUCTIONS[kind],
                    tuple(CRITERIA[c] for c in check_criteria(criteria)) if kind == LIKERT else (),
                    CONFIDENCE_ANCHORS if kind == DETECTION else (), 2 if kind == AFC else 1, show_reference)


def _score(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or int(value) != value or int(value) not in SCALE:
        raise ExplorerError(f"{what} must be an integer from 1 to 5, got {value!r}")
    return int(value)


def check_answer(kind: str, value, criteria: tuple[str, ...] = tuple(CRITERIA),
                 shape: tuple[int, int] | None = None) -> dict:
    """The canonical stored form of an answer (see the module docstring).

    Args:
        kind: the session's task; criteria: its Likert criteria; shape: ``(h, w)`` of the shown image (a detection's
            location must lie inside it).

    Raises:
        ExplorerError: a malformed answer (one line naming what is wrong).
    """
    if not isinstance(value, dict):
        raise ExplorerError(f"an answer is a mapping, got {type(value).__name__}")
    if kind == LIKERT:
        ratings = value.get("ratings")
        if set(value) != {"ratings"} or not isinstance(ratings, dict):
            raise ExplorerError("a Likert answer is {'ratings': {criterion: 1..5}}")
        missing = [c for c in criteria if c not in ratings]
        extra = [c for c in ratings if c not in criteria]
        if missing or extra:
            raise ExplorerError(f"rate exactly the criteria {', '.join(criteria)}"
                                + (f" (missing {missing[0]!r})" if missing else f" (not asked: {extra[0]!r})"))
        return {"ratings": {c: _score(ratings[c], f"rating {c!r}") for c in criteria}}
    if kind == AFC:
        if set(value) != {"choice"} or value["choice"] not in ("left", "right"):
            raise ExplorerError("a 2AFC answer is {'choice': 'left' | 'right'}")
        return {"choice": value["choice"]}
    if kind == DETECTION:
        if set(value) - {"present", "confidence", "location"} or "present" not in value or "confidence" not in value:
            raise ExplorerError("a detection answer is {'present': bool, 'confidence': 1..5, 'location': [row, col]}")
        present = value["present"]
        if not isinstance(present, bool):
            raise ExplorerError(f"present must be true or false, got {present!r}")
        confidence = _score(value["confidence"], "confidence")
        location = value.get("location")
        if not present:
            if location is not None:
                raise ExplorerError("a lesion marked absent has no location")
            return {"present": False, "confidence": confidence, "location": None}
        if (not isinstance(location, (list, tuple)) or len(location) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in location)):
            raise ExplorerError("a lesion marked present needs its location [row, col] (the pixel clicked)")
        row, col = (round(float(v), 2) for v in location)
        if row < 0 or col < 0 or (shape is not None and (row >= shape[0] or col >= shape[1])):
            where = f" {shape[0]}x{shape[1]}" if shape is not None else ""
            raise ExplorerError(f"location ({row:g}, {col:g}) is outside the{where} image")
        return {"present": True, "confidence": confidence, "location": [row, col]}
    check_task(kind)
    raise AssertionError(kind)  # unreachable: every task is handled above


def detection_score(answer: dict) -> int:
    """A detection answer on one 1..10 scale for ROC analysis: absent with confidence 5 -> 1 ... absent 1 -> 5,
    present 1 -> 6 ... present 5 -> 10 (the usual folding of a yes/no decision and its confidence)."""
    c = int(answer["confidence"])
    return 5 + c if answer["present"] else 6 - c


__all__ = ["AFC", "CONFIDENCE_ANCHORS", "CRITERIA", "Criterion", "DETECTION", "INSTRUCTIONS", "LIKERT", "SCALE",
           "TASKS", "TaskInfo", "check_answer", "check_criteria", "check_task", "detection_score", "task_info"]
