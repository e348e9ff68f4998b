"""Test-set evaluation: mean metrics of several method instances over every slice of a directory of volumes.

The papers' protocol: each slice is undersampled with its own mask (seed ``seed + i`` for the
i-th slice overall, so every method sees the same masks) and scored against its reference
exactly as in :mod:`explorer.metrics`. Files without a reference (fastMRI test files) are skipped.

An evaluation is a loop over :class:`~explorer.engine.tasks.Task` s (one per slice and method
instance) run by :func:`~explorer.engine.tasks.run_tasks`; with a ``table`` its records go to a Parquet
file as slices complete, and ``resume`` reuses the rows of finished tasks found there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from explorer.data.fastmri import FastMRIVolume, list_volumes
from explorer.data.slice import anatomy_of, defaults_key
from explorer.engine.table import done_keys, read_records, write_records
from explorer.engine.tasks import ProblemCache, Record, Task, run_task, run_tasks
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.metrics import METRIC_NAMES, check_definition
from explorer.recon.base import MethodInstance, get_method
from explorer.robustness.registry import Experiment, Page, register


@dataclass(frozen=True)
class Evaluation:
    """Per-slice metrics of each method instance.

    Attributes:
        methods: instance labels, in the order given.
        slices: ``(file name, slice index)`` of every scored slice.
        metrics: ``{label: {metric: array (n_slices,)}}``.
        seconds: ``{label: array (n_slices,)}`` reconstruction wall times.
        skipped: files without a reference image.
        names: ``{label: registry method name}``.
        resumed: how many records came from the table instead of being computed.
        notes: ``{label: [distinct notes of its results]}`` (coil map sets, distribution shifts).
    """

    methods: tuple[str, ...]
    slices: tuple[tuple[str, int], ...]
    metrics: dict[str, dict[str, np.ndarray]]
    seconds: dict[str, np.ndarray]
    skipped: tuple[str, ...]
    names: dict[str, str] | None = None
    resumed: int = 0
    notes: dict[str, list[str]] | None = None

    def summary(self) -> list[dict]:
        """One row per instance: mean and standard deviation of each metric, mean seconds, slice count."""
        rows = []
        for m in self.methods:
            row = {"method": (self.names or {}).get(m, m), "label": m, "slices": len(self.slices)}
            for k in METRIC_NAMES:
                row[k], row[f"{k}_std"] = float(self.metrics[m][k].mean()), float(self.metrics[m][k].std())
            row["seconds"] = float(self.seconds[m].mean())
            rows.append(row)
        return rows


def parse_instance(text: str) -> tuple[str, str]:
    """``"LABEL=METHOD"`` -> ``(label, method)``; a plain ``"METHOD"`` is its own label.

    Raises:
        ExplorerError: an empty label or method.
    """
    label, sep, name = text.partition("=")
    label, name = (label.strip(), name.strip()) if sep else (text.strip(), text.strip())
    if not label or not name:
        raise ExplorerError(f"--method takes METHOD or LABEL=METHOD, got {text!r}")
    return label, name


def instances_for(methods: Sequence[str | tuple[str, str]], configs: dict[str, dict] | None,
                  anatomy: str | None) -> list[MethodInstance]:
    """Method instances for data of ``anatomy``: user ``configs[label]`` over the anatomy's defaults.

    Raises:
        ExplorerError: duplicate labels, unknown method or parameter.
    """
    pairs = [parse_instance(m) if isinstance(m, str) else m for m in methods]
    labels = [label for label, _ in pairs]
    if len(set(labels)) != len(labels):
        raise ExplorerError("each method label may be given once (use LABEL=METHOD for several instances)")
    configs = configs or {}
    out = []
    for label, name in pairs:
        try:
            out.append(MethodInstance(label, name, get_method(name).make_config(configs.get(label), anatomy=anatomy)))
        except ExplorerError as exc:
            if label == name:
                raise
            raise ExplorerError(f"instance {label} ({name}): {exc}") from None
    return out


def _plan(data: str | Path, methods: Sequence[str | tuple[str, str]], mask: MaskConfig, configs: dict[str, dict] | None,
          max_slices: int | None, device=None, metric: str = "fastmri",
          ) -> tuple[list[tuple[Path, int]], list[str], Callable[[int], list[Task]]]:
    """The slices an evaluation scores, in order, the files skipped, and ``tasks(n)``: the tasks of slice ``n``
    (its own mask seed ``mask.seed + n``; each method's defaults for the file's anatomy)."""
    if max_slices is not None and max_slices < 1:
        raise ExplorerError(f"--max-slices must be >= 1, got {max_slices}")
    path = Path(data).expanduser()
    files = [path] if path.is_file() else list_volumes(path)
    if not files:
        raise ExplorerError(f"no .h5 volumes under {path}")
    refs, skipped, anatomy = [], [], {}
    for f in files:
        vol = FastMRIVolume(f)
        if vol.has_mask and not vol.has_target:  # fastMRI test file: undersampled, no reference
            skipped.append(f.name)
            continue
        anatomy[f] = defaults_key(vol.attrs.get("anatomy") or anatomy_of(vol.attrs.get("acquisition"), vol.source),
                                  vol.challenge)
        refs += [(f, i) for i in range(vol.num_slices)]
    if not refs:
        raise ExplorerError(f"no volume under {path} has reference images to score against")
    if max_slices is not None and max_slices < len(refs):
        refs = [refs[int(i)] for i in np.linspace(0, len(refs) - 1, max_slices).round()]
    if mask.seed + len(refs) - 1 >= 2**32:
        raise ExplorerError(f"the mask seed of the last slice (seed + {len(refs) - 1}) would pass 2**32; choose a smaller --seed")
    per_anatomy = {a: instances_for(methods, configs, a) for a in set(anatomy.values())}
    device = None if device is None else str(device)

    def slice_tasks(n: int) -> list[Task]:
        f, i = refs[n]
        return [Task(str(f), i, inst, replace(mask, seed=mask.seed + n), device=device, metric=metric)
                for inst in per_anatomy[anatomy[f]]]

    return refs, skipped, slice_tasks


def slice_task(data: str | Path, methods: Sequence[str | tuple[str, str]], mask: MaskConfig, configs: dict[str, dict] | None,
               max_slices: int | None, n: int, label: str, metric: str = "fastmri") -> Task:
    """The task :func:`evaluate` runs for instance ``label`` on its ``n``-th slice (same arguments): run it to see
    that reconstruction (``explorer.engine.tasks.task_problem`` + ``run_method``).

    Raises:
        ExplorerError: ``n`` out of range or an unknown label.
    """
    refs, _, slice_tasks = _plan(data, methods, mask, configs, max_slices, metric=metric)
    if not 0 <= n < len(refs):
        raise ExplorerError(f"slice number {n} is not in the evaluation's {len(refs)} slices")
    for task in slice_tasks(n):
        if task.method.label == label:
            return task
    raise ExplorerError(f"no instance {label!r} in this evaluation")


def evaluate(data: str | Path, methods: Sequence[str | tuple[str, str]], mask: MaskConfig,
             configs: dict[str, dict] | None = None, max_slices: int | None = None, device=None,
             batch_size: int = 8, progress: Callable[[int, int, str], bool | None] | None = None,
             table: str | Path | None = None, resume: bool = False, metric: str = "fastmri") -> Evaluation:
    """Score method instances on every slice of the volumes under ``data`` (a directory or one ``.h5``).

    Args:
        data: directory of fastMRI-layout volumes (searched recursively) or one file.
        methods: registry names, or ``"LABEL=METHOD"`` / ``(label, method)`` instances.
        mask: the mask family; slice ``i`` uses ``seed = mask.seed + i``.
        configs: ``{label: {param: value}}`` overrides; other parameters take the defaults for
            each slice's anatomy (tuned ``lam``, matching checkpoint).
        max_slices: score at most this many slices (evenly spread over the set); ``None``: all.
        batch_size: methods that batch slices (``capabilities.batches``) reconstruct up to this many
            slices (same shape and anatomy) per call; their ``seconds`` are per slice.
        progress: ``progress(done, total, label)`` as slices complete, in order; returning True stops
            the evaluation there (the result then covers the slices scored so far).
        table: a Parquet file to write every record to (rewritten atomically as slices complete).
        resume: reuse the rows of tasks already finished in ``table`` instead of computing them.
        metric: the metric definition (:data:`explorer.metrics.METRIC_DEFINITIONS`).

    Raises:
        ExplorerError: no volumes, no slice with a reference, bad method or parameter, a failed task.
    """
    instances_for(methods, configs, None)  # validate names, labels and parameters before any work
    check_definition(metric)
    refs, skipped, slice_tasks = _plan(data, methods, mask, configs, max_slices, device, metric)
    labels = [t.method.label for t in slice_tasks(0)]
    names = {t.method.label: t.method.name for t in slice_tasks(0)}

    previous = read_records(table) if table is not None and resume else []
    reuse = {r.task_key: r for r in previous if r.task_key in done_keys(previous)}
    kept = [r for r in previous if r.task_key not in reuse] if table is not None and resume else []
    records: dict[str, Record] = {}
    stopped = False
    done_slices = 0

    def tasks() -> Iterator[Task]:
        for n in range(len(refs)):
            for task in slice_tasks(n):
                if task.key() in reuse:
                    records[task.key()] = reuse[task.key()]
                else:
                    yield task

    def report() -> bool:
        """Report the slices completed since the last call; True if any."""
        nonlocal done_slices, stopped
        before = done_slices
        while not stopped and done_slices < len(refs) and all(t.key() in records for t in slice_tasks(done_slices)):
            done_slices += 1
            f, i = refs[done_slices - 1]
            if progress is not None and progress(done_slices, len(refs), f"{f.name}[{i}]"):
                stopped = True
        return done_slices > before

    def save() -> None:
        if table is not None:
            write_records(table, [*(r for r in kept if r.task_key not in records), *records.values()])

    computed = 0
    for record in run_tasks(tasks(), batch_size=batch_size, problems=ProblemCache(size=batch_size + 2),
                            stop=lambda: stopped):
        records[record.task_key] = record
        computed += 1
        if record.error is not None:
            save()
            raise ExplorerError(f"{record.label} on {record.file}[{record.slice}]: {record.error}")
        if report():
            save()  # once per completed slice (an atomic rewrite): an interruption loses at most that slice's work
    report()
    save()
    n_done = done_slices
    metrics = {m: {k: [] for k in METRIC_NAMES} for m in labels}
    seconds: dict[str, list] = {m: [] for m in labels}
    notes: dict[str, list[str]] = {m: [] for m in labels}
    for n in range(n_done):
        for task in slice_tasks(n):
            r = records[task.key()]
            for k in METRIC_NAMES:
                metrics[r.label][k].append(getattr(r, k))
            seconds[r.label].append(r.seconds)
            notes[r.label] += [x for x in (json.loads(r.notes) if r.notes else []) if x not in notes[r.label]]
    return Evaluation(tuple(labels), tuple((f.name, i) for f, i in refs[:n_done]),
                      {m: {k: np.asarray(v, dtype=float) for k, v in d.items()} for m, d in metrics.items()},
                      {m: np.asarray(v, dtype=float) for m, v in seconds.items()}, tuple(skipped), names,
                      resumed=len(records) - computed, notes=notes)


# ----------------------------------------------------------------------------- the experiment in a study

def _clean(task: Task, settings: dict, problems: ProblemCache) -> list[Record]:
    return [run_task(task, problems, catch=False)]


EXPERIMENT = register(Experiment(
    name="clean", title="Clean reconstruction", run=_clean, page=Page("pages/reconstruct.py", "Reconstruct", ":material/tune:"),
    description="every method on the undersampled slices as measured: SSIM, PSNR and NMSE against the reference",
))
