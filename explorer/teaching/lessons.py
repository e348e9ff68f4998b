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
from explorer.masks import SampledMask
from explorer.physics import center_crop, combine_sets, ifft2c, rss
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


def psf_view(values: np.ndarray, half: int | None = None, cells: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A readable view of a PSF image: the square of half-size ``half`` around its centre ``(H // 2, W // 2)``
    (clipped to the image; ``None``: all of it), reduced to about ``cells`` blocks per axis (odd blocks, centred on the PSF centre) by the block
    **maximum** (a one-pixel-thin PSF row or an isolated alias peak survives; a mean or a browser's resampling
    would thin it out or drop it).

    Args:
        values: real ``(H, W)``: ``|PSF|`` or its dB (:func:`psf_decibels`); the maximum is taken as is.
        half: half-size of the crop in pixels.
        cells: the most blocks per axis.

    Returns:
        ``(blocks (h', w'), x (w',), y (h',))``: the block maxima and their blocks' centre offsets (pixels) from
        the PSF centre along the columns (x) and rows (y).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be 2D (H, W), got shape {v.shape}")
    if cells < 1:
        raise ValueError("cells must be at least 1")
    h, w = v.shape
    cy, cx = h // 2, w // 2
    if half is not None:
        r = max(int(half), 0)
        v = v[max(cy - r, 0):cy + r + 1, max(cx - r, 0):cx + r + 1]
        cy, cx = cy - max(cy - r, 0), cx - max(cx - r, 0)
    block = max(1, -(-max(v.shape) // int(cells)))
    block += 1 - block % 2  # odd: the centre pixel sits in the middle of its block (offset 0)
    start_y, start_x = cy - block // 2 - ((cy - block // 2) // block) * block, cx - block // 2 - ((cx - block // 2) // block) * block

    def edges(start: int, n: int) -> np.ndarray:
        return np.unique(np.clip(np.r_[0, np.arange(start, n, block), n], 0, n))

    ey, ex = edges(start_y, v.shape[0]), edges(start_x, v.shape[1])
    rows = np.maximum.reduceat(v, ey[:-1], axis=0)
    out = np.maximum.reduceat(rows, ex[:-1], axis=1)
    y = (ey[:-1] + ey[1:] - 1) / 2 - cy
    x = (ex[:-1] + ex[1:] - 1) / 2 - cx
    return out.astype(np.float32), x, y


def acceleration_note(sampled: SampledMask, shape: tuple[int, int]) -> str:
    """Why a mask's actual acceleration differs from its nominal R, in one sentence with this mask's counts.

    fastMRI's column masks add a fully sampled centre (``num_low_frequencies`` columns): the equispaced and MAGIC
    masks sample every R-th column on top of it, so the actual R is below the nominal one (more so at high R,
    where the centre is a larger share of the lines); the "fraction" variants widen the spacing to compensate; the
    random mask keeps each column outside the centre with the probability that makes W/R lines on average, so a
    draw lands near R. The actual R is over the acquired band (``sampled.acceleration``).

    Args:
        sampled: the realised mask.
        shape: k-space ``(H, W)``.
    """
    pattern = sampled.pattern(shape)
    config = sampled.config
    centre = int(sampled.num_low_frequencies)
    actual = float(sampled.acceleration)
    if config is not None and config.is_2d:
        n = int(pattern.sum())
        band = round(actual * n)
        return (f"{n:,} of {band:,} k-space points (variable density around a fully sampled {centre}×{centre} "
                f"centre): actual R = {band:,}/{n:,} = {actual:.2f} for the nominal {config.acceleration:g}.")
    n = int(pattern.any(0).sum())
    band = round(actual * n)
    outer = n - centre
    if config is None:
        return (f"The file's own mask: {n} of {band} columns, {centre} of them the fully sampled centre: "
                f"R = {band}/{n} = {actual:.2f}.")
    r = config.acceleration
    asked = band / r
    kind = config.type
    if kind in ("equispaced", "magic"):
        how = (f"every {_ordinal(r)} column gives about W/R = {asked:.0f} of the {band} lines, and the fully sampled "
               f"centre ({centre} columns, a fraction {config.resolved_center_fraction:g}) is added on top: "
               f"{centre} + {outer} outside it = {n} lines")
    elif kind in ("equispaced_fraction", "magic_fraction"):
        how = (f"the spacing is widened so that the fully sampled centre ({centre} columns) and the lines outside "
               f"it ({outer}) make about W/R = {asked:.0f}: {n} lines")
    elif kind == "random":
        p = (asked - centre) / max(band - centre, 1)
        how = (f"besides the fully sampled centre ({centre} columns), each of the other {band - centre} columns is "
               f"kept with probability {p:.3f}, which gives W/R = {asked:.0f} lines on average; this draw kept "
               f"{outer}: {n} lines")
    else:
        how = f"{n} lines, {centre} of them the fully sampled centre"
    return f"Nominal R = {r:g}, actual R = {band}/{n} = {actual:.2f}: {how}."


def _ordinal(r: float) -> str:
    n = int(r)
    if float(r) != n:
        return f"{r:g}th"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}" if n != 1 else "single"


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
