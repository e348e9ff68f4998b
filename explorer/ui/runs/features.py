"""Running the small-features experiment from the app: progress per method, Stop keeps what was computed.

A run belongs to its browser session (:class:`~explorer.ui.runs.handoff.Handoff`): the features, the slice with
them and the reconstructions are specific to the user's settings. A study (random features over slices) is a
second kind of run with its own hand-off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from explorer.engine import MethodResult
from explorer.engine.tasks import Record, run_tasks
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.boxes import Box, score_boxes
from explorer.robustness.insertion import Feature
from explorer.robustness.features import (FeatureRun, correlation, feature_tasks, method_correlation,
                                                run_features, study_rows)
from explorer.ui import cache
from explorer.ui.runs.feedback import Feedback
from explorer.ui.runs.handoff import Handoff
from explorer.ui.state import Source

RUNS = Handoff("features.last_run")
STUDIES = Handoff("features.last_study")


@dataclass(frozen=True)
class FeatureRequest:
    """Everything a run depends on (hashable; compared to tell stale results)."""

    source: Source
    plane: str
    index: int
    mask: MaskConfig
    methods: tuple[MethodInstance, ...]
    features: tuple[Feature, ...]
    mode: str
    boxes: tuple[Box, ...] = ()


@dataclass
class PageRun:
    """The results of one request: the features' run, the boxes' rows (on the unmodified slice), stops."""

    request: FeatureRequest
    run: FeatureRun | None = None
    box_rows: list[dict] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    stopped: bool = False


class _Bars(Feedback):
    """One progress bar per method; the user's click becomes a stop request (the method keeps its best)."""

    def __init__(self, labels: dict[str, str]):
        super().__init__()
        self.bars = {label: st.progress(0.0, text=f"{display}: waiting…") for label, display in labels.items()}
        self.names = labels

    def __call__(self, label: str, step: int, total: int, info: dict) -> bool | None:
        return self.draw(step, total, lambda now: self.bars[label].progress(
            min(step / max(total, 1), 1.0), text=f"{self.names[label]}: step {step}/{total}"))

    def done(self, label: str, text: str) -> None:
        if self.interrupt is None:
            self.bars[label].progress(1.0, text=f"{self.names[label]}: {text}")


def execute(request: FeatureRequest, container) -> PageRun:
    """Run ``request`` (features, then boxes) in a status box in ``container``; store and return the run."""
    page_run = PageRun(request)
    with RUNS.running(cache.owner()) as slot:
        slot.result = page_run
        problem = cache.problem(request.source, request.plane, request.index, request.mask)
        with container.status(f"Running {len(request.methods)} method(s)…", expanded=True) as status:
            st.button("Stop", key="features.stop", icon=":material/stop_circle:",
                      help="Stop the running method now and keep its best image so far.")
            bars = _Bars({m.label: m.display for m in request.methods})
            if request.features:
                try:
                    page_run.run = run_features(problem, request.features, list(request.methods), request.mode, bars)
                except ExplorerError as exc:
                    page_run.failures["features"] = str(exc).strip().splitlines()[0]
                if page_run.run is not None:
                    page_run.failures.update(page_run.run.failures)
                    for r in page_run.run.results:
                        bars.done(r.instance, "stopped" if r.stopped else f"done in {r.seconds:.1f} s")
            if request.boxes and bars.interrupt is None:
                cleans: list[MethodResult] = []
                for inst in request.methods:
                    try:
                        cleans.append(cache.run(request.source, request.plane, request.index, request.mask, inst))
                    except ExplorerError as exc:
                        page_run.failures[inst.label] = str(exc).strip().splitlines()[0]
                try:
                    page_run.box_rows = score_boxes(problem, cleans, list(request.boxes))
                except ExplorerError as exc:
                    page_run.failures["boxes"] = str(exc).strip().splitlines()[0]
            page_run.stopped = bars.interrupt is not None or bool(
                page_run.run and any(r.stopped for r in page_run.run.results))
            if bars.interrupt is not None:
                raise bars.interrupt
            status.update(label="stopped: best images so far" if page_run.stopped else "done",
                          state="error" if page_run.failures else "complete", expanded=False)
    return page_run


def clicked_position(event) -> tuple[int, int] | None:
    """``(row, col)`` the user picked on the reference heatmap, from a plotly chart's selection state (a dict or
    Streamlit's event object): the centre of the last box drawn, else the last point clicked; else ``None``."""
    selection = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", None)

    def field(name):
        return (selection.get(name) if isinstance(selection, dict) else getattr(selection, name, None)) or []

    try:
        boxes, points = field("box"), field("points")
        if boxes:
            x, y = boxes[-1]["x"], boxes[-1]["y"]
            return int(round((float(y[0]) + float(y[1])) / 2)), int(round((float(x[0]) + float(x[1])) / 2))
        if points:
            return int(round(float(points[-1]["y"]))), int(round(float(points[-1]["x"])))
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    return None


def append_position(text: str, position: tuple[int, int]) -> str:
    """The positions text with ``row,col`` appended (``; `` separated)."""
    text = (text or "").strip().rstrip(";").strip()
    item = f"{position[0]},{position[1]}"
    return f"{text}; {item}" if text else item


def stored() -> PageRun | None:
    return RUNS.stored(cache.owner(), waiting="Finishing the stopped method…")


@dataclass(frozen=True)
class StudyRequest:
    """A study: ``count`` random features per slice (sizes and contrasts drawn from the lists), every method."""

    source: Source
    slices: tuple[int, ...]
    mask: MaskConfig
    methods: tuple[MethodInstance, ...]
    count: int
    template: Feature
    sizes: tuple[int, ...]
    contrasts: tuple[float, ...]
    seed: int
    mode: str


@dataclass
class StudyRun:
    request: StudyRequest
    records: list[Record] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    correlations: dict = field(default_factory=dict)
    stopped: bool = False
    total: int = 0
    across: dict = field(default_factory=dict)  # {score: method-level correlation with whole-image SSIM}


def execute_study(request: StudyRequest, container) -> StudyRun:
    """Run a study task by task with one progress bar; Stop ends it after the task under way."""
    study = StudyRun(request)
    with STUDIES.running(cache.owner()) as slot:
        slot.result = study
        volume = cache.open_volume(request.source)

        def reference(index: int):
            from explorer.robustness.insertion import reference_image  # noqa: PLC0415

            slc = volume.read_slice(index)
            return reference_image(slc.kspace, slc.target_shape)

        data = str(volume.path) if request.source.is_sample else request.source.spec  # the sample at its size
        tasks = feature_tasks(data, list(request.slices), list(request.methods), request.count,
                              request.template, request.sizes, request.contrasts, request.seed, request.mode,
                              request.mask, reference=reference)
        study.total = len(tasks)
        interrupt: list[BaseException] = []
        with container.status(f"Study: {len(tasks)} reconstructions…", expanded=True) as status:
            st.button("Stop", key="features.study_stop", icon=":material/stop_circle:",
                      help="Stop after the reconstruction under way; the finished ones are shown.")
            bar = st.progress(0.0, text="starting…")
            for record in run_tasks(tasks, stop=lambda: bool(interrupt)):
                study.records.append(record)
                study.rows = study_rows(study.records)
                study.correlations = correlation(study.rows)
                study.across = {y: method_correlation(study.rows, y=y)
                                for y in ("window_mse", "contrast_recovery", "local_ssim")}
                if interrupt:
                    continue
                try:
                    bar.progress(len(study.records) / len(tasks),
                                 text=f"{len(study.records)}/{len(tasks)}: slice {record.slice} {record.label}")
                except ScriptControlException as exc:
                    interrupt.append(exc)
            study.stopped = len(study.records) < len(tasks)
            if interrupt:
                raise interrupt[0]
            status.update(label=f"Study: {len(study.records)} reconstructions, {len(study.rows)} feature scores",
                          state="complete", expanded=False)
    return study


def stored_study() -> StudyRun | None:
    return STUDIES.stored(cache.owner(), waiting="Finishing the reconstruction under way…")


__all__ = ["FeatureRequest", "PageRun", "StudyRequest", "StudyRun", "execute", "execute_study", "stored",
           "stored_study"]
