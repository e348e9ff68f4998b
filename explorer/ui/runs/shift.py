"""Running a distribution-shift study from the app: progress per set, Stop ends the running evaluation.

A study belongs to its browser session. The protocol (button, status box, Stop, hand-over, results header) is
:class:`~explorer.ui.runs.protocol.LongRun`'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.shift import ShiftStudy, shift_study
from explorer.ui.runs.protocol import Live, LongRun, Outcome


@dataclass(frozen=True)
class ShiftRequest:
    """Everything a study depends on (hashable)."""

    id_set: str
    ood_set: str
    methods: tuple[MethodInstance, ...]
    mask: MaskConfig
    max_slices: int | None
    sample_size: int | None
    metric: str = "fastmri"


@dataclass
class ShiftPageRun(Outcome):
    study: ShiftStudy | None = None

    def status(self) -> str:
        return "stopped" if self.stopped else "done"

    def stop_note(self) -> str:
        return "Stopped: nothing to compare yet." if self.study is None else "Stopped early."


def work(request: ShiftRequest, live: Live, page_run: ShiftPageRun) -> None:
    """Every model on both sets (one bar per set); a stop ends the study after the slice under way."""
    bars = {"id": live.bar("in-distribution set"), "ood": live.bar("shifted set")}

    def progress(name, done, total, where):
        text = f"{'in-distribution' if name == 'id' else 'shifted'} set: {done}/{total} slices ({where})"
        return True if not live.guard(lambda: bars[name].progress(done / max(total, 1), text=text)) else None

    methods = [f"{m.label}={m.name}" for m in request.methods]
    configs = {m.label: dataclasses.asdict(m.config) for m in request.methods}
    page_run.study = shift_study(request.id_set, request.ood_set, methods, request.mask, configs, request.max_slices,
                                 progress, request.sample_size, request.metric)
    page_run.stopped = live.stopping


RUN = LongRun("shift", button="Run study", icon=":material/compare_arrows:", work=work, outcome=ShiftPageRun,
              idle="Choose the sets and models and press **Run study**.",
              working=lambda request: "Evaluating every model on both sets…",
              stop_help="Stop after the slice under way; the slices done so far are compared.",
              waiting="Finishing the slice under way…")


def table(study: ShiftStudy) -> pd.DataFrame:
    """One row per model: SSIM and PSNR on both sets, the gap, the slices scored."""
    return pd.DataFrame([{"Model": r["label"], "Method": r["method"], "Family": r["family"], "SSIM P": r["ssim_id"],
                          "SSIM Q": r["ssim_ood"], "Gap": r["gap"], "PSNR P": r["psnr_id"], "PSNR Q": r["psnr_ood"],
                          "Slices P": r["slices_id"], "Slices Q": r["slices_ood"]} for r in study.rows])


def per_slice(study: ShiftStudy, label: str) -> list[dict]:
    """Model ``label``'s SSIM and PSNR on every slice of both sets (P first)."""
    rows = []
    for name, ev in (("P", study.id_eval), ("Q", study.ood_eval)):
        for (file, index), ssim, psnr in zip(ev.slices, ev.metrics[label]["ssim"], ev.metrics[label]["psnr"]):
            rows.append({"Set": name, "File": file, "Slice": index, "SSIM": float(ssim), "PSNR": float(psnr)})
    return rows


VIEWED = "shift.viewed"  # session key: the last slice reconstructed for viewing


def slice_view(page_run: ShiftPageRun, which: str, n: int, label: str):
    """``(target (h, w), image (h, w), metrics)`` of model ``label`` on slice ``n`` of set ``which``, reconstructed
    again as the study did; the last one is kept in the session (a rerun does not recompute it)."""
    key = (page_run.request, which, n, label)
    kept = st.session_state.get(VIEWED)
    if kept is not None and kept[0] == key:
        return kept[1]
    problem, result = page_run.study.slice_result(which, n, label)
    view = (problem.target, result.image, result.metrics)
    st.session_state[VIEWED] = (key, view)
    return view


__all__ = ["RUN", "ShiftPageRun", "ShiftRequest", "per_slice", "slice_view", "table", "work"]
