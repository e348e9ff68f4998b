"""One reconstruction experiment: slice -> mask -> operator -> methods -> metrics.

The app and the CLI both go through :func:`prepare` and :func:`run_method`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from explorer.data.slice import Slice
from explorer.device import get_device
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig, SampledMask, make_mask, mask_from_columns
from explorer.metrics import compute_metrics, to_magnitude
from explorer.physics import Operator
from explorer.recon.base import ProgressFn, get_method

MAX_CALIB = 24
KERNEL = 6
MIN_KERNEL = 3


@dataclass(frozen=True, eq=False)
class Problem:
    """An undersampled reconstruction problem for one slice.

    Attributes:
        slice: the source :class:`Slice`.
        sampled: the realised :class:`SampledMask`.
        y: measured k-space ``(1, C, H, W)`` complex64 on ``device`` (zero where unsampled).
        device: compute device.
    """

    slice: Slice
    sampled: SampledMask
    y: torch.Tensor
    device: torch.device
    _maps_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def target(self) -> np.ndarray | None:
        """Reference magnitude ``(h, w)`` or ``None`` (test files)."""
        return self.slice.target

    @property
    def crop(self) -> tuple[int, int]:
        """Size every output is centre-cropped to before display and metrics."""
        return self.slice.target_shape

    @property
    def maps_ready(self) -> bool:
        """Whether the coil maps have been estimated already (see :attr:`maps_and_seconds`)."""
        return "_maps" in self.__dict__

    @property
    def maps_and_seconds(self) -> tuple[torch.Tensor | None, float]:
        """ESPIRiT maps ``(1, C, H, W)`` from the calibration region of ``y`` (None single-coil), and their time.

        Estimated once, on first access, under a lock: the app may start the estimate in a
        background thread (:func:`explorer.ui.warmup.prefetch`) before a method asks for it.
        """
        with self._maps_lock:
            if "_maps" not in self.__dict__:
                object.__setattr__(self, "_maps", self._estimate_maps())
            return self.__dict__["_maps"]

    def _estimate_maps(self) -> tuple[torch.Tensor | None, float]:
        if self.y.shape[1] == 1:
            return None, 0.0
        from explorer.espirit import calib_shape_for, espirit_maps  # noqa: PLC0415

        start = time.perf_counter()
        h = self.y.shape[-2]
        if self.sampled.mask.shape[-2] == 1:
            calib = calib_shape_for(self.sampled.mask.reshape(-1).cpu(), h, MAX_CALIB, kernel_width=MIN_KERNEL)
        else:
            side = min(self.sampled.num_low_frequencies, MAX_CALIB)
            calib = (side, side)
        if min(calib) < MIN_KERNEL:
            raise ExplorerError(f"the fully sampled centre ({calib[0]}x{calib[1]}) is too small for ESPIRiT; raise the centre fraction")
        kernel = espirit_kernel_width(calib, self.y.shape[1])
        maps = espirit_maps(self.y, calib_shape=calib, kernel_width=kernel)
        return maps, time.perf_counter() - start

    def operator(self, with_maps: bool) -> Operator:
        """The measurement operator, with ESPIRiT maps when ``with_maps`` (and multicoil)."""
        maps = self.maps_and_seconds[0] if with_maps else None
        return Operator(mask=self.sampled.mask.to(self.device), maps=maps)


def espirit_kernel_width(calib: tuple[int, int], coils: int) -> int:
    """ESPIRiT kernel width for a calibration region ``calib = (rows, cols)``.

    The standard 6x6 kernel, narrowed when the region holds too few patches for
    the calibration matrix to separate the signal subspace from its null space
    (fewer patches than half the ``k * k * coils`` kernel entries; happens with the
    narrow centres of small images). The standard 24x24 region keeps k = 6 up to 15 coils.
    """
    for k in range(min(KERNEL, *calib), MIN_KERNEL, -1):
        if 2 * (calib[0] - k + 1) * (calib[1] - k + 1) >= k * k * coils:
            return k
    return MIN_KERNEL


def prepare(slice_: Slice, mask: MaskConfig | None, device: torch.device | None = None) -> Problem:
    """Undersample ``slice_`` with ``mask``.

    A test file's own mask (``slice_.acquired_mask``) takes precedence over ``mask``,
    since its k-space is already undersampled.

    Returns:
        :class:`Problem`.
    """
    device = device or get_device()
    if slice_.acquired_mask is not None:
        sampled = mask_from_columns(slice_.acquired_mask, slice_.meta.padding)
    else:
        sampled = make_mask(mask or MaskConfig(), slice_.shape, slice_.meta.padding)
    y = (slice_.kspace.to(device) * sampled.mask[0].to(device)).unsqueeze(0)
    return Problem(slice=slice_, sampled=sampled, y=y, device=device)


@dataclass(frozen=True, eq=False)
class MethodResult:
    """One method's output on a :class:`Problem`.

    Attributes:
        method: registry name; label: display name; config: the config used.
        image: magnitude ``(h, w)`` float32, centre-cropped to the target size.
        metrics: ``{"ssim", "psnr", "nmse"}`` or ``None`` without a reference.
        seconds: wall time of the reconstruction (coil maps excluded: see ``maps_seconds``).
        maps_seconds: time spent estimating coil maps for it (0 if cached or unused).
        history: ``((step, loss), ...)`` for methods that report a ``"loss"`` (fits), else empty.
        steps: ``(last step reported, total)`` for methods that report progress, else ``None``.
        stopped: True if the progress callback asked the method to stop early (it then
            returned its best estimate so far).
    """

    method: str
    label: str
    config: object
    image: np.ndarray
    metrics: dict[str, float] | None
    seconds: float
    maps_seconds: float = 0.0
    history: tuple[tuple[int, float], ...] = ()
    steps: tuple[int, int] | None = None
    stopped: bool = False


class _Recorder:
    """Progress callback wrapper recording the loss history and whether a stop was asked."""

    def __init__(self, progress: ProgressFn | None):
        self.progress, self.history, self.steps, self.stopped = progress, [], None, False

    def __call__(self, step: int, total: int, info: dict) -> bool | None:
        self.steps = (int(step), int(total))
        loss = (info or {}).get("loss")
        if isinstance(loss, (int, float)):
            self.history.append((int(step), float(loss)))
        if self.progress is not None and self.progress(step, total, info):
            self.stopped = True
        return True if self.stopped else None


def run_method(problem: Problem, name: str, config=None, progress: ProgressFn | None = None) -> MethodResult:
    """Reconstruct ``problem`` with method ``name`` and score it against the reference."""
    spec = get_method(name)
    config = config if config is not None else spec.config_cls()
    needs_maps = spec.needs_maps(config)
    maps_cached = problem.maps_ready
    op = problem.operator(needs_maps)
    maps_seconds = problem.maps_and_seconds[1] if needs_maps and not maps_cached else 0.0
    recon = spec.factory(config)
    recorder = _Recorder(progress)
    _sync(problem.device)
    start = time.perf_counter()
    with torch.no_grad():
        x = recon(problem.y, op, progress=recorder)
    _sync(problem.device)
    seconds = time.perf_counter() - start
    image = to_magnitude(x[0], problem.crop)
    metrics = compute_metrics(problem.target, image) if problem.target is not None else None
    stopped = recorder.stopped and recorder.steps is not None and recorder.steps[0] < recorder.steps[1]
    return MethodResult(name, spec.label, config, image, metrics, seconds, maps_seconds,
                        tuple(recorder.history), recorder.steps, stopped)


def run_batch(problems: list[Problem], name: str, config=None) -> list[MethodResult]:
    """Reconstruct several problems in one call (one batch through a network), scoring each.

    For methods that need no coil maps (e.g. the trained networks); every problem must have
    the same k-space shape and device. Each result's ``seconds`` is the batch's time divided
    by its size.

    Raises:
        ExplorerError: the method needs coil maps, or the problems differ in shape or device.
    """
    spec = get_method(name)
    config = config if config is not None else spec.config_cls()
    if not problems:
        return []
    if spec.needs_maps(config):
        raise ExplorerError(f"{name} needs coil maps: run it slice by slice")
    if len({(tuple(p.y.shape), p.device) for p in problems}) != 1:
        raise ExplorerError("a batch needs slices of one k-space shape on one device")
    device = problems[0].device
    y = torch.cat([p.y for p in problems])  # (B, C, H, W)
    masks = [p.sampled.mask.to(device) for p in problems]
    mask = torch.cat([m.expand(1, 1, *max((tuple(m.shape[-2:]) for m in masks), key=lambda s: s[0])) for m in masks])
    recon = spec.factory(config)
    _sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        x = recon(y, Operator(mask=mask, maps=None))
    _sync(device)
    seconds = (time.perf_counter() - start) / len(problems)
    results = []
    for i, p in enumerate(problems):
        image = to_magnitude(x[i], p.crop)
        metrics = compute_metrics(p.target, image) if p.target is not None else None
        results.append(MethodResult(name, spec.label, config, image, metrics, seconds))
    return results


def zero_filled_image(problem: Problem) -> np.ndarray:
    """Zero-filled RSS magnitude ``(h, w)`` (for previews)."""
    return run_method(problem, "zero_filled").image


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
