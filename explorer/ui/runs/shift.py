"""Running a distribution-shift study from the app: progress per set, Stop ends the running evaluation.

A study belongs to its browser session. The protocol (button, status box, Stop, hand-over, results header) is
:class:`~explorer.ui.runs.protocol.LongRun`'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import streamlit as st

from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.shift import ShiftStudy, shift_study
from explorer.ui import present
from explorer.ui.bundle import Bundle, settings
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
    """One row per model: SSIM and PSNR on both sets, the gap, the slices scored (human names: the methods' display
    names, the families in words)."""
    names = present.method_names()
    return pd.DataFrame([{"Model": present.method_name(r["label"], names),
                          "Method": present.method_name(r["method"], names),
                          "Family": present.FAMILIES.get(r["family"], r["family"]), "SSIM P": r["ssim_id"],
                          "SSIM Q": r["ssim_ood"], "Gap (SSIM P − Q)": r["gap"], "PSNR P (dB)": r["psnr_id"],
                          "PSNR Q (dB)": r["psnr_ood"], "Slices P": r["slices_id"], "Slices Q": r["slices_ood"]}
                         for r in study.rows])


COLUMNS = {c: st.column_config.NumberColumn(format=f) for c, f in (
    ("SSIM P", "%.4f"), ("SSIM Q", "%.4f"), ("Gap (SSIM P − Q)", "%+.4f"), ("PSNR P (dB)", "%.2f"),
    ("PSNR Q (dB)", "%.2f"))}


def labelled(rows: list[dict]) -> list[dict]:
    """Rows with the methods' display names as labels and the families in words (for figures)."""
    names = present.method_names()
    return [{**r, "label": present.method_name(r["label"], names),
             "family": present.FAMILIES.get(r.get("family"), r.get("family"))} for r in rows]


def bundle(page_run: ShiftPageRun, name: str) -> Callable[[], Bundle]:
    """A maker of the study's zip: the request, the per-model table, every model's score on every slice and the
    fit (the study keeps no images: "Show this slice" reconstructs them again)."""
    study, metric = page_run.study, page_run.request.metric
    per_slice_rows = [{"label": r["label"], **row} for r in study.rows for row in per_slice(study, r["label"])]
    tables = {"shift.csv": present.csv_text(study.rows, {"metric": metric}),
              "per_slice.csv": present.csv_text(per_slice_rows, {"metric": metric})}
    if study.fit:
        tables["fit.csv"] = present.csv_text([{"models": "all", **study.fit}])

    def make() -> Bundle:
        return Bundle(name, settings(page_run.request, "shift"), tables,
                      notes=[page_run.stop_note()] if page_run.stopped else [])

    return make


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
    again as the study did."""
    target, views = slice_views(page_run, which, n, [label])
    image, metrics = views[label]
    return target, image, metrics


def slice_views(page_run: ShiftPageRun, which: str, n: int, labels: list[str],
                progress: Callable[[int, int, str], None] | None = None):
    """``(target (h, w), {label: (image (h, w), metrics)})``: every model of ``labels`` on slice ``n`` of set
    ``which``, reconstructed again as the study did (``progress(done, total, label)`` before each); the last view is
    kept in the session (a rerun does not recompute it)."""
    key = (page_run.request, which, n, tuple(labels))
    kept = st.session_state.get(VIEWED)
    if kept is not None and kept[0] == key:
        return kept[1]
    target, views = None, {}
    for i, label in enumerate(labels):
        if progress is not None:
            progress(i, len(labels), label)
        problem, result = page_run.study.slice_result(which, n, label)
        target = problem.target
        views[label] = (result.image, result.metrics)
    st.session_state[VIEWED] = (key, (target, views))
    return target, views


__all__ = ["COLUMNS", "RUN", "ShiftPageRun", "ShiftRequest", "bundle", "labelled", "per_slice", "slice_view",
           "slice_views", "table", "work"]


# ------------------------------------------------------------------------------------------ real-data arms

#: The real-data arms (issue 26): key -> (title, P, Q, network checkpoint). P and Q are ``sample:...`` or folders of
#: the README's real-brain build (``dataset build``) relative to it; checkpoint ``None``: each anatomy's default.
REAL_ARMS: dict[str, tuple[str, str, str, str | None]] = {
    "anatomy": ("Knee networks on real brain slices (anatomy shift)", "sample:knee", "mc/test", None),
    "scanner": ("Real-anatomy networks: their test slices against measured multi-coil slices (contrast, coils, "
                "scanner)", "mc/test", "measured", "brain-real"),
}
#: Where the README's commands put the build, relative to the data directory.
REAL_BRAIN_FOLDERS = ("real-brain", "data/real-brain")


def real_arm_methods() -> list[str]:
    """The arms' models: every registered method that is not minute-long (the classical, sparse and trained ones)."""
    from explorer.recon.base import available_methods  # noqa: PLC0415

    return [m.name for m in available_methods() if m.capabilities.cost != "long"]


def real_brain_folder(root) -> str | None:
    """The real-brain build under the data directory ``root`` (relative, as the folder inputs take it), or None."""
    from pathlib import Path  # noqa: PLC0415

    return next((rel for rel in REAL_BRAIN_FOLDERS if (Path(root) / rel / "mc" / "test").is_dir()), None)


def apply_real_arm(arm: str, folder: str) -> None:
    """Fill the page's set pickers, models and network checkpoints for real-data arm ``arm`` (on_change callback)."""
    _, p, q, checkpoint = REAL_ARMS[arm]
    st.session_state["shift.mode"] = "pair"
    for key, value in (("shift.id", p), ("shift.ood", q)):
        if value.startswith("sample:"):
            st.session_state[f"{key}.kind"], st.session_state[f"{key}.family"] = "sample", value
        else:
            st.session_state[f"{key}.kind"], st.session_state[f"{key}.folder"] = "folder", f"{folder}/{value}"
    st.session_state["shift.methods"] = real_arm_methods()
    st.session_state["shift.max_slices"] = 5
    # the checkpoint's widget key ends in P's anatomy (a sample's family; "any" for a folder, as the page passes None)
    anatomy = p.split(":", 1)[1].split(",")[0] if p.startswith("sample:") else "any"
    from explorer.recon.networks import kind_names  # noqa: PLC0415

    for kind in kind_names():  # every trained-network kind carries a checkpoint parameter
        st.session_state[f"shift.params.{kind}.checkpoint.{anatomy}"] = checkpoint or "auto"
