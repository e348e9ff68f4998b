"""Units of work of a study: one (experiment, slice, mask, method instance), run by :func:`run_unit` into records.

A :class:`Unit` is frozen and picklable (no open files or tensors), so any executor can ship it; its
:meth:`Unit.key` (a hash of everything it depends on) names its rows, so a resumed study skips finished units.
:func:`expand` turns a :class:`~explorer.study.spec.StudySpec` into units. Every experiment is the same loop: the
registry (:mod:`explorer.robustness.registry`) says which instances take part (from their capabilities), which groups
of slices an experiment runs on and how one unit runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass

from explorer.data.selection import volumes as item_volumes
from explorer.data.set_names import set_name
from explorer.engine.tasks import ProblemCache, Record, Task, config_dict, file_name, make_record
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance, get_method
from explorer.robustness.registry import get_experiment
from explorer.study.spec import DataItem, StudySpec


@dataclass(frozen=True)
class Unit:
    """One unit of work.

    Attributes:
        experiment: a registered experiment's name.
        data: the source (resolved path or ``sample:...``); slice: its index; mask: the mask config.
        method: the method instance (its config resolved for this data's defaults).
        settings: the experiment's settings (JSON); role: ``"id"`` or ``"ood:<shifted set>"`` for a shift pair (with
            `` from <set>`` added when the experiment has its own data), else
            ``""`` (in-distribution units are shared by every pair of a study).
        metric: the metric definition its results are scored with (:data:`explorer.metrics.METRIC_DEFINITIONS`).
    """

    experiment: str
    data: str
    slice: int
    mask: MaskConfig
    method: MethodInstance
    settings: str = "{}"
    role: str = ""
    metric: str = "fastmri"

    def describe(self) -> dict:
        return {"experiment": self.experiment, "data": self.data, "slice": self.slice,
                "mask": dataclasses.asdict(self.mask), "label": self.method.label, "method": self.method.name,
                "config": config_dict(self.method.config), "settings": json.loads(self.settings), "role": self.role,
                **({} if self.metric == "fastmri" else {"metric": self.metric})}  # earlier tables' keys stay valid

    def key(self) -> str:
        """sha256 of :meth:`describe` (24 hex digits)."""
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True, default=str).encode()).hexdigest()[:24]


# ----------------------------------------------------------------------------- expansion


def _volumes(spec: StudySpec, item: DataItem) -> list[tuple[str, list[int], str | None]]:
    """``[(source, slices, defaults key)]`` of a data entry (directories: every volume under them), each volume's
    memory per unit checked against :func:`max_unit_bytes`."""
    found = item_volumes(item, spec.base)
    for source, _, _ in found:
        check_memory(source)
    return found


MEMORY_VARIABLE = "EXPLORER_MAX_UNIT_MEMORY_MB"
#: A unit's peak memory over its slice's k-space bytes (complex64, all coils). Measured on 2 CPU cores for the
#: 320x320, 8-coil sample (6.25 MB of k-space): VarNet test-time training peaked 1.92 GB above the process's start
#: (307x), a VarNet attack 1.59 GB (254x), an l1 attack 1.16 GB (186x). An estimate: the networks see a 320 crop,
#: so larger k-space costs them less than this factor says.
MEMORY_FACTOR = 320


def max_unit_bytes() -> int:
    """The most memory one unit may be estimated to need: ``EXPLORER_MAX_UNIT_MEMORY_MB``, else this machine's
    physical memory (on a cluster, set it to a worker's).

    Raises:
        ExplorerError: the variable is not a positive integer.
    """
    text = os.environ.get(MEMORY_VARIABLE, "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ExplorerError(f"{MEMORY_VARIABLE} must be a positive integer (MB), got {text!r}")
        return int(text) * 2**20
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def unit_bytes(source: str) -> tuple[int, tuple[int, int, int]]:
    """The estimated peak memory of one unit on ``source`` (:data:`MEMORY_FACTOR` x its k-space bytes) and the
    k-space shape ``(coils, H, W)`` it is computed from."""
    from explorer.data.sources import open_volume  # noqa: PLC0415

    first = open_volume(source).read_slice(0)
    h, w = first.shape
    shape = (int(first.num_coils), int(h), int(w))
    return MEMORY_FACTOR * 8 * shape[0] * shape[1] * shape[2], shape


def check_memory(source: str) -> None:
    """Refuse data whose units would not fit (:func:`unit_bytes` over :func:`max_unit_bytes`) before any work.

    Raises:
        ExplorerError: one line naming the data, its estimate and the limit.
    """
    limit = max_unit_bytes()
    need, (coils, h, w) = unit_bytes(source)
    if need > limit:
        raise ExplorerError(f"data {source}: one unit needs about {need / 2**30:.1f} GiB ({coils} coils x {h} x {w} "
                            f"k-space, estimated as {MEMORY_FACTOR}x its bytes), more than the {limit / 2**30:.1f} GiB "
                            f"allowed; raise {MEMORY_VARIABLE} if that is meant")


def _instances(methods, key: str | None) -> list[MethodInstance]:
    return [MethodInstance(m.label, m.method, get_method(m.method).make_config(m.values, anatomy=key))
            for m in methods]


MAX_UNITS_VARIABLE = "EXPLORER_MAX_UNITS"
DEFAULT_MAX_UNITS = 20_000


def max_units() -> int:
    """The most units a study may expand to: ``EXPLORER_MAX_UNITS`` or :data:`DEFAULT_MAX_UNITS`.

    Raises:
        ExplorerError: the variable is not a positive integer.
    """
    text = os.environ.get(MAX_UNITS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_UNITS
    if not text.isdigit() or int(text) < 1:
        raise ExplorerError(f"{MAX_UNITS_VARIABLE} must be a positive integer, got {text!r}")
    return int(text)


def expand(spec: StudySpec) -> list[Unit]:
    """Every unit of a study, in a deterministic order (experiment, group, data, slice, mask, method).

    Each experiment runs on its groups of slices (one by default; a shift pair: the in-distribution set P and the
    shifted set Q) with the instances it takes. A pinned experiment configures every instance once, on the first
    volume of its data (a tuned ``lam`` or checkpoint ``auto`` keeps its P value on Q); others configure them per
    volume. Units shared by several experiments (same key) run once.

    Raises:
        ExplorerError: a missing path, a slice out of range, more units than :func:`max_units` (counted before
            they are built).
    """
    study_volumes = [v for item in spec.data for v in _volumes(spec, item)]
    units: list[Unit] = []
    cap = max_units()
    for experiment in spec.experiments:
        entry = get_experiment(experiment.kind)
        params = experiment.params
        own = study_volumes if experiment.data is None else [v for item in experiment.data for v in _volumes(spec, item)]
        methods = experiment.methods or spec.methods
        masks = experiment.masks or spec.masks
        pinned = _instances(methods, own[0][2]) if entry.pinned else None
        # roles of an experiment on its own data name that data (" from P"): sets of two such experiments never mix
        origin = "" if experiment.data is None else f" from {set_name([item.source for item in experiment.data])}"
        for group in entry.groups(params):
            volumes = own if group.data is None else [v for item in group.data for v in _volumes(spec, item)]
            settings = experiment.settings if group.settings is None else json.dumps(group.settings, sort_keys=True)
            role = group.role + origin if group.role else ""
            for source, slices, key in volumes:
                instances = [i for i in (pinned or _instances(methods, key)) if entry.takes(i)]
                if len(units) + len(slices) * len(masks) * len(instances) > cap:  # counted before built
                    raise ExplorerError(f"the study has more than {cap} units (experiment {entry.name}); split it, "
                                        f"or raise {MAX_UNITS_VARIABLE} if that many is meant")
                for index in slices:
                    for mask in masks:
                        units += [Unit(entry.name, source, index, mask, inst, settings, role, spec.metric)
                                  for inst in instances]
    seen: set[str] = set()
    return [u for u in units if not (u.key() in seen or seen.add(u.key()))]


# ----------------------------------------------------------------------------- running


def run_unit(unit: Unit, problems: ProblemCache | None = None) -> list[Record]:
    """Run one unit with its experiment's :attr:`~explorer.robustness.registry.Experiment.run`: its records (one per
    attack budget, one otherwise), stamped with the experiment, the unit key and the role. Any exception of the unit
    becomes one record with its one-line ``error`` (prefixed with its type unless it is an :class:`ExplorerError`),
    so one failing unit never stops a study; Ctrl-C (``KeyboardInterrupt``) still stops it. A CUDA out-of-memory
    error is retried once after freeing the cached problems and the allocator's cache (units run at batch 1, so
    there is no smaller batch to fall back to); a second one is recorded as ``"CUDA out of memory (retried once):
    ..."``."""
    problems = problems or ProblemCache()
    task = Task(data=unit.data, slice=unit.slice, method=unit.method, mask=unit.mask, metric=unit.metric)
    experiment = get_experiment(unit.experiment)
    settings = json.loads(unit.settings)
    records = None
    for attempt in range(2):
        try:
            records = experiment.run(task, settings, problems)
            break
        except Exception as exc:  # noqa: BLE001 - any failure of one unit is recorded; the study goes on
            if _out_of_memory(exc) and attempt == 0:
                _free_gpu_memory(problems)
                continue
            records = [make_record(task, None, None, _error_line(exc, retried=attempt > 0), file=file_name(task))]
    key = unit.key()
    return [dataclasses.replace(r, experiment=unit.experiment, unit=key, role=unit.role) for r in records]


def _out_of_memory(exc: BaseException) -> bool:
    import torch  # noqa: PLC0415

    return isinstance(exc, torch.cuda.OutOfMemoryError)


def _free_gpu_memory(problems: ProblemCache) -> None:
    """Drop the cached problems (their tensors may sit on the GPU) and return the allocator's free blocks."""
    import gc  # noqa: PLC0415

    import torch  # noqa: PLC0415

    problems.__init__(problems.size)  # emptied: ProblemCache has no clear() and lives in the engine
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _error_line(exc: BaseException, retried: bool = False) -> str:
    """One line for a failed unit: the message's first line, its type named unless it is an ExplorerError."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    if retried and _out_of_memory(exc):
        return f"CUDA out of memory (retried once): {line}" if line else "CUDA out of memory (retried once)"
    if not isinstance(exc, ExplorerError):
        line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__  # unexpected: its type named
    return line or type(exc).__name__

__all__ = ["DEFAULT_MAX_UNITS", "MAX_UNITS_VARIABLE", "MEMORY_FACTOR", "MEMORY_VARIABLE", "check_memory", "max_unit_bytes",
           "unit_bytes", "Unit", "expand", "max_units", "run_unit"]
