"""Teaching helpers: k-space regions, point-spread functions of masks, solver iterates and un-trained fit snapshots.

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
from explorer.physics import center_crop, ifft2c, rss
from explorer.recon.base import FitReconstructor, MethodInstance, ProgressFn, get_method
from explorer.recon.fit import fit

# ----------------------------------------------------------------------------- k-space regions

REGION_KINDS: dict[str, str] = {
    "disc": "Centre disc",
    "square": "Centre square",
    "periphery": "Periphery (outside a disc)",
    "annulus": "Band between two radii",
    "rows": "Horizontal band (centre rows)",
    "columns": "Vertical band (centre columns)",
}
MAX_RADIUS = 1.5  # radii are in units of the k-space half-size; the corners lie at sqrt(2)


@dataclass(frozen=True)
class Region:
    """A region of k-space (hashable: doubles as a cache key).

    Radii are relative to the k-space half-size along each axis (1 = the edge of k-space; the corners are at
    sqrt(2)), so a disc is an ellipse on a non-square grid.

    Attributes:
        kind: one of :data:`REGION_KINDS`.
        radius: the disc / square / periphery radius, the inner radius of an annulus, the half-width of a band.
        outer: the outer radius of an annulus (other kinds ignore it).
    """

    kind: str = "disc"
    radius: float = 0.1
    outer: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in REGION_KINDS:
            raise ExplorerError(f"unknown k-space region {self.kind!r}; choose one of {', '.join(REGION_KINDS)}")
        for name in ("radius", "outer"):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and 0.0 <= value <= MAX_RADIUS):
                raise ExplorerError(f"the region's {name} must be in [0, {MAX_RADIUS:g}], got {value}")
        if self.kind == "annulus" and self.outer <= self.radius:
            raise ExplorerError(f"the band's outer radius ({self.outer:g}) must exceed its inner radius ({self.radius:g})")


def region_mask(region: Region, shape: tuple[int, int]) -> np.ndarray:
    """The bool pattern ``(H, W)`` of ``region`` on a k-space grid of ``shape``; True = inside."""
    h, w = shape
    u = (np.arange(h) - h // 2)[:, None] / (h / 2)  # (H, 1) normalised row offset
    v = (np.arange(w) - w // 2)[None, :] / (w / 2)  # (1, W) normalised column offset
    radius = np.sqrt(u**2 + v**2)
    r, kind = region.radius, region.kind
    if kind == "disc":
        inside = radius <= r
    elif kind == "square":
        inside = np.maximum(np.abs(u), np.abs(v)) <= r
    elif kind == "periphery":
        inside = radius > r
    elif kind == "annulus":
        inside = (radius > r) & (radius <= region.outer)
    elif kind == "rows":
        inside = np.broadcast_to(np.abs(u) <= r, (h, w))
    else:  # columns
        inside = np.broadcast_to(np.abs(v) <= r, (h, w))
    return np.array(np.broadcast_to(inside, (h, w)), dtype=bool)  # a writable copy


def region_coil_images(kspace: torch.Tensor, pattern: np.ndarray) -> torch.Tensor:
    """Coil images of the k-space inside ``pattern``: ``ifft2c(k * pattern)``.

    Linear in the pattern: the coil images of two disjoint regions add up to those of their union.

    Args:
        kspace: complex ``(C, H, W)``.
        pattern: bool ``(H, W)`` (or broadcastable).

    Returns:
        complex ``(C, H, W)``.
    """
    if kspace.ndim != 3 or not kspace.is_complex():
        raise ValueError(f"kspace must be complex (C, H, W), got {tuple(kspace.shape)} {kspace.dtype}")
    keep = torch.from_numpy(np.array(pattern, dtype=bool)).to(kspace.device)
    return ifft2c(kspace * keep)


def region_image(kspace: torch.Tensor, pattern: np.ndarray, crop: tuple[int, int] | None = None) -> np.ndarray:
    """The image the k-space inside ``pattern`` alone makes: coil root-sum-of-squares, float32 ``(h, w)``
    (centre-cropped to ``crop`` when given)."""
    image = rss(region_coil_images(kspace, pattern), dim=0)
    if crop is not None:
        image = center_crop(image, crop)
    return image.cpu().numpy().astype(np.float32)


def energy_share(kspace: torch.Tensor, pattern: np.ndarray) -> float:
    """The share of the k-space energy ``sum |k|^2`` (all coils) inside ``pattern``, in [0, 1]."""
    power = kspace.abs().pow(2).sum(0).cpu().numpy()
    total = float(power.sum())
    return float(power[np.asarray(pattern, dtype=bool)].sum() / total) if total > 0 else 0.0


# ----------------------------------------------------------------------------- point-spread functions


def point_spread_function(pattern: np.ndarray) -> np.ndarray:
    """The point-spread function of a sampling pattern: ``ifft2c(pattern)`` scaled to 1 at the centre.

    The zero-filled image of undersampled data is the true image convolved with it (per coil). A full pattern
    gives a delta at ``(H // 2, W // 2)``; the centre is always the largest magnitude (a non-negative pattern).

    Args:
        pattern: bool or non-negative real ``(H, W)`` (a column mask ``(1, W)`` broadcasts over ``H`` rows only
            if given as ``(H, W)``).

    Returns:
        complex128 ``(H, W)`` with value 1 at ``(H // 2, W // 2)``.

    Raises:
        ExplorerError: an empty pattern.
    """
    p = np.asarray(pattern, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"pattern must be 2D (H, W), got shape {p.shape}")
    if p.sum() <= 0:
        raise ExplorerError("the sampling pattern samples nothing")
    psf = ifft2c(torch.from_numpy(p.astype(np.complex128))).numpy()
    return psf / psf[p.shape[0] // 2, p.shape[1] // 2]


def sidelobe_to_peak(psf: np.ndarray, main_lobe: int = 1) -> float:
    """Peak side-lobe-to-peak ratio: the largest ``|psf|`` outside the main lobe over ``|psf|`` at the centre
    (after Lustig, Donoho & Pauly 2007). 0 for full sampling; 1 when an alias is as strong as the image itself.

    Args:
        psf: ``(H, W)`` with its peak at ``(H // 2, W // 2)`` (:func:`point_spread_function`).
        main_lobe: the main lobe is the square of pixels within this Chebyshev distance of the centre (default
            1: the centre and its 8 neighbours). A pattern that covers all of k-space has a one-pixel main lobe;
            a variable-density one (denser at the centre: 2D Poisson) widens it to the neighbours, which are
            blur, not aliasing, and would otherwise count as side lobes. 0 excludes the centre pixel only.
    """
    mag = np.abs(np.asarray(psf))
    h, w = mag.shape
    peak = mag[h // 2, w // 2]
    side = mag.copy()
    r = int(main_lobe)
    side[max(h // 2 - r, 0):h // 2 + r + 1, max(w // 2 - r, 0):w // 2 + r + 1] = 0.0
    return float(side.max() / peak) if peak > 0 else float("nan")


def psf_decibels(psf: np.ndarray, floor: float = -60.0) -> np.ndarray:
    """``20 log10 |psf|`` (the centre is 0 dB) floored at ``floor``, float32 ``(H, W)``."""
    mag = np.abs(np.asarray(psf))
    return np.maximum(20.0 * np.log10(np.maximum(mag, 1e-12)), floor).astype(np.float32)


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
