"""Running attacks from the app: one request, a progress bar and live objective curve, Stop that keeps the worst.

An attack run belongs to its browser session (``st.session_state``): it is long, specific to the user's
settings and holds perturbations, so it is not shared. The clean reconstructions it starts from come from the
shared result cache (:func:`explorer.ui.cache.run`) and are never modified.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from explorer.errors import ExplorerError
from explorer.figures.images import loss_figure
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.attack import AttackConfig, AttackResult, sweep
from explorer.robustness.perturbations import transfer
from explorer.ui import cache
from explorer.ui.runs.feedback import Feedback
from explorer.ui.runs.handoff import Handoff
from explorer.ui.state import Source

RUN = "attack.last_run"  # the session's last AttackRun (not a widget key)


RUNS = Handoff(RUN)
_DRAWS = itertools.count()


@dataclass(frozen=True)
class AttackRequest:
    """Everything an attack run depends on (hashable; compared to tell stale results)."""

    source: Source
    plane: str
    index: int
    mask: MaskConfig
    methods: tuple[MethodInstance, ...]
    eps: tuple[float, ...]
    config: AttackConfig
    transfer: bool = False


@dataclass
class AttackRun:
    """The results of one request: ``results`` in method order, each method's budgets ascending."""

    request: AttackRequest
    results: list[AttackResult] = field(default_factory=list)
    transfers: list[dict] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    stopped: bool = False
    seconds: float = 0.0


class _Feedback(Feedback):
    """Progress callback of one method's sweep: bar text, a live objective curve (twice a second), and the
    user's interruption turned into a stop request (re-raised once the worst iterate is stored)."""

    def __init__(self, bar, curve, label: str, budgets: int):
        super().__init__()
        self.bar, self.curve, self.label, self.budgets = bar, curve, label, budgets
        self.curves: dict[str, list[tuple[int, float]]] = {}
        self.last_curve = 0.0

    def __call__(self, step: int, total: int, info: dict) -> bool | None:
        eps, index, phase = info.get("eps"), info.get("index", 0), info.get("phase", "attack")
        if info.get("history"):
            self.curves.setdefault(f"{self.label} · eps {eps:g}", []).extend(info["history"])
        value, worst = info.get("objective"), info.get("worst")
        text = f"{self.label} · eps {eps:g} ({index + 1}/{self.budgets}) · {phase} step {step}/{total}"
        if value is not None and worst is not None:
            text += f" · objective {value:.4g} (worst {worst:.4g})"

        def render(now: float) -> None:
            self.bar.progress(min(max((index + step / max(total, 1)) / self.budgets, 0.0), 1.0), text=text)
            if self.curves and (step >= total or now - self.last_curve >= 0.5):
                self.last_curve = now
                # a fresh key per draw: two identical figures would share an auto-generated element ID
                self.curve.plotly_chart(objective_figure(self.curves), theme=None, config={"displayModeBar": False},
                                        key=f"attack.curve.{next(_DRAWS)}")

        return self.draw(step, total, render)

    def clean(self, step: int, total: int, info: dict) -> bool | None:
        """Progress of the clean reconstruction (long fits) that the attack starts from."""
        return self.draw(step, total, lambda now: self.bar.progress(
            0.0, text=f"{self.label}: clean reconstruction, step {step}/{total}"))


def objective_figure(curves: dict[str, list[tuple[int, float]]]):
    """The attack objective against search step, one line per method and budget."""
    return loss_figure(curves, height=240, y_title="objective ‖f(y+e) − r‖² / ‖r‖²", x_title="search step",
                       name="objective")


def execute(request: AttackRequest, container) -> AttackRun:
    """Run ``request`` in ``container`` (a status box with bars, curves and Stop); store and return the run.

    Each method's clean result comes from the shared cache; a method that fails does not stop the others.
    Stop (or any click) ends the running search, scores its worst iterate and skips what is left; the
    partial run is stored (whatever ends the script run) before Streamlit's rerun proceeds.
    """
    run = AttackRun(request)
    began = time.perf_counter()
    with RUNS.running(cache.owner()) as slot:
        slot.result = run  # filled in place: whatever ends this script run, the run so far is kept
        try:
            _execute(request, container, run)
        except ScriptControlException:  # a click (Stop or another widget) while a bar or curve was being drawn
            run.stopped = True
            raise
        finally:
            run.seconds = time.perf_counter() - began
    return run


def _execute(request: AttackRequest, container, run: AttackRun) -> None:
    args = (request.source, request.plane, request.index, request.mask)
    problem = cache.problem(*args)
    cleans = {}
    with container.status(f"Attacking {len(request.methods)} method(s)…", expanded=True) as status:
        st.button("Stop", key="attack.stop", icon=":material/stop_circle:",
                  help="Stop the search now: the worst perturbation found so far is scored and shown.")
        curve = st.empty()
        for inst in request.methods:
            bar = st.progress(0.0, text=f"{inst.display}: clean reconstruction…")
            feedback = _Feedback(bar, curve, inst.display, len(request.eps))
            try:
                clean = cache.run(*args, inst, progress=feedback.clean, refit_stopped=True)
                if not (feedback.interrupt is not None or clean.stopped):
                    cleans[inst.label] = clean
                    run.results += sweep(problem, inst, list(request.eps), request.config, feedback, clean)
            except ExplorerError as exc:
                run.failures[inst.label] = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
            if feedback.interrupt is not None:  # the user clicked: no more st calls before the rerun
                run.stopped = True
                raise feedback.interrupt
            mine = [r for r in run.results if r.instance.label == inst.label]
            if inst.label in run.failures:
                bar.progress(1.0, text=f"{inst.display}: failed")
            else:
                what = "stopped" if any(r.stopped for r in mine) or inst.label not in cleans else "done"
                bar.progress(1.0, text=f"{inst.display}: {what} in {sum(r.seconds for r in mine):.1f} s")
            if any(r.stopped for r in mine) or (inst.label not in cleans and inst.label not in run.failures):
                run.stopped = True
                break
        if request.transfer and not run.stopped and len(run.results) > 1:
            try:
                with st.spinner("Applying each perturbation to the other methods…"):
                    done = [inst for inst in request.methods if inst.label in cleans]
                    run.transfers = transfer(problem, run.results, done, cleans)
            except ExplorerError as exc:
                run.failures["transfer"] = str(exc).strip().splitlines()[0]
        label = ("stopped: the worst perturbations found so far are shown" if run.stopped
                 else f"{len(run.results)} attack(s) in {sum(r.seconds for r in run.results):.1f} s")
        status.update(label=label, state="error" if run.failures else "complete", expanded=False)


def stored() -> AttackRun | None:
    """This session's last attack run (one still finishing in a stopped script run is waited for)."""
    return RUNS.stored(cache.owner(), waiting="Scoring the worst perturbation found before the stop…")


def with_eps(config: AttackConfig, eps: list[float]) -> AttackConfig:
    """``config`` at the largest budget (validates every budget before any work)."""
    for value in eps:
        replace(config, eps=value)
    return replace(config, eps=max(eps))
