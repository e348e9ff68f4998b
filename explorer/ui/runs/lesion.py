"""Running worst-case lesions from the app (issue 28 item 2): the lesion each method misses, or a fake one made to
appear, and the smallest k-space budget at which it vanishes or appears.

A run belongs to its browser session. The protocol (button, status box, Stop, hand-over, results header) is
:class:`~explorer.ui.runs.protocol.LongRun`'s; each method's run is :func:`explorer.robustness.lesion_runs.lesion_method`,
the same as the ``lesion`` command's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import streamlit as st

from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.insertion import Feature, full_maps
from explorer.robustness.lesion_structures import Criteria
from explorer.robustness.lesion_runs import LesionOutcome, lesion_method, lesion_structure
from explorer.robustness.lesions import MEASURES, LesionBounds
from explorer.robustness.objectives import AttackConfig, parse_eps, parse_region
from explorer.ui import cache
from explorer.ui.runs.protocol import Live, LongRun, Outcome, one_line
from explorer.ui.state import Source

#: The page's two questions: mode -> what it asks.
MODES = {"false-negative": "Vanish: the lesion a method recovers worst, then the smallest budget that erases it",
         "hallucination": "Appear: the smallest budget at which a chosen lesion appears in the reconstruction"}


@dataclass(frozen=True)
class LesionRequest:
    """Everything a lesion run depends on (hashable; compared to tell stale results)."""

    source: Source
    plane: str
    index: int
    mask: MaskConfig
    methods: tuple[MethodInstance, ...]
    mode: str
    eps: tuple[float, ...]
    config: AttackConfig
    criteria: Criteria
    bounds: LesionBounds | None = None
    feature: Feature | None = None
    candidates: int = 8
    refine: int = 8
    seed: int = 0
    measure: str = "contrast_recovery"
    metric: str = "fastmri"


def request(source: Source, plane: str, index: int, mask: MaskConfig, methods, mode: str, eps_text: str,
            full_kspace: bool, *, region_text: str = "", sizes: tuple[int, int] = (3, 7),
            contrasts: tuple[float, float] = (0.1, 0.25), shapes: tuple[str, ...] = ("square",), candidates: int = 8,
            refine: int = 8, seed: int = 0, measure: str = "contrast_recovery", at: tuple[int, int] | None = None,
            shape: str = "square", size: int = 5, contrast: float = 1 / 6, appear: float = 0.5, vanish: float = 0.5,
            metric: str = "fastmri", **attack) -> LesionRequest:
    """The page's settings as a request, every value checked before any work.

    Raises:
        ExplorerError: one line naming the bad setting (an undersampled file for the false-negative search too).
    """
    if mode not in MODES:
        raise ExplorerError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    eps = parse_eps(eps_text)
    config = AttackConfig(eps=max(eps), **attack)
    for value in eps:
        replace(config, eps=value)
    criteria = Criteria(appear, vanish, None)
    if mode == "false-negative":
        if not full_kspace:
            raise ExplorerError("a false-negative search inserts lesions into fully sampled data: this file is "
                                "undersampled")
        if measure not in MEASURES:
            raise ExplorerError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
        bounds = LesionBounds(parse_region(region_text), tuple(sizes), tuple(contrasts), tuple(shapes))
        return LesionRequest(source, plane, index, mask, tuple(methods), mode, tuple(eps), config, criteria, bounds,
                             None, int(candidates), int(refine), int(seed), measure, metric)
    if at is None:
        raise ExplorerError("give the lesion's centre (row, column)")
    feature = Feature(shape=shape, row=int(at[0]), col=int(at[1]), size=int(size), contrast=float(contrast))
    return LesionRequest(source, plane, index, mask, tuple(methods), mode, tuple(eps), config, criteria, None, feature,
                         metric=metric)


@dataclass
class LesionRun(Outcome):
    """The outcome per method, in method order."""

    outcomes: list[LesionOutcome] = field(default_factory=list)

    def status(self) -> str:
        return f"{len(self.outcomes)} method(s) in {self.seconds:.1f} s"

    def stop_note(self) -> str:
        return ("Stopped: the search or sweep under way kept its worst case so far; methods after it were not run.")


def work(request: LesionRequest, live: Live, run: LesionRun) -> None:
    """Every method's lesion run; a method that fails does not stop the others; a stop ends the run under way (its
    results so far are kept) and skips the methods after it."""
    problem = cache.problem(request.source, request.plane, request.index, request.mask)
    if request.mode == "false-negative" and problem.slice.acquired_mask is not None:
        raise ExplorerError("a false-negative search inserts lesions into fully sampled data: this file is undersampled")
    maps = full_maps(problem.slice.kspace) if request.bounds is not None and problem.slice.num_coils > 1 else None
    structure = lesion_structure(problem, request.feature, request.methods[0]) if request.feature is not None else None
    for inst in request.methods:
        bar = live.bar(f"{inst.display}…")

        def feedback(step: int, total: int, info: dict, bar=bar, name=inst.display) -> bool | None:
            what = (f"eps {info['eps']:g} · " if info.get("eps") is not None else "") + str(info.get("phase", "step"))
            return live.progress(bar, step / max(total, 1), f"{name} · {what} {step}/{total}", step, total)

        try:
            outcome = lesion_method(problem, inst, request.eps, request.config, request.criteria, bounds=request.bounds,
                                    candidates=request.candidates, refine=request.refine, seed=request.seed,
                                    measure=request.measure, maps=maps, structure=structure, progress=feedback)
            run.outcomes.append(outcome)
        except ExplorerError as exc:
            run.failures[inst.label] = one_line(exc)
            continue
        if live.stopping or outcome.stopped:
            run.stopped = True
            return
        live.guard(lambda bar=bar, name=inst.display: bar.progress(1.0, text=f"{name}: done"))


RUN = LongRun("lesion", button="Run lesion search", icon=":material/search_insights:", work=work, outcome=LesionRun,
              idle="Choose the question, methods and budgets and press **Run lesion search**.",
              working=lambda request: f"Lesions for {len(request.methods)} method(s)…",
              stop_help="Stop now: the worst case found so far is kept and shown.",
              waiting="Scoring the worst case found before the stop…")


def placement_image(problem) -> np.ndarray | None:
    """The fully sampled reference ``(h, w)`` to place a lesion on (``None`` for an undersampled file)."""
    from explorer.robustness.insertion import reference_image  # noqa: PLC0415

    if problem.slice.acquired_mask is not None:
        return None
    return reference_image(problem.slice.kspace, problem.crop)


def place(point: tuple[int, int]) -> None:
    """The viewer's Mark callback: the clicked pixel becomes the lesion's centre."""
    st.session_state["lesion.row"], st.session_state["lesion.col"] = int(point[0]), int(point[1])


def use_drawn_region(viewer_key: str) -> None:
    """A button's callback: the box drawn in the placement viewer becomes the search region (``row0,col0,row1,col1``,
    half-open)."""
    s = st.session_state
    if s.get(f"{viewer_key}.roi.on"):
        s["lesion.region"] = (f"{int(s[f'{viewer_key}.roi.top'])},{int(s[f'{viewer_key}.roi.left'])},"
                              f"{int(s[f'{viewer_key}.roi.bottom']) + 1},{int(s[f'{viewer_key}.roi.right']) + 1}")


def verdict(outcome: LesionOutcome) -> str:
    """The headline in words."""
    h = outcome.headline
    if h is None:
        return outcome.note or ("stopped in the search" if outcome.stopped else "no headline")
    if h.clean_met:
        return "already met without a perturbation"
    if h.eps is None:
        return "not met at any budget tried" + (" (stopped)" if h.stopped else "")
    return f"ε = {h.eps:g}"


def headline_table(run: LesionRun) -> pd.DataFrame:
    """One row per method: the smallest budget (the headline), the worst lesion (false negative), the attack found
    at, the perturbation's size and the change it made, beside Gaussian noise of the same norm."""
    rows = []
    for o in run.outcomes:
        h, w = o.headline, (o.search.worst if o.search is not None else None)
        last = h.results[-1] if h is not None and h.results else None
        noise = [v for v in (last.noise if last is not None else ()) if v is not None]
        rows.append({
            "Method": o.instance.display, "Smallest budget": verdict(o),
            "Lesion": (f"{w.feature.shape} {w.feature.size} px at ({w.feature.row}, {w.feature.col}), contrast "
                       f"{w.feature.contrast:.3f}" if w is not None else
                       (f"{run.request.feature.shape} {run.request.feature.size} px at ({run.request.feature.row}, "
                        f"{run.request.feature.col})" if run.request.feature is not None else "-")),
            "Clean measure": h.clean_measure if h is not None else None,
            "Budgets tried": ", ".join(f"{r.config.eps:g}" for r in h.results) if h is not None else "",
            "‖e‖/‖k‖ (last)": last.ratio if last is not None else None,
            "Measure (last)": last.change if last is not None else None,
            "Gaussian noise, same norm": sum(noise) / len(noise) if noise else None,
            "Outside change (last)": last.outside if last is not None else None,
        })
    return pd.DataFrame(rows)


def shown(run: LesionRun) -> list[tuple[LesionOutcome, object]]:
    """``(outcome, attack)`` per method with an attack: the one at the headline budget, else the largest tried."""
    out = []
    for o in run.outcomes:
        if o.headline is None or not o.headline.results:
            continue
        at = o.headline.found_at
        attack = next((r for r in o.headline.results if at is not None and r.config.eps == at), o.headline.results[-1])
        out.append((o, attack))
    return out


__all__ = ["LesionRequest", "LesionRun", "MODES", "RUN", "headline_table", "place", "placement_image", "request", "shown",
           "use_drawn_region", "verdict", "work"]
