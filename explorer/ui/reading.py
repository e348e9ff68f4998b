"""The reading page: a reader opens a session with a personal link (``/reading?session=NAME&code=CODE``) or a typed
code and reads one case at a time in the browser viewer.

Everything that matters lives in the session file (:mod:`explorer.readers`): an answer is stored through
:meth:`~explorer.readers.reading.Reading.answer` as soon as it is complete (and again, as a change, when the reader
changes it), so a closed tab, a server restart or a second reader at the same time loses nothing. The page holds only
the case on screen and the reader's unfinished answer. Opening the link again continues at the first unanswered case.

Blinding: the page shows only what the reading API returns (the task, the images, the reader's own answers): no method
name, condition, metric or other reader's answer is in its text or its payload. The viewer's panels are called
"Image", or "Left" and "Right"; its identity is the item's opaque id.

Sessions live in :func:`folder` (``reader-studies/`` under the app's output root), one ``NAME.reading`` file each;
a name, a path, a missing file and a wrong code all get the same one line (:data:`INVALID`), so the page says nothing
about which sessions exist.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import sqlite3
import time
from pathlib import Path
from typing import Mapping

import streamlit as st

from explorer.errors import ExplorerError
from explorer.readers.reading import MAX_SECONDS, ItemView, ReaderProgress, Reading
from explorer.readers.store import SUFFIX
from explorer.readers.tasks import AFC, DETECTION, LIKERT, SCALE, TaskInfo, check_answer
from explorer.ui import paths, state, viewer

FOLDER = "reader-studies"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
INVALID = "This reading link or code is not valid: check it with the person who sent it."
VIEWER = "reading.viewer"  # the viewer's key prefix: two keys, taken in turn (see viewer_key)
DONE = "<done>"

# session state (this browser tab only: the answers are in the session file)
AUTH = "reading.auth"      # (session name, code) once opened
ITEM = "reading.item"      # the item on screen (its opaque id), DONE, or absent (show the first unanswered)
VIEW = "reading.view"      # its ItemView
GEN = "reading.gen"        # counts showings: the answer widgets' keys carry it (fresh widgets per showing)
SINCE = "reading.since"    # time.monotonic() when the item was shown or last answered
POINT = "reading.point"    # the detection mark (row, col) or None
GOTO = "reading.goto"      # a navigation asked for by a button or a key (applied at the start of the next run)
PAUSED = "reading.paused"
SAVED = "reading.saved"    # the Receipt of this showing's last stored answer
VKEY = "reading.vkey"      # counts fresh viewers (viewer_key)

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
PANELS = {"image": "Image", "left": "Left", "right": "Right"}
CHOICES = {"left": "Left image", "right": "Right image"}
PRESENCE = {True: "Present: click its centre in the image", False: "Absent"}


def folder() -> Path:
    """Where the app keeps reading sessions: ``reader-studies/`` under the output root (a data root)."""
    return state.output_root() / FOLDER


def session_file(name: str) -> Path:
    """The session file called ``name`` in :func:`folder` (it need not exist).

    Raises:
        ExplorerError: :data:`INVALID` for anything that is not a plain session name inside the folder (the same line
            whatever the reason).
    """
    text = str(name or "").strip()
    if not NAME.fullmatch(text):
        raise ExplorerError(INVALID)
    base = folder()
    try:
        path = paths.confine_path(str(base / f"{text}{SUFFIX}"), "the reading session")
    except ExplorerError:
        raise ExplorerError(INVALID) from None
    if path.parent != base.resolve():  # a link out of the folder
        raise ExplorerError(INVALID)
    return path


def open_session(name: str, code: str) -> tuple[Reading, ReaderProgress]:
    """The session ``name`` opened with a reader's ``code``.

    Raises:
        ExplorerError: :data:`INVALID`, whatever is wrong (name, file, code).
    """
    try:
        reading = Reading(session_file(name))
        return reading, reading.progress(str(code or ""))
    except (ExplorerError, OSError, sqlite3.Error):
        raise ExplorerError(INVALID) from None


# --------------------------------------------------------------------------- answers <-> widgets (pure)

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


# --------------------------------------------------------------------------- the page

def _widget(field: str) -> str:
    return f"reading.g{st.session_state.get(GEN, 0)}.{field}"


def _forget() -> None:
    for key in (AUTH, ITEM, VIEW, POINT, GOTO, PAUSED, SAVED):
        st.session_state.pop(key, None)


def _show(reading: Reading, code: str, info: TaskInfo, goto) -> None:
    """Put the item ``goto`` leads to on screen (its showing logged: its reading time starts)."""
    ss = st.session_state
    view = ss.get(VIEW) if ss.get(ITEM) not in (None, DONE) else None
    position = next_target(reading.items(code), view.position if view is not None else None, goto)
    if position is None:
        ss[ITEM] = DONE
        ss.pop(VIEW, None)
        return
    view = reading.item_at(code, position)
    ss[GEN] = ss.get(GEN, 0) + 1
    draft, point = draft_of(info, view.answer)
    for name, value in draft.items():
        ss[_widget(name)] = value
    ss.update({ITEM: view.item_id, VIEW: view, POINT: point, SINCE: time.monotonic(), SAVED: None})
    _fresh_viewer()


def viewer_key() -> str:
    """The viewer's key now. The viewer reports a mark as its state, and a state equal to the last one is not
    reported again: a click on the same pixel as the last click (the same lesion in the next case, or after
    "absent") would be lost. So each case, and each cleared mark, gets a fresh viewer: two keys taken in turn (the
    one not on screen has no state left), so the browser holds at most two viewers' images."""
    return f"{VIEWER}.{st.session_state.get(VKEY, 0) % 2}"


def _fresh_viewer() -> None:
    st.session_state[VKEY] = st.session_state.get(VKEY, 0) + 1


def _clear_point() -> None:
    if st.session_state.get(POINT) is not None:
        st.session_state[POINT] = None
        _fresh_viewer()


def _on_key(info: TaskInfo, key: str) -> None:
    """A key the viewer handed over (a callback: runs before the widgets of the next run)."""
    draft = {f: st.session_state.get(_widget(f)) for f in fields(info)}
    updates, advance = key_action(info, key, draft)
    for name, value in updates.items():
        st.session_state[_widget(name)] = value
        if name == "present" and not value:
            _clear_point()
    if advance:
        view = st.session_state.get(VIEW)
        if view is not None and view.answer is not None:
            st.session_state[GOTO] = "next"


def _on_point(point: tuple[int, int]) -> None:
    """A click of the Mark tool: the lesion's location (and so: present)."""
    st.session_state[POINT] = (int(point[0]), int(point[1]))
    st.session_state[_widget("present")] = True


def _on_present() -> None:
    if st.session_state.get(_widget("present")) is False:
        _clear_point()


def _go(where) -> None:
    st.session_state[GOTO] = where


def _pause() -> None:
    st.session_state[PAUSED] = True
    for key in (ITEM, VIEW, POINT, SAVED):
        st.session_state.pop(key, None)


def _resume() -> None:
    st.session_state.pop(PAUSED, None)


def _hide_sidebar() -> None:
    """A reader needs no data source, device or navigation: the sidebar is hidden on an open session."""
    st.html("<style>section[data-testid='stSidebar'], [data-testid='stSidebarCollapsedControl'], "
            "[data-testid='stExpandSidebarButton'] {display: none !important;}</style>")


def _credentials() -> tuple[str, str] | None:
    """The session and code this tab reads with: the link's (checked), else those typed in the form; ``None`` after
    drawing the form (and at most one error line)."""
    ss = st.session_state
    params = st.query_params
    name, code = str(params.get("session", "") or ""), str(params.get("code", "") or "")
    error = None
    if name and code and ss.get(AUTH) != (name, code):
        _forget()
        try:
            open_session(name, code)
            ss[AUTH] = (name, code)
        except ExplorerError as exc:
            error = str(exc)
    if ss.get(AUTH) is not None:
        return ss[AUTH]
    st.caption("Open your reading session with the personal link you were sent, or type the session's name and your "
               "personal code.")
    with st.form("reading.open", border=True):
        typed_name = st.text_input("Session", value=name, key="reading.open.session")
        typed_code = st.text_input("Personal code", type="password", key="reading.open.code",
                                   placeholder="xxxx-xxxx-xxxx")
        submitted = st.form_submit_button("Open", type="primary", icon=":material/login:")
    if submitted:
        error = None
        try:
            open_session(typed_name, typed_code)
        except ExplorerError as exc:
            error = str(exc)
        else:
            _forget()
            ss[AUTH] = (typed_name.strip(), typed_code.strip())
            st.query_params.update({"session": typed_name.strip(), "code": typed_code.strip()})
            st.rerun()
    if error:
        st.error(error, icon=":material/error:")
    return None


def render() -> None:
    """The whole reading page (see the module docstring)."""
    st.title("Reading")
    auth = _credentials()
    if auth is None:
        return
    name, code = auth
    ss = st.session_state
    try:
        reading = Reading(session_file(name))
        info = reading.task(code)
        progress = reading.progress(code)
    except (ExplorerError, OSError, sqlite3.Error):
        _forget()
        st.error(INVALID, icon=":material/error:")
        return
    _hide_sidebar()
    if ss.get(PAUSED):
        st.info(f"Paused: your answers so far ({progress.answered} of {progress.total}) are saved. You may close this "
                "tab; open your link again to go on (it continues at the first case you have not answered).",
                icon=":material/pause:")
        st.button("Continue now", key="reading.continue", type="primary", icon=":material/play_arrow:",
                  on_click=_resume)
        return
    goto = ss.pop(GOTO, None)
    if goto is not None or ss.get(ITEM) is None or (ss.get(ITEM) != DONE and ss.get(VIEW) is None):
        _show(reading, code, info, goto or "resume")
    if ss.get(ITEM) == DONE:
        _done(progress)
        return
    _case(reading, code, info, ss[VIEW])


def _done(progress: ReaderProgress) -> None:
    st.progress(1.0 if progress.done else progress.answered / max(progress.total, 1),
                text=f"{progress.answered} of {progress.total} answered")
    if progress.done:
        st.success(f"All {progress.total} cases are answered: thank you. Your answers are saved; you may close this "
                   "tab.", icon=":material/check_circle:")
    c1, c2, _ = st.columns([1, 1, 3])
    c1.button("Previous", key="reading.prev", icon=":material/arrow_back:", on_click=_go,
              args=(("at", progress.total),))
    c2.button("Back to case 1", key="reading.first", icon=":material/first_page:", on_click=_go, args=(("at", 1),))


def _case(reading: Reading, code: str, info: TaskInfo, view: ItemView) -> None:
    ss = st.session_state
    top = st.empty()
    with st.expander("Instructions", expanded=view.position == 1 and view.answer is None, icon=":material/info:"):
        st.markdown(info.instructions)
        st.caption("Keys (with the pointer over the image): " + KEY_HELP[info.kind] + " · **Enter** = next case. "
                   "The viewer's own keys and tools (window/level by right-drag, zoom by the wheel, **?** lists them) "
                   "work as usual.")
    left, right = st.columns([3, 2], gap="medium")
    images = dict(zip((PANELS.get(n, n.capitalize()) for n in view.names), view.images))
    if view.reference is not None:
        images = {"Reference": view.reference, **images}
    with left:
        viewer.show(viewer_key(), None, images, uirevision=view.item_id, details=False, filename="case",
                    mark=info.kind == DETECTION, point=ss.get(POINT) if info.kind == DETECTION else None,
                    keys=list(KEYS[info.kind]), on_point=_on_point if info.kind == DETECTION else None,
                    on_key=functools.partial(_on_key, info), columns=len(images),
                    window=(0.0, 1.0))  # the session's images are normalised alike: one window shows them alike
    with right:
        draft = _answer_widgets(info)
        answer = answer_of(info, draft, ss.get(POINT))
        receipt = None
        if answer is not None:
            try:
                clean = check_answer(info.kind, answer, tuple(c.name for c in info.criteria), view.images[0].shape)
                if clean != view.answer:
                    seconds = min(max(time.monotonic() - ss.get(SINCE, time.monotonic()), 0.0), MAX_SECONDS)
                    receipt = reading.answer(code, view.item_id, clean, seconds=round(seconds, 3))
                    ss[SINCE] = time.monotonic()
                    view = dataclasses.replace(view, answer=clean)
                    ss[VIEW] = view
                    ss[SAVED] = receipt
            except ExplorerError as exc:
                st.error(str(exc).splitlines()[0], icon=":material/error:")
        _status(info, view, draft, ss.get(SAVED))
        c1, c2, c3 = st.columns(3)
        c1.button("Previous", key="reading.prev", icon=":material/arrow_back:", disabled=view.position <= 1,
                  on_click=_go, args=("prev",), width="stretch")
        c2.button("Next", key="reading.next", icon=":material/arrow_forward:", type="primary",
                  disabled=view.answer is None, on_click=_go, args=("next",), width="stretch",
                  help=None if view.answer is not None else "Answer this case first")
        c3.button("Pause", key="reading.pause", icon=":material/pause:", on_click=_pause, width="stretch",
                  help="Leave now: every answer so far is saved; your link continues where you stopped.")
    answered = reading.progress(code).answered if receipt is None else receipt.answered
    top.progress(answered / max(view.total, 1),
                 text=f"Case {view.position} of {view.total} · {answered} of {view.total} answered")


def _answer_widgets(info: TaskInfo) -> dict:
    """The task's answer widgets (values from the session state); returns the draft ``{field: value}``."""
    ss = st.session_state
    if info.kind == LIKERT:
        for c in info.criteria:
            anchors = dict(c.anchors)
            st.radio(f"**{c.title}**: {c.question}", list(SCALE), key=_widget(c.name), horizontal=True,
                     format_func=lambda k, a=anchors: f"{k} · {a[k]}")
    elif info.kind == AFC:
        st.radio("**Which image would you rather read from?**", list(CHOICES), key=_widget("choice"),
                 horizontal=True, format_func=CHOICES.get)
    else:
        st.radio("**Lesion**", [True, False], key=_widget("present"), horizontal=True, format_func=PRESENCE.get,
                 on_change=_on_present)
        point = ss.get(POINT)
        if ss.get(_widget("present")):
            if point is None:
                st.caption(":material/ads_click: Click the lesion's centre in the image (the **Mark** tool).")
            else:
                st.caption(f":material/ads_click: Marked at row {point[0]}, column {point[1]}: click again to move it.")
        anchors = dict(info.confidence)
        st.radio("**Confidence** in your decision", list(SCALE), key=_widget("confidence"), horizontal=True,
                 format_func=lambda k: f"{k} · {anchors[k]}")
    return {f: ss.get(_widget(f)) for f in fields(info)}


def _status(info: TaskInfo, view: ItemView, draft: Mapping, receipt) -> None:
    if receipt is not None and receipt.item_id == view.item_id:
        what = "Saved" if receipt.event == "answer" else "Change saved"
        took = f" · {receipt.seconds:.0f} s on this case" if receipt.seconds is not None and math.isfinite(
            receipt.seconds) else ""
        st.caption(f":material/check_circle: {what}{took}")
    elif view.answer is not None:
        st.caption(":material/check_circle: Answered: any change is saved as you make it.")
    else:
        missing = [f for f in fields(info) if draft.get(f) is None]
        if info.kind == DETECTION and draft.get("present") and st.session_state.get(POINT) is None:
            missing.append("the location")
        st.caption(":material/radio_button_unchecked: Not answered yet"
                   + (f" ({len(missing)} to give)" if info.kind == LIKERT and missing else "")
                   + ": the answer is saved as soon as it is complete.")


__all__ = ["FOLDER", "INVALID", "KEYS", "answer_of", "draft_of", "fields", "folder", "key_action", "next_target",
           "open_session", "render", "session_file"]
