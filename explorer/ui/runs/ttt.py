"""Running test-time training from the app: live curves (training loss, held-out error, SSIM) and Stop.

A run belongs to its browser session (:class:`~explorer.ui.runs.handoff.Handoff`); the network adapted is a deep
copy, so the shared model and cached results are never touched.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from explorer.engine import MethodResult
from explorer.errors import ExplorerError
from explorer.figures.style import FONT, TEMPLATE
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.ttt import TTTConfig, TTTResult, test_time_train
from explorer.ui import cache
from explorer.ui.runs.feedback import Feedback
from explorer.ui.runs.handoff import Handoff
from explorer.ui.state import Source

RUNS = Handoff("ttt.last_run")
_DRAWS = itertools.count()


@dataclass(frozen=True)
class TTTRequest:
    """Everything a run depends on (hashable)."""

    source: Source
    plane: str
    index: int
    mask: MaskConfig
    method: MethodInstance
    reference: MethodInstance | None
    config: TTTConfig


@dataclass
class TTTPageRun:
    request: TTTRequest
    result: TTTResult | None = None
    reference: MethodResult | None = None
    history: list = field(default_factory=list)
    error: str | None = None
    stopped: bool = False


def curves_figure(history, *, height: int = 300) -> go.Figure:
    """Training loss and held-out error (log scale, left) and SSIM (right) against the step."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("self-supervised loss", "SSIM (against the reference)"),
                        horizontal_spacing=0.1)
    steps = [h[0] for h in history]
    fig.add_trace(go.Scatter(x=steps, y=[h[1] for h in history], mode="lines", name="training loss"), row=1, col=1)
    held = [(h[0], h[2]) for h in history if h[2] is not None]
    if held:
        fig.add_trace(go.Scatter(x=[s for s, _ in held], y=[v for _, v in held], mode="lines", name="held-out error"),
                      row=1, col=1)
    ssim = [(h[0], h[3]) for h in history if h[3] is not None]
    if ssim:
        fig.add_trace(go.Scatter(x=[s for s, _ in ssim], y=[v for _, v in ssim], mode="lines+markers", name="SSIM"),
                      row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, margin=dict(l=60, r=20, t=40, b=40),
                      legend=dict(orientation="h", y=-0.3, yanchor="top", x=0))
    return fig


class _Live(Feedback):
    """Progress bar and live curves; the user's click becomes a stop request (the best weights are kept)."""

    def __init__(self, bar, curve):
        super().__init__()
        self.bar, self.curve = bar, curve
        self.history: list = []
        self.last_curve = 0.0

    def __call__(self, step: int, total: int, info: dict) -> bool | None:
        self.history.append((step, info.get("loss"), info.get("held_out"), info.get("ssim")))
        held = info.get("held_out")
        text = (f"step {step}/{total} · loss {info.get('loss', 0):.4g}" + (f" · held-out {held:.4g}" if held is not None
                else "") + f" · best step {info.get('best_step', 0)}")

        def render(now: float) -> None:
            self.bar.progress(min(step / max(total, 1), 1.0), text=text)
            if now - self.last_curve >= 0.5 or step >= total:
                self.last_curve = now
                self.curve.plotly_chart(curves_figure(self.history, height=260), theme=None,
                                        config={"displayModeBar": False}, key=f"ttt.curve.{next(_DRAWS)}")

        return self.draw(step, total, render)


def execute(request: TTTRequest, container) -> TTTPageRun:
    """Run ``request`` in a status box in ``container``; store (hand over) and return the run."""
    page_run = TTTPageRun(request)
    with RUNS.running(cache.owner()) as slot:
        slot.result = page_run
        args = (request.source, request.plane, request.index, request.mask)
        problem = cache.problem(*args)
        with container.status(f"Test-time training {request.method.display}…", expanded=True) as status:
            st.button("Stop", key="ttt.stop", icon=":material/stop_circle:",
                      help="Stop training now and keep the weights of the lowest held-out error so far.")
            bar, curve = st.progress(0.0, text="before: reconstructing…"), st.empty()
            live = _Live(bar, curve)
            try:
                before = cache.run(*args, request.method)
                if request.reference is not None:
                    page_run.reference = cache.run(*args, request.reference)
                page_run.result = test_time_train(problem, request.method, request.config, live, before)
            except ExplorerError as exc:
                page_run.error = str(exc).strip().splitlines()[0]
            page_run.history = live.history
            page_run.stopped = live.interrupt is not None or bool(page_run.result and page_run.result.stop_reason == "stopped")
            if live.interrupt is not None:
                raise live.interrupt
            status.update(label="failed" if page_run.error else f"done: {page_run.result.stop_reason}",
                          state="error" if page_run.error else "complete", expanded=False)
    return page_run


def stored() -> TTTPageRun | None:
    return RUNS.stored(cache.owner(), waiting="Restoring the best weights and reconstructing…")


__all__ = ["TTTPageRun", "TTTRequest", "curves_figure", "execute", "stored"]
