"""Running test-time training from the app: live curves (training loss, held-out error, SSIM) and Stop.

A run belongs to its browser session; the network adapted is a deep copy, so the shared model and cached results are
never touched. The protocol (button, status box, Stop, hand-over, results header) is
:class:`~explorer.ui.runs.protocol.LongRun`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import streamlit as st

from explorer.engine import MethodResult
from explorer.figures.ttt import curves_figure
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance, MethodSpec
from explorer.robustness.ttt import TTTConfig, TTTResult, protocol_config, test_time_train
from explorer.ui import cache, paths
from explorer.ui.runs.protocol import Live, LongRun, Outcome
from explorer.ui.state import Source


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
    metric: str = "fastmri"


def reference_instance(spec: MethodSpec, config, checkpoint: str, anatomy: str | None) -> MethodInstance | None:
    """The network of ``config`` with another checkpoint (one trained on this data's distribution), its file checked
    now; ``None`` for an empty ``checkpoint``.

    Raises:
        ExplorerError: a missing or unusable checkpoint (one line).
    """
    if not checkpoint.strip():
        return None
    if paths.is_path(checkpoint):
        paths.confine_path(checkpoint, "the reference checkpoint", own_uploads=True)
    values = {**{f.name: getattr(config, f.name) for f in fields(config)}, "checkpoint": checkpoint.strip()}
    instance = MethodInstance(f"{spec.name}_reference", spec.name, spec.make_config(values, anatomy=anatomy))
    spec.cache_token(instance.config)  # a missing file: one clear error before any work
    return instance


_PROTOCOL_WIDGETS = {"steps": "ttt.steps", "window": "ttt.window", "holdout": "ttt.holdout",
                     "holdout_unit": "ttt.holdout_unit", "rollback": "ttt.rollback"}


def apply_protocol() -> None:
    """A callback of the protocol choice: put the chosen protocol's settings into the page's widgets."""
    config = protocol_config(st.session_state["ttt.protocol"])
    for name, key in _PROTOCOL_WIDGETS.items():
        st.session_state[key] = getattr(config, name)


def init_protocol(name: str) -> None:
    """The protocol's settings as the widgets' first values (once per session)."""
    config = protocol_config(name)
    for field_name, key in _PROTOCOL_WIDGETS.items():
        st.session_state.setdefault(key, getattr(config, field_name))


@dataclass
class TTTPageRun(Outcome):
    result: TTTResult | None = None
    reference: MethodResult | None = None
    history: list = field(default_factory=list)

    def status(self) -> str:
        return f"done: {self.result.stop_reason}" if self.result is not None else "stopped before training began"

    def stop_note(self) -> str:
        if self.result is None:
            return "Stopped before training began."
        return f"Stopped after {self.result.steps} steps: the weights of step {self.result.best_step} are used."


class _Live:
    """Progress bar and live curves; the user's click becomes a stop request (the best weights are kept)."""

    def __init__(self, live: Live):
        self.live, self.bar, self.curve = live, live.bar("before: reconstructing…"), live.slot()
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
                Live.chart(self.curve, curves_figure(self.history, height=260), "ttt.curve")

        return self.live.draw(step, total, render)


def work(request: TTTRequest, live: Live, page_run: TTTPageRun) -> None:
    """The network as shipped and the reference from the shared cache, then test-time training of a copy."""
    args = (request.source, request.plane, request.index, request.mask)
    problem = cache.problem(*args)
    feedback = _Live(live)
    try:
        before = cache.run(*args, request.method)
        if request.reference is not None:
            page_run.reference = cache.run(*args, request.reference)
        page_run.result = test_time_train(problem, request.method, request.config, feedback, before)
    finally:
        page_run.history = feedback.history
    page_run.stopped = page_run.result is not None and page_run.result.stop_reason == "stopped"


RUN = LongRun("ttt", button="Run test-time training", icon=":material/model_training:", work=work, outcome=TTTPageRun,
              idle="Choose a network and press **Run test-time training**.",
              working=lambda request: f"Test-time training {request.method.display}…",
              stop_help="Stop training now and keep the weights of the lowest held-out error so far.",
              waiting="Restoring the best weights and reconstructing…")

__all__ = ["RUN", "TTTPageRun", "TTTRequest", "apply_protocol", "curves_figure", "init_protocol", "reference_instance",
           "work"]
