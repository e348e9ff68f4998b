"""The undersampled problem of one slice: measurements, mask, coil maps and how the maps are chosen.

:func:`prepare` undersamples a :class:`~explorer.data.slice.Slice`; a :class:`Problem` estimates its
ESPIRiT maps once (on first use) and can be perturbed (:meth:`Problem.perturbed`) under an explicit
coil-maps policy. Problems pickle (for process pools and distributed executors).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import torch

from explorer.data.slice import Slice
from explorer.device import get_device
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig, SampledMask, make_mask, mask_from_columns
from explorer.metrics import check_definition
from explorer.physics import Operator

MAX_CALIB = 24
KERNEL = 6
MIN_KERNEL = 3

#: Coil-maps policies of a perturbed problem. ``"fixed"``: the maps estimated once from the clean
#: measured data (the default, as BART and the papers do); ``"reestimate"``: ESPIRiT again on the
#: perturbed data (detached: no gradient flows through ESPIRiT).
MAPS_POLICIES: tuple[str, ...] = ("fixed", "reestimate")

#: ESPIRiT map sets a method may ask for: one set, two sets ("soft SENSE", for a field of view smaller than the
#: object, whose anatomy folds over), or ``"auto"``: two where the second eigenvalue reaches the crop threshold
#: over at least :data:`AUTO_FOLDED` of the object (the pixels of the first set), else one.
MAP_SETS: tuple[str, ...] = ("auto", "1", "2")
AUTO_FOLDED = 0.02
CROP = 0.95  # default ESPIRiT crop threshold of every map set (sigpy's; BART's ecalib -c default is 0.8)


@dataclass(frozen=True)
class CoilMaps:
    """Coil maps chosen for a problem.

    Attributes:
        maps: ``(1, C, H, W)`` (one set) or ``(1, K, C, H, W)`` (``K`` sets), or None (single-coil).
        seconds: time the estimate took (0 when cached).
        sets: the number of sets in ``maps`` (1 without maps).
        folded: share of the object where the second eigenvalue is ``>= CROP`` (None if not computed).
        note: what was chosen and why, for the user (e.g. "2 ESPIRiT map sets (auto: ...)").
    """

    maps: torch.Tensor | None
    seconds: float
    sets: int
    folded: float | None = None
    note: str = ""


@dataclass(frozen=True, eq=False)
class Problem:
    """An undersampled reconstruction problem for one slice.

    Attributes:
        slice: the source :class:`Slice`.
        sampled: the realised :class:`SampledMask`.
        y: measured k-space ``(1, C, H, W)`` complex64 on ``device`` (zero where unsampled); may
            require grad (a perturbed problem in an attack).
        device: compute device.
        maps_policy: where the coil maps come from: ``"measured"`` (ESPIRiT on this ``y``, the clean
            problem), ``"fixed"`` (the clean problem's maps, given at creation) or ``"reestimate"``
            (ESPIRiT on this perturbed ``y``, detached).
        maps_crop: ESPIRiT's crop threshold (every map set is zero where its eigenvalue is below it; ``bart ecalib -c``).
        metric: the metric definition results are scored with (:data:`explorer.metrics.METRIC_DEFINITIONS`).
    """

    slice: Slice
    sampled: SampledMask
    y: torch.Tensor
    device: torch.device
    maps_policy: str = "measured"
    maps_crop: float = CROP
    metric: str = "fastmri"
    _maps_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k != "_maps_lock"}
        state["device"] = str(self.device)
        return state

    def __setstate__(self, state: dict) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "device", torch.device(state["device"]))
        object.__setattr__(self, "_maps_lock", threading.Lock())

    @property
    def target(self):
        """Reference magnitude ``(h, w)`` numpy array, or ``None`` (test files)."""
        return self.slice.target

    @property
    def crop(self) -> tuple[int, int]:
        """Size every output is centre-cropped to before display and metrics."""
        return self.slice.target_shape

    @property
    def maps_ready(self) -> bool:
        """Whether the coil maps have been estimated already (see :attr:`maps_and_seconds`)."""
        return "_maps" in self.__dict__

    def has_maps(self, sets: str | bool = "1") -> bool:
        """Whether :meth:`coil_maps` of ``sets`` is already estimated (then it costs nothing)."""
        if str(sets) == "1" or self.y.shape[1] == 1:
            return self.maps_ready
        return "_maps2" in self.__dict__

    def coil_maps(self, sets: str | bool = "1") -> CoilMaps:
        """The ESPIRiT maps with ``sets`` map sets (:data:`MAP_SETS`; True means ``"auto"``).

        Two sets (and the ``"auto"`` decision) come from one ESPIRiT run with both eigenvectors (its first set
        is the one-set estimate exactly); each result is computed once per problem, under the maps lock.

        Raises:
            ExplorerError: an unknown choice; what :func:`explorer.espirit.espirit` raises.
        """
        choice = "auto" if sets is True else str(sets)
        if choice not in MAP_SETS:
            raise ExplorerError(f"coil map sets must be one of {', '.join(MAP_SETS)}, got {sets!r}")
        if choice == "1" or self.y.shape[1] == 1:
            with self._maps_lock:  # two sets estimated already: their first set is the one-set estimate
                if "_maps" not in self.__dict__ and "_maps2" in self.__dict__:
                    object.__setattr__(self, "_maps", (self.__dict__["_maps2"][0][:, 0], 0.0))
            maps, seconds = self.maps_and_seconds
            return CoilMaps(maps, seconds, 1 if maps is not None else 0,
                            note="" if maps is None else "1 ESPIRiT map set")
        with self._maps_lock:
            if "_maps2" not in self.__dict__:
                object.__setattr__(self, "_maps2", self._estimate_two())
            maps2, values, seconds = self.__dict__["_maps2"]
        first = values[:, 0] >= self.maps_crop
        folded = float(((values[:, 1] >= self.maps_crop) & first).sum() / first.sum().clamp_min(1))
        share = f"second eigenvalue >= {self.maps_crop:g} over {100 * folded:.1f}% of the object"
        if choice == "2" or folded >= AUTO_FOLDED:
            note = f"2 ESPIRiT map sets ({'auto: ' if choice == 'auto' else ''}{share})"
            return CoilMaps(maps2, seconds, 2, folded, note)
        return CoilMaps(maps2[:, 0], seconds, 1, folded, f"1 ESPIRiT map set (auto: {share})")

    def _estimate_two(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        if self.maps_policy == "fixed":
            clean = self.__dict__.get("_clean")
            if clean is None:
                raise ExplorerError("a perturbed problem with fixed coil maps has no maps to estimate")
            clean.coil_maps("2")
            maps2, values, _ = clean.__dict__["_maps2"]
            return maps2, values, 0.0
        from explorer.espirit import espirit  # noqa: PLC0415

        start = time.perf_counter()
        calib, kernel = self._calibration()
        maps, values = espirit(self.y.detach(), calib_shape=calib, kernel_width=kernel, crop=self.maps_crop, sets=2)
        return maps, values, time.perf_counter() - start

    @property
    def maps_and_seconds(self) -> tuple[torch.Tensor | None, float]:
        """ESPIRiT maps ``(1, C, H, W)`` (None single-coil), and the seconds their estimate took.

        Estimated once, on first access, under a lock (the app may start the estimate in a
        background thread before a method asks for it); a ``"fixed"`` perturbed problem carries
        its clean problem's maps from creation and never estimates any.
        """
        with self._maps_lock:
            if "_maps" not in self.__dict__:
                object.__setattr__(self, "_maps", self._estimate_maps())
            return self.__dict__["_maps"]

    def _estimate_maps(self) -> tuple[torch.Tensor | None, float]:
        if self.maps_policy == "fixed":  # the clean problem's maps, estimated on ITS data (never on this y)
            clean = self.__dict__.get("_clean")
            if clean is None:  # guard against a silent re-estimate on perturbed data
                raise ExplorerError("a perturbed problem with fixed coil maps has no maps to estimate")
            return clean.maps_and_seconds[0], 0.0
        if self.y.shape[1] == 1:
            return None, 0.0
        from explorer.espirit import espirit_maps  # noqa: PLC0415

        start = time.perf_counter()
        calib, kernel = self._calibration()
        maps = espirit_maps(self.y.detach(), calib_shape=calib, kernel_width=kernel, crop=self.maps_crop)
        return maps, time.perf_counter() - start

    def _calibration(self) -> tuple[tuple[int, int], int]:
        """ESPIRiT calibration region ``(rows, cols)`` and kernel width for this problem's mask."""
        from explorer.espirit import calib_shape_for  # noqa: PLC0415

        h = self.y.shape[-2]
        if self.sampled.mask.shape[-2] == 1:
            calib = calib_shape_for(self.sampled.mask.reshape(-1).cpu(), h, MAX_CALIB, kernel_width=MIN_KERNEL)
        else:
            side = min(self.sampled.num_low_frequencies, MAX_CALIB)
            calib = (side, side)
        if min(calib) < MIN_KERNEL:
            raise ExplorerError(f"the fully sampled centre ({calib[0]}x{calib[1]}) is too small for ESPIRiT; raise the centre fraction")
        return calib, espirit_kernel_width(calib, self.y.shape[1])

    def operator(self, with_maps: bool | str) -> Operator:
        """The measurement operator, with ESPIRiT maps when ``with_maps`` (and multicoil): True or a choice of
        :data:`MAP_SETS` (True: ``"auto"``; see :meth:`coil_maps`)."""
        maps = self.coil_maps(with_maps).maps if with_maps else None
        return Operator(mask=self.sampled.mask.to(self.device), maps=maps)

    @property
    def kspace(self) -> torch.Tensor:
        """The slice's fully sampled k-space ``(1, C, H, W)`` on the device (the attack budget's reference)."""
        return self.slice.kspace.to(self.device).unsqueeze(0)

    def perturbed(self, e: torch.Tensor | None = None, y: torch.Tensor | None = None, maps: str = "fixed") -> Problem:
        """The problem with perturbed measurements, under an explicit coil-maps policy.

        Args:
            e: a perturbation ``(1, C, H, W)`` of the full k-space, applied before the mask:
                ``y' = M (k + e)`` (only sampled entries matter); or
            y: new measurements ``(1, C, H, W)`` (masked here).
            maps: ``"fixed"`` (default): this problem's maps are carried over (estimated on this
                problem's data when first needed: methods without maps never pay for them) and never
                recomputed from the new measurements; ``"reestimate"``: ESPIRiT on the new measurements (detached).

        Gradients flow from the new problem's ``y`` to ``e`` / ``y``.

        Raises:
            ExplorerError: neither or both of ``e`` and ``y``; an unknown policy.
        """
        if (e is None) == (y is None):
            raise ExplorerError("give a perturbation e or new measurements y (one of them)")
        if maps not in MAPS_POLICIES:
            raise ExplorerError(f"coil-maps policy must be one of {', '.join(MAPS_POLICIES)}, got {maps!r}")
        mask = self.sampled.mask.to(self.device)
        new_y = (self.kspace + e) * mask if e is not None else y.to(self.device) * mask
        if tuple(new_y.shape) != tuple(self.y.shape):
            raise ExplorerError(f"perturbed measurements {tuple(new_y.shape)} do not match {tuple(self.y.shape)}")
        out = Problem(self.slice, self.sampled, new_y, self.device, maps_policy=maps, maps_crop=self.maps_crop,
                      metric=self.metric)
        if maps == "fixed":  # carried over now if estimated, else taken from this problem when first needed
            if not (self.maps_ready and "_maps2" in self.__dict__):
                object.__setattr__(out, "_clean", self)
            if self.maps_ready:
                object.__setattr__(out, "_maps", (self.maps_and_seconds[0], 0.0))
            if "_maps2" in self.__dict__:
                object.__setattr__(out, "_maps2", (*self.__dict__["_maps2"][:2], 0.0))
        return out


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


def prepare(slice_: Slice, mask: MaskConfig | None, device: torch.device | str | None = None,
            crop: float = CROP, metric: str = "fastmri") -> Problem:
    """Undersample ``slice_`` with ``mask`` (``crop``: ESPIRiT's crop threshold for its coil maps, 0..1; ``metric``: the
    definition results are scored with).

    A test file's own mask (``slice_.acquired_mask``) takes precedence over ``mask``,
    since its k-space is already undersampled.

    Returns:
        :class:`Problem`.

    Raises:
        ExplorerError: a crop threshold outside [0, 1], an unknown metric definition.
    """
    check_definition(metric)
    if not 0.0 <= float(crop) <= 1.0:
        raise ExplorerError(f"the ESPIRiT crop threshold must be in [0, 1], got {crop}")
    device = torch.device(device) if device is not None else get_device()
    if slice_.acquired_mask is not None:
        sampled = mask_from_columns(slice_.acquired_mask, slice_.meta.padding)
    else:
        sampled = make_mask(mask or MaskConfig(), slice_.shape, slice_.meta.padding)
    y = (slice_.kspace.to(device) * sampled.mask[0].to(device)).unsqueeze(0)
    return Problem(slice=slice_, sampled=sampled, y=y, device=device, maps_crop=float(crop), metric=metric)
