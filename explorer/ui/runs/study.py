"""Running a study from the app (serial, in this session): a progress bar with done / total, rate and ETA, and
Stop (the units under way finish; the table keeps every finished unit); opening a study row on its page. The
protocol (button, status box, Stop, hand-over, results header) is :class:`~explorer.ui.runs.protocol.LongRun`'s."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from explorer.errors import ExplorerError
from explorer.study.runner import StudyRun, run_study
from explorer.study.spec import parse_spec, spec_from_text
from explorer.ui import cache, paths, present
from explorer.ui.bundle import Bundle
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



# ------------------------------------------------------------------ showing a study's stored results

FORMATS = {"ssim": "%.4f", "psnr": "%.2f", "nmse": "%.5f", "seconds": "%.2f", "eps": "%g", "ssim_clean": "%.4f",
           "ssim_drop": "%.4f", "ssim_drop_sd": "%.4f", "psnr_drop": "%.2f", "psnr_drop_sd": "%.2f", "ssim_id": "%.4f",
           "ssim_ood": "%.4f", "gap": "%+.4f", "slope": "%.3f", "intercept": "%+.3f", "r": "%+.3f",
           "pearson": "%+.3f", "spearman": "%+.3f", "window_mse": "%.4f", "contrast_recovery": "%.3f",
           "local_ssim": "%.4f", "ssim_before": "%.4f", "ssim_after": "%.4f", "ssim_reference": "%.4f",
           "gap_closed": "%.2f"}


def human_figure(figure):
    """A report figure with the methods' display names in its legend (the figure is changed and returned)."""
    names = present.method_names()
    for trace in figure.data:
        name = getattr(trace, "name", None)
        if name in names:
            trace.name = names[name]
        elif name in present.FAMILIES:
            trace.name = present.FAMILIES[name]
        elif isinstance(name, str) and name.split(" fit:", 1)[0] in present.FAMILIES:  # a family's own fit line
            family, rest = name.split(" fit:", 1)
            trace.name = f"{present.FAMILIES[family]} fit:{rest}"
        elif isinstance(name, str) and name.split(" (", 1)[0] in names:  # e.g. "zero_filled (r = +0.39)"
            method, rest = name.split(" (", 1)
            trace.name = f"{names[method]} ({rest}"
        if isinstance(getattr(trace, "hovertemplate", None), str):
            trace.hovertemplate = trace.hovertemplate.replace("<br>ssim ", "<br>SSIM ").replace(
                "<br>window_mse ", "<br>window MSE ")
    title = figure.layout.title.text
    if title:
        figure.layout.title.text = title.replace("window_mse vs whole-image ssim", "Window MSE vs whole-image SSIM")
        text = getattr(trace, "text", None)
        if isinstance(text, (list, tuple)) and text and all(isinstance(t, str) for t in text):
            trace.text = [names.get(t, t) for t in text]
    for axis in ("xaxis", "yaxis"):
        title = figure.layout[axis].title.text
        if title and "||e|| / ||k||" in title:
            figure.layout[axis].title.text = title.replace("eps = ||e|| / ||k||", "budget ε = ‖e‖ / ‖k‖")
    return figure


def fit_note(rows: list[dict]) -> str:
    """The caveat of a table of fits (rows with ``slope`` and ``n``): the number of models behind each."""
    counts = [r.get("n") for r in rows if "slope" in r and r.get("n") is not None]
    if not counts:
        return ""
    return " · " + present.fit_caption(min(counts), "models") + (" (the smallest fit)" if len(set(counts)) > 1 else "")


def _text(value: Any) -> str:
    if value is None or value == "":
        return present.MISSING
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{present.column(k).lower()} {_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(_text(v) for v in value)
    return str(value)


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def stored_result(record) -> tuple[list[dict], list[dict]]:
    """What a study stored for one row, for people: ``(fields, scores)``: ``fields`` are ``{"Field", "Value"}``
    rows (data, slice, method and parameters, mask, metrics, time, perturbation, notes, error, provenance);
    ``scores`` the row's own scores (an attack's row, each small feature's scores), raw keys."""
    names = present.method_names()
    config = _json(record.config) or {}
    mask = f"{record.mask_type} {record.acceleration:g}×" + (
        "" if record.mask_type == "acquired" else
        f" (centre fraction {_text(record.center_fraction)}, seed {record.mask_seed})")
    fields = [
        ("Experiment", record.experiment + (f" ({record.role})" if record.role else "")),
        ("Data", record.file or record.data), ("Slice", record.slice),
        ("Method", present.method_name(record.label, names)), ("Algorithm", present.method_name(record.method, names)),
        ("Parameters", config), ("Mask", mask), ("Actual acceleration R", record.acceleration_actual),
        ("Coil maps", record.maps), ("Metric definition", record.metric),
        ("SSIM", record.ssim), ("PSNR (dB)", record.psnr), ("NMSE", record.nmse), ("Time (s)", record.seconds),
        ("Stopped early", "yes" if record.stopped else "no"),
        ("Perturbation", _json(record.perturbation)), ("Features", _json(record.feature)),
        ("Notes", _json(record.notes)), ("Error", record.error), ("Device", record.device),
        ("Checkpoint SHA-256", record.checkpoint_sha256), ("Explorer version", record.explorer_version),
        ("Computed", record.created),
    ]
    rows = [{"Field": k, "Value": _text(v)} for k, v in fields if not (v in (None, "", {}, []) and k in (
        "Perturbation", "Features", "Notes", "Error", "Checkpoint SHA-256"))]
    scores = _json(record.scores)
    score_rows = scores if isinstance(scores, list) else [scores] if isinstance(scores, dict) else []
    return rows, [r for r in score_rows if isinstance(r, dict)]


def show_stored(record) -> None:
    """The stored result of a study row (as the study computed it; nothing is run again)."""
    fields, scores = stored_result(record)
    st.markdown(f"**Stored result**: {present.method_name(record.label)} on slice {record.slice} of "
                f"{record.file or record.data} ({record.experiment})")
    st.dataframe(fields, hide_index=True, key="study.stored", width="stretch",
                 column_config={"Field": st.column_config.TextColumn(width="medium"),
                                "Value": st.column_config.TextColumn(width="large")})
    if scores:
        frame, config = present.table(scores, formats=FORMATS, drop=("label", "method"))
        st.caption("Its own scores, as stored:")
        st.dataframe(frame, hide_index=True, key="study.stored_scores", width="stretch",
                     column_config=present.column_config(config))
    st.caption("A study keeps its numbers, not its images: reconstruct the row again on its page to look at them.")


def bundle(records: list, spec_text: str, name: str) -> Callable[[], Bundle]:
    """A maker of a study folder's zip: its spec (as settings), every row (CSV) and the per-slice table."""
    from explorer.study.report import slice_table  # noqa: PLC0415

    tables = {"results.csv": present.csv_text([r.row() for r in records]),
              "per_slice.csv": present.csv_text(slice_table(records))}

    def make() -> Bundle:
        return Bundle(name, {"page": "study", "spec": spec_text}, tables,
                      notes=["settings.json holds the study's spec (YAML text) as it was run."])

    return make
