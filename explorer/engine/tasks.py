"""Experiments as data: a frozen, picklable :class:`Task` and :func:`run_task` -> :class:`Record`.

A task names everything one reconstruction depends on (data source and slice, plane, mask and its
seed, method instance and config, coil-maps policy, an optional perturbation or feature, device); a
record holds its metrics, timings and provenance (package versions, checkpoint sha256, mask seed,
explorer version). Records become tables in :mod:`explorer.engine.table`. Tasks carry no open
files or tensors, so a process pool or a distributed engine can ship them.

Extension point: ``Task.perturbation`` / ``Task.feature`` take any frozen, picklable object with
``apply(problem) -> Problem`` (e.g. :class:`MeasurementNoise`) and ``describe() -> dict``; the
attack and small-feature experiments plug in there.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from explorer.engine.core import MethodResult, run_batch, run_method
from explorer.engine.problem import MAPS_POLICIES, Problem, prepare
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance


@dataclass(frozen=True)
class MeasurementNoise:
    """Complex white Gaussian noise on the full k-space before masking: ``||e|| = level * ||k||`` (seeded).

    The simplest perturbation of a task (and a template for the attack's): ``apply`` returns the
    perturbed problem under the task's coil-maps policy.
    """

    level: float
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.level >= 0 and self.level == self.level and self.level != float("inf")):
            raise ExplorerError(f"noise level must be a finite number >= 0, got {self.level}")

    def apply(self, problem: Problem, maps: str = "fixed") -> Problem:
        k = problem.kspace
        g = torch.Generator().manual_seed(int(self.seed))
        e = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g)).to(k.device)
        e = e * (self.level * k.norm() / e.norm().clamp_min(1e-30))
        return problem.perturbed(e=e, maps=maps)

    def describe(self) -> dict:
        return {"kind": "noise", "level": self.level, "seed": self.seed}


@dataclass(frozen=True)
class Described:
    """A record's perturbation column for experiments that perturb inside their own loop (e.g. the attack): a kind and
    its settings (JSON), no ``apply``."""

    kind: str
    fields: str = "{}"

    def describe(self) -> dict:
        return {"kind": self.kind, **json.loads(self.fields)}


@dataclass(frozen=True)
class Task:
    """One reconstruction experiment.

    Attributes:
        data: a file path or ``sample:<family>``.
        slice: slice index in the volume.
        method: the :class:`MethodInstance` (label, method, config).
        mask: the mask config (its seed included).
        plane: ``"kxky"`` or ``"kykz"`` (raw 3D ISMRMRD files).
        maps: coil-maps policy of a perturbed problem (``"fixed"`` | ``"reestimate"``).
        perturbation: ``None`` or an object with ``apply(problem, maps) -> Problem`` and ``describe()``.
        feature: ``None`` or the same kind of object (small features).
        device: ``"cpu"``, ``"cuda"`` or ``None`` (the default device).
        metric: the metric definition (:data:`explorer.metrics.METRIC_DEFINITIONS`).
    """

    data: str
    slice: int
    method: MethodInstance
    mask: MaskConfig = MaskConfig()
    plane: str = "kxky"
    maps: str = "fixed"
    perturbation: Any = None
    feature: Any = None
    device: str | None = None
    metric: str = "fastmri"

    def __post_init__(self) -> None:
        if self.maps not in MAPS_POLICIES:
            raise ExplorerError(f"maps policy must be one of {', '.join(MAPS_POLICIES)}, got {self.maps!r}")
        if not isinstance(self.slice, int) or self.slice < 0:
            raise ExplorerError(f"slice must be a non-negative integer, got {self.slice!r}")

    def describe(self) -> dict:
        """A JSON-ready description (what :meth:`key` hashes; the device is not part of it)."""
        return {
            "data": self.data, "slice": self.slice, "plane": self.plane, "mask": dataclasses.asdict(self.mask),
            "label": self.method.label, "method": self.method.name, "config": config_dict(self.method.config),
            "maps": self.maps,
            "perturbation": None if self.perturbation is None else self.perturbation.describe(),
            "feature": None if self.feature is None else self.feature.describe(),
            **({} if self.metric == "fastmri" else {"metric": self.metric}),  # keys of earlier tables stay valid
        }

    def key(self) -> str:
        """A stable identity (sha256 of :meth:`describe`): a rerun skips tasks whose key has a row."""
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True, default=str).encode()).hexdigest()[:24]

    @property
    def problem_key(self) -> tuple:
        return (self.data, self.plane, self.slice, self.mask, self.device, self.metric)


def config_dict(config) -> dict:
    """A config dataclass as a plain dict."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}


@dataclass(frozen=True)
class Record:
    """The outcome of one :class:`Task`: one row of a results table.

    ``ssim``/``psnr``/``nmse`` are ``None`` without a reference or when the task failed (``error``
    holds its one-line message then).
    """

    task_key: str
    data: str
    file: str
    slice: int
    plane: str
    label: str
    method: str
    config: str
    mask_type: str
    acceleration: float
    center_fraction: float | None
    mask_seed: int
    acceleration_actual: float | None
    maps: str
    perturbation: str
    feature: str
    device: str
    anatomy: str | None
    ssim: float | None
    psnr: float | None
    nmse: float | None
    seconds: float | None
    maps_seconds: float | None
    stopped: bool
    error: str | None
    checkpoint_sha256: str | None
    explorer_version: str
    torch_version: str
    numpy_version: str
    fastmri_version: str
    created: str
    scores: str = ""  # JSON of the task feature's own scores (e.g. per small feature), if it scores
    experiment: str = ""  # studies: "clean", "attack", "features", "shift", "ttt" (explorer.study)
    unit: str = ""  # studies: the key of the unit of work that produced the row (resume skips finished units)
    role: str = ""  # studies: e.g. "id" / "ood" for a shift pair
    notes: str = ""  # JSON list of the result's notes (coil map sets chosen, a trained network's distribution shift)
    metric: str = "fastmri"  # the metric definition of ssim / psnr / nmse (explorer.metrics.METRIC_DEFINITIONS)

    def row(self) -> dict:
        """The record as a flat dict (one table row)."""
        return dataclasses.asdict(self)


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of the explorer and the packages its numbers depend on."""
    from importlib import metadata  # noqa: PLC0415

    import numpy  # noqa: PLC0415

    import explorer  # noqa: PLC0415

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {"explorer_version": explorer.__version__, "torch_version": torch.__version__,
            "numpy_version": numpy.__version__, "fastmri_version": version("fastmri")}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file (cached per path, mtime and size)."""
    p = Path(path)
    stat = p.stat()
    return _sha256(str(p.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_sha256(instance: MethodInstance) -> str | None:
    """sha256 of the weights file the instance reads, or ``None`` (no weights, or unresolvable)."""
    try:
        path = instance.spec.weights_file(instance.config)
    except ExplorerError:
        return None
    return None if path is None else file_sha256(path)


class ProblemCache:
    """Opened volumes and prepared problems, shared by the tasks of one run (a small LRU).

    Every method on the same (data, plane, slice, mask, device) gets the same :class:`Problem`, so
    the ESPIRiT maps are estimated once per slice and mask.
    """

    def __init__(self, size: int = 4):
        self.size = size
        self._problems: OrderedDict[tuple, Problem] = OrderedDict()
        self._volumes: OrderedDict[tuple, Any] = OrderedDict()

    def volume(self, data: str, plane: str = "kxky"):
        from explorer.data.sources import open_volume  # noqa: PLC0415

        key = (data, plane)
        if key not in self._volumes:
            self._volumes[key] = open_volume(data, plane=plane)
            while len(self._volumes) > self.size:
                self._volumes.popitem(last=False)
        return self._volumes[key]

    def problem(self, task: Task) -> Problem:
        key = task.problem_key
        if key in self._problems:
            self._problems.move_to_end(key)
            return self._problems[key]
        slc = self.volume(task.data, task.plane).read_slice(task.slice)
        problem = prepare(slc, task.mask, task.device, metric=task.metric)
        self._problems[key] = problem
        while len(self._problems) > self.size:
            self._problems.popitem(last=False)
        return problem


def task_problem(task: Task, problems: ProblemCache) -> Problem:
    """The task's problem: the prepared slice, with its feature and perturbation applied (in that order)."""
    problem = problems.problem(task)
    if task.feature is not None:
        problem = task.feature.apply(problem, task.maps)
    if task.perturbation is not None:
        problem = task.perturbation.apply(problem, task.maps)
    return problem


def make_record(task: Task, problem: Problem | None, result: MethodResult | None, error: str | None = None,
                file: str = "") -> Record:
    """The :class:`Record` of a task from its problem and result (or its error).

    A task feature with a ``score(problem, result) -> list | dict`` method (e.g. the small features') has its
    scores stored as JSON in ``scores``.
    """
    scorer = getattr(task.feature, "score", None)
    scores = json.dumps(scorer(problem, result)) if scorer is not None and result is not None and problem is not None else ""
    mask = task.mask
    sampled = problem.sampled if problem is not None else None
    metrics = (result.metrics if result is not None else None) or {}
    acquired = sampled is not None and sampled.config is None  # a test file's own mask
    return Record(
        task_key=task.key(), data=task.data, file=file, slice=task.slice, plane=task.plane,
        label=task.method.label, method=task.method.name, config=json.dumps(config_dict(task.method.config), sort_keys=True),
        mask_type="acquired" if acquired else mask.type, acceleration=float(mask.acceleration),
        center_fraction=None if acquired else mask.resolved_center_fraction, mask_seed=int(mask.seed),
        acceleration_actual=None if sampled is None else float(sampled.acceleration),
        maps=task.maps,
        perturbation="" if task.perturbation is None else json.dumps(task.perturbation.describe(), sort_keys=True),
        feature="" if task.feature is None else json.dumps(task.feature.describe(), sort_keys=True),
        device=str(problem.device) if problem is not None else str(task.device or ""),
        anatomy=None if problem is None else problem.slice.meta.anatomy,
        ssim=metrics.get("ssim"), psnr=metrics.get("psnr"), nmse=metrics.get("nmse"),
        seconds=None if result is None else float(result.seconds),
        maps_seconds=None if result is None else float(result.maps_seconds),
        stopped=bool(result is not None and result.stopped), error=error,
        checkpoint_sha256=checkpoint_sha256(task.method), **versions(),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), scores=scores,
        notes=json.dumps(list(result.notes)) if result is not None and result.notes else "",
        metric=task.metric,
    )


def run_task(task: Task, problems: ProblemCache | None = None, progress: Callable | None = None,
             catch: bool = True) -> Record:
    """Run one task and return its record.

    Args:
        problems: a shared :class:`ProblemCache` (a fresh one by default).
        progress: the method's progress callback.
        catch: record an :class:`ExplorerError` as the row's one-line ``error`` instead of raising.
    """
    problems = problems or ProblemCache()
    problem = None
    try:
        problem = task_problem(task, problems)
        result = run_method(problem, task.method, progress=progress)
    except ExplorerError as exc:
        if not catch:
            raise
        return make_record(task, problem, None, _one_line(exc), file=file_name(task))
    return make_record(task, problem, result, file=file_name(task))


def run_tasks(tasks: Iterable[Task], batch_size: int = 1, problems: ProblemCache | None = None,
              stop: Callable[[], bool] | None = None) -> Iterator[Record]:
    """Run tasks in order, yielding each record when it is done.

    Tasks of an instance whose method batches slices (``capabilities.batches``), without perturbation
    or feature, are gathered up to ``batch_size`` (same k-space shape) and run in one call; their
    ``seconds`` are per slice. ``stop()`` is asked between tasks: True ends the run (pending
    batches are still run, so every yielded task is complete).
    """
    problems = problems or ProblemCache(size=max(4, batch_size + 2))
    pending: dict[MethodInstance, list[tuple[Task, Problem]]] = {}

    def flush(instance: MethodInstance) -> Iterator[Record]:
        group = pending.pop(instance, [])
        if not group:
            return
        try:
            results = run_batch([p for _, p in group], instance)
        except ExplorerError as exc:
            for task, problem in group:
                yield make_record(task, problem, None, _one_line(exc), file=file_name(task))
            return
        for (task, problem), result in zip(group, results):
            yield make_record(task, problem, result, file=file_name(task))

    for task in tasks:
        if stop is not None and stop():
            break
        batchable = batch_size > 1 and task.method.capabilities.batches and task.perturbation is None and task.feature is None
        if not batchable:
            yield run_task(task, problems)
            continue
        try:
            problem = problems.problem(task)
        except ExplorerError as exc:
            yield make_record(task, None, None, _one_line(exc), file=file_name(task))
            continue
        group = pending.setdefault(task.method, [])
        if group and tuple(group[0][1].y.shape) != tuple(problem.y.shape):
            yield from flush(task.method)
            group = pending.setdefault(task.method, [])
        group.append((task, problem))
        if len(group) >= batch_size:
            yield from flush(task.method)
    for instance in list(pending):
        yield from flush(instance)


def file_name(task: Task) -> str:
    """The record's ``file`` column: the sample spec, or the volume's file name."""
    return task.data if task.data.startswith("sample:") else Path(task.data).name


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
