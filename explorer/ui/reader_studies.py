"""The investigator's side of reader studies in the app (the Reader studies page): build a session, add readers
(each one's personal link, shown once), follow their progress, and read the analysis with its downloads.

The page is put together from :mod:`explorer.ui.reader_studies_build` (the build form and its long run),
:mod:`explorer.ui.reader_studies_sessions` (the session files and their investigator codes) and
:mod:`explorer.ui.reader_studies_results` (the analysis tables and downloads); this module opens a session and shows
its readers.

Sessions are the files of :func:`explorer.ui.reading.folder` (``reader-studies/NAME.reading`` under the output
root). The page shows a session's readers and results only to whoever holds its **investigator code**: readers
reach the app too (their links open the Reading page), and this page shows method names and every reader's answers.
The code is made when the session is built here and shown once; only its sha256 is kept, beside the session
(``NAME.reading.investigator``). A session built with the command line (``python -m explorer readers build``) and
copied into the folder has none until someone sets one here: set it before sending the readers their links.

The analysis is :func:`explorer.readers.analysis.analyse`'s, shown with human column names; a note says when readers
are simulated (model observers, never people). A session built from a study folder is registered there, and the
study's report shows the same tables (:mod:`explorer.readers.report`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from explorer.errors import ExplorerError
from explorer.readers.names import TASK_NAMES
from explorer.readers.store import SUFFIX
from explorer.ui import present, reading
from explorer.ui.reader_studies_build import build_section
from explorer.ui.reader_studies_results import results_section
from explorer.ui.reader_studies_sessions import (UNLOCKED, check_investigator_code, has_investigator_code,
                                                 reading_link, session_names, set_investigator_code)

NEW_READER = "readers.new_reader"  # (session, reader name, code, link): shown until the next reader is added


# --------------------------------------------------------------------------- opening a session

def open_section() -> Path | None:
    """Pick a session and unlock it with its investigator code; the unlocked session's path, else ``None``."""
    names = session_names()
    if not names:
        st.info("No reading session yet: build one above.", icon=":material/folder_open:")
        return None
    if st.session_state.get("readers.session") not in names:  # the newest session first
        st.session_state["readers.session"] = max(names, key=lambda n: reading.session_file(n).stat().st_mtime_ns)
    name = st.selectbox("Session", names, key="readers.session",
                        help=f"The sessions in {reading.folder()}.")
    path = reading.session_file(name)
    unlocked = set(st.session_state.get(UNLOCKED, ()))
    if name in unlocked:
        return path
    if not has_investigator_code(path):
        st.warning("This session has no investigator code (it was built with the command line): anyone who opens "
                   "this page could set one. Set it now, before sending the readers their links.",
                   icon=":material/key_off:")
        if st.button("Set an investigator code", key="readers.claim", icon=":material/key:"):
            try:
                code = set_investigator_code(path)
            except ExplorerError as exc:
                st.error(str(exc), icon=":material/error:")
                return None
            st.session_state[UNLOCKED] = unlocked | {name}
            st.warning("**Investigator code** of this session: keep it (only its hash is stored).",
                       icon=":material/key:")
            st.code(code, language=None)
            return path
        return None
    with st.form("readers.unlock", border=False):
        code = st.text_input("Investigator code", type="password", key="readers.code",
                             help="Shown once when the session was built. Readers' codes do not open this page.")
        submitted = st.form_submit_button("Open", icon=":material/lock_open:")
    if submitted:
        if check_investigator_code(path, code):
            st.session_state[UNLOCKED] = unlocked | {name}
            st.rerun()
        st.error("This investigator code is not valid for this session.", icon=":material/error:")
    return None


# --------------------------------------------------------------------------- readers and progress

def readers_section(path: Path) -> None:
    """The session's settings, each reader's progress, and adding readers (human, or simulated for a try-out)."""
    from explorer.readers.codes import add_reader  # noqa: PLC0415
    from explorer.readers.tables import status  # noqa: PLC0415

    name = path.name[:-len(SUFFIX)]
    info = status(path)
    st.caption(f"{TASK_NAMES.get(info.task, info.task)} · {info.cases} cases · {info.items} items per reader "
               f"(repeats included) · built {info.created[:16].replace('T', ' ')} UTC from {info.source}")
    for note in info.notes:
        st.caption(f"Note: {note}")
    rows = [{"Reader": r["name"], "Kind": "simulated (model observer)" if r["kind"] == "simulated" else "person",
             "Answered": r["answered"], "Of": r["total"], "Changed answers": r["changes"],
             "Last answer (UTC)": (r["last"] or "")[:19].replace("T", " ") or present.MISSING}
            for r in info.readers]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="readers.status", width="stretch")
    else:
        st.caption("No readers yet.")

    st.markdown("**Add a reader**")
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    reader = c1.text_input("Reader's name (initials or a pseudonym; readers never see each other's)",
                           key="readers.add.name", placeholder=f"reader {len(info.readers) + 1}")
    if c2.button("Add reader", key="readers.add", icon=":material/person_add:", width="stretch"):
        try:
            new = add_reader(path, reader.strip() or None)
        except ExplorerError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.session_state[NEW_READER] = (name, new.name, new.code, reading_link(name, new.code, st.context.url))
            st.rerun()
    shown = st.session_state.get(NEW_READER)
    if shown and shown[0] == name:
        _, who, code, link = shown
        st.success(f"**{who}** added. Send them this personal link (or the session name **{name}** and the code "
                   f"below): it is shown only now, as only its hash is stored.", icon=":material/person_add:")
        st.code(link, language=None)
        st.code(code, language=None)
        st.caption("The link uses the address you opened the app with: readers on other machines need the server's "
                   "address instead of localhost.")
    with st.expander("Simulated readers (model observers: for trying the analysis, never as results)"):
        n = st.number_input("Simulated readers", 1, 10, 2, key="readers.sim.n")
        if st.button("Add simulated readers", key="readers.sim", icon=":material/smart_toy:"):
            from explorer.readers.simulated import simulate  # noqa: PLC0415

            try:
                with st.spinner("The simulated readers are reading…"):
                    simulate(path, readers=int(n), seed=len(info.readers))
            except ExplorerError as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                st.rerun()


def render() -> None:
    """The whole Reader studies page."""
    st.subheader("1 · Build a session", divider="gray")
    with st.expander("New session", expanded=not session_names(), icon=":material/add:"):
        build_section()
    st.subheader("2 · Readers, progress and results", divider="gray")
    path = open_section()
    if path is None:
        return
    section = st.radio("Show", ["readers", "results"], horizontal=True, key="readers.section",
                       format_func={"readers": "Readers and progress", "results": "Results"}.get,
                       label_visibility="collapsed")
    try:
        if section == "readers":
            readers_section(path)
        else:
            results_section(path)
    except ExplorerError as exc:
        st.error(str(exc).splitlines()[0], icon=":material/error:")



__all__ = ["NEW_READER", "open_section", "readers_section", "render"]
