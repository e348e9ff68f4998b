"""Teaching helpers: solver iterates, SENSE in matrix form and un-trained fit snapshots; with the k-space regions
(:mod:`explorer.teaching.regions`) and point-spread functions (:mod:`explorer.teaching.psf`), re-exported here so
the teaching pages use one namespace.

No Streamlit here (the Home page's teaching mode, :mod:`explorer.ui.teaching.primer`, draws these). Everything is
computed from the data: region images are inverse FFTs of masked k-space, PSFs inverse FFTs of sampling patterns,
iterates runs of the registered solvers, snapshots the output of a registered un-trained network during its fit.

Conventions: k-space ``(C, H, W)`` complex (rows: readout kx, columns: phase encode ky, centre at
``(H // 2, W // 2)``, the centred orthonormal FFT of :mod:`explorer.physics`); patterns bool ``(H, W)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from explorer.engine import MethodResult, Problem, run_method
from explorer.errors import ExplorerError
from explorer.physics import center_crop, combine_sets, rss
from explorer.recon.base import FitReconstructor, MethodInstance, ProgressFn, get_method
from explorer.recon.fit import fit
from explorer.teaching.psf import (acceleration_note, point_spread_function, psf_decibels, psf_view,
                                   sidelobe_to_peak)
from explorer.teaching.regions import (MAX_RADIUS, REGION_KINDS, Region, energy_share, region_coil_images,
                                       region_image, region_mask)


# ----------------------------------------------------------------------------- solver iterates

ITERATES: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)


def iterative_methods() -> list[str]:
    """Registered regularised iterative solvers (sparse recovery): methods declaring an ``iterations`` and a
    regularisation weight ``lam`` parameter, with no trained weights and an exact gradient (unrolled iterations,
    not a per-slice network fit). Their iterate ``k`` is a run with ``iterations=k``: the solvers start from
    zero and are deterministic."""
    from explorer.recon.base import available_methods  # noqa: PLC0415

    return [m.name for m in available_methods()
            if m.capabilities.differentiable and not m.capabilities.weights
            and {"iterations", "lam"} <= {p.name for p in m.params()}]


def iterate_instance(name: str, k: int, anatomy: str | None = None, output: str | None = None) -> MethodInstance:
    """The instance of iterative method ``name`` stopped after ``k`` iterations (its other parameters: the
    defaults for ``anatomy``; ``output`` overrides the method's output choice when given).

    Raises:
        ExplorerError: the method has no ``iterations`` (or ``output``) parameter, or ``k`` is out of its range.
    """
    spec = get_method(name)
    names = {p.name for p in spec.params(anatomy)}
    if "iterations" not in names:
        raise ExplorerError(f"{spec.label} is not iterative (no iterations parameter)")
    values: dict = {"iterations": int(k)}
    if output is not None:
        if "output" not in names:
            raise ExplorerError(f"{spec.label} has no output parameter")
        values["output"] = output
    return MethodInstance.of(name, values, anatomy, label=f"{name} ({int(k)})")


@dataclass(frozen=True, eq=False)
class SenseForm:
    """How the SENSE image form (a solver's iterate ``x``, output ``"image"``) compares with the reference, whatever
    the solver: the reference is the coil root-sum-of-squares of the fully sampled k-space, ``x`` the single image
    behind the coil maps, which ESPIRiT sets to zero where it finds no signal.

    Attributes:
        metrics: the metrics of the best image of that form, the fully sampled k-space combined with the maps
            (``A^H k`` with every sample), against the reference; ``None`` without a reference.
        outside: the share of the (cropped) image outside the maps' support, where every such ``x`` is zero.
        reference_outside: the reference's mean there over its mean inside the support (its background signal and
            noise, which the root-sum-of-squares keeps); ``nan`` when either region is empty.
    """

    metrics: dict[str, float] | None
    outside: float
    reference_outside: float


def sense_form(problem: Problem, name: str, anatomy: str | None = None) -> SenseForm:
    """:class:`SenseForm` of iterative method ``name``'s coil maps (its default ``maps`` choice) on ``problem``.

    Raises:
        ExplorerError: single-coil data or a method without coil maps (no SENSE form to compare).
    """
    from explorer.engine.core import score  # noqa: PLC0415

    instance = MethodInstance.of(name, None, anatomy)
    op = problem.operator(instance.spec.needs_maps(instance.config))
    if op.maps is None:
        raise ExplorerError(f"{instance.display} uses no coil maps here: its iterate is the coil image itself")
    full = problem.kspace.to(op.maps.dtype)
    everything = op.with_mask(torch.ones_like(op.mask))
    with torch.no_grad():
        best = combine_sets(everything.adjoint(full), everything)
    scored = score(problem, best)
    energy = op.maps.abs().pow(2).flatten(1, -3).sum(1)  # (B, H, W): every coil of every set
    support = center_crop(energy, problem.crop)[0].cpu().numpy() > 0
    target = problem.target
    ratio = float("nan")
    if target is not None and support.any() and (~support).any():
        inside = float(np.mean(target[support]))
        ratio = float(np.mean(target[~support]) / inside) if inside > 0 else float("nan")
    return SenseForm(scored.metrics, float(1.0 - support.mean()), ratio)


def iterates(problem: Problem, name: str, ks: tuple[int, ...] = ITERATES, anatomy: str | None = None,
             output: str | None = None) -> list[MethodResult]:
    """Iterates ``k`` of ``ks`` of method ``name`` on ``problem``: one scored run with ``iterations=k`` each.

    Returns:
        one :class:`~explorer.engine.MethodResult` per ``k`` (image ``(h, w)``, metrics against the reference).
    """
    return [run_method(problem, iterate_instance(name, k, anatomy, output)) for k in ks]


# ----------------------------------------------------------------------------- un-trained fit snapshots

MAX_FIT_STEPS = 5000


@dataclass(frozen=True, eq=False)
class FitSnapshots:
    """Snapshots of an un-trained network's output during its fit.

    Attributes:
        steps: the Adam steps at which a snapshot was taken (0 = the random network), ascending.
        generator: float32 ``(S, h, w)``: root-sum-of-squares of the network's coil images at each step.
        consistent: float32 ``(S, h, w)``: the same after data consistency (measured k-space re-inserted), the
            method's output form.
        losses: the relative data-consistency loss ``||M (F G - y)||^2 / ||y||^2`` before each Adam step.
        seconds: wall time of the fit.
        stopped: True if the progress callback stopped it (``steps`` then ends at the last step reached).
    """

    steps: tuple[int, ...]
    generator: np.ndarray
    consistent: np.ndarray
    losses: tuple[float, ...]
    seconds: float
    stopped: bool = False


def fit_snapshots(problem: Problem, name: str, steps: tuple[int, ...], overrides: dict | None = None,
                  progress: ProgressFn | None = None) -> FitSnapshots:
    """Fit the un-trained network of method ``name`` to ``problem.y`` by Adam, keeping its output at ``steps``.

    The fit is the methods' own driver (:func:`explorer.recon.fit.fit`) on the network, fixed input and learning
    rate of the method's :meth:`~explorer.recon.base.FitReconstructor.generator` (the seeded start of its fit),
    watched through the driver's ``snapshot`` hook; unlike the method, the snapshots show the current iterate,
    not the best one so far.

    Args:
        problem: the undersampled slice (``y`` ``(1, C, H, W)``).
        name: a method whose reconstructor is a :class:`~explorer.recon.base.FitReconstructor`.
        steps: snapshot steps, each in ``[0, MAX_FIT_STEPS]``; the fit runs ``max(steps)`` Adam steps.
        overrides: parameters of the method (e.g. ``{"width": 16, "layers": 4}``).
        progress: ``progress(step, total, {"loss"})`` as the driver reports (after the first step, at most every
            0.2 s, after the last); True stops the fit after that step (the last output seen is kept).

    Returns:
        :class:`FitSnapshots`.

    Raises:
        ExplorerError: not a fit method, or invalid steps.
    """
    wanted = sorted({int(s) for s in steps})
    if not wanted or wanted[0] < 0 or wanted[-1] > MAX_FIT_STEPS:
        raise ExplorerError(f"snapshot steps must be in [0, {MAX_FIT_STEPS}], got {list(steps)}")
    total = wanted[-1]
    instance = MethodInstance.of(name, {**(overrides or {}), "iterations": max(total, 1)})
    recon = instance.build()
    if not isinstance(recon, FitReconstructor):
        raise ExplorerError(f"{instance.display} does not fit a network to the measurements")
    op = problem.operator(instance.spec.needs_maps(instance.config))
    y = problem.y.detach()
    gen = recon.generator(y, op)
    kept: dict[int, torch.Tensor] = {}
    last: list = []

    def keep(done: int, coils: torch.Tensor) -> None:  # the output after `done` Adam updates, units of y
        last[:] = [done, coils]
        if done in wanted:
            kept[done] = coils

    report = None
    if progress is not None:
        def report(step: int, _total: int, info: dict):
            return progress(min(step, total), total, {"loss": info["loss"]})

    start = time.perf_counter()
    # One more step than asked: the fit driver computes an output before each update, so the output after
    # `total` updates is that of step total + 1.
    result = fit(gen.module, gen.z, y[0], op.mask.to(y.device)[0], total + 1, gen.lr, progress=report,
                 total=total + 1, snapshot=keep)
    seconds = time.perf_counter() - start
    if result.stopped and last and last[0] not in kept:
        kept[last[0]] = last[1]
    taken = sorted(kept)
    with torch.no_grad():
        generator = [center_crop(rss(kept[k], dim=0), problem.crop) for k in taken]
        consistent = [center_crop(recon.data_consistency(kept[k][None], y, op)[0].abs(), problem.crop) for k in taken]
    losses = result.losses[:len(result.losses) if result.stopped else total]
    return FitSnapshots(tuple(taken), torch.stack(generator).cpu().numpy().astype(np.float32),
                        torch.stack(consistent).cpu().numpy().astype(np.float32), tuple(losses), seconds, result.stopped)


__all__ = ["ITERATES", "MAX_FIT_STEPS", "MAX_RADIUS", "REGION_KINDS", "FitSnapshots", "Region", "SenseForm",
           "acceleration_note", "energy_share", "fit_snapshots", "iterate_instance", "iterates", "iterative_methods",
           "point_spread_function", "psf_decibels", "psf_view", "region_coil_images", "region_image", "region_mask",
           "sense_form", "sidelobe_to_peak"]
