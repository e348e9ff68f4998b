"""Running attacks from the app: one request, a progress bar and a live objective curve, Stop that keeps the worst.

An attack run belongs to its browser session: it is long, specific to the user's settings and holds perturbations,
so it is not shared. The clean reconstructions it starts from come from the shared result cache
(:func:`explorer.ui.cache.run`) and are never modified. The protocol (button, status box, Stop, hand-over, results
header) is :class:`~explorer.ui.runs.protocol.LongRun`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import pandas as pd
import streamlit as st

from explorer.errors import ExplorerError
from explorer.figures.images import loss_figure
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.attack import AttackConfig, AttackResult, sweep, with_noise
from explorer.robustness.objectives import check_region, parse_eps, parse_region
from explorer.robustness.perturbations import perturbation_image, transfer
from explorer.ui import cache, present
from explorer.ui.bundle import Bundle, settings
from explorer.ui.runs.protocol import Live, LongRun, Outcome, one_line
from explorer.ui.state import Source


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
    metric: str = "fastmri"


def request(source: Source, plane: str, index: int, mask: MaskConfig, methods, eps_text: str, region_text: str,
            crop: tuple[int, int], has_reference: bool, do_transfer: bool, metric: str = "fastmri",
            **settings) -> AttackRequest:
    """The page's settings as a request, every value checked (budgets, the region inside the ``crop`` image, the
    ``target`` objective only with a reference).

    Raises:
        ExplorerError: one line naming the bad setting.
    """
    eps = parse_eps(eps_text)
    region = parse_region(region_text)
    check_region(region, crop)
    config = with_eps(AttackConfig(region=region, **settings), eps)
    if config.objective in ("target", "paper") and not has_reference:
        raise ExplorerError("this file has no fully sampled reference: use the clean objective")
    return AttackRequest(source, plane, index, mask, tuple(methods), tuple(eps), config, bool(do_transfer), metric)


@dataclass
class AttackRun(Outcome):
    """The results of one request: ``results`` in method order, each method's budgets ascending."""

    results: list[AttackResult] = field(default_factory=list)
    transfers: list[dict] = field(default_factory=list)

    def status(self) -> str:
        return ("stopped: the worst perturbations found so far are shown" if self.stopped
                else f"{len(self.results)} attack(s) in {sum(r.seconds for r in self.results):.1f} s")

    def stop_note(self) -> str:
        where = "; ".join(f"{r.instance.display} at eps {r.config.eps:g} after {r.steps} of "
                          f"{r.config.restarts * r.config.steps} steps" for r in self.results if r.stopped)
        return (f"The attack was stopped{f' ({where})' if where else ''}: the worst perturbation found so far is scored "
                "and shown; methods and budgets after the stopped one were not attacked.")


def objective_figure(curves: dict[str, list[tuple[int, float]]]):
    """The attack objective against search step, one line per method and budget."""
    return loss_figure(curves, height=240, y_title="objective ‖f(y+e) − r‖² / ‖r‖²", x_title="search step",
                       name="objective")


class _Feedback:
    """Progress callback of one method's sweep: bar text and a live objective curve (twice a second)."""

    def __init__(self, live: Live, bar, curve, label: str, budgets: int):
        self.live, self.bar, self.curve, self.label, self.budgets = live, bar, curve, label, budgets
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
                Live.chart(self.curve, objective_figure(self.curves), "attack.curve")

        return self.live.draw(step, total, render)

    def clean(self, step: int, total: int, info: dict) -> bool | None:
        """Progress of the clean reconstruction (long fits) that the attack starts from."""
        return self.live.progress(self.bar, 0.0, f"{self.label}: clean reconstruction, step {step}/{total}", step, total)


def work(request: AttackRequest, live: Live, run: AttackRun) -> None:
    """Attack every method at every budget (each method's clean result from the shared cache); a method that fails
    does not stop the others; a stop ends the running search, scores its worst iterate and skips what is left."""
    args = (request.source, request.plane, request.index, request.mask)
    problem = cache.problem(*args)
    cleans = {}
    curve = live.slot()
    for inst in request.methods:
        bar = live.bar(f"{inst.display}: clean reconstruction…")
        feedback = _Feedback(live, bar, curve, inst.display, len(request.eps))
        try:
            clean = cache.run(*args, inst, progress=feedback.clean, refit_stopped=True)
            if not (live.stopping or clean.stopped):
                cleans[inst.label] = clean
                run.results += with_noise(problem, sweep(problem, inst, list(request.eps), request.config, feedback, clean),
                                          feedback)  # the random baseline beside each worst case
        except ExplorerError as exc:
            run.failures[inst.label] = one_line(exc)
        if live.stopping:
            return
        mine = [r for r in run.results if r.instance.label == inst.label]
        stopped = any(r.halted for r in mine) or (inst.label not in cleans and inst.label not in run.failures)
        what = "failed" if inst.label in run.failures else (
            f"{'stopped' if stopped else 'done'} in {sum(r.seconds for r in mine):.1f} s")
        live.guard(lambda: bar.progress(1.0, text=f"{inst.display}: {what}"))
        if stopped:
            run.stopped = True
            return
    if request.transfer and len(run.results) > 1:
        try:
            with st.spinner("Applying each perturbation to the other methods…"):
                done = [inst for inst in request.methods if inst.label in cleans]
                run.transfers = transfer(problem, run.results, done, cleans)
        except ExplorerError as exc:
            run.failures["transfer"] = one_line(exc)


RUN = LongRun("attack", button="Run attack", icon=":material/bolt:", work=work, outcome=AttackRun,
              idle="Choose methods and budgets and press **Run attack**.",
              working=lambda request: f"Attacking {len(request.methods)} method(s)…",
              stop_help="Stop the search now: the worst perturbation found so far is scored and shown.",
              waiting="Scoring the worst perturbation found before the stop…")


def with_eps(config: AttackConfig, eps: list[float]) -> AttackConfig:
    """``config`` at the largest budget (validates every budget before any work)."""
    for value in eps:
        replace(config, eps=value)
    return replace(config, eps=max(eps))


FORMATS = {"SSIM clean": "%.4f", "SSIM perturbed": "%.4f", "SSIM drop": "%.4f", "PSNR clean (dB)": "%.2f",
           "PSNR perturbed (dB)": "%.2f", "PSNR drop (dB)": "%.2f", "NMSE perturbed": "%.5f", "‖e‖/‖k‖": "%.4f",
           "Objective": "%.4g", "Time (s)": "%.1f", "Budget ε": "%g", "SSIM drop sd": "%.4f", "PSNR drop sd (dB)": "%.2f"}
STRATEGY_NAMES = {"gradient": "gradient ascent", "joint": "joint scheme"}
ROW_NAMES = {"worst case": "worst case", "noise": "Gaussian noise, same norm"}


def table(run: AttackRun) -> tuple[pd.DataFrame, dict]:
    """The results table (one row per method and budget, each worst case followed by its noise baseline: the mean
    over the draws, their sd in the sd columns) and its column configuration: human names with units,
    narrow number columns so the table fits the page, a dash where a metric is undefined."""
    rows = [(result, row) for result in run.results for row in _rows(result)]
    frame = pd.DataFrame([{
        "Method": result.instance.display, "Budget ε": r["eps"], "Perturbation": ROW_NAMES.get(r["kind"], r["kind"]),
        "Strategy": (f"{r['draws']} random draws" if r["kind"] == "noise"
                     else STRATEGY_NAMES.get(r["strategy"], r["strategy"])),
        "SSIM clean": r["ssim_clean"], "SSIM perturbed": r["ssim_perturbed"], "SSIM drop": r["ssim_drop"],
        "SSIM drop sd": r.get("ssim_drop_sd"),
        "PSNR clean (dB)": r["psnr_clean"], "PSNR perturbed (dB)": r["psnr_perturbed"], "PSNR drop (dB)": r["psnr_drop"],
        "PSNR drop sd (dB)": r.get("psnr_drop_sd"),
        "NMSE perturbed": r["nmse_perturbed"], "‖e‖/‖k‖": r["ratio"], "Objective": r.get("objective"),
        "Steps": r.get("steps"), "Time (s)": r["seconds"], "Stopped": r["stopped"],
    } for result, r in rows])
    frame = frame.drop(columns=[c for c in ("SSIM drop sd", "PSNR drop sd (dB)") if frame[c].isna().all()])
    config = {"Method": st.column_config.TextColumn(width="medium", pinned=True),
              "Perturbation": st.column_config.TextColumn(width="medium"),
              "Strategy": st.column_config.TextColumn(width="small"),
              "Stopped": st.column_config.CheckboxColumn(width="small")}
    for column in frame.columns:
        if column in config:
            continue
        if frame[column].isna().any():  # no reference: a dash, not "None"
            fmt = FORMATS.get(column, "%.4g")
            frame[column] = [present.MISSING if v is None or v != v else fmt % v for v in frame[column]]
            config[column] = st.column_config.TextColumn(width="small")
        else:
            config[column] = st.column_config.NumberColumn(format=FORMATS.get(column), width="small")
    return frame, config


def _rows(result: AttackResult) -> list[dict]:
    """A result's rows: its worst case, then its noise baseline (if any)."""
    return [result.row()] + ([result.noise.row()] if result.noise is not None else [])


def csv_rows(run: AttackRun) -> list[dict]:
    """The attack rows for a CSV (the worst cases and the noise baselines, told apart by ``kind``): the method's
    display name as its label."""
    return [{**row, "label": result.instance.display} for result in run.results for row in _rows(result)]


def transfer_rows(run: AttackRun) -> list[dict]:
    """The transfer rows with the methods' display names."""
    names = {r.instance.label: r.instance.display for r in run.results}
    return [{**t, "source": names.get(t["source"], t["source"]), "target": names.get(t["target"], t["target"])}
            for t in run.transfers]


def bundle(run: AttackRun, problem, target, window: tuple[float, float], name: str) -> Callable[[], Bundle]:
    """A maker of the run's zip: the request, the attack (and transfer) table, the reference, each method's clean
    and perturbed image at every budget, and each perturbation e (complex, ``(C, H, W)``) with its image |Aᴴe|
    (computed when the zip is built). Everything the page knows is captured now."""
    metric = run.request.metric
    tables = {"attack.csv": present.csv_text(csv_rows(run), {"metric": metric})}
    if run.transfers:
        tables["transfer.csv"] = present.csv_text(transfer_rows(run), {"metric": metric})
    results = list(run.results)

    def make() -> Bundle:
        images = {"reference": target} if target is not None else {}
        perturbations, views = {}, {}
        for r in results:
            tag = f"{r.instance.display} eps {r.config.eps:g}"
            images[f"{r.instance.display} clean"] = r.clean.image
            images[f"{tag} perturbed"] = r.perturbed.image
            perturbations[f"{tag} e"] = r.e[0].numpy()
            views[f"{tag} e"] = perturbation_image(problem, r.e).numpy()
        return Bundle(name, settings(run.request, "attack"), tables, images, window, perturbations, views,
                      notes=[run.stop_note()] if run.stopped else [])

    return make


__all__ = ["AttackRequest", "AttackRun", "RUN", "bundle", "csv_rows", "objective_figure", "request", "table",
           "transfer_rows", "with_eps", "work"]
