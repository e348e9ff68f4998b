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
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from explorer.data.selection import parse_item
from explorer.data.set_names import set_name
from explorer.engine.tasks import ProblemCache, Record, Task, run_task
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.robustness.evaluate import Evaluation, evaluate, instances_for
from explorer.robustness.registry import Experiment, Group, Page, Section, Verdict, judge, register


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
    metric: str = "fastmri"

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
                          self.max_slices, n, label, self.metric)
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
                sample_size: int | None = None, metric: str = "fastmri") -> ShiftStudy:
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
        evals[name] = evaluate(path, methods, mask, pinned, max_slices, progress=report, metric=metric)
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
    return ShiftStudy(id_path, ood_path, evals["id"], evals["ood"], rows, fit, tuple(methods), mask, pinned, max_slices,
                      metric)




# ----------------------------------------------------------------------------- the experiment in a study

def _check(settings: dict) -> None:
    ood = settings.get("ood")
    if not isinstance(ood, list) or not ood:
        raise ExplorerError("ood must be a non-empty list of data entries (the shifted set)")
    for i, item in enumerate(ood):
        parse_item(item, f"ood[{i}]")


def _set_name(settings: dict) -> str:
    return set_name([str(item["source"]) if isinstance(item, dict) else str(item) for item in settings["ood"]])


def _groups(settings: dict) -> tuple[Group, ...]:
    """The in-distribution set (the experiment's data; units shared by every pair: no settings) and the shifted one."""
    shifted = tuple(parse_item(item, f"ood[{i}]") for i, item in enumerate(settings["ood"]))
    return Group("id", None, {}), Group(f"ood:{_set_name(settings)}", shifted, {})


def _unit(task: Task, settings: dict, problems: ProblemCache) -> list[Record]:
    return [run_task(task, problems, catch=False)]


def shift_pairs(records: Sequence[Record]) -> list[str]:
    """The shifted sets of a study's shift pairs (``role`` ``"ood:<set>"`` -> ``"<set>"``), in first-seen order."""
    return list(dict.fromkeys(r.role[4:] for r in records if r.role.startswith("ood:")))


def id_role(pair: str, records: Sequence[Record]) -> str:
    """The role of the in-distribution records of shift pair ``pair``: ``"id"`` (the study's data), or
    ``"id from P"`` when the pair's experiment has its own data P (its roles then end in `` from P``, see
    :func:`explorer.study.units.expand`), so two shift experiments on different data never mix their sets."""
    _, sep, origin = pair.rpartition(" from ")
    own = f"id from {origin}"
    return own if sep and any(r.role == own for r in records) else "id"


def shift_summary(records: Sequence[Record], pair: str | None = None) -> tuple[list[dict], dict | None,
                                                                               dict[str, dict | None]]:
    """Per model (instance label) mean SSIM on the pair's in-distribution records (:func:`id_role`) and on the shifted
    set ``pair`` (default: the first);
    the fit across all models and per family.

    Returns:
        ``(rows, fit, fits_by_family)``; rows as :func:`explorer.figures.shift.shift_figure` takes them.
    """
    from explorer.recon.base import get_method  # noqa: PLC0415

    records = list(records)
    pairs = shift_pairs(records)
    pair = pair if pair is not None else (pairs[0] if pairs else None)
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"id": [], "ood": []})
    methods = {}
    in_distribution = id_role(pair or "", records)
    for r in records:
        role = "id" if r.role == in_distribution else ("ood" if r.role == f"ood:{pair}" else None)
        if r.ssim is not None and role is not None:
            values[r.label][role].append(r.ssim)
            methods[r.label] = r.method
    rows = []
    for label, v in values.items():
        if v["id"] and v["ood"]:
            family = get_method(methods[label]).family
            rows.append({"label": label, "method": methods[label], "family": family,
                         "ssim_id": float(np.mean(v["id"])), "ssim_ood": float(np.mean(v["ood"])),
                         "gap": float(np.mean(v["id"]) - np.mean(v["ood"])),
                         "slices_id": len(v["id"]), "slices_ood": len(v["ood"])})
    fit = linear_fit([r["ssim_id"] for r in rows], [r["ssim_ood"] for r in rows])
    families = {f: linear_fit([r["ssim_id"] for r in rows if r["family"] == f],
                              [r["ssim_ood"] for r in rows if r["family"] == f])
                for f in dict.fromkeys(r["family"] for r in rows)}
    return rows, fit, families


def summary(records: Sequence[Record]) -> list[dict]:
    """Every shift pair's per-model rows (:func:`shift_summary`), each with its ``shifted_set``."""
    return [{"shifted_set": pair, **row} for pair in shift_pairs(records) for row in shift_summary(records, pair)[0]]


def _report(records: Sequence[Record]) -> list[Section]:
    from explorer.figures.shift import shift_figure  # noqa: PLC0415 (plotly only when a report is drawn)

    sections = []
    for pair in shift_pairs(records):
        rows, fit, families = shift_summary(records, pair)
        if not rows:
            continue
        fits = [{"models": "all", **(fit or {})}] + [{"models": f, **(v or {})} for f, v in families.items()]
        sections.append(Section(f"Distribution shift to {pair}: SSIM in- vs out-of-distribution",
                                shift_figure(rows, fit, family_fits=families),
                                ((f"Shift to {pair}: per model", rows), ("Linear fits", fits)),
                                "One point per model; y = x and the least-squares line across models (and per family)."))
    return sections


def shift_verdicts(rows: list[dict], fit: dict | None, shift: str, x: str = "ssim_id",
                   y: str = "ssim_ood") -> list[Verdict]:
    """The talk's third and fourth conclusions on one shift's per-model rows (shared with the filtered shift): is
    out-of-distribution SSIM a linear function of in-distribution SSIM across models, and does the in-distribution
    ranking (accuracy) predict the out-of-distribution one?"""
    from scipy import stats  # noqa: PLC0415

    r = fit.get("r") if fit else None
    ranks = None
    if len(rows) >= 4:
        rho = stats.spearmanr([row[x] for row in rows], [row[y] for row in rows])[0]
        ranks = float(rho) if math.isfinite(rho) else None
    linear = (f"{shift}: r = {r:+.2f}, slope {fit['slope']:.2f} over {fit['n']} models" if r is not None
              else f"{shift}: needs 2 or more models with spread; the run has {len(rows)}")
    ranking = (f"{shift}: Spearman rho of ID and OOD SSIM {ranks:+.2f} over {len(rows)} models" if ranks is not None
               else f"{shift}: needs 4 or more models; the run has {len(rows)}")
    return [Verdict("Strong linear correlation of in-distribution and out-of-distribution generalization",
                    judge(r, lambda v: v >= 0.8, lambda v: v < 0.5), linear,
                    "agrees if the across-model fit has r >= 0.8; disagrees if r < 0.5"),
            Verdict("Accuracy is a good measure for performance", judge(ranks, lambda v: v >= 0.7, lambda v: v < 0.3),
                    ranking, "agrees if the models' in- and out-of-distribution SSIM ranks correlate with rho >= 0.7; "
                    "disagrees if rho < 0.3")]


def conclusions(records: Sequence[Record]) -> list[Verdict]:
    """:func:`shift_verdicts` of every shift pair of the run."""
    out = []
    for pair in shift_pairs(records):
        rows, fit, _ = shift_summary(records, pair)
        out += shift_verdicts(rows, fit, f"shift to {pair}")
    return out


EXPERIMENT = register(Experiment(
    name="shift", title="Distribution shift", run=_unit, settings={"ood": "the shifted set Q: a list of data entries"},
    check=_check, groups=_groups, pinned=True, summary=summary, report=_report, conclusions=conclusions,
    page=Page("pages/shift.py", "Distribution shift", ":material/compare_arrows:", rows="pages/reconstruct.py"),
    description="every model on an in-distribution set P and a shifted set Q (configurations pinned on P)",
))


__all__ = ["EXPERIMENT", "ShiftStudy", "conclusions", "id_role", "linear_fit", "resolve_set", "shift_pairs", "shift_study",
           "shift_summary", "shift_verdicts", "summary"]
