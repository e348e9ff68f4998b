"""fastMRI-layout HDF5 volumes: lazy one-slice reader and a writer.

Layout: ``kspace`` (slices, coils, H, W) multicoil or (slices, H, W) singlecoil,
complex64; reference ``reconstruction_rss`` (multicoil) or ``reconstruction_esc``
(singlecoil), absent from test files, which carry ``mask`` (W,) instead;
``ismrmrd_header`` XML; attrs ``max``, ``acquisition``, ``patient_id``...
"""

from __future__ import annotations

import os

from pathlib import Path

import h5py
import numpy as np
import torch

from explorer.data.header import build_header, parse_header
from explorer.data.slice import Slice, SliceMeta
from explorer.errors import ExplorerError
from explorer.physics import center_crop, ifft2c, rss

TARGET_KEYS = {"multicoil": "reconstruction_rss", "singlecoil": "reconstruction_esc"}


def open_h5(path: str | Path) -> h5py.File:
    """Open an HDF5 file read-only, turning every failure into a one-line ExplorerError."""
    path = Path(path)
    if not path.is_file():
        raise ExplorerError(f"no such file: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).split("(")[0].strip().rstrip(",") or "unreadable"
        raise ExplorerError(f"{path.name} is not a readable HDF5 file ({reason})") from None


class FastMRIVolume:
    """A fastMRI-layout volume that reads one slice at a time (h5py slicing).

    Args:
        path: the ``.h5`` file.

    Raises:
        ExplorerError: not HDF5, truncated, no ``kspace``, wrong ndim or dtype.
    """

    def __init__(self, path: str | Path, source: str | None = None):
        self.path = Path(path)
        self.source = source or str(self.path)
        with open_h5(self.path) as hf:
            if "kspace" not in hf:
                raise ExplorerError(f"{self.path.name} has no 'kspace' dataset (not a fastMRI file)")
            ds = hf["kspace"]
            if not isinstance(ds, h5py.Dataset):
                raise ExplorerError(f"{self.path.name}: 'kspace' is not a dataset")
            if ds.ndim not in (3, 4):
                raise ExplorerError(
                    f"{self.path.name}: kspace must be (slices, H, W) or (slices, coils, H, W), "
                    f"got {ds.ndim}D {ds.shape}"
                )
            if ds.dtype.kind != "c":
                raise ExplorerError(f"{self.path.name}: kspace must be complex, got dtype {ds.dtype}")
            if min(ds.shape) < 1:
                raise ExplorerError(f"{self.path.name}: kspace is empty {ds.shape}")
            check_slice_size(self.path.name, ds.shape[1:])
            self.challenge = "multicoil" if ds.ndim == 4 else "singlecoil"
            self.num_slices = ds.shape[0]
            self.num_coils = ds.shape[1] if ds.ndim == 4 else 1
            self.shape = tuple(ds.shape[-2:])
            self.target_key = TARGET_KEYS[self.challenge]
            self.has_target = self.target_key in hf
            self.has_mask = "mask" in hf
            self._check_companions(hf)
            self.attrs = {k: _plain(v) for k, v in hf.attrs.items()}
            try:
                self.header = parse_header(hf["ismrmrd_header"][()]) if "ismrmrd_header" in hf else None
            except ExplorerError as exc:
                raise ExplorerError(f"{self.path.name}: {exc}") from None
        width = self.shape[1]
        if self.header is not None and 0 <= self.header.padding[0] < self.header.padding[1] <= width:
            self.padding = self.header.padding
        else:
            self.padding = (0, width)

    def _check_companions(self, hf: h5py.File) -> None:
        """The reference and the test-set mask must match the k-space (one clear error now, not an IndexError later)."""
        if self.has_target:
            target = hf[self.target_key]
            if not isinstance(target, h5py.Dataset) or target.ndim != 3 or target.shape[0] != self.num_slices:
                shape = getattr(target, "shape", None)
                raise ExplorerError(f"{self.path.name}: {self.target_key} {shape} must hold one 2D image for each of "
                                    f"the {self.num_slices} k-space slices")
        if self.has_mask:
            mask = hf["mask"]
            if not isinstance(mask, h5py.Dataset) or int(np.prod(mask.shape)) != self.shape[1]:
                raise ExplorerError(f"{self.path.name}: mask {getattr(mask, 'shape', None)} must hold one entry per "
                                    f"k-space column ({self.shape[1]})")

    @property
    def name(self) -> str:
        """Display name (file name or sample spec)."""
        return self.source if self.source.startswith("sample:") else self.path.name

    def read_slice(self, index: int) -> Slice:
        """Read slice ``index`` (only that slice is loaded from disk).

        Returns:
            :class:`Slice` with k-space ``(C, H, W)`` complex64 and the reference
            image (``h, w``) or ``None`` for test files.

        Raises:
            ExplorerError: index out of range, truncated data, NaN/Inf values.
        """
        if not isinstance(index, (int, np.integer)) or not 0 <= index < self.num_slices:
            raise ExplorerError(f"slice {index} out of range: {self.name} has slices 0..{self.num_slices - 1}")
        index = int(index)
        with open_h5(self.path) as hf:
            try:
                kspace = np.asarray(hf["kspace"][index], dtype=np.complex64)
                target = np.asarray(hf[self.target_key][index], dtype=np.float32) if self.has_target else None
                acquired = np.asarray(hf["mask"][()]).astype(bool).reshape(-1) if self.has_mask else None
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise ExplorerError(f"{self.name}: cannot read slice {index} ({exc})") from None
        if not np.isfinite(kspace).all():
            raise ExplorerError(f"{self.name}: slice {index} k-space contains NaN or Inf")
        if target is not None and (target.ndim != 2 or not np.isfinite(target).all()):
            raise ExplorerError(f"{self.name}: {self.target_key} of slice {index} is not a finite 2D image")
        if kspace.ndim == 2:
            kspace = kspace[None]
        k = torch.from_numpy(kspace)
        if target is None and acquired is None:
            # Fully sampled without a stored reference: RSS of the full k-space.
            target = reference_from_kspace(k, self._recon_hw()).numpy()
        meta = SliceMeta(
            source=self.source,
            index=index,
            num_slices=self.num_slices,
            challenge=self.challenge,
            padding=self.padding,
            encoding_size=None if self.header is None else self.header.encoding_size,
            recon_size=None if self.header is None else self.header.recon_size,
            attrs=self.attrs,
        )
        return Slice(kspace=k, target=target, meta=meta, acquired_mask=acquired)

    def _recon_hw(self) -> tuple[int, int]:
        if self.header is None:
            return self.shape
        return (min(self.header.recon_size[0], self.shape[0]), min(self.header.recon_size[1], self.shape[1]))


def max_slice_bytes() -> int:
    """The largest k-space slice the explorer reads: ``EXPLORER_MAX_SLICE_MB`` (default 512 MiB).

    A fastMRI slice is 15-20 coils x 640 x 368 complex64, about 30 MB; a reconstruction holds a few
    copies of it (measurements, coil maps, images).
    """
    raw = os.environ.get("EXPLORER_MAX_SLICE_MB", "").strip()
    try:
        mb = float(raw) if raw else 512.0
    except ValueError:
        raise ExplorerError(f"EXPLORER_MAX_SLICE_MB must be a number, got {raw!r}") from None
    return int(mb * 2**20)


def check_slice_size(name: str, shape: tuple[int, ...]) -> None:
    """Refuse a declared slice shape ``(C, H, W)`` / ``(H, W)`` whose complex64 k-space passes :func:`max_slice_bytes`.

    Checked from the file's declared shape, before anything is allocated.
    """
    nbytes = 8 * int(np.prod([int(s) for s in shape], dtype=np.float64))
    if nbytes > max_slice_bytes():
        raise ExplorerError(f"{name}: one slice of {' x '.join(map(str, shape))} k-space needs {nbytes / 2**20:,.0f} MiB, past "
                            f"the limit of {max_slice_bytes() / 2**20:,.0f} MiB (set EXPLORER_MAX_SLICE_MB to raise it)")


def reference_from_kspace(kspace: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """RSS reference image of fully sampled k-space, centre-cropped.

    Args:
        kspace: complex ``(C, H, W)``.
        shape: crop ``(h, w)``.

    Returns:
        float32 ``(h, w)``.
    """
    return center_crop(rss(ifft2c(kspace), dim=0), shape).float()


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_volume(
    path: str | Path,
    kspace: np.ndarray,
    target: np.ndarray | None = None,
    *,
    recon_size: tuple[int, int] | None = None,
    padding: tuple[int, int] | None = None,
    mask: np.ndarray | None = None,
    attrs: dict | None = None,
) -> Path:
    """Write a fastMRI-layout HDF5 volume (atomically: temp file then rename).

    Args:
        path: output ``.h5`` file.
        kspace: complex ``(S, C, H, W)`` multicoil or ``(S, H, W)`` singlecoil.
        target: float ``(S, h, w)`` reference written as ``reconstruction_rss`` /
            ``reconstruction_esc``; omit for test-style files.
        recon_size: ``(h, w)`` recorded in the header (default: target size, else k-space size).
        padding: acquired column band ``(left, right)`` recorded in the header's
            encoding limits (default: all columns).
        mask: bool ``(W,)`` written as ``mask`` (test files).
        attrs: extra HDF5 attributes; ``max`` defaults to ``target.max()``.

    Returns:
        the written path.
    """
    path = Path(path)
    kspace = np.asarray(kspace, dtype=np.complex64)
    challenge = "multicoil" if kspace.ndim == 4 else "singlecoil"
    h, w = kspace.shape[-2:]
    if recon_size is None:
        recon_size = tuple(target.shape[-2:]) if target is not None else (h, w)
    left, right = padding if padding is not None else (0, w)
    header = build_header((h, w, 1), (recon_size[0], recon_size[1], 1), ky_center=w // 2 - left, ky_maximum=right - left - 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with h5py.File(tmp, "w") as hf:
        hf.create_dataset("kspace", data=kspace, chunks=(1, *kspace.shape[1:]))
        if target is not None:
            hf.create_dataset(TARGET_KEYS[challenge], data=np.asarray(target, dtype=np.float32))
            hf.attrs["max"] = float(np.max(target))
        if mask is not None:
            hf.create_dataset("mask", data=np.asarray(mask, dtype=bool))
        hf.create_dataset("ismrmrd_header", data=header.encode())
        for key, value in (attrs or {}).items():
            hf.attrs[key] = value
    tmp.replace(path)
    return path


def list_volumes(directory: str | Path) -> list[Path]:
    """All ``.h5`` files under ``directory`` (recursively), sorted.

    Raises:
        ExplorerError: ``directory`` is not a directory.
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise ExplorerError(f"data directory not found: {directory}")
    return sorted(p for p in directory.rglob("*.h5") if p.is_file())
