"""Choose a method's regularisation weight ``lam`` by grid search on the mean SSIM over slices.

As in the paper: one parameter, tuned on a few training slices, then kept fixed. The
stored defaults (``explorer/recon/tuned_lambdas.json``) were produced with this module
(``python -m explorer tune ...``, see the ``how`` entry of that file).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from explorer.engine import Problem, prepare, run_method
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.base import ProgressFn, get_method

DEFAULT_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)


@dataclass(frozen=True)
class TuneResult:
    """Grid-search outcome.

    Attributes:
        method: registry name.
        grid: the ``lam`` values tried, in the given order.
        slices: slice indices (labels only).
        ssim: ``ssim[i][j]`` = SSIM of ``grid[i]`` on slice ``j``.
        config: the base config (``lam`` replaced for each grid point).
    """

    method: str
    grid: tuple[float, ...]
    slices: tuple[int, ...]
    ssim: tuple[tuple[float, ...], ...]
    config: object

    @property
    def mean_ssim(self) -> tuple[float, ...]:
        """Mean SSIM over slices per grid point."""
        return tuple(sum(row) / len(row) for row in self.ssim)

    @property
    def best_index(self) -> int:
        """Index of the best grid point (the first one on ties)."""
        means = self.mean_ssim
        return max(range(len(means)), key=lambda i: (means[i], -i))

    @property
    def best_lam(self) -> float:
        """The ``lam`` with the highest mean SSIM."""
        return self.grid[self.best_index]

    @property
    def best_ssim(self) -> float:
        """Its mean SSIM."""
        return self.mean_ssim[self.best_index]

    def as_dict(self) -> dict:
        """JSON-ready summary."""
        return {"method": self.method, "slices": list(self.slices), "best_lam": self.best_lam,
                "best_ssim": self.best_ssim, "config": dataclasses.asdict(self.config),
                "grid": [{"lam": lam, "mean_ssim": m, "ssim": list(row)}
                         for lam, m, row in zip(self.grid, self.mean_ssim, self.ssim)]}


def check_grid(grid: Sequence[float]) -> tuple[float, ...]:
    """Validate a grid: non-empty, finite, ``>= 0``, no duplicates.

    Raises:
        ExplorerError: otherwise.
    """
    values = tuple(float(v) for v in grid)
    if not values:
        raise ExplorerError("the lam grid is empty")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ExplorerError(f"lam values must be finite and >= 0, got {list(values)}")
    if len(set(values)) != len(values):
        raise ExplorerError("the lam grid has duplicate values")
    return values


def tune(method: str, problems: Sequence[Problem], grid: Sequence[float] = DEFAULT_GRID, config=None,
         slices: Sequence[int] | None = None, progress: ProgressFn | None = None) -> TuneResult:
    """Reconstruct every problem with every ``lam`` and score by SSIM.

    Args:
        method: a registered method with a ``lam`` parameter ("l1", "tv").
        problems: prepared slices with reference images.
        grid: ``lam`` values.
        config: base config (default: the method's defaults).
        slices: labels of the problems (default ``0..n-1``).
        progress: ``progress(done, total, {"lam", "ssim"})`` after each reconstruction;
            True stops the search (the result then covers the finished grid points).

    Raises:
        ExplorerError: no ``lam`` parameter, no problems, a problem without reference, bad grid.
    """
    spec = get_method(method)
    if "lam" not in {p.name for p in spec.params()}:
        raise ExplorerError(f"method {method!r} has no lam parameter to tune (try l1 or tv)")
    values = check_grid(grid)
    if not problems:
        raise ExplorerError("tune needs at least one slice")
    if any(p.target is None for p in problems):
        raise ExplorerError("tune needs reference images (this file has none: test data?)")
    base = config if config is not None else spec.config_cls()
    rows: list[tuple[float, ...]] = []
    total, done = len(values) * len(problems), 0
    for lam in values:
        cfg = dataclasses.replace(base, lam=lam)
        row = []
        for problem in problems:
            row.append(run_method(problem, method, cfg).metrics["ssim"])
            done += 1
            if progress is not None and progress(done, total, {"lam": lam, "ssim": row[-1]}):
                break
        if len(row) < len(problems):
            break
        rows.append(tuple(row))
    if not rows:
        raise ExplorerError("tuning was stopped before any grid point finished")
    labels = tuple(slices) if slices is not None else tuple(range(len(problems)))
    return TuneResult(method, values[: len(rows)], labels, tuple(rows), base)


def tune_volume(method: str, volume, slices: Sequence[int], mask: MaskConfig, grid: Sequence[float] = DEFAULT_GRID,
                config=None, device: torch.device | None = None, progress: ProgressFn | None = None) -> TuneResult:
    """:func:`tune` on ``slices`` of an opened volume (see ``explorer.data.sources.open_volume``).

    Raises:
        ExplorerError: slice index out of range, or as :func:`tune`.
    """
    if not slices:
        raise ExplorerError("give at least one slice")
    for index in slices:
        if not 0 <= index < volume.num_slices:
            raise ExplorerError(f"slice {index} out of range 0..{volume.num_slices - 1}")
    problems = [prepare(volume.read_slice(index), mask, device) for index in slices]
    return tune(method, problems, grid, config, slices, progress)
