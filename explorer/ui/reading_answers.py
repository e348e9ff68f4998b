"""The reading page's answers without Streamlit: the answer widgets of a task, a stored answer as widget values and
back, what each key does, and which case comes next (:mod:`explorer.ui.reading` and :mod:`explorer.ui.reading_case`
draw them)."""

from __future__ import annotations

from typing import Mapping

from explorer.readers.tasks import AFC, DETECTION, LIKERT, SCALE, TaskInfo

KEYS: dict[str, tuple[str, ...]] = {
    LIKERT: ("1", "2", "3", "4", "5", "Enter"),
    AFC: ("1", "2", "a", "d", "Enter"),
    DETECTION: ("1", "2", "3", "4", "5", "y", "n", "Enter"),
}
KEY_HELP = {
    LIKERT: "**1**-**5** rate the next criterion not yet rated",
    AFC: "**1** or **a** = left, **2** or **d** = right",
    DETECTION: "**y** = present (then click its centre), **n** = absent, **1**-**5** = confidence",
}
CHOICES = {"left": "Left image", "right": "Right image"}


def fields(info: TaskInfo) -> tuple[str, ...]:
    """The answer widgets of a task: each Likert criterion; ``choice``; ``present`` and ``confidence``."""
    if info.kind == LIKERT:
        return tuple(c.name for c in info.criteria)
    if info.kind == AFC:
        return ("choice",)
    return ("present", "confidence")


def draft_of(info: TaskInfo, answer: Mapping | None) -> tuple[dict, tuple[int, int] | None]:
    """The widget values ``{field: value or None}`` and the mark of a stored answer (``None``: empty widgets)."""
    draft = {f: None for f in fields(info)}
    point = None
    if answer:
        if info.kind == LIKERT:
            draft.update({c: answer["ratings"].get(c) for c in draft})
        elif info.kind == AFC:
            draft["choice"] = answer["choice"]
        else:
            draft.update(present=answer["present"], confidence=answer["confidence"])
            if answer.get("location") is not None:
                point = (int(round(answer["location"][0])), int(round(answer["location"][1])))
    return draft, point


def answer_of(info: TaskInfo, draft: Mapping, point: tuple[int, int] | None) -> dict | None:
    """The answer a complete draft gives (:mod:`explorer.readers.tasks`'s form), else ``None``."""
    if info.kind == LIKERT:
        ratings = {c: draft.get(c) for c in fields(info)}
        return {"ratings": ratings} if all(v in SCALE for v in ratings.values()) else None
    if info.kind == AFC:
        return {"choice": draft["choice"]} if draft.get("choice") in CHOICES else None
    present, confidence = draft.get("present"), draft.get("confidence")
    if present is None or confidence not in SCALE or (present and point is None):
        return None
    return {"present": bool(present), "confidence": int(confidence),
            "location": [int(point[0]), int(point[1])] if present else None}


def key_action(info: TaskInfo, key: str, draft: Mapping) -> tuple[dict, bool]:
    """What a key does: ``(widget updates {field: value}, go to the next case)``.

    Likert: a digit rates the first criterion not yet rated; 2AFC: 1/a left, 2/d right; detection: y present,
    n absent, a digit the confidence; Enter: next case.
    """
    if key == "Enter":
        return {}, True
    if info.kind == LIKERT and key.isdigit() and int(key) in SCALE:
        for name in fields(info):
            if draft.get(name) is None:
                return {name: int(key)}, False
        return {}, False
    if info.kind == AFC and key in ("1", "a", "2", "d"):
        return {"choice": "left" if key in ("1", "a") else "right"}, False
    if info.kind == DETECTION:
        if key in ("y", "n"):
            return {"present": key == "y"}, False
        if key.isdigit() and int(key) in SCALE:
            return {"confidence": int(key)}, False
    return {}, False


def next_target(statuses, position: int | None, goto) -> int | None:
    """The position to show next (``None``: every case is answered and there is none after this one).

    Args:
        statuses: the reader's :class:`~explorer.readers.reading.ItemStatus` list (in order).
        position: the position on screen (``None`` when none is).
        goto: ``"resume"`` (the first unanswered), ``"next"`` (the next unanswered after this one, else the first
            unanswered, else simply the next), ``"prev"`` or ``("at", position)``.
    """
    total = len(statuses)
    unanswered = [s.position for s in statuses if not s.answered]
    if isinstance(goto, tuple):
        return min(max(int(goto[1]), 1), total) if total else None
    if goto == "prev":
        return max((position or total + 1) - 1, 1) if total else None
    if goto == "next" and position is not None:
        after = [p for p in unanswered if p > position]
        if after or unanswered:
            return (after or unanswered)[0]
        return position + 1 if position < total else None
    return unanswered[0] if unanswered else None


__all__ = ["CHOICES", "KEYS", "KEY_HELP", "answer_of", "draft_of", "fields", "key_action", "next_target"]
