"""Running a distribution-shift study from the app: progress per set, Stop ends the running evaluation.

A study belongs to its browser session (:class:`~explorer.ui.runs.handoff.Handoff`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.shift import ShiftStudy, shift_study
from explorer.ui import cache
from explorer.ui.runs.handoff import Handoff

RUNS = Handoff("shift.last_run")


@dataclass(frozen=True)
class ShiftRequest:
    """Everything a study depends on (hashable)."""

    id_set: str
    ood_set: str
    methods: tuple[MethodInstance, ...]
    mask: MaskConfig
    max_slices: int | None
    sample_size: int | None


@dataclass
class ShiftPageRun:
    request: ShiftRequest
    study: ShiftStudy | None = None
    error: str | None = None
    stopped: bool = False


def execute(request: ShiftRequest, container) -> ShiftPageRun:
    """Run ``request`` in a status box in ``container``; store (hand over) and return the run."""
    page_run = ShiftPageRun(request)
    interrupt: list[BaseException] = []
    with RUNS.running(cache.owner()) as slot:
        slot.result = page_run
        with container.status("Evaluating every model on both sets…", expanded=True) as status:
            st.button("Stop", key="shift.stop", icon=":material/stop_circle:",
                      help="Stop after the slice under way; the slices done so far are compared.")
            bars = {"id": st.progress(0.0, text="in-distribution set"), "ood": st.progress(0.0, text="shifted set")}

            def progress(name, done, total, where):
                if interrupt:
                    return True
                try:
                    bars[name].progress(done / max(total, 1), text=f"{'in-distribution' if name == 'id' else 'shifted'} "
                                                                   f"set: {done}/{total} slices ({where})")
                except ScriptControlException as exc:
                    interrupt.append(exc)
                    return True
                return None

            methods = [f"{m.label}={m.name}" for m in request.methods]
            configs = {m.label: dataclasses.asdict(m.config) for m in request.methods}
            try:
                page_run.study = shift_study(request.id_set, request.ood_set, methods, request.mask, configs,
                                             request.max_slices, progress, request.sample_size)
            except ExplorerError as exc:
                page_run.error = str(exc).strip().splitlines()[0]
            page_run.stopped = bool(interrupt)
            if interrupt:
                raise interrupt[0]
            status.update(label="failed" if page_run.error else "done", state="error" if page_run.error else "complete",
                          expanded=False)
    return page_run


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


def stored() -> ShiftPageRun | None:
    return RUNS.stored(cache.owner(), waiting="Finishing the slice under way…")


__all__ = ["ShiftPageRun", "ShiftRequest", "execute", "slice_view", "stored"]
