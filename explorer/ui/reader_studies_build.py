"""Building a reading session on the Reader studies page: the form (demonstration or a study folder, the task and
its design), the build as a long run (progress, Stop: nothing is written when stopped) and the new session's
investigator code, shown once (:mod:`explorer.ui.reader_studies_sessions`)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from explorer.errors import ExplorerError
from explorer.readers.names import TASK_NAMES
from explorer.readers.session import BuiltSession
from explorer.readers.tasks import CRITERIA, DETECTION, LIKERT, TASKS
from explorer.ui import paths, state
from explorer.ui.reader_studies_sessions import UNLOCKED, new_session_file, set_investigator_code
from explorer.ui.runs.protocol import Live, LongRun, Outcome

SOURCES = {"demo": "Demonstration (embedded knee sample)", "study": "A study folder (Study page)"}


@dataclass(frozen=True)
class BuildRequest:
    """A session to build: its name, where the cases come from and the design's settings."""

    name: str
    source: str
    study: str
    task: str
    seed: int
    repeats: float
    criteria: tuple[str, ...]
    show_reference: bool
    size: int
    slices: int


@dataclass
class BuildRun(Outcome):
    built: BuiltSession | None = None
    code: str = ""  # the investigator code made for it (shown with the result)

    def status(self) -> str:
        return "stopped: no session was written" if self.stopped else f"built in {self.seconds:.1f} s"

    def stop_note(self) -> str:
        return "Stopped: no session was written."


def build(request: BuildRequest, live: Live, run: BuildRun) -> None:
    """Reconstruct the cases and write the session (nothing is written when stopped), then make its investigator
    code and open it on the page."""
    from explorer.readers.options import ReadingOptions  # noqa: PLC0415
    from explorer.readers.session import build_demo, build_from_study  # noqa: PLC0415

    path = new_session_file(request.name)
    bar = live.bar("reconstructing the cases…")

    def progress(done: int, total: int, _what: str):
        text = f"{done} of {total} reconstructions"
        return True if not live.guard(lambda: bar.progress(done / max(total, 1), text=text)) else None

    if request.source == "demo":
        built = build_demo(path, request.task, request.size, request.slices, request.seed, request.repeats,
                           progress=progress)
    else:
        from explorer.study.runner import SPEC  # noqa: PLC0415
        from explorer.study.spec import load_spec  # noqa: PLC0415

        if not request.study.strip():
            raise ExplorerError("enter the study folder (the Study page's)")
        folder = paths.confine_path(request.study, "the study folder", base=state.output_root())
        if (folder / SPEC).is_file():
            paths.confine_spec(load_spec(folder / SPEC))  # its data only from the data directory
        options = ReadingOptions(task=request.task, seed=request.seed, repeats=request.repeats,
                                 criteria=request.criteria, show_reference=request.show_reference,
                                 name=request.name)
        built = build_from_study(path, folder, options, progress=progress)
    run.built = built
    run.code = set_investigator_code(built.path)
    unlocked = set(st.session_state.get(UNLOCKED, ()))
    st.session_state[UNLOCKED] = unlocked | {request.name}
    st.session_state["readers.session"] = request.name


BUILD = LongRun("readers", button="Build session", icon=":material/construction:", work=build, outcome=BuildRun,
                idle="Choose the cases and the task, then press **Build session**.",
                working=lambda request: f"Building {request.name}…",
                stop_help="Stop now: no session is written.", waiting="Stopping the build…")


def build_section() -> None:
    """The form of a new session and its build (progress, Stop); the new session's investigator code, once."""
    root = state.output_root()
    c1, c2 = st.columns(2)
    name = c1.text_input("Session name", key="readers.build.name", placeholder="knee-2afc",
                         help="Letters, digits, '.', '_' and '-'. It is part of every reader's link (readers see it).")
    source = c2.radio("Cases from", list(SOURCES), format_func=SOURCES.get, key="readers.build.source",
                      horizontal=True)
    c1, c2, c3 = st.columns(3)
    task = c1.selectbox("Task", list(TASKS), format_func=TASK_NAMES.get, key="readers.build.task",
                        help=" · ".join(f"{TASK_NAMES[k]}: {v}" for k, v in TASKS.items()))
    seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key="readers.build.seed",
                           help="Seeds the left/right placement, the repeats and every reader's order.")
    repeats = c3.slider("Repeats (share of cases shown twice)", 0.0, 0.5, 0.2, 0.05, key="readers.build.repeats",
                        help="Shown again after every first showing: intra-reader consistency.")
    criteria: tuple[str, ...] = tuple(CRITERIA)
    show_reference = False
    size, slices, study = 96, 3, ""
    if task == LIKERT:
        criteria = tuple(st.multiselect("Criteria", list(CRITERIA), default=list(CRITERIA),
                                        format_func=lambda c: CRITERIA[c].title, key="readers.build.criteria"))
    if source == "study":
        study = st.text_input("Study folder", key="readers.build.study", placeholder="studies/demo",
                              help=f"A folder the Study page wrote or opens (spec.yaml and results.parquet); relative "
                                   f"folders start in {root}. Its clean, attack, features and shift units become "
                                   "cases (detection: clean and features).")
        if task != DETECTION:
            show_reference = st.checkbox("Show the fully sampled reference beside each case",
                                         key="readers.build.reference")
    else:
        c1, c2 = st.columns(2)
        size = int(c1.number_input("Image size (px)", 32, 320, 96, step=16, key="readers.build.size"))
        slices = int(c2.number_input("Slices", 1, 16, 3, key="readers.build.slices"))
        st.caption("Zero-filled, ℓ1 and the U-net at 4× on the embedded knee sample: clean and attacked (Likert, "
                   "2AFC), or clean and with one small inserted lesion (detection).")
    request = BuildRequest(name.strip(), source, study, task, int(seed), float(repeats), criteria, show_reference,
                           size, slices)
    run = BUILD.section(request, heading=None, disabled=not name.strip(), stop_if_idle=False)
    if isinstance(run, BuildRun) and run.built is not None:
        built = run.built
        st.success(f"Built **{request.name if run.request == request else run.request.name}**: {built.cases} cases, "
                   f"{built.items} items per reader (repeats included).", icon=":material/check_circle:")
        for note in built.notes:
            st.caption(note)
        if run.code:
            st.warning("**Investigator code** of this session: keep it (it opens this session's readers and results "
                       "on this page; only its hash is stored, so it cannot be shown again).",
                       icon=":material/key:")
            st.code(run.code, language=None)



__all__ = ["BUILD", "BuildRequest", "BuildRun", "SOURCES", "build", "build_section"]
