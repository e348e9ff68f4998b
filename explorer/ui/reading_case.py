"""The case on the reading page: the item on screen in the viewer, the task's answer widgets (each answer stored as
soon as it is complete), Previous / Next / Pause, and the end of the session. Its state lives in the browser tab's
session state under the keys below; the answers live in the session file (:mod:`explorer.readers.reading`)."""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Mapping

import streamlit as st

from explorer.errors import ExplorerError
from explorer.readers.reading import MAX_SECONDS, ItemView, ReaderProgress, Reading
from explorer.readers.tasks import AFC, DETECTION, LIKERT, SCALE, TaskInfo, check_answer
from explorer.ui import viewer
from explorer.ui.reading_answers import CHOICES, KEY_HELP, KEYS, answer_of, draft_of, fields, key_action, next_target

VIEWER = "reading.viewer"  # the viewer's key prefix: two keys, taken in turn (see viewer_key)
DONE = "<done>"

# session state (this browser tab only: the answers are in the session file)
ITEM = "reading.item"      # the item on screen (its opaque id), DONE, or absent (show the first unanswered)
VIEW = "reading.view"      # its ItemView
GEN = "reading.gen"        # counts showings: the answer widgets' keys carry it (fresh widgets per showing)
SINCE = "reading.since"    # time.monotonic() when the item was shown or last answered
POINT = "reading.point"    # the detection mark (row, col) or None
GOTO = "reading.goto"      # a navigation asked for by a button or a key (applied at the start of the next run)
PAUSED = "reading.paused"
SAVED = "reading.saved"    # the Receipt of this showing's last stored answer
VKEY = "reading.vkey"      # counts fresh viewers (viewer_key)

PANELS = {"image": "Image", "left": "Left", "right": "Right"}
PRESENCE = {True: "Present: click its centre in the image", False: "Absent"}


def _widget(field: str) -> str:
    return f"reading.g{st.session_state.get(GEN, 0)}.{field}"


def show_item(reading: Reading, code: str, info: TaskInfo, goto) -> None:
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


def pause() -> None:
    """Leave the case (a button's callback): every answer so far is saved; the link continues where it stopped."""
    st.session_state[PAUSED] = True
    for key in (ITEM, VIEW, POINT, SAVED):
        st.session_state.pop(key, None)


def resume() -> None:
    """Go on after a pause (a button's callback)."""
    st.session_state.pop(PAUSED, None)


def show_done(progress: ReaderProgress) -> None:
    """The end of the session: the progress, thanks once every case is answered, and the way back."""
    st.progress(1.0 if progress.done else progress.answered / max(progress.total, 1),
                text=f"{progress.answered} of {progress.total} answered")
    if progress.done:
        st.success(f"All {progress.total} cases are answered: thank you. Your answers are saved; you may close this "
                   "tab.", icon=":material/check_circle:")
    c1, c2, _ = st.columns([1, 1, 3])
    c1.button("Previous", key="reading.prev", icon=":material/arrow_back:", on_click=_go,
              args=(("at", progress.total),))
    c2.button("Back to case 1", key="reading.first", icon=":material/first_page:", on_click=_go, args=(("at", 1),))


def show_case(reading: Reading, code: str, info: TaskInfo, view: ItemView) -> None:
    """The case ``view`` on screen: instructions, the viewer, the answer widgets (an answer is stored as soon as it is
    complete), Previous / Next / Pause and the progress."""
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
        c3.button("Pause", key="reading.pause", icon=":material/pause:", on_click=pause, width="stretch",
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


__all__ = ["DONE", "GEN", "GOTO", "ITEM", "PAUSED", "POINT", "SAVED", "SINCE", "VIEW", "VIEWER", "VKEY", "pause",
           "resume", "show_case", "show_done", "show_item", "viewer_key"]
