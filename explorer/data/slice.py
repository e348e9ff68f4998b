"""The unit every data source produces: one 2D slice of k-space with its metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class SliceMeta:
    """Metadata of one slice.

    Attributes:
        source: file path or ``sample:<family>`` the slice came from.
        index: slice index within the volume.
        num_slices: number of slices in the volume.
        challenge: ``"multicoil"`` or ``"singlecoil"``.
        padding: ``(left, right)`` acquired column band ``[left, right)`` along W;
            columns outside it are zero padding and must never be marked sampled.
        encoding_size / recon_size: ``(x, y, z)`` from the ISMRMRD header, if any.
        attrs: the file's HDF5 attributes (``max``, ``acquisition``, ``patient_id``...).
    """

    source: str
    index: int
    num_slices: int
    challenge: str
    padding: tuple[int, int]
    encoding_size: tuple[int, int, int] | None = None
    recon_size: tuple[int, int, int] | None = None
    attrs: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, eq=False)
class Slice:
    """One slice of k-space and its reference image.

    Attributes:
        kspace: complex64 tensor ``(C, H, W)`` (``C = 1`` for single-coil).
        target: float32 array ``(h, w)``, the reference magnitude image (e.g. the
            320x320 ``reconstruction_rss``), or ``None`` when the file has no
            reference (fastMRI test files): then no metrics are computed.
        meta: :class:`SliceMeta`.
        acquired_mask: bool array ``(W,)`` of the columns a test file says were
            acquired (``mask`` dataset), else ``None``.
    """

    kspace: torch.Tensor
    target: np.ndarray | None
    meta: SliceMeta
    acquired_mask: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """k-space / image size ``(H, W)``."""
        return tuple(self.kspace.shape[-2:])

    @property
    def num_coils(self) -> int:
        """Number of coils ``C``."""
        return self.kspace.shape[0]

    @property
    def target_shape(self) -> tuple[int, int]:
        """Size of the reference image, or of the k-space when there is none."""
        return tuple(self.target.shape) if self.target is not None else self.shape
