"""Running an adversarially filtered shift from the app (the Distribution shift page): progress over the pool, Stop
ends the evaluation after the slice under way (the slices done so far are compared). The protocol is
:class:`~explorer.ui.runs.protocol.LongRun`'s."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import streamlit as st

from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.filtered import FilteredShift, check_filter, filtered_shift
from explorer.ui import present
from explorer.ui.bundle import Bundle, settings
from explorer.ui.runs.protocol import Live, LongRun, Outcome


@dataclass(frozen=True)
class FilteredRequest:
    """Everything a filtered shift depends on (hashable)."""

    pool: str
    methods: tuple[MethodInstance, ...]
    filters: tuple[str, ...]
    keep: int
    mask: MaskConfig
    max_slices: int | None
    sample_size: int | None
    metric: str = "fastmri"


def request(pool: str, methods, filters, keep: int, mask: MaskConfig, max_slices: int | None,
            sample_size: int | None, metric: str = "fastmri") -> FilteredRequest:
    """The page's settings as a request; the filters must be among the models.

    Raises:
        ExplorerError: no filter, a filter that is not a model, ``keep`` out of range.
    """
    check_filter(list(filters), int(keep), [m.label for m in methods])
    return FilteredRequest(pool, tuple(methods), tuple(filters), int(keep), mask, max_slices, sample_size, metric)


@dataclass
class FilteredRun(Outcome):
    result: FilteredShift | None = None

    def stop_note(self) -> str:
        return "Stopped: the pool slices scored so far are compared." if self.result else "Stopped before any slice."


def work(request: FilteredRequest, live: Live, run: FilteredRun) -> None:
    """Every model on the pool (one bar), then the hardest slices for the filter models."""
    bar = live.bar("pool")

    def progress(done, total, where):
        text = f"pool: {done}/{total} slices ({where})"
        return True if not live.guard(lambda: bar.progress(done / max(total, 1), text=text)) else None

    methods = [f"{m.label}={m.name}" for m in request.methods]
    configs = {m.label: dataclasses.asdict(m.config) for m in request.methods}
    run.result = filtered_shift(request.pool, methods, request.filters, request.keep, request.mask, configs,
                                request.max_slices, progress, request.sample_size, request.metric)
    run.stopped = live.stopping


RUN = LongRun("shift", key="filtered", button="Run filtered shift", icon=":material/filter_alt:", work=work,
              outcome=FilteredRun, idle="Choose the pool, the models and the filter models and press **Run filtered "
              "shift**.", working=lambda request: "Evaluating every model on the pool…",
              stop_help="Stop after the slice under way; the slices done so far are compared.",
              waiting="Finishing the slice under way…")


def table(result: FilteredShift) -> pd.DataFrame:
    """One row per model: SSIM on the pool and on the kept slices, the gap (human names)."""
    names = present.method_names()
    return pd.DataFrame([{"Model": present.method_name(r["label"], names),
                          "Method": present.method_name(r["method"], names),
                          "Family": present.FAMILIES.get(r["family"], r["family"]),
                          "SSIM pool": r["ssim_pool"], "SSIM kept": r["ssim_filtered"],
                          "Gap (SSIM pool − kept)": r["gap"], "Slices pool": r["slices_pool"],
                          "Slices kept": r["slices_filtered"]} for r in result.rows])


COLUMNS = {c: st.column_config.NumberColumn(format=f) for c, f in (
    ("SSIM pool", "%.4f"), ("SSIM kept", "%.4f"), ("Gap (SSIM pool − kept)", "%+.4f"))}


def bundle(run: FilteredRun, name: str) -> Callable[[], Bundle]:
    """A maker of the filtered shift's zip: the request, the per-model table, the kept slices and the fit."""
    result, metric = run.result, run.request.metric
    tables = {"filtered.csv": present.csv_text(result.rows, {"metric": metric}),
              "kept_slices.csv": present.csv_text([{"file": f, "slice": s} for f, s in result.kept_slices])}
    if result.fit:
        tables["fit.csv"] = present.csv_text([{"models": "all", **result.fit}])

    def make() -> Bundle:
        return Bundle(name, settings(run.request, "filtered shift"), tables,
                      notes=[run.stop_note()] if run.stopped else [])

    return make


__all__ = ["COLUMNS", "FilteredRequest", "FilteredRun", "RUN", "bundle", "request", "table", "work"]
