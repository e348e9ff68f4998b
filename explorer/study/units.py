"""Units of work of a study: one (experiment, slice, mask, method instance), run by :func:`run_unit` into records.

A :class:`Unit` is frozen and picklable (no open files or tensors), so any executor can ship it; its
:meth:`Unit.key` (a hash of everything it depends on) names its rows, so a resumed study skips finished units.
:func:`expand` turns a :class:`~explorer.study.spec.StudySpec` into units. Every experiment is the same loop for
every method: only declared capabilities decide (test-time training needs ``capabilities.weights``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from explorer.engine.tasks import ProblemCache, Record, Task, config_dict, make_record, run_task
from explorer.engine.tasks import _file_name as file_name
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance, get_method
from explorer.study.spec import DataItem, StudySpec


@dataclass(frozen=True)
class Unit:
    """One unit of work.

    Attributes:
        experiment: ``"clean"``, ``"attack"``, ``"features"``, ``"shift"`` or ``"ttt"``.
        data: the source (resolved path or ``sample:...``); slice: its index; mask: the mask config.
        method: the method instance (its config resolved for this data's defaults).
        settings: the experiment's settings (JSON); role: ``"id"`` or ``"ood:<shifted set>"`` for a shift pair, else
            ``""`` (in-distribution units are shared by every pair of a study).
    """

    experiment: str
    data: str
    slice: int
    mask: MaskConfig
    method: MethodInstance
    settings: str = "{}"
    role: str = ""

    def describe(self) -> dict:
        return {"experiment": self.experiment, "data": self.data, "slice": self.slice,
                "mask": dataclasses.asdict(self.mask), "label": self.method.label, "method": self.method.name,
                "config": config_dict(self.method.config), "settings": json.loads(self.settings), "role": self.role}

    def key(self) -> str:
        """sha256 of :meth:`describe` (24 hex digits)."""
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True, default=str).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Described:
    """A record's perturbation column for experiments that perturb inside the unit (the attack)."""

    kind: str
    fields: str = "{}"

    def describe(self) -> dict:
        return {"kind": self.kind, **json.loads(self.fields)}


# ----------------------------------------------------------------------------- expansion


def _volumes(spec: StudySpec, item: DataItem) -> list[tuple[str, list[int], str | None]]:
    """``[(source, slices, defaults key)]`` of a data entry (directories: every volume under them)."""
    from explorer.data.fastmri import list_volumes  # noqa: PLC0415
    from explorer.data.sources import open_volume  # noqa: PLC0415

    source = spec.resolve(item.source)
    if source.startswith("sample:"):
        sources = [source]
    else:
        path = Path(source)
        if not path.exists():
            raise ExplorerError(f"data {item.source}: no such file or directory ({path})")
        sources = [str(p) for p in list_volumes(path)] if path.is_dir() else [str(path)]
        if not sources:
            raise ExplorerError(f"data {item.source}: no .h5 volumes under {path}")
    out = []
    for src in sources:
        volume = open_volume(src)
        first = volume.read_slice(0).meta
        n = volume.num_slices
        if item.slices is None:
            slices = [n // 2]
        elif item.slices == "all":
            slices = list(range(n))
        else:
            bad = [s for s in item.slices if s >= n]
            if bad:
                raise ExplorerError(f"data {item.source}: slice {bad[0]} out of range (the volume has {n} slices)")
            slices = list(item.slices)
        out.append((src, slices, first.defaults_key))
    return out


def _instances(methods, key: str | None) -> list[MethodInstance]:
    return [MethodInstance(m.label, m.method, get_method(m.method).make_config(m.values, anatomy=key))
            for m in methods]


def expand(spec: StudySpec) -> list[Unit]:
    """Every unit of a study, in a deterministic order (experiment, data, slice, mask, method).

    Shift pairs: the ``data`` entries are the in-distribution set P and each ``ood`` entry the shifted set Q; every
    model's configuration is pinned on P (the first data entry's defaults), so a tuned ``lam`` or checkpoint
    ``auto`` keeps its P value on Q. Test-time training runs only the instances with weights to adapt.

    Raises:
        ExplorerError: a missing path, a slice out of range.
    """
    study_volumes = [v for item in spec.data for v in _volumes(spec, item)]
    units: list[Unit] = []
    for experiment in spec.experiments:
        volumes = study_volumes if experiment.data is None else [v for item in experiment.data
                                                                  for v in _volumes(spec, item)]
        methods = experiment.methods or spec.methods
        if experiment.kind == "shift":
            pinned = _instances(methods, volumes[0][2])
            ood = [v for i, item in enumerate(experiment.params["ood"])
                   for v in _volumes(spec, DataItem(str(item["source"]) if isinstance(item, dict) else str(item),
                                                    _slices_of(item)))]
            name = " + ".join(str(item["source"]) if isinstance(item, dict) else str(item)
                              for item in experiment.params["ood"])
            for role, group in (("id", volumes), (f"ood:{name}", ood)):
                for source, slices, _ in group:
                    for index in slices:
                        for mask in spec.masks:  # the in-distribution units are shared by every shift pair
                            units += [Unit("shift", source, index, mask, inst, "{}", role) for inst in pinned]
            continue
        for source, slices, key in volumes:
            instances = _instances(methods, key)
            if experiment.kind == "ttt":
                instances = [i for i in instances if i.capabilities.weights]
            for index in slices:
                for mask in spec.masks:
                    units += [Unit(experiment.kind, source, index, mask, inst, experiment.settings) for inst in instances]
    seen: set[str] = set()
    return [u for u in units if not (u.key() in seen or seen.add(u.key()))]


def _slices_of(item) -> tuple[int, ...] | str | None:
    if not isinstance(item, dict):
        return None
    slices = item.get("slices")
    if slices == "middle":
        return None
    return tuple(slices) if isinstance(slices, list) else slices


# ----------------------------------------------------------------------------- running


def run_unit(unit: Unit, problems: ProblemCache | None = None) -> list[Record]:
    """Run one unit: its records (one per attack budget, one otherwise), stamped with the experiment, the unit
    key and the role. An :class:`ExplorerError` becomes one record with its one-line ``error``."""
    problems = problems or ProblemCache()
    task = Task(data=unit.data, slice=unit.slice, method=unit.method, mask=unit.mask)
    settings = json.loads(unit.settings)
    try:
        if unit.experiment in ("clean", "shift"):
            records = [run_task(task, problems, catch=False)]
        elif unit.experiment == "features":
            records = [_features(unit, settings, problems)]
        elif unit.experiment == "attack":
            records = _attack(task, settings, problems)
        elif unit.experiment == "ttt":
            records = [_ttt(task, settings, problems)]
        else:
            raise ExplorerError(f"unknown experiment {unit.experiment!r}")
    except ExplorerError as exc:
        text = str(exc).strip()
        records = [make_record(task, None, None, text.splitlines()[0] if text else type(exc).__name__,
                               file=file_name(task))]
    key = unit.key()
    return [dataclasses.replace(r, experiment=unit.experiment, unit=key, role=unit.role) for r in records]


def _features(unit: Unit, s: dict, problems: ProblemCache) -> Record:
    from explorer.robustness.insertion import Feature  # noqa: PLC0415
    from explorer.robustness.features import feature_tasks  # noqa: PLC0415

    template = Feature(shape=s.get("shape", "square"))
    tasks = feature_tasks(unit.data, [unit.slice], [unit.method], int(s.get("count", 3)), template,
                          tuple(s.get("sizes", (3, 5))), tuple(float(c) for c in s.get("contrasts", (0.17,))),
                          seed=int(s.get("seed", 0)), mode=s.get("mode", "coil"), mask=unit.mask)
    return run_task(tasks[0], problems, catch=False)


def _attack(task: Task, s: dict, problems: ProblemCache) -> list[Record]:
    from explorer.robustness.attack import AttackConfig, sweep  # noqa: PLC0415

    problem = problems.problem(task)
    config = AttackConfig(**{k: v for k, v in s.items() if k != "eps"})
    results = sweep(problem, task.method, [float(e) for e in s.get("eps", [0.08])], config)
    records = []
    for result in results:
        row = result.row()
        described = Described("attack", json.dumps({"eps": result.config.eps, "objective": config.objective,
                                                    "budget": config.budget, "steps": config.steps,
                                                    "seed": config.seed}, sort_keys=True))
        record = make_record(dataclasses.replace(task, perturbation=described), problem, result.perturbed,
                             file=file_name(task))
        records.append(dataclasses.replace(record, scores=json.dumps(row, default=float)))
    return records


def _ttt(task: Task, s: dict, problems: ProblemCache) -> Record:
    from explorer.engine import run_method  # noqa: PLC0415
    from explorer.robustness.ttt import TTTConfig, test_time_train  # noqa: PLC0415

    problem = problems.problem(task)
    result = test_time_train(problem, task.method, TTTConfig(**{k: v for k, v in s.items()
                                                              if k != "reference_checkpoint"}))
    reference = None
    if s.get("reference_checkpoint"):
        if not hasattr(task.method.config, "checkpoint"):
            raise ExplorerError(f"{task.method.display} takes no checkpoint: reference_checkpoint does not apply")
        ref = MethodInstance(f"{task.method.label}_reference", task.method.name,
                             dataclasses.replace(task.method.config, checkpoint=s["reference_checkpoint"]))
        reference = run_method(problem, ref)
    record = make_record(task, problem, result.after, file=file_name(task))
    return dataclasses.replace(record, scores=json.dumps(result.row(reference), default=float))


__all__ = ["Described", "Unit", "expand", "run_unit"]
