"""Realistic corruptions on the Attack page (issue 28 item 3): noise at an SNR, motion per shot or spikes applied to
the acquisition, every chosen method reconstructed, each corruption's size in the budget's units beside the drop
(:func:`explorer.robustness.realistic.realistic_rows`). The protocol is :class:`~explorer.ui.runs.protocol.LongRun`'s
(key ``realistic`` of the Attack page)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from explorer.cli.options import parse_list
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.robustness.realistic import KINDS, Realistic, realistic_rows
from explorer.ui import cache
from explorer.ui.runs.protocol import Live, LongRun, Outcome, one_line
from explorer.ui.state import Source

DEFAULT_LEVELS = {"noise": "30,20,10", "motion": "1,3", "spikes": "1,5"}


@dataclass(frozen=True)
class RealisticRequest:
    """Everything a run depends on (hashable)."""

    source: Source
    plane: str
    index: int
    mask: MaskConfig
    methods: tuple[MethodInstance, ...]
    corruptions: tuple[Realistic, ...]
    metric: str = "fastmri"


def request(source: Source, plane: str, index: int, mask: MaskConfig, methods, kind: str, levels_text: str,
            full_kspace: bool, shots: int = 8, ordering: str = "sequential", seed: int = 0,
            maps: str = "reestimate", metric: str = "fastmri") -> RealisticRequest:
    """The settings as a request, every value checked.

    Raises:
        ExplorerError: one line (an undersampled file, a bad kind or level).
    """
    if not full_kspace:
        raise ExplorerError("realistic corruptions act on the acquisition: this file is already undersampled")
    if kind not in KINDS:
        raise ExplorerError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    levels = parse_list(levels_text, float, "levels")
    if not 1 <= len(levels) <= 8:
        raise ExplorerError("give 1 to 8 levels")
    return RealisticRequest(source, plane, index, mask, tuple(methods),
                            tuple(Realistic(kind, v, int(shots), ordering, int(seed), maps) for v in levels), metric)


@dataclass
class RealisticRun(Outcome):
    rows: list[dict] = field(default_factory=list)

    def status(self) -> str:
        return f"{len(self.rows)} reconstruction(s) in {self.seconds:.1f} s"


def work(request: RealisticRequest, live: Live, run: RealisticRun) -> None:
    """Every method on every corruption; a failing method does not stop the others."""
    args = (request.source, request.plane, request.index, request.mask)
    problem = cache.problem(*args)
    for inst in request.methods:
        bar = live.bar(f"{inst.display}…")
        try:
            clean = cache.run(*args, inst)
            run.rows += realistic_rows(problem, inst, list(request.corruptions), clean, progress=lambda step, total,
                                       info, bar=bar, name=inst.display: live.progress(
                                           bar, step / max(total, 1), f"{name} · level {info['level']:g}", step, total))
        except ExplorerError as exc:
            run.failures[inst.label] = one_line(exc)
        if live.stopping:
            run.stopped = True
            return


RUN = LongRun("attack", button="Run the corruptions", icon=":material/blur_on:", work=work, outcome=RealisticRun,
              idle="Choose a corruption and its levels and press **Run the corruptions**.",
              working=lambda request: f"Corrupting and reconstructing ({len(request.methods)} method(s))…",
              key="realistic")


def table(run: RealisticRun) -> pd.DataFrame:
    """One row per method and level: the corruption's size in the budget's units and the metrics."""
    return pd.DataFrame([{"Method": next((m.display for m in run.request.methods if m.label == r["label"]), r["label"]),
                          "Corruption": r["kind"], "Level": r["level"], "‖e‖/‖k‖": r["ratio"],
                          "SSIM clean": r["ssim_clean"], "SSIM corrupted": r["ssim_perturbed"],
                          "SSIM drop": r["ssim_drop"], "PSNR drop (dB)": r["psnr_drop"]} for r in run.rows])


__all__ = ["DEFAULT_LEVELS", "RUN", "RealisticRequest", "RealisticRun", "request", "table", "work"]
