"""The unit every data source produces: one 2D slice of k-space with its metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


def anatomy_of(acquisition, source: str = "") -> str | None:
    """Anatomy (``"knee"``/``"brain"``/``None``) of a fastMRI protocol name (see :attr:`SliceMeta.anatomy`)."""
    if isinstance(acquisition, bytes):
        acquisition = acquisition.decode(errors="replace")
    name = str(acquisition or "").upper()
    if name.startswith("CORPD"):
        return "knee"
    if name.startswith("AX"):
        return "brain"
    if source.startswith("sample:"):
        return source.split(":", 1)[1].split(",")[0] or None
    return None


def defaults_key(anatomy: str | None, challenge: str) -> str | None:
    """The key of data-dependent method defaults (tuned ``lam``, checkpoint): the anatomy, with ``"/singlecoil"``
    for single-coil data (``"knee/singlecoil"``; ``"singlecoil"`` when the anatomy is unknown)."""
    if challenge != "singlecoil":
        return anatomy
    return f"{anatomy}/singlecoil" if anatomy else "singlecoil"


def key_anatomy(key: str | None) -> str | None:
    """The anatomy part of a :func:`defaults_key` (``"knee/singlecoil"`` -> ``"knee"``; ``"singlecoil"`` -> None)."""
    anatomy = (key or "").split("/")[0]
    return anatomy if anatomy and anatomy != "singlecoil" else None


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

    @property
    def anatomy(self) -> str | None:
        """``"knee"``, ``"brain"`` or ``None`` (unknown), from the protocol name in ``attrs["acquisition"]``.

        fastMRI knee protocols are ``CORPD_FBK`` / ``CORPDFS_FBK`` (the embedded knee sample and
        the converted Stanford knees use them too); brain protocols are axial: ``AXT1``,
        ``AXT1PRE``, ``AXT1POST``, ``AXT2``, ``AXFLAIR``. A reader that knows better sets
        ``attrs["anatomy"]`` (the raw ISMRMRD reader: mridata.org's Stanford volumes are knees).
        """
        return self.attrs.get("anatomy") or anatomy_of(self.attrs.get("acquisition"), self.source)

    @property
    def defaults_key(self) -> str | None:
        """The key of this data's method defaults (:func:`defaults_key`: anatomy and single-coil or not)."""
        return defaults_key(self.anatomy, self.challenge)


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
