"""What a lesion attack creates or removes, and when it counts: :class:`Structure` (a small structure in the
reference-size image ``(h, w)``: its magnitude change ``s``, its profile and box ``B``) and :class:`Criteria` (the
thresholds of "appeared" and "vanished", stated in every output). Used by :mod:`~explorer.robustness.lesion_attack`
and :mod:`~explorer.robustness.lesions`.

Contrast ``C(image)``: mean in the footprint (``profile >= 0.5``) minus mean in the ring around ``profile > 0``
(:func:`~explorer.robustness.feature_scores.ring`, of the width :func:`~explorer.robustness.feature_scores.score_feature`
uses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from explorer.errors import ExplorerError
from explorer.robustness.feature_scores import FeatureScore, contrast, padded, ring
from explorer.robustness.insertion import Feature

@dataclass(frozen=True, eq=False)
class Structure:
    """A small structure in the reference-size image ``(h, w)``.

    Attributes:
        change: ``s`` ``(h, w)`` float32: the magnitude the structure adds (negative: darker).
        profile: ``(h, w)`` float32 in [0, 1]: footprint ``profile >= 0.5``, the ring around ``profile > 0``.
        box: ``B`` ``(row0, col0, row1, col1)`` half-open: where the reconstruction must follow ``c + sigma s``.
        feature: the :class:`~explorer.robustness.insertion.Feature` it was made from, or ``None`` (a given image).
        amplitude: the feature's absolute amplitude (image units), or the given image's largest ``|value|``.
    """

    change: np.ndarray
    profile: np.ndarray
    box: tuple[int, int, int, int]
    feature: Feature | None
    amplitude: float

    @property
    def footprint(self) -> np.ndarray:
        return self.profile >= 0.5

    @property
    def background(self) -> np.ndarray:
        """The ring the contrast is measured against (:func:`~explorer.robustness.feature_scores.ring`, the width
        :func:`~explorer.robustness.feature_scores.score_feature` uses)."""
        return ring(self.profile > 0, _ring_width(self.profile))

    def contrast_of(self, image: np.ndarray) -> float:
        """``C(image)``: mean in the footprint minus mean in the ring (``image`` ``(h, w)``)."""
        return contrast(np.asarray(image, np.float64), self.footprint, self.background)

    def describe(self) -> dict:
        out = self.feature.describe() if self.feature is not None else {"shape": "image"}
        return {**out, "amplitude": self.amplitude, "box": list(self.box)}


def _ring_width(profile: np.ndarray) -> int:
    return max(2, int(np.sqrt((profile >= 0.5).sum()) // 2))


def resolve_amplitude(feature: Feature, reference: np.ndarray) -> float:
    """The feature's absolute amplitude as :func:`~explorer.robustness.insertion.insert_features` resolves it:
    ``contrast`` x the reference's maximum (``relative_to="max"``) or x its mean in a window of three times the
    feature's radius around the centre (``"local"``). ``reference`` ``(h, w)``."""
    if feature.relative_to == "max":
        return feature.contrast * float(reference.max())
    r = 3 * max(feature.radius, 1)
    patch = reference[max(feature.row - r, 0):feature.row + r + 1, max(feature.col - r, 0):feature.col + r + 1]
    return feature.contrast * float(patch.mean())


def feature_structure(feature: Feature, reference: np.ndarray, amplitude: float | None = None) -> Structure:
    """The structure of ``feature``: ``s = amplitude * profile`` (real, added to the magnitude), ``B`` the footprint's
    box grown by the contrast ring's width + 1 (the ring is inside ``B``: it must stay as it was).

    Args:
        reference: ``(h, w)`` magnitude the amplitude is relative to (the fully sampled reference where there is one).
        amplitude: the absolute amplitude (default: :func:`resolve_amplitude`).

    Raises:
        ExplorerError: the feature does not fit in the image, or its amplitude is zero.
    """
    shape = tuple(reference.shape)
    feature.check_inside(shape)
    profile = feature.profile(shape)
    amplitude = resolve_amplitude(feature, reference) if amplitude is None else float(amplitude)
    if not (math.isfinite(amplitude) and abs(amplitude) > 0):
        raise ExplorerError(f"the feature at ({feature.row}, {feature.col}) has zero amplitude in this image")
    box = padded(feature.window(shape), shape, minimum=0, margin=_ring_width(profile) + 1)
    return Structure((amplitude * profile).astype(np.float32), profile, box, feature, abs(amplitude))


def image_structure(box: tuple[int, int, int, int], patch: np.ndarray, shape: tuple[int, int]) -> Structure:
    """A given image ``patch`` ``(row1 - row0, col1 - col0)`` (real: the magnitude to add) placed in ``box``; ``B`` is
    the box, the footprint where ``|patch| >= 0.5 max |patch|``.

    Raises:
        ExplorerError: a box outside ``shape`` ``(h, w)``, a patch of another size, not finite, or zero.
    """
    r0, c0, r1, c1 = box
    if not (0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]):
        raise ExplorerError(f"box {tuple(box)} is empty or outside the {shape[0]}x{shape[1]} image")
    patch = np.asarray(patch)
    if np.iscomplexobj(patch) or patch.shape != (r1 - r0, c1 - c0):
        raise ExplorerError(f"the structure image must be real and {r1 - r0}x{c1 - c0} (the box), got "
                            f"{'complex ' if np.iscomplexobj(patch) else ''}{'x'.join(map(str, patch.shape))}")
    top = float(np.abs(patch).max()) if patch.size else 0.0
    if not (np.isfinite(patch).all() and top > 0):
        raise ExplorerError("the structure image must be finite and not all zero")
    change = np.zeros(shape, np.float32)
    change[r0:r1, c0:c1] = patch
    profile = (np.abs(change) / top).astype(np.float32)
    return Structure(change, profile, (int(r0), int(c0), int(r1), int(c1)), None, top)


@dataclass(frozen=True)
class Criteria:
    """When a lesion has appeared or vanished (stated in every output).

    Attributes:
        appear: hallucination: appeared when the contrast change ``(C(m) - C(c)) / C(s)`` is ``>= appear``.
        vanish: false negative: vanished when the features' contrast recovery (against the reference with the
            lesion) is ``< vanish``.
        vanish_local_ssim: if given, vanished also when the lesion's local SSIM is ``< vanish_local_ssim``.
    """

    appear: float = 0.5
    vanish: float = 0.5
    vanish_local_ssim: float | None = None

    def __post_init__(self) -> None:
        for name in ("appear", "vanish", "vanish_local_ssim"):
            value = getattr(self, name)
            if value is None and name == "vanish_local_ssim":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not -10 <= value <= 10:
                raise ExplorerError(f"{name.replace('_', ' ')} threshold must be a number in [-10, 10], got {value!r}")

    def met(self, mode: str, change: float, score: FeatureScore | None) -> bool:
        """Whether a result of ``mode`` with contrast change ``change`` and feature scores ``score`` meets it."""
        if mode == "hallucination":
            return change >= self.appear
        if score is None:
            return False
        vanished = score.contrast_recovery is not None and score.contrast_recovery < self.vanish
        return vanished or (self.vanish_local_ssim is not None and score.local_ssim < self.vanish_local_ssim)

    def describe(self, mode: str) -> str:
        if mode == "hallucination":
            return f"appeared: contrast change (C(attacked) - C(clean)) / C(structure) >= {self.appear:g}"
        text = f"vanished: contrast recovery < {self.vanish:g}"
        return text + (f" or local SSIM < {self.vanish_local_ssim:g}" if self.vanish_local_ssim is not None else "")

    def row(self, mode: str) -> dict:
        return {"criterion": self.describe(mode), "appear_threshold": self.appear, "vanish_threshold": self.vanish,
                "vanish_local_ssim_threshold": self.vanish_local_ssim}


__all__ = ["Criteria", "Structure", "feature_structure", "image_structure", "resolve_amplitude"]
