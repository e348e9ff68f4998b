"""What every section of the teaching mode works on: the current source's middle slice (:class:`TeachingSlice`), and
the sections' shared display constants."""

from __future__ import annotations

from dataclasses import dataclass

from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance
from explorer.ui import cache
from explorer.ui.state import Source

PLANE = "kxky"
PX = 300
CHART = {"displayModeBar": False}
SECTIONS = {
    "kspace": "k-space explorer",
    "masks": "Masks and PSFs",
    "sense": "Coils and SENSE",
    "artifacts": "Artifacts",
    "families": "How each family reconstructs",
    "path": "Guided path",
}
PSF_MASKS = ("random", "equispaced", "magic", "poisson")


@dataclass(frozen=True)
class TeachingSlice:
    """What every section works on: the source, its middle slice and the slice object (shared: never mutate)."""

    source: Source
    index: int
    slice: object  # explorer.data.slice.Slice

    @property
    def full(self) -> bool:
        """Whether the k-space is fully sampled (test files hold undersampled k-space only)."""
        return self.slice.acquired_mask is None

    @property
    def crop(self) -> tuple[int, int]:
        return self.slice.target_shape

    def problem(self, mask: MaskConfig):
        return cache.problem(self.source, PLANE, self.index, mask)

    def run(self, mask: MaskConfig, instance: MethodInstance, progress=None):
        return cache.run(self.source, PLANE, self.index, mask, instance, progress=progress)


__all__ = ["CHART", "PLANE", "PSF_MASKS", "PX", "SECTIONS", "TeachingSlice"]
