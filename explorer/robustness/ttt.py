"""Test-time training (Darestani, Liu & Heckel, ICML 2022): adapt a trained network to one slice, with
self-validation and rollback.

Self-supervised loss on the measured data, ``||M_t (y - F S f(y_in))||_1 / ||M_t y||_1`` (l1 of the real and
imaginary parts, as the TTT code): ``F S f`` is the network's predicted multi-coil k-space through the problem's
ESPIRiT maps ``S`` from its image (:meth:`~explorer.recon.base.NetworkReconstructor.kspace`, the same for every
network, so no network can satisfy it by passing its measurements through), ``M_t`` the training entries.

Self-validation holds out a seeded ``holdout`` share of the sampled k-space, drawn without replacement, and tracks
the held-out error ``||M_v (y - F S f(y_in))||_1 / ||M_v y||_1`` every step; training stops when its mean over the
last ``window`` steps exceeds the mean over the ``window`` before (checked once ``3 window`` steps are done), or
after ``steps``. Two protocols, named wherever results are shown (:data:`PROTOCOLS`):

* ``ours`` (the default, faster): whole sampled columns outside the fully sampled centre are held out, of the loss
  and of the network's input (``y_in = M_t y``), at most 200 steps, window 20, and the weights with the lowest
  held-out error are restored;
* ``paper`` (as the papers' code does it): single sampled entries anywhere (the same for every coil) are held out of
  the loss only (the network's input is all the measurements, fixed), up to 2500 steps, window 100 (the papers use
  20 for the dataset shift), and the last weights are kept (no rollback). Their draw is unseeded and with
  replacement; ours is seeded, without replacement.

The adapted network then reconstructs from all measurements.

Every weight of a trainable deep copy is adapted (:func:`~explorer.engine.trainable_copy`): the cached model is
never touched.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from explorer.engine import MethodInstance, MethodResult, Problem, as_instance, run_method, trainable_copy
from explorer.engine.core import kspace_loss
from explorer.engine.tasks import ProblemCache, Record, Task, file_name, make_record
from explorer.errors import ExplorerError
from explorer.recon.base import ProgressFn, Throttle
from explorer.robustness.registry import Experiment, Page, Section, Verdict, judge, register

STOP_REASONS = ("held-out error rose", "max steps", "stopped")
HOLDOUT_UNITS: dict[str, str] = {"columns": "whole sampled columns (outside the centre)",
                                 "entries": "single sampled k-space entries, the same for every coil"}
PROTOCOLS: dict[str, str] = {
    "ours": "columns held out of the loss and the input, <= 200 steps, window 20, rollback to the best held-out error",
    "paper": "5% of the sampled entries held out of the loss only, <= 2500 steps, window 100, no rollback",
}


@dataclass(frozen=True)
class TTTConfig:
    """Test-time training settings (frozen: a cache key).

    Attributes:
        steps: maximum Adam steps.
        lr: learning rate; 0 = the method's declared ``capabilities.adapt_lr``.
        window: ``W`` of the stopping rule (steps).
        holdout: fraction of the sampled locations held out for self-validation (0: none; then no early stop and no
            rollback: the last weights are used).
        seed: the hold-out draw.
        rollback: restore the weights of the lowest held-out error.
        monitor: score SSIM against the reference every ``monitor`` steps (0 = never; costs a forward).
        holdout_unit: what is held out (:data:`HOLDOUT_UNITS`).
        holdout_input: the held-out entries are also left out of the network's input (else only of the loss).
        holdout_center: the fully sampled centre may be held out too.
        protocol: the protocol these settings follow (:data:`PROTOCOLS`; ``"custom"`` once changed from one).
    """

    steps: int = 200
    lr: float = 0.0
    window: int = 20
    holdout: float = 0.05
    seed: int = 0
    rollback: bool = True
    monitor: int = 0
    holdout_unit: str = "columns"
    holdout_input: bool = True
    holdout_center: bool = False
    protocol: str = "ours"

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.steps <= 100000, f"TTT steps must be in [1, 100000], got {self.steps}"),
            (0 <= self.lr <= 1 and math.isfinite(self.lr), f"TTT learning rate must be in [0, 1], got {self.lr}"),
            (1 <= self.window <= 10000, f"TTT window must be in [1, 10000], got {self.window}"),
            (0 <= self.holdout < 0.5, f"hold-out fraction must be in [0, 0.5), got {self.holdout}"),
            (0 <= self.seed < 2**32, f"seed must be in [0, 2**32), got {self.seed}"),
            (0 <= self.monitor <= 100000, f"monitor interval must be >= 0, got {self.monitor}"),
            (self.holdout_unit in HOLDOUT_UNITS,
             f"hold-out unit must be one of {', '.join(HOLDOUT_UNITS)}, got {self.holdout_unit!r}"),
            (self.protocol in (*PROTOCOLS, "custom"),
             f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ExplorerError(message)


def protocol_config(name: str, **changes) -> TTTConfig:
    """The settings of protocol ``name`` (:data:`PROTOCOLS`), with ``changes`` (then named ``"custom"`` if they
    depart from the protocol).

    Raises:
        ExplorerError: an unknown protocol or a bad setting.
    """
    if name not in PROTOCOLS:
        raise ExplorerError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")
    base = TTTConfig() if name == "ours" else TTTConfig(steps=2500, window=100, holdout=0.05, rollback=False,
                                                         holdout_unit="entries", holdout_input=False,
                                                         holdout_center=True, protocol="paper")
    changed = replace(base, **changes)
    departs = any(getattr(changed, k) != getattr(base, k) for k in changes if k not in ("seed", "monitor"))
    return replace(changed, protocol="custom") if departs else changed


def split_holdout(mask: torch.Tensor, center: torch.Tensor | None, fraction: float, seed: int,
                  shape: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the sampled locations into training and held-out masks (seeded, without replacement).

    Args:
        mask: bool sampling mask ``(1, 1, H, W)`` or ``(1, 1, 1, W)``.
        center: bool mask of the fully sampled centre (never held out), broadcastable to ``mask``, or ``None``.
        fraction: share of the eligible sampled locations to hold out.
        shape: ``(H, W)`` to hold out single entries of a column mask (it is expanded first); ``None``: the mask's
            own locations (whole columns of a column mask).

    Returns:
        ``(train, held_out)``: bool masks (``mask``'s shape, or ``(1, 1, H, W)`` with ``shape``); disjoint, their
        union is the (expanded) mask.
    """
    mask = mask.bool().cpu()
    if shape is not None:
        mask = mask.expand(*mask.shape[:-2], *shape).clone()
    eligible = mask & ~(center.bool().cpu().expand_as(mask) if center is not None else torch.zeros_like(mask))
    index = torch.nonzero(eligible.flatten()).flatten()
    count = min(max(int(round(fraction * len(index))), 1 if fraction > 0 else 0), max(len(index) - 1, 0))
    held = torch.zeros(mask.numel(), dtype=torch.bool)
    if count:
        generator = torch.Generator().manual_seed(int(seed))
        held[index[torch.randperm(len(index), generator=generator)[:count]]] = True
    held = held.view_as(mask)
    return mask & ~held, held


def should_stop(held_out: list[float], window: int) -> bool:
    """The stopping rule: after ``3 window`` steps, the mean of the last ``window`` held-out errors exceeds the mean
    of the ``window`` before."""
    if len(held_out) < 3 * window:
        return False
    last = np.mean(held_out[-window:])
    before = np.mean(held_out[-2 * window:-window])
    return bool(last > before)


@dataclass(frozen=True, eq=False)
class TTTResult:
    """Before and after test-time training of one instance on one slice.

    Attributes:
        before / after: the engine's scored results with the original and the adapted weights.
        steps: steps run; best_step: the step whose weights are used (0 = the original weights).
        stop_reason: one of :data:`STOP_REASONS`; seconds: wall time of the training.
        history: per step ``(step, train loss, held-out error or None, SSIM or None)``.
        lr: the learning rate used; holdout: the held-out share of the sampled locations; protocol: the settings'
            protocol (:data:`PROTOCOLS`, or ``"custom"``).
    """

    before: MethodResult
    after: MethodResult
    steps: int
    best_step: int
    stop_reason: str
    seconds: float
    history: tuple[tuple[int, float, float | None, float | None], ...]
    lr: float
    holdout: float
    protocol: str = "ours"

    def row(self, reference: MethodResult | None = None) -> dict:
        """A flat record; with the result of a model trained on the target distribution, the gap closed
        ``(SSIM_TTT - SSIM_PQ) / (SSIM_QQ - SSIM_PQ)``."""
        b, a = self.before.metrics or {}, self.after.metrics or {}
        out = {"label": self.after.instance or self.after.label, "method": self.after.method, "steps": self.steps,
               "best_step": self.best_step, "stop_reason": self.stop_reason, "seconds": self.seconds, "lr": self.lr,
               "holdout": self.holdout, "protocol": self.protocol}
        for name in ("ssim", "psnr", "nmse"):
            out[f"{name}_before"], out[f"{name}_after"] = b.get(name), a.get(name)
        if reference is not None and reference.metrics:
            out["ssim_reference"] = reference.metrics["ssim"]
            out["gap_closed"] = gap_closed(b.get("ssim"), a.get("ssim"), reference.metrics["ssim"])
        return out


def gap_closed(before: float | None, after: float | None, reference: float | None) -> float | None:
    """``(after - before) / (reference - before)``; ``None`` when undefined (no gap, or a metric missing)."""
    if before is None or after is None or reference is None or abs(reference - before) < 1e-12:
        return None
    return (after - before) / (reference - before)


def test_time_train(problem: Problem, method: MethodInstance | str, config: TTTConfig = TTTConfig(),
                    progress: ProgressFn | None = None, before: MethodResult | None = None) -> TTTResult:
    """Adapt ``method``'s weights to ``problem`` (see the module docstring).

    Args:
        progress: ``progress(step, total, info)`` with ``info = {"loss", "held_out", "ssim", "best_step"}``;
            returning True stops training (the best weights so far are used).
        before: the instance's result with its original weights, if already computed.

    Raises:
        ExplorerError: a method without weights, or nothing left to train on.
    """
    instance = as_instance(method)
    if not instance.capabilities.weights:
        raise ExplorerError(f"{instance.display} has no trained weights to adapt at test time")
    lr = config.lr or instance.capabilities.adapt_lr
    if not lr:
        raise ExplorerError(f"{instance.display} declares no test-time learning rate: give one")
    before = before if before is not None else run_method(problem, instance)
    adapted = trainable_copy(instance)
    op = problem.operator(problem.slice.num_coils > 1)  # the ESPIRiT maps of the loss's F S f
    y = problem.y.detach()
    center = None if config.holdout_center else _center(problem)
    entries = tuple(problem.slice.shape) if config.holdout_unit == "entries" else None
    train_mask, held_mask = split_holdout(problem.sampled.mask, center, config.holdout, config.seed, entries)
    train_mask, held_mask = train_mask.to(problem.device), held_mask.to(problem.device)
    if not bool(train_mask.any()):
        raise ExplorerError("nothing left to train on: lower the hold-out fraction")
    if config.holdout_input:  # the network sees the training entries only
        y_train, train_op = y * train_mask, op.with_mask(train_mask)
    else:  # the papers' code: the network's input is every measurement, the loss the training entries
        y_train, train_op = y, op
    module = adapted.module
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    throttle = Throttle(progress)
    history: list[tuple[int, float, float | None, float | None]] = []
    held_errors: list[float] = []
    best_error, best_step, best_state = math.inf, 0, None
    has_holdout = bool(held_mask.any())
    reason = "max steps"
    start = time.perf_counter()
    with torch.enable_grad():
        for step in range(1, config.steps + 1):
            optimizer.zero_grad(set_to_none=True)
            predicted = adapted.kspace(y_train, train_op)
            loss = kspace_loss(predicted, y, train_mask).mean()
            loss.backward()
            held = None
            if has_holdout:
                with torch.no_grad():
                    held = float(kspace_loss(predicted.detach(), y, held_mask).mean())
                held_errors.append(held)
                if held < best_error:  # these weights (before this step's update) are the best so far
                    best_error, best_step = held, step - 1
                    if config.rollback:
                        best_state = copy.deepcopy(module.state_dict())
            optimizer.step()
            ssim = None
            if config.monitor and problem.target is not None and step % config.monitor == 0:
                ssim = run_method(problem, instance, reconstructor=adapted).metrics["ssim"]
            history.append((step, float(loss.detach()), held, ssim))
            if throttle.due(step, config.steps) or ssim is not None:
                if throttle.report(step, config.steps, {"loss": history[-1][1], "held_out": held, "ssim": ssim,
                                                        "best_step": best_step}):
                    reason = "stopped"
                    break
            if has_holdout and should_stop(held_errors, config.window):
                reason = "held-out error rose"
                break
    seconds = time.perf_counter() - start
    steps = len(history)
    if config.rollback and best_state is not None:
        module.load_state_dict(best_state)
    else:
        best_step = steps
    after = run_method(problem, instance, reconstructor=adapted)
    return TTTResult(before, after, steps, best_step, reason, seconds, tuple(history), float(lr), config.holdout,
                     config.protocol)


def _center(problem: Problem) -> torch.Tensor | None:
    """The fully sampled centre of the mask (columns for 1D masks, a square for 2D), bool like the mask."""
    mask = problem.sampled.mask
    n = int(problem.sampled.num_low_frequencies)
    if n <= 0:
        return None
    center = torch.zeros_like(mask, dtype=torch.bool)
    h, w = mask.shape[-2:]
    c0 = w // 2 - n // 2
    if h == 1:
        center[..., c0:c0 + n] = True
    else:
        r0 = h // 2 - n // 2
        center[..., r0:r0 + n, c0:c0 + n] = True
    return center & mask.bool()


# ----------------------------------------------------------------------------- the experiment in a study

SETTINGS = {"protocol": "ours (default) or paper (the papers' hold-out, step limit and stopping; see PROTOCOLS)",
            "steps": "maximum Adam steps", "lr": "learning rate (0 = the method's)", "window": "W of the stopping rule",
            "holdout": "share of the sampled entries held out", "seed": "seed of the hold-out draw",
            "holdout_unit": "columns or entries", "rollback": "restore the best held-out weights",
            "reference_checkpoint": "checkpoint of the same method trained on the target data (gap closed)"}


def _config(settings: dict) -> TTTConfig:
    changes = {k: v for k, v in settings.items() if k not in ("reference_checkpoint", "protocol")}
    return protocol_config(settings.get("protocol", "ours"), **changes)


def _check(settings: dict) -> None:
    """The settings before any work: the TTT configuration, and a ``reference_checkpoint`` that is a shipped name or
    a readable weights-only checkpoint file (a pickle or a missing file is refused here, not per unit).

    Raises:
        ExplorerError: one line naming the problem.
    """
    _config(settings)
    reference = settings.get("reference_checkpoint")
    if reference is None:
        return
    if not isinstance(reference, str) or not reference.strip():
        raise ExplorerError(f"reference_checkpoint must be knee, brain or a checkpoint file, got {reference!r}")
    from explorer.recon.checkpoints import ANATOMIES, load_checkpoint  # noqa: PLC0415

    if reference.strip() not in ANATOMIES:
        load_checkpoint(reference.strip())  # weights only; one line for a missing, foreign or pickled file


def _unit(task: Task, settings: dict, problems: ProblemCache) -> list[Record]:
    """The task's network adapted on its slice: one record of the adapted reconstruction, its scores the TTT row
    (with the reference network's SSIM and the gap closed when ``reference_checkpoint`` is given)."""
    problem = problems.problem(task)
    result = test_time_train(problem, task.method, _config(settings))
    reference = None
    if settings.get("reference_checkpoint"):
        if not hasattr(task.method.config, "checkpoint"):
            raise ExplorerError(f"{task.method.display} takes no checkpoint: reference_checkpoint does not apply")
        ref = MethodInstance(f"{task.method.label}_reference", task.method.name,
                             replace(task.method.config, checkpoint=settings["reference_checkpoint"]))
        reference = run_method(problem, ref)
    record = make_record(task, problem, result.after, file=file_name(task))
    return [replace(record, scores=json.dumps(result.row(reference), default=float))]


def summary(records: Sequence[Record]) -> list[dict]:
    """One row per (network, slice): SSIM before and after test-time training, the reference, the gap closed."""
    rows = []
    for r in records:
        s = json.loads(r.scores) if r.scores else {}
        rows.append({"label": r.label, "method": r.method, "data": r.file or r.data, "slice": r.slice,
                     "ssim_before": s.get("ssim_before"), "ssim_after": s.get("ssim_after"),
                     "ssim_reference": s.get("ssim_reference"), "gap_closed": s.get("gap_closed"),
                     "steps": s.get("steps"), "stop_reason": s.get("stop_reason"), "protocol": s.get("protocol")})
    return rows


def _report(records: Sequence[Record]) -> list[Section]:
    from explorer.figures.ttt import ssim_bars  # noqa: PLC0415 (plotly only when a report is drawn)

    rows = summary(records)
    if not rows:
        return []
    return [Section("Test-time training: mean SSIM before, after, and of the network trained on the target",
                    ssim_bars(rows), (("Test-time training per slice", rows),))]


def conclusions(records: Sequence[Record]) -> list[Verdict]:
    """The talk's fifth conclusion, per network and protocol: the share of the gap to the network trained on the
    target that test-time training closes (of the means over slices, as the papers' "gap closed")."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in summary([r for r in records if not r.error]):
        if None not in (row["ssim_before"], row["ssim_after"], row["ssim_reference"]):
            groups.setdefault((row["label"], row["protocol"] or "ours"), []).append(row)
    out = []
    for (label, protocol), rows in groups.items():
        before, after, ref = (float(np.mean([r[k] for r in rows])) for k in ("ssim_before", "ssim_after",
                                                                              "ssim_reference"))
        gap = (after - before) / (ref - before) if ref - before > 1e-6 else None
        measured = (f"{label}, {protocol} protocol, {len(rows)} slices: SSIM {before:.3f} -> {after:.3f}, target-trained "
                    f"{ref:.3f}: " + (f"{100 * gap:.0f}% of the gap closed" if gap is not None
                                      else "no gap to close (the reference is not better)"))
        out.append(Verdict("Test Time Training closes the distribution shift performance gap",
                           judge(gap, lambda g: g >= 0.8, lambda g: g < 0.5), measured,
                           "agrees if at least 80% of the gap is closed (the papers: 87-99%); disagrees if under 50%"))
    return out


EXPERIMENT = register(Experiment(
    name="ttt", title="Test-time training", run=_unit, settings=SETTINGS, check=_check,
    takes=lambda instance: instance.capabilities.weights, summary=summary, report=_report, conclusions=conclusions,
    page=Page("pages/ttt.py", "Test-time training", ":material/model_training:", picks_one=True),
    description="trained networks adapted to each slice (self-supervised, self-validated); the gap they close",
))

__all__ = ["EXPERIMENT", "STOP_REASONS", "TTTConfig", "TTTResult", "conclusions", "gap_closed", "should_stop", "split_holdout", "summary",
           "test_time_train"]
