"""Distribution shifts: every model on an in-distribution set P and a shifted set Q, and the linear relation of
their SSIMs across models (Darestani, Chaudhari & Heckel, ICML 2021: under natural shifts every family loses
about as much as its in-distribution quality predicts).

A study is two evaluations (:func:`~explorer.robustness.evaluate.evaluate`: each slice its own seeded mask, the same for
every model) with the models' configurations **pinned on P**: parameters whose defaults depend on the anatomy
(a checkpoint ``auto``, a tuned ``lam``) take P's values on both sets, so a knee model stays a knee model on brain
data. A set is a directory or file of fastMRI-layout volumes, or ``sample:<family>`` (the embedded sample).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from explorer.errors import ExplorerError
from explorer.robustness.evaluate import Evaluation, evaluate, instances_for
from explorer.masks import MaskConfig


def resolve_set(spec: str, sample_size: int | None = None) -> tuple[str, str | None]:
    """``(path, defaults key)`` of a set (its anatomy, ``"/singlecoil"`` for single-coil data): a directory or ``.h5`` file, or ``sample:<family>[,field=value...]``
    (e.g. ``sample:knee,dataset=stanford``; written on first use).

    Raises:
        ExplorerError: a path that does not exist, or a bad sample source.
    """
    from explorer.data.fastmri import FastMRIVolume, list_volumes  # noqa: PLC0415
    from explorer.data.sample import sample_path  # noqa: PLC0415
    from explorer.data.sample_sources import parse_source  # noqa: PLC0415
    from explorer.data.slice import anatomy_of, defaults_key  # noqa: PLC0415

    if spec.startswith("sample:"):
        kwargs = {"size": sample_size} if sample_size else {}
        path = sample_path(parse_source(spec, **kwargs))
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise ExplorerError(f"{spec} does not exist")
    files = [path] if path.is_file() else list_volumes(path)
    if not files:
        raise ExplorerError(f"no .h5 volumes under {path}")
    volume = FastMRIVolume(files[0])
    anatomy = volume.attrs.get("anatomy") or anatomy_of(volume.attrs.get("acquisition"), volume.source)
    return str(path), defaults_key(anatomy, volume.challenge)


@dataclass(frozen=True)
class ShiftStudy:
    """The two evaluations and their comparison.

    Attributes:
        id_set / ood_set: the sets (paths); id_eval / ood_eval: their :class:`~explorer.robustness.evaluate.Evaluation`.
        rows: one row per model: ``label``, ``method``, ``family``, ``ssim_id``, ``ssim_ood``, ``psnr_id``,
            ``psnr_ood``, ``gap`` (``ssim_id - ssim_ood``), slice counts.
        fit: the least-squares line ``ssim_ood = slope * ssim_id + intercept`` across models, with Pearson ``r``
            (``None`` with fewer than 2 models or no spread).
    """

    id_set: str
    ood_set: str
    id_eval: Evaluation
    ood_eval: Evaluation
    rows: list[dict]
    fit: dict | None
    methods: tuple[str, ...] = ()
    mask: MaskConfig | None = None
    configs: dict | None = None
    max_slices: int | None = None

    def slice_result(self, which: str, n: int, label: str):
        """Reconstruct slice ``n`` of set ``which`` (``"id"`` or ``"ood"``) with model ``label`` again, exactly as
        the study did (same mask seed, pinned configuration) to look at it.

        Returns:
            ``(problem, MethodResult)``: the problem's ``target`` and the result's ``image`` are ``(h, w)``.

        Raises:
            ExplorerError: an unknown set, slice or label.
        """
        from explorer.engine.core import run_method  # noqa: PLC0415
        from explorer.engine.tasks import ProblemCache, task_problem  # noqa: PLC0415
        from explorer.robustness.evaluate import slice_task  # noqa: PLC0415

        if which not in ("id", "ood") or self.mask is None:
            raise ExplorerError(f"set must be 'id' or 'ood', got {which!r}")
        task = slice_task(self.id_set if which == "id" else self.ood_set, self.methods, self.mask, self.configs,
                          self.max_slices, n, label)
        problem = task_problem(task, ProblemCache(1))
        return problem, run_method(problem, task.method)


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict | None:
    """``{"slope", "intercept", "r", "n"}`` of the least-squares line ``y = slope x + intercept``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or x.std() == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    r = float(np.corrcoef(x, y)[0, 1]) if y.std() > 0 else None
    return {"slope": float(slope), "intercept": float(intercept), "r": r, "n": int(len(x))}


def shift_study(id_set: str, ood_set: str, methods: Sequence[str], mask: MaskConfig,
                configs: dict[str, dict] | None = None, max_slices: int | None = None,
                progress: Callable[[str, int, int, str], bool | None] | None = None,
                sample_size: int | None = None) -> ShiftStudy:
    """Evaluate ``methods`` on both sets (configurations pinned on the in-distribution set) and compare.

    Args:
        methods: registry names or ``"LABEL=METHOD"`` instances (several configurations per family make the
            scatter: e.g. checkpoints of several sizes or training lengths, several ``lam``).
        configs: ``{label: {param: value}}``.
        max_slices: at most this many slices per set (evenly spread).
        progress: ``progress(set name "id"/"ood", done, total, slice)``; True stops that evaluation.
    """
    id_path, id_anatomy = resolve_set(id_set, sample_size)
    ood_path, _ = resolve_set(ood_set, sample_size)
    pinned = {inst.label: dataclasses.asdict(inst.config) for inst in instances_for(methods, configs, id_anatomy)}
    specs = {inst.label: inst.spec for inst in instances_for(methods, pinned, id_anatomy)}
    evals = {}
    for name, path in (("id", id_path), ("ood", ood_path)):
        report = None
        if progress is not None:
            def report(done, total, where, _name=name):
                return progress(_name, done, total, where)
        evals[name] = evaluate(path, methods, mask, pinned, max_slices, progress=report)
    rows = []
    for label in evals["id"].methods:
        a, b = evals["id"].metrics[label], evals["ood"].metrics[label]
        if not len(a["ssim"]) or not len(b["ssim"]):
            continue
        rows.append({"label": label, "method": specs[label].name, "family": specs[label].family,
                     "ssim_id": float(a["ssim"].mean()), "ssim_ood": float(b["ssim"].mean()),
                     "psnr_id": float(a["psnr"].mean()), "psnr_ood": float(b["psnr"].mean()),
                     "gap": float(a["ssim"].mean() - b["ssim"].mean()),
                     "slices_id": int(len(a["ssim"])), "slices_ood": int(len(b["ssim"]))})
    fit = linear_fit([r["ssim_id"] for r in rows], [r["ssim_ood"] for r in rows])
    return ShiftStudy(id_path, ood_path, evals["id"], evals["ood"], rows, fit, tuple(methods), mask, pinned, max_slices)


__all__ = ["ShiftStudy", "linear_fit", "resolve_set", "shift_study"]
