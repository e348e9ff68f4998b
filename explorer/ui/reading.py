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

This module opens the session (the link or the form) and runs the page; :mod:`explorer.ui.reading_case` draws the
case on screen and its answer widgets, :mod:`explorer.ui.reading_answers` holds what they do (no Streamlit).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import streamlit as st

from explorer.errors import ExplorerError
from explorer.readers.reading import ReaderProgress, Reading
from explorer.readers.store import SUFFIX
from explorer.ui import paths, state
from explorer.ui.reading_case import (DONE, GOTO, ITEM, PAUSED, POINT, SAVED, VIEW, resume, show_case, show_done,
                                      show_item)

FOLDER = "reader-studies"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
INVALID = "This reading link or code is not valid: check it with the person who sent it."
AUTH = "reading.auth"  # (session name, code) once opened (this browser tab only)


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


def _forget() -> None:
    for key in (AUTH, ITEM, VIEW, POINT, GOTO, PAUSED, SAVED):
        st.session_state.pop(key, None)


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
                  on_click=resume)
        return
    goto = ss.pop(GOTO, None)
    if goto is not None or ss.get(ITEM) is None or (ss.get(ITEM) != DONE and ss.get(VIEW) is None):
        show_item(reading, code, info, goto or "resume")
    if ss.get(ITEM) == DONE:
        show_done(progress)
        return
    show_case(reading, code, info, ss[VIEW])


__all__ = ["AUTH", "FOLDER", "INVALID", "NAME", "folder", "open_session", "render", "session_file"]
