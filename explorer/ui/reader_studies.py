"""The investigator's side of reader studies in the app (the Reader studies page): build a session, add readers
(each one's personal link, shown once), follow their progress, and read the analysis with its downloads.

Sessions are the files of :func:`explorer.ui.reading.folder` (``reader-studies/NAME.reading`` under the output
root). The page shows a session's readers and results only to whoever holds its **investigator code**: readers
reach the app too (their links open the Reading page), and this page shows method names and every reader's answers.
The code is made when the session is built here and shown once; only its sha256 is kept, beside the session
(``NAME.reading.investigator``). A session built with the command line (``python -m explorer readers build``) and
copied into the folder has none until someone sets one here: set it before sending the readers their links.

The analysis is :func:`explorer.readers.analysis.analyse`'s, shown with human column names; a note says when readers
are simulated (model observers, never people). The study report can show the same tables through
:func:`explorer.readers.analysis.sections`.
"""

from __future__ import annotations

import hmac
import io
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from explorer.errors import ExplorerError
from explorer.readers.session import BuiltSession
from explorer.readers.store import SUFFIX, code_hash, new_code, now
from explorer.readers.tasks import AFC, CRITERIA, DETECTION, LIKERT, TASKS
from explorer.ui import paths, present, reading, state
from explorer.ui.runs.protocol import Download, Live, LongRun, Outcome, downloads

KEY_SUFFIX = ".investigator"
UNLOCKED = "readers.unlocked"  # {session name} opened with the investigator code in this browser session
NEW_READER = "readers.new_reader"  # (session, reader name, code, link): shown until the next reader is added
SOURCES = {"demo": "Demonstration (embedded knee sample)", "study": "A study folder (Study page)"}
TASK_NAMES = {LIKERT: "Likert ratings", AFC: "Two-alternative forced choice (2AFC)", DETECTION: "Lesion detection"}


# --------------------------------------------------------------------------- sessions and investigator codes

def session_names() -> list[str]:
    """The sessions in the app's reading folder (names, sorted)."""
    base = reading.folder()
    if not base.is_dir():
        return []
    names = [p.name[:-len(SUFFIX)] for p in base.iterdir() if p.name.endswith(SUFFIX) and p.is_file()]
    return sorted(n for n in names if reading.NAME.fullmatch(n))


def new_session_file(name: str) -> Path:
    """Where a new session called ``name`` is written (its folder created).

    Raises:
        ExplorerError: a name that is not 1-64 letters, digits, ``.``, ``_`` or ``-`` (first a letter or digit);
            outside the output root.
    """
    text = str(name or "").strip()
    if not reading.NAME.fullmatch(text):
        raise ExplorerError("a session name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a "
                            f"digit; got {text!r}")
    path = paths.confine_output(str(reading.folder() / f"{text}{SUFFIX}"), "the session file")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def key_file(path: Path) -> Path:
    """The file beside a session that holds its investigator code's hash."""
    return path.with_name(path.name + KEY_SUFFIX)


def has_investigator_code(path: Path) -> bool:
    return key_file(path).is_file()


def set_investigator_code(path: Path) -> str:
    """Give a session that has none an investigator code; returns it (shown once: only its hash is kept).

    Raises:
        ExplorerError: the session has one already (it is never replaced here).
    """
    code = new_code()
    try:
        fd = os.open(key_file(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ExplorerError("this session has an investigator code already") from None
    with os.fdopen(fd, "w") as f:
        json.dump({"sha256": code_hash(code), "created": now()}, f)
    return code


def check_investigator_code(path: Path, code: str) -> bool:
    """Whether ``code`` is the session's investigator code."""
    try:
        stored = json.loads(key_file(path).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(str(code or "").strip()) and hmac.compare_digest(stored, code_hash(code))


def reading_link(name: str, code: str, url: str | None = None) -> str:
    """A reader's personal link: the Reading page of this server (the address the investigator opened the app
    with) with the session and the code; a path from the server's root when the address is unknown."""
    query = urllib.parse.urlencode({"session": name, "code": code})
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme and parts.netloc:
        base = parts.path.rsplit("/", 1)[0] if parts.path.count("/") else ""
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"{base}/reading", query, ""))
    return f"/reading?{query}"


# --------------------------------------------------------------------------- building

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
    from explorer.readers.session import ReadingOptions, build_demo, build_from_study  # noqa: PLC0415

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
    from explorer.readers.store import add_reader, status  # noqa: PLC0415

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


# --------------------------------------------------------------------------- results

TITLES = {
    "ratings": "Mean rating per method",
    "rating_differences": "Differences between methods",
    "preference": "2AFC preference per pair",
    "method_preference": "2AFC wins per method",
    "detection": "Detection: ROC and localisation-aware (LROC) areas per method",
    "agreement": "Inter-reader agreement",
    "icc": "Inter-reader agreement: intraclass correlation",
    "consistency": "Intra-reader consistency (repeated cases)",
    "metric_correlation": "Reader scores against the metrics",
    "metric_agreement": "2AFC choices against the metrics",
}
COLUMNS = {
    "criterion": "Criterion", "condition": "Condition", "label": "Method", "mean": "Mean rating",
    "ci_low": "Interval low", "ci_high": "Interval high", "readers": "Readers", "subjects": "Slices",
    "ratings": "Ratings", "first": "Method A", "second": "Method B", "difference": "Difference (A − B)",
    "pairs": "Paired ratings", "pair": "Pair", "choices": "Choices", "first_chosen": "A chosen",
    "share": "Share", "wilson_low": "Wilson low", "wilson_high": "Wilson high", "p_value": "Binomial p",
    "comparisons": "Comparisons", "wins": "Wins", "measure": "Measure", "reader_a": "Reader A",
    "reader_b": "Reader B", "items": "Cases", "kappa": "κ", "exact": "Identical answers",
    "icc2_1": "ICC(2,1)", "icc1_1": "ICC(1,1)", "icc3_1": "ICC(3,1)", "reader": "Reader", "repeats": "Repeats",
    "metric": "Metric", "n": "Images", "spearman": "Spearman ρ", "spearman_p": "Spearman p",
    "kendall": "Kendall τ", "kendall_p": "Kendall p", "agree": "Choices agreeing", "auc": "ROC AUC",
    "auc_low": "ROC AUC low", "auc_high": "ROC AUC high", "lroc_auc": "LROC AUC", "lroc_low": "LROC AUC low",
    "lroc_high": "LROC AUC high", "sensitivity": "Sensitivity", "localised": "Localised sensitivity",
    "specificity": "Specificity", "present": "Cases with a lesion", "absent": "Cases without",
    "tolerance": "Tolerance (px)",
}
SHARES = {"preference": "Share choosing A", "method_preference": "Share of wins", "metric_agreement": "Share agreeing"}
METRIC_NAMES = {"ssim": "SSIM", "psnr": "PSNR", "nmse": "NMSE"}
METHOD_VALUES = ("label", "first", "second")


def condition_name(condition: str) -> str:
    """A case condition for people: ``attack eps=0.05`` -> ``attacked (ε = 0.05)``, ``shift:brain`` -> ``shifted
    (brain)``, ``lesion`` -> ``with a lesion``."""
    text = str(condition)
    if text.startswith("attack eps="):
        return f"attacked (ε = {text.split('=', 1)[1]})"
    if text.startswith("shift:"):
        return f"shifted ({text[len('shift:'):]})"
    return {"lesion": "with a lesion", "all": "all conditions"}.get(text, text)


def measure_name(measure: str) -> str:
    """What an agreement row measures: ``rating overall`` -> ``Overall image quality``."""
    text = str(measure)
    if text.startswith("rating ") and text[len("rating "):] in CRITERIA:
        return CRITERIA[text[len("rating "):]].title
    return {"choice": "Choice (2AFC)", "detection score": "Detection score (1-10)"}.get(text, text)


def human_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """An analysis table with human column names, method display names and metric names."""
    names = present.method_names()
    out = frame.copy()
    for column in METHOD_VALUES:
        if column in out:
            out[column] = [present.method_name(v, names) for v in out[column]]
    if "pair" in out:
        out["pair"] = [" vs ".join(str(present.method_name(p, names)) for p in str(v).split(" vs "))
                       for v in out["pair"]]
    if "metric" in out:
        out["metric"] = [METRIC_NAMES.get(v, v) for v in out["metric"]]
    if "condition" in out:
        out["condition"] = [condition_name(v) for v in out["condition"]]
    if "criterion" in out:
        out["criterion"] = [CRITERIA[v].title if v in CRITERIA else v for v in out["criterion"]]
    if "measure" in out:
        out["measure"] = [measure_name(v) for v in out["measure"]]
    columns = dict(COLUMNS)
    if name in SHARES:
        columns["share"] = SHARES[name]
    return out.rename(columns=columns)


FORMATS = {"Mean rating": "%.2f", "Interval low": "%.2f", "Interval high": "%.2f", "Difference (A − B)": "%+.2f",
           "Share": "%.2f", "Share choosing A": "%.2f", "Share of wins": "%.2f", "Share agreeing": "%.2f",
           "Wilson low": "%.2f", "Wilson high": "%.2f", "Binomial p": "%.3g", "κ": "%.3f",
           "Identical answers": "%.2f", "ICC(2,1)": "%.3f", "ICC(1,1)": "%.3f", "ICC(3,1)": "%.3f",
           "Spearman ρ": "%+.3f", "Spearman p": "%.3g", "Kendall τ": "%+.3f", "Kendall p": "%.3g",
           "ROC AUC": "%.3f", "ROC AUC low": "%.3f", "ROC AUC high": "%.3f", "LROC AUC": "%.3f",
           "LROC AUC low": "%.3f", "LROC AUC high": "%.3f", "Sensitivity": "%.2f", "Localised sensitivity": "%.2f",
           "Specificity": "%.2f", "Tolerance (px)": "%g"}


HEADLINE = ("ratings", "preference", "detection", "metric_correlation", "metric_agreement")


def display_order(tables) -> list[str]:
    """The analysis tables in the order the page shows them: what the readers saw per method, then whether the
    metrics predict it, then the rest (differences, agreement, consistency)."""
    return [k for k in HEADLINE if k in tables] + [k for k in tables if k not in HEADLINE]


def rating_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """The mean ratings as one row per method and condition, one column per criterion: ``mean [low, high]``."""
    names = present.method_names()
    rows: dict[tuple, dict] = {}
    for r in frame.itertuples():
        row = rows.setdefault((r.label, r.condition), {"Method": present.method_name(r.label, names),
                                                        "Condition": condition_name(r.condition)})
        interval = "" if pd.isna(r.ci_low) else f" [{r.ci_low:.2f}, {r.ci_high:.2f}]"
        row[CRITERIA[r.criterion].title if r.criterion in CRITERIA else r.criterion] = f"{r.mean:.2f}{interval}"
    grid = pd.DataFrame(list(rows.values()))
    titles = [c.title for c in CRITERIA.values() if c.title in grid.columns]
    return grid[["Method", "Condition", *titles, *[c for c in grid.columns if c not in ("Method", "Condition", *titles)]]]


@st.cache_data(show_spinner="Analysing the answers…", max_entries=8)
def _analysis(path: str, stamp: tuple, n_boot: int, kinds: tuple[str, ...]) -> Any:
    """The session's analysis (``stamp``: the readers' progress, so new answers give a new analysis)."""
    from explorer.readers.analysis import analyse  # noqa: PLC0415

    return analyse(path, n_boot=n_boot, kinds=kinds)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def results_section(path: Path) -> None:
    """The analysis tables (human names, captions, the simulated-readers caveat) and the downloads."""
    from explorer.readers.store import answers_frame, audit_frame, status  # noqa: PLC0415

    name = path.name[:-len(SUFFIX)]
    info = status(path)
    kinds_present = {r["kind"] for r in info.readers if r["answered"]}
    c1, c2 = st.columns(2)
    n_boot = int(c1.number_input("Bootstrap replicates", 0, 20000, 2000, step=500, key="readers.boot",
                                 help="Resampling readers and cases; 0: no intervals."))
    with_simulated = c2.checkbox("Include simulated readers", value=True, key="readers.with_sim",
                                 disabled="simulated" not in kinds_present,
                                 help="Simulated readers are scripted model observers (tests and demonstrations).")
    kinds = ("human", "simulated") if with_simulated else ("human",)
    stamp = tuple((r["reader_id"], r["answered"], r["changes"], r["last"]) for r in info.readers)
    try:
        result = _analysis(str(path), stamp, n_boot, kinds)
    except ExplorerError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    for note in result.notes:
        if "SIMULATED" in note:
            st.warning(f"**Simulated readers**: {note}. Read these tables as a demonstration of the analysis, not as "
                       "a reader study.", icon=":material/smart_toy:")
        else:
            st.caption(note[:1].upper() + note[1:] + ".")
    csvs = []
    for key in display_order(result.tables):
        frame = result.tables[key]
        st.markdown(f"**{TITLES.get(key, key)}**")
        st.caption(result.captions.get(key, ""))
        if frame.empty:
            st.caption("No rows yet (too few answers, readers or repeats).")
            continue
        shown, config = present.table(human_table(key, frame), formats=FORMATS)
        if key == "ratings":
            st.dataframe(rating_grid(frame), hide_index=True, key="readers.table.ratings_grid", width="stretch")
            with st.expander("Every rating row (with counts)"):
                st.dataframe(shown, hide_index=True, key=f"readers.table.{key}", width="stretch",
                             column_config=present.column_config(config))
        else:
            st.dataframe(shown, hide_index=True, key=f"readers.table.{key}", width="stretch",
                         column_config=present.column_config(config))
        csvs.append(Download(f"{TITLES.get(key, key)} (CSV)", present.frame_csv(shown), f"{name}_{key}.csv",
                             "text/csv", icon=":material/table:"))
    st.markdown("**Downloads**")
    answers = answers_frame(path)
    audit = audit_frame(path)
    downloads("readers.dl", [
        Download("Answers, unblinded (CSV)", answers.to_csv(index=False), f"{name}_answers.csv", "text/csv",
                 help="One row per reader and case: the answer, the reading time and the case's key (method, "
                      "condition, metrics); the columns of `python -m explorer readers export`."),
        Download("Answers, unblinded (Parquet)", _parquet(answers), f"{name}_answers.parquet"),
        Download("Audit log (CSV)", audit.to_csv(index=False), f"{name}_audit.csv", "text/csv",
                 help="Every showing, answer and change with its time."),
    ])
    if csvs:
        with st.expander("Each analysis table (CSV)"):
            downloads("readers.tables", csvs)


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


__all__ = ["BUILD", "BuildRequest", "BuildRun", "check_investigator_code", "has_investigator_code", "human_table",
           "key_file", "new_session_file", "reading_link", "render", "session_names", "set_investigator_code"]
