"""Running a study from the app (serial, in this session): a progress bar with done / total, rate and ETA, and
Stop (the units under way finish; the table keeps every finished unit); opening a study row on its page. The
protocol (button, status box, Stop, hand-over, results header) is :class:`~explorer.ui.runs.protocol.LongRun`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from explorer.errors import ExplorerError
from explorer.study.runner import StudyRun, run_study
from explorer.study.spec import parse_spec, spec_from_text
from explorer.ui import cache, paths
from explorer.ui.runs.protocol import Live, LongRun, Outcome


@dataclass(frozen=True)
class StudyRequest:
    """A spec (YAML text) run into a folder, resuming or not."""

    spec: str
    out: str
    resume: bool


@dataclass
class StudyPageRun(Outcome):
    result: StudyRun | None = None

    def status(self) -> str:
        return "stopped" if self.stopped else "done"

    def stop_note(self) -> str:
        return "Stopped: the finished units are kept; tick Resume and run again to continue."


def work(request: StudyRequest, live: Live, page_run: StudyPageRun) -> None:
    """Parse the spec (YAML), run it serially into the folder; a stop ends it after the unit under way."""
    out = Path(request.out)
    bar = live.bar("expanding the spec…")

    def progress(done, total, info):
        eta = info.get("eta")
        text = (f"{done}/{total} units · {info['rate']:.2f} units/s"
                + (f" · about {eta:.0f} s left" if eta is not None else ""))
        return True if not live.guard(lambda: bar.progress(done / max(total, 1), text=text)) else None

    spec = parse_spec(spec_from_text(request.spec), base=str(out.parent))
    paths.confine_spec(spec)  # its data and files only from the data directory, never another session's uploads
    page_run.result = run_study(spec, out, "serial", resume=request.resume, progress=progress)
    (out / "spec.yaml").write_text(request.spec)
    page_run.stopped = live.stopping or page_run.result.stopped


RUN = LongRun("study", button="Run study", icon=":material/play_arrow:", work=work, outcome=StudyPageRun,
              idle="Write a spec, choose a folder and press **Run study**.",
              working=lambda request: "Running the study…",
              stop_help="Stop after the unit under way; every finished unit is kept (continue with Resume).",
              waiting="Finishing the unit under way…")


GOTO = "study.goto"


def row_page(record) -> tuple[str, bool]:
    """The page script a study row opens on (its experiment's :attr:`~explorer.robustness.registry.Page.row_page`,
    else the Reconstruct page) and whether that page picks one method."""
    from explorer.robustness.registry import get_experiment  # noqa: PLC0415

    try:
        page = get_experiment(record.experiment).page
    except ExplorerError:  # a table written by an experiment this install does not have
        page = None
    return (page.row_page, page.picks_one) if page is not None else ("pages/reconstruct.py", False)


def openable(record) -> str | None:
    """Why a study row cannot be opened in the app (None: it can): an embedded sample the sidebar does not offer."""
    from explorer.data.sample_sources import SAMPLE_OPTIONS  # noqa: PLC0415

    if record.data.startswith("sample:"):
        family, _, variant = record.data[len("sample:"):].partition(",")
        if family not in SAMPLE_OPTIONS or variant not in SAMPLE_OPTIONS[family]:
            return f"{record.data} is not one of the sidebar's samples: write it as a file (python -m explorer sample) to open it"
    return None


def open_in_page(record) -> None:
    """A button callback: put the row's data, slice, mask, method and parameters into the matching page's widgets
    and ask the Study page to switch there (callbacks run before the widgets are created, so they may set them)."""
    import json  # noqa: PLC0415

    from explorer.recon.base import get_method  # noqa: PLC0415
    from explorer.ui.state import sample_source  # noqa: PLC0415

    ss = st.session_state
    script, picks_one = row_page(record)
    page = script.rsplit("/", 1)[-1].removesuffix(".py")
    if record.data.startswith("sample:"):
        family, _, variant = record.data[len("sample:"):].partition(",")
        ss["src.kind"], ss["src.family"], ss[f"src.variant.{family}"] = "sample", family, variant
        key = cache.open_volume(sample_source(family, variant)).read_slice(0).meta.defaults_key
    else:
        path = Path(record.data)
        ss["src.kind"], ss["src.dir"], ss["src.file"] = "dir", str(path.parent), path.name
        from explorer.data.sources import open_volume  # noqa: PLC0415

        key = open_volume(record.data).read_slice(0).meta.defaults_key
    ss[f"{page}.slice"] = int(record.slice)
    if record.mask_type != "acquired":
        ss[f"{page}.mask.type"], ss[f"{page}.mask.acceleration"] = record.mask_type, float(record.acceleration)
        ss[f"{page}.mask.seed"], ss[f"{page}.mask.cf_default"] = int(record.mask_seed), False
        ss[f"{page}.mask.cf"] = float(record.center_fraction)
    spec = get_method(record.method)
    if picks_one:
        ss[f"{page}.method"] = record.method
    else:
        ss[f"{page}.methods"] = [record.method]
    prefix = f"{page}.params"
    varying = set(spec.anatomy_defaults(key))
    for name, value in json.loads(record.config or "{}").items():
        ss[f"{prefix}.{record.method}.{name}" + (f".{key or 'any'}" if name in varying else "")] = value
    ss[GOTO] = script

