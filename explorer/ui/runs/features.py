"""Running the small-features experiment from the app: progress per method, Stop keeps what was computed.

A run belongs to its browser session: the features, the slice with them and the reconstructions are specific to the
user's settings. A study (random features over slices) is a second kind of run of the page. The protocol (button,
status box, Stop, hand-over, results header) is :class:`~explorer.ui.runs.protocol.LongRun`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd
import streamlit as st

from explorer.engine import MethodResult
from explorer.engine.tasks import Record, run_tasks
from explorer.errors import ExplorerError
from explorer.figures.features import tile
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.boxes import Box, score_boxes
from explorer.robustness.features import (FeatureRun, correlation, feature_tasks, method_correlation, run_features,
                                          study_rows)
from explorer.robustness.insertion import Feature, parse_position, place_random
from explorer.ui import cache, present
from explorer.ui.bundle import Bundle, settings
from explorer.ui.runs.protocol import Live, LongRun, Outcome, one_line
from explorer.ui.state import Source


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
    metric: str = "fastmri"


def place(template: Feature, positions_text: str, shape: tuple[int, int], reference: np.ndarray, count: int,
          seed: int) -> tuple[Feature, ...]:
    """The features of the page: ``template`` at each ``row,col`` of ``positions_text`` (``;`` or newline separated,
    each inside the ``shape`` image), then ``count`` at random inside the anatomy of ``reference``.

    Raises:
        ExplorerError: a bad position, one outside the image, no room for the random ones.
    """
    placed = tuple(replace(template, row=r, col=c)
                   for r, c in (parse_position(t) for t in re.split(r"[;\n]+", positions_text or "") if t.strip()))
    for feature in placed:
        feature.check_inside(shape)
    if count:
        placed += place_random(reference, int(count), template, int(seed), avoid=placed)
    return placed


@dataclass
class PageRun(Outcome):
    """The results of one request: the features' run and the boxes' rows (on the unmodified slice)."""

    run: FeatureRun | None = None
    box_rows: list[dict] = field(default_factory=list)

    def status(self) -> str:
        return "stopped: best images so far" if self.stopped else "done"

    def stop_note(self) -> str:
        return "Stopped: the methods show their best image so far."


class _Bars:
    """One progress bar per method; the user's click becomes a stop request (the method keeps its best)."""

    def __init__(self, live: Live, labels: dict[str, str]):
        self.live, self.names = live, labels
        self.bars = {label: live.bar(f"{display}: waiting…") for label, display in labels.items()}

    def __call__(self, label: str, step: int, total: int, info: dict) -> bool | None:
        return self.live.progress(self.bars[label], step / max(total, 1), f"{self.names[label]}: step {step}/{total}",
                                  step, total)

    def done(self, label: str, text: str) -> None:
        self.live.guard(lambda: self.bars[label].progress(1.0, text=f"{self.names[label]}: {text}"))


def work(request: FeatureRequest, live: Live, page_run: PageRun) -> None:
    """The features inserted and every method run on the slice with them; then the boxes scored on the clean slice."""
    problem = cache.problem(request.source, request.plane, request.index, request.mask)
    bars = _Bars(live, {m.label: m.display for m in request.methods})
    if request.features:
        try:
            page_run.run = run_features(problem, request.features, list(request.methods), request.mode, bars)
        except ExplorerError as exc:
            page_run.failures["features"] = one_line(exc)
        if page_run.run is not None:
            page_run.failures.update(page_run.run.failures)
            for r in page_run.run.results:
                bars.done(r.instance, "stopped" if r.stopped else f"done in {r.seconds:.1f} s")
    if request.boxes and not live.stopping:
        cleans: list[MethodResult] = []
        for inst in request.methods:
            try:
                cleans.append(cache.run(request.source, request.plane, request.index, request.mask, inst))
            except ExplorerError as exc:
                page_run.failures[inst.label] = one_line(exc)
        try:
            page_run.box_rows = score_boxes(problem, cleans, list(request.boxes))
        except ExplorerError as exc:
            page_run.failures["boxes"] = one_line(exc)
    page_run.stopped = bool(page_run.run and any(r.stopped for r in page_run.run.results))


RUN = LongRun("features", button="Insert and reconstruct", icon=":material/play_arrow:", work=work, outcome=PageRun,
              idle="Place features (or load boxes), choose methods and press **Insert and reconstruct**.",
              working=lambda request: f"Running {len(request.methods)} method(s)…",
              stop_help="Stop the running method now and keep its best image so far.",
              waiting="Finishing the stopped method…")


FORMATS = {"Window MSE": "%.4f", "Contrast recovery": "%.3f", "Local SSIM": "%.4f", "SSIM": "%.4f", "PSNR (dB)": "%.2f",
           "Contrast": "%g"}


def table(run: FeatureRun) -> tuple[pd.DataFrame, dict]:
    """One row per feature and method (the paper's window MSE, contrast recovery, local SSIM, whole-image metrics)
    and the column formats."""
    names = {x.instance: x.label for x in run.results}
    frame = pd.DataFrame([{
        "#": r["feature"] + 1, "Method": names.get(r["label"], r["label"]), "Shape": r["shape"], "Row": r["row"],
        "Col": r["col"], "Size (px)": r["size"], "Contrast": r["contrast"], "Window MSE": r["window_mse"],
        "Contrast recovery": r["contrast_recovery"], "Local SSIM": r["local_ssim"], "SSIM": r["ssim"],
        "PSNR (dB)": r["psnr"]} for r in run.rows])
    return frame, {c: st.column_config.NumberColumn(format=f, width="small") for c, f in FORMATS.items()}


def csv_rows(run: FeatureRun) -> list[dict]:
    """The per-feature rows for a CSV, the methods under their display names."""
    names = {x.instance: x.label for x in run.results}
    return [{**r, "label": names.get(r["label"], r["label"])} for r in run.rows]


def labelled(rows: list[dict]) -> list[dict]:
    """Rows with the methods' display names as labels (for a figure's legend)."""
    names = present.method_names()
    return [{**r, "label": present.method_name(r.get("label"), names)} for r in rows]


def labelled_keys(values: dict) -> dict:
    """A dict keyed by method label, keyed by display names instead."""
    names = present.method_names()
    return {present.method_name(k, names): v for k, v in values.items()}


def bundle(page_run: PageRun, name: str) -> Callable[[], Bundle]:
    """A maker of the run's zip: the request, the feature scores (and box scores), the reference with and without
    the features and every reconstruction; everything captured now."""
    run, metric = page_run.run, page_run.request.metric
    tables = {}
    images = {}
    if run is not None:
        tables["features.csv"] = present.csv_text(csv_rows(run), {"metric": metric})
        images = {"reference with features": run.problem.target, "reference without features": run.inserted.reference,
                  **{r.label: r.image for r in run.results}}
    if page_run.box_rows:
        tables["boxes.csv"] = present.csv_text(page_run.box_rows, {"metric": metric})
    window = (0.0, float(run.problem.target.max())) if run is not None else None

    def make() -> Bundle:
        return Bundle(name, settings(page_run.request, "features"), tables, images, window,
                      notes=[page_run.stop_note()] if page_run.stopped else [])

    return make


def study_bundle(study: "StudyRun", name: str) -> Callable[[], Bundle]:
    """A maker of the feature study's zip: its request, every feature row and the correlations."""
    corr = [{"label": k, **v} for k, v in study.correlations.items()]
    across = [{"score": present.column(y), **c} for y, c in study.across.items()]
    tables = {"feature_study.csv": present.csv_text(study.rows, {"metric": study.request.metric}),
              "correlations.csv": present.csv_text(corr), "across_methods.csv": present.csv_text(across)}

    def make() -> Bundle:
        return Bundle(name, settings(study.request, "features study"), tables,
                      notes=[study.stop_note()] if study.stopped else [])

    return make


def detectability(run: FeatureRun) -> tuple[list[dict], list[str]]:
    """Per feature, its tiles (the reference without and with it, each method) at one side for all (at least 48
    px, four times the largest feature, at most the image), and the tiles' row titles."""
    truth, without = run.problem.target, run.inserted.reference
    boxes = [f.window(truth.shape) for f in run.inserted.features]
    side = int(min(max(48, 4 * max(b[2] - b[0] for b in boxes)), truth.shape[0], truth.shape[1]))
    tiles = [{"reference without": tile(without, b, side), "reference with": tile(truth, b, side),
              **{r.label: tile(r.image, b, side) for r in run.results}} for b in boxes]
    titles = [f"#{i + 1} {f.shape} {f.size}px {f.contrast:+.3g}" for i, f in enumerate(run.inserted.features)]
    return tiles, titles


def profiles(run: FeatureRun, which: int) -> tuple[dict, str]:
    """The intensity along the row through feature ``which`` (10 pixels beyond it on each side) in the references
    and every reconstruction, and the profile's title."""
    truth, without = run.problem.target, run.inserted.reference
    f = run.inserted.features[which]
    lo, hi = max(f.col - f.radius - 10, 0), min(f.col + f.radius + 11, truth.shape[1])
    cols = np.arange(lo, hi)
    lines = {"reference with": (cols, truth[f.row, lo:hi]), "reference without": (cols, without[f.row, lo:hi]),
             **{r.label: (cols, r.image[f.row, lo:hi]) for r in run.results}}
    return lines, f"Row {f.row}, columns {lo}–{hi - 1}"


# ------------------------------------------------------------------ the study (random features over slices)


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
    metric: str = "fastmri"


def study_request(source: Source, slices, mask: MaskConfig, methods, count: int, template: Feature, sizes_text: str,
                  contrasts_text: str, seed: int, mode: str, metric: str = "fastmri") -> StudyRequest:
    """The study's settings as a request; the sizes and contrasts are checked against the feature template.

    Raises:
        ExplorerError: lists that are not numbers, or values the template refuses.
    """
    try:
        sizes = tuple(int(v) for v in sizes_text.split(",") if v.strip())
        contrasts = tuple(float(v) for v in contrasts_text.split(",") if v.strip())
    except ValueError:
        raise ExplorerError("sizes and contrasts: comma-separated numbers") from None
    if not sizes or not contrasts:
        raise ExplorerError("sizes and contrasts: give at least one value each")
    for size in sizes:
        replace(template, size=size)
    for contrast in contrasts:
        replace(template, contrast=contrast)
    return StudyRequest(source, tuple(slices), mask, tuple(methods), int(count), template, sizes, contrasts, int(seed),
                        mode, metric)


@dataclass
class StudyRun(Outcome):
    records: list[Record] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    correlations: dict = field(default_factory=dict)
    total: int = 0
    across: dict = field(default_factory=dict)  # {score: method-level correlation with whole-image SSIM}

    def status(self) -> str:
        return f"Study: {len(self.records)} reconstructions, {len(self.rows)} feature scores"

    def stop_note(self) -> str:
        return f"Stopped after {len(self.records)} of {self.total} reconstructions."


def study_work(request: StudyRequest, live: Live, study: StudyRun) -> None:
    """Task by task with one progress bar; a stop ends the study after the task under way."""
    from explorer.robustness.insertion import reference_image  # noqa: PLC0415

    volume = cache.open_volume(request.source)

    def reference(index: int):
        slc = volume.read_slice(index)
        return reference_image(slc.kspace, slc.target_shape)

    data = str(volume.path) if request.source.is_sample else request.source.spec  # the sample at its size
    tasks = feature_tasks(data, list(request.slices), list(request.methods), request.count, request.template,
                          request.sizes, request.contrasts, request.seed, request.mode, request.mask,
                          reference=reference, metric=request.metric)
    study.total = len(tasks)
    bar = live.bar("starting…")
    for record in run_tasks(tasks, stop=lambda: live.stopping):  # a stop ends it after the task under way
        study.records.append(record)
        study.rows = study_rows(study.records)
        study.correlations = correlation(study.rows)
        study.across = {y: method_correlation(study.rows, y=y) for y in ("window_mse", "contrast_recovery", "local_ssim")}
        live.guard(lambda: bar.progress(len(study.records) / len(tasks),
                                        text=f"{len(study.records)}/{len(tasks)}: slice {record.slice} {record.label}"))
    study.stopped = len(study.records) < len(tasks)


STUDY = LongRun("features", key="study", button="Run study", icon=":material/play_arrow:", work=study_work,
                outcome=StudyRun, idle="Choose slices and methods and press **Run study**.",
                working=lambda request: f"Study: {len(request.slices) * len(request.methods)} reconstructions…",
                stop_help="Stop after the reconstruction under way; the finished ones are shown.",
                waiting="Finishing the reconstruction under way…")


def clicked_position(event) -> tuple[int, int] | None:
    """``(row, col)`` the user picked on the reference heatmap, from a plotly chart's selection state (a dict or
    Streamlit's event object): the centre of the last box drawn, else the last point clicked; else ``None``."""
    selection = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", None)

    def field_(name):
        return (selection.get(name) if isinstance(selection, dict) else getattr(selection, name, None)) or []

    try:
        boxes, points = field_("box"), field_("points")
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


__all__ = ["FeatureRequest", "PageRun", "RUN", "STUDY", "StudyRequest", "StudyRun", "append_position", "bundle",
           "clicked_position", "csv_rows", "detectability", "labelled", "labelled_keys", "place", "profiles",
           "study_bundle", "study_request", "table"]
