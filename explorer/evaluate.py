"""Test-set evaluation: mean metrics of several methods over every slice of a directory of volumes.

The papers' protocol: each slice is undersampled with its own mask (seed ``seed + i`` for the
i-th slice overall, so every method sees the same masks) and scored against its reference
exactly as in :mod:`explorer.metrics`. Files without a reference (fastMRI test files) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from explorer.data.fastmri import FastMRIVolume, list_volumes
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.metrics import METRIC_NAMES
from explorer.pipeline import prepare, run_batch, run_method
from explorer.recon.base import get_method


@dataclass(frozen=True)
class Evaluation:
    """Per-slice metrics of each method.

    Attributes:
        methods: method names, in the order given.
        slices: ``(file name, slice index)`` of every scored slice.
        metrics: ``{method: {metric: array (n_slices,)}}``.
        seconds: ``{method: array (n_slices,)}`` reconstruction wall times.
        skipped: files without a reference image.
    """

    methods: tuple[str, ...]
    slices: tuple[tuple[str, int], ...]
    metrics: dict[str, dict[str, np.ndarray]]
    seconds: dict[str, np.ndarray]
    skipped: tuple[str, ...]

    def summary(self) -> list[dict]:
        """One row per method: mean and standard deviation of each metric, mean seconds, slice count."""
        rows = []
        for m in self.methods:
            row = {"method": m, "slices": len(self.slices)}
            for k in METRIC_NAMES:
                row[k], row[f"{k}_std"] = float(self.metrics[m][k].mean()), float(self.metrics[m][k].std())
            row["seconds"] = float(self.seconds[m].mean())
            rows.append(row)
        return rows


BATCH_FAMILIES = ("trained",)  # network inference runs on batches of slices


def evaluate(data: str | Path, methods: list[str], mask: MaskConfig, configs: dict[str, dict] | None = None,
             max_slices: int | None = None, device=None, batch_size: int = 8,
             progress: Callable[[int, int, str], None] | None = None) -> Evaluation:
    """Score ``methods`` on every slice of the volumes under ``data`` (a directory or one ``.h5``).

    Args:
        data: directory of fastMRI-layout volumes (searched recursively) or one file.
        methods: registry names.
        mask: the mask family; slice ``i`` uses ``seed = mask.seed + i``.
        configs: ``{method: {param: value}}`` overrides; other parameters take the defaults for
            each slice's anatomy (tuned ``lam``, matching checkpoint).
        max_slices: score at most this many slices (evenly spread over the set); ``None``: all.
        batch_size: trained networks reconstruct up to this many slices (same shape and anatomy)
            per forward pass; their ``seconds`` are per slice.
        progress: ``progress(done, total, label)`` after each slice; returning True stops the
            evaluation there (the result then covers the slices scored so far).

    Raises:
        ExplorerError: no volumes, no slice with a reference, bad method or parameter.
    """
    specs = [get_method(m) for m in methods]
    configs = configs or {}
    for spec in specs:
        spec.make_config(configs.get(spec.name))  # validate before any work
    path = Path(data).expanduser()
    files = [path] if path.is_file() else list_volumes(path)
    if not files:
        raise ExplorerError(f"no .h5 volumes under {path}")
    refs, skipped = [], []
    for f in files:
        vol = FastMRIVolume(f)
        if vol.has_mask and not vol.has_target:  # fastMRI test file: undersampled, no reference
            skipped.append(f.name)
            continue
        refs += [(f, i) for i in range(vol.num_slices)]
    if not refs:
        raise ExplorerError(f"no volume under {path} has reference images to score against")
    if max_slices is not None and max_slices < len(refs):
        refs = [refs[int(i)] for i in np.linspace(0, len(refs) - 1, max_slices).round()]
    scores: dict[str, dict[int, tuple[dict, float]]] = {m: {} for m in methods}  # method -> slice -> (metrics, s)
    batched = [s for s in specs if s.family in BATCH_FAMILIES and batch_size > 1]
    pending: list[tuple[int, object, str | None]] = []  # (slice number, problem, anatomy) awaiting a batch

    def flush() -> None:
        for spec in batched:
            config = spec.make_config(configs.get(spec.name), anatomy=pending[0][2])
            for (n, _, _), r in zip(pending, run_batch([p for _, p, _ in pending], spec.name, config)):
                scores[spec.name][n] = (r.metrics, r.seconds)
        pending.clear()

    for n, (f, i) in enumerate(refs):
        slc = FastMRIVolume(f).read_slice(i)
        problem = prepare(slc, replace(mask, seed=mask.seed + n), device)
        anatomy = slc.meta.anatomy
        for spec in specs:
            if spec not in batched:
                result = run_method(problem, spec.name, spec.make_config(configs.get(spec.name), anatomy=anatomy))
                scores[spec.name][n] = (result.metrics, result.seconds)
        if batched:
            if pending and (pending[0][2] != anatomy or pending[0][1].y.shape != problem.y.shape):
                flush()
            pending.append((n, problem, anatomy))
            if len(pending) >= batch_size:
                flush()
        if progress is not None and progress(n + 1, len(refs), f"{f.name}[{i}]"):
            refs = refs[:n + 1]
            break
    if pending:
        flush()
    metrics = {m: {k: [scores[m][n][0][k] for n in range(len(refs))] for k in METRIC_NAMES} for m in methods}
    seconds = {m: [scores[m][n][1] for n in range(len(refs))] for m in methods}
    return Evaluation(tuple(methods), tuple((f.name, i) for f, i in refs),
                      {m: {k: np.asarray(v) for k, v in d.items()} for m, d in metrics.items()},
                      {m: np.asarray(v) for m, v in seconds.items()}, tuple(skipped))
