"""Running test-time training from the app: live curves (training loss, held-out error, SSIM) and Stop.

A run belongs to its browser session; the network adapted is a deep copy, so the shared model and cached results are
never touched. The protocol (button, status box, Stop, hand-over, results header) is
:class:`~explorer.ui.runs.protocol.LongRun`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

import streamlit as st

from explorer.engine import MethodResult
from explorer.figures.ttt import curves_figure
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance, MethodSpec
from explorer.robustness.ttt import TTTConfig, TTTResult, protocol_config, test_time_train
from explorer.robustness.ttt_shifts import TTTShift, get_shift
from explorer.ui import cache, checkpoint_store, paths, present
from explorer.ui.bundle import Bundle, settings
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
    shipped = checkpoint_store.shipped_file(spec.name, checkpoint)  # a shipped extra by name (``knee-stanford``)
    if shipped is not None:
        checkpoint = str(shipped)
    elif paths.is_path(checkpoint):
        paths.confine_path(checkpoint, "the reference checkpoint", own_uploads=True)
    values = {**{f.name: getattr(config, f.name) for f in fields(config)}, "checkpoint": checkpoint.strip()}
    instance = MethodInstance(f"{spec.name}_reference", spec.name, spec.make_config(values, anatomy=anatomy))
    spec.cache_token(instance.config)  # a missing file: one clear error before any work
    return instance


def shifted_checkpoint(spec: MethodSpec, anatomy: str | None) -> tuple[str, str] | None:
    """``(widget key, checkpoint)`` that starts the page on a real distribution shift: the network of the other
    shipped anatomy (a knee network on brain data, a brain network on knee data); ``None`` when the network has no
    per-anatomy checkpoint or the data's anatomy is not a shipped one."""
    from explorer.recon.checkpoints import ANATOMIES  # noqa: PLC0415

    if anatomy not in ANATOMIES or "checkpoint" not in spec.anatomy_defaults(anatomy):
        return None
    other = next((a for a in ANATOMIES if a != anatomy), None)
    return (f"ttt.params.{spec.name}.checkpoint.{anatomy}", other) if other else None


def start_on_shift(spec: MethodSpec, anatomy: str | None) -> None:
    """Put the other anatomy's checkpoint into the network's checkpoint box the first time the page shows this
    network on this anatomy (the guided path's and the user's own choices are kept)."""
    shift = shifted_checkpoint(spec, anatomy)
    if shift is not None:
        st.session_state.setdefault(*shift)


#: The real-data arm's network (issue 26): the checkpoint trained on real brain slices (README "Real brain data").
REAL_CHECKPOINT = "brain-real"


def apply_real_arm(name: str, anatomy: str | None) -> None:
    """A button's callback: adapt network ``name``'s real-anatomy checkpoint under the papers' protocol with the
    dataset shift's window (20) and no reference (no network trained on the measured scans exists)."""
    st.session_state[f"ttt.params.{name}.checkpoint.{anatomy or 'any'}"] = REAL_CHECKPOINT
    st.session_state["ttt.reference"] = ""
    st.session_state["ttt.protocol"] = "paper"
    apply_protocol()
    st.session_state["ttt.window"] = 20


def shift_available(kind: str, shift: TTTShift) -> bool:
    """Whether network ``kind`` has both checkpoints of ``shift`` (the network trained on P and the reference trained
    on Q) among the shipped ones."""
    from explorer.recon.checkpoints import ANATOMIES  # noqa: PLC0415
    from explorer.recon.model_store import shipped_path  # noqa: PLC0415

    extras = checkpoint_store.shipped_extras(kind)
    return all(shipped_path(kind, name).is_file() if name in ANATOMIES else name in extras
               for name in (shift.checkpoint, shift.reference))


def apply_paper_shift(kind: str) -> None:
    """A button's callback: set the page (and the sidebar's sample) up for the paper's shift chosen in
    ``ttt.paper_shift``: Q's sample, the test mask, network ``kind`` trained on P, the reference trained on Q, and the
    papers' protocol with their window for this shift and network."""
    shift = get_shift(st.session_state["ttt.paper_shift"])
    st.session_state["src.kind"] = "sample"
    st.session_state["src.family"] = shift.family
    st.session_state[f"src.variant.{shift.family}"] = shift.variant
    st.session_state["ttt.mask.type"] = "random"
    st.session_state["ttt.mask.acceleration"] = shift.acceleration
    st.session_state["ttt.mask.cf_default"] = True
    st.session_state[f"ttt.params.{kind}.checkpoint.{shift.family}"] = shift.checkpoint
    st.session_state["ttt.reference"] = shift.reference
    st.session_state["ttt.protocol"] = "paper"
    apply_protocol()
    st.session_state["ttt.window"] = shift.window_for(kind)


def bundle(page_run: "TTTPageRun", target, name: str) -> Callable[[], Bundle]:
    """A maker of the run's zip: the request, the results row and the curves, the reference, the network's image as
    shipped and after test-time training, and the in-distribution network's; everything captured now."""
    result, reference = page_run.result, page_run.reference
    metric = page_run.request.metric
    tables = {"ttt.csv": present.csv_text([result.row(reference)], {"metric": metric})}
    history = list(result.history) or page_run.history
    if history:
        tables["curves.csv"] = present.csv_text([{"step": h[0], "training loss": h[1], "held-out error": h[2],
                                                  "ssim": h[3]} for h in history])
    images = {**({"reference": target} if target is not None else {}), "as shipped": result.before.image,
              "after TTT": result.after.image,
              **({"in-distribution network": reference.image} if reference is not None else {})}
    window = (0.0, float(target.max())) if target is not None else None

    def make() -> Bundle:
        return Bundle(name, settings(page_run.request, "ttt"), tables, images, window,
                      notes=[page_run.stop_note()] if page_run.stopped else [])

    return make


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

__all__ = ["RUN", "TTTPageRun", "TTTRequest", "apply_protocol", "bundle", "curves_figure", "init_protocol",
           "reference_instance", "shifted_checkpoint", "start_on_shift", "work"]
