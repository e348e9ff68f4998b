"""Raw ISMRMRD volumes in the layout of the mridata.org Stanford fully sampled 3D FSE knees.

File layout (HDF5): group ``dataset`` with ``xml`` (the ISMRMRD XML header) and ``data``
(one compound record per acquisition: ``head``, ``traj``, ``data``; ``data`` holds the
``(channels, samples)`` complex64 samples interleaved as float32). There is one
acquisition per (stored slice ``z = head.idx.slice``, phase encode ``ky =
head.idx.kspace_encode_step_1``); the readout (``kx``) has no oversampling. The stored
slices are image-space positions along z and carry a ``(-1)**z`` sign, undone here.
Header quirks that are deliberately ignored: ``encodingLimits/kspace_encoding_step_1``
says ``maximum = KY`` (not ``KY - 1``) and ``reconSpace`` is 512x512; all sizes come from
the acquisitions actually present.

Planes (orientation chosen to look like fastMRI knees: readout along H, ky along W, so
1D fastMRI masks select ky columns):

* ``"kxky"``: slice ``i`` = stored z position ``i``; k-space ``(C, KX, KY)``.
* ``"kykz"``: slice ``i`` = readout position ``x`` after a centred inverse FFT along kx;
  k-space ``(C, KY, KZ)`` with a centred orthonormal FFT along z (for 2D Poisson masks).
  Needs the whole volume: converted once, streaming, into a chunked cache file under
  ``$EXPLORER_CACHE_DIR`` (default ``~/.cache/mri-explorer``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from explorer.data.fastmri import check_slice_size, open_h5, reference_from_kspace
from explorer.data.header import parse_header
from explorer.data.slice import Slice, SliceMeta
from explorer.errors import ExplorerError

PLANES = ("kxky", "kykz")
CACHE_VERSION = 1
_NOISE_FLAG = np.uint64(1 << 18)  # ISMRMRD ACQ_IS_NOISE_MEASUREMENT (bit 19)
_SLAB_BYTES = 32 << 20  # one slab of the streaming conversion (peak ~6 slabs)


def is_ismrmrd_file(path: str | Path) -> bool:
    """True if ``path`` is an HDF5 file with ``dataset/data`` and ``dataset/xml`` (never raises)."""
    try:
        if not Path(path).is_file() or not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as hf:
            return _acquisition_table(hf) is not None
    except (OSError, ValueError, TypeError, KeyError):
        return False


def _acquisition_table(hf: h5py.File) -> h5py.Dataset | None:
    """``dataset/data`` if the file has the ISMRMRD groups (``dataset/data`` and ``dataset/xml``)."""
    group = hf.get("dataset")
    if not isinstance(group, h5py.Group) or "xml" not in group:
        return None
    data = group.get("data")
    return data if isinstance(data, h5py.Dataset) else None


def _read_heads(ds: h5py.Dataset, block: int = 2048) -> np.ndarray:
    """All acquisition headers ``(N,)`` as a numpy record array (``head`` fields).

    Never reads ``ds.fields("head")``: HDF5 converts (and leaks, ~1.3 GB per call on a real
    file) the variable-length samples of a partially read compound. Fast path: parse the raw
    chunks (only the ~30 MB table is read); otherwise read whole records in blocks.
    """
    n, head_dt = ds.shape[0], ds.dtype["head"]
    ftype = ds.id.get_type()
    member = ftype.get_member_index(b"head")
    htype = ftype.get_member_type(member)
    raw_ok = (ds.chunks is not None and ds.id.get_create_plist().get_nfilters() == 0 and not head_dt.hasobject
              and ftype.get_member_offset(member) == 0 and htype.get_size() == head_dt.itemsize
              and all(htype.get_member_offset(j) == head_dt.fields[htype.get_member_name(j).decode()][1]
                      for j in range(htype.get_nmembers())))
    if raw_ok:
        rec = np.dtype({"names": ["head"], "formats": [head_dt], "offsets": [0], "itemsize": ftype.get_size()})
        try:
            parts = [np.frombuffer(ds.id.read_direct_chunk((a,))[1], rec)["head"] for a in range(0, n, ds.chunks[0])]
            heads = np.concatenate(parts)[:n]
            if heads.shape[0] == n:
                return heads
        except (OSError, ValueError, KeyError, RuntimeError):
            pass  # unallocated or odd chunks: take the slow path
    return np.concatenate([ds[a:a + block]["head"] for a in range(0, n, block)])


def cache_dir() -> Path:
    """Directory of the ky-kz plane caches: ``$EXPLORER_CACHE_DIR`` or ``~/.cache/mri-explorer``."""
    return Path(os.environ.get("EXPLORER_CACHE_DIR") or Path.home() / ".cache" / "mri-explorer").expanduser()


def _centered(x: torch.Tensor, dim: int, inverse: bool) -> torch.Tensor:
    """Centred orthonormal 1D (inverse) FFT along ``dim`` (the fastMRI shift convention)."""
    fn = torch.fft.ifft if inverse else torch.fft.fft
    x = torch.fft.ifftshift(x, dim=dim)
    return torch.fft.fftshift(fn(x, dim=dim, norm="ortho"), dim=dim)


class IsmrmrdVolume:
    """A Stanford-layout raw ISMRMRD volume, read one plane at a time.

    Args:
        path: the raw ``.h5`` file.
        plane: ``"kxky"`` (Z slices of k-space ``(C, KX, KY)``) or ``"kykz"`` (X slices of
            k-space ``(C, KY, Z)``, via the cache file).
        source: display/source string stored in the slice metadata (default: the path).
        cache_root: directory for the ky-kz cache (default :func:`cache_dir`).

    Attributes:
        name, num_slices, num_coils, shape ``(H, W)``, challenge (``"multicoil"``),
        padding ``(0, W)``, plane, volume_shape ``(C, Z, KY, KX)``.

    Raises:
        ExplorerError: not HDF5, no ``dataset/data``, no acquisitions, unknown plane,
            inconsistent readouts, missing or duplicate (slice, ky) acquisitions.
    """

    challenge = "multicoil"

    def __init__(self, path: str | Path, plane: str = "kxky", source: str | None = None, *,
                 cache_root: str | Path | None = None):
        if plane not in PLANES:
            raise ExplorerError(f"unknown plane {plane!r}: choose one of {', '.join(PLANES)}")
        self.path, self.plane = Path(path), plane
        self.source = source or str(self.path)
        self._cache_root = Path(cache_root) if cache_root is not None else None
        with open_h5(self.path) as hf:
            ds = _acquisition_table(hf)
            if ds is None:
                raise ExplorerError(f"{self.path.name} is not an ISMRMRD file (no dataset/data and dataset/xml)")
            if ds.dtype.names is None or not {"head", "data"} <= set(ds.dtype.names) or ds.ndim != 1:
                raise ExplorerError(f"{self.path.name}: dataset/data is not an ISMRMRD acquisition table")
            if ds.shape[0] == 0:
                raise ExplorerError(f"{self.path.name} holds no acquisitions")
            head_dt = ds.dtype["head"]
            if not {"flags", "number_of_samples", "active_channels", "idx"} <= set(head_dt.names or ()) or not {
                    "slice", "kspace_encode_step_1", "kspace_encode_step_2"} <= set(head_dt["idx"].names or ()):
                raise ExplorerError(f"{self.path.name}: acquisition headers lack the ISMRMRD idx/sample fields")
            try:
                head = _read_heads(ds)
                xml = hf["dataset/xml"][()]
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise ExplorerError(f"{self.path.name}: unreadable acquisition headers ({exc})") from None
        self._index_acquisitions(head)
        try:
            info = parse_header(xml[0] if isinstance(xml, np.ndarray) and xml.ndim else xml)
            self.encoding_size, self.recon_size = info.encoding_size, info.recon_size
        except (ExplorerError, TypeError, IndexError):
            self.encoding_size = self.recon_size = None  # header is informative only
        c, z, ky, kx = self.volume_shape
        self.num_coils = c
        self.num_slices, self.shape = (z, (kx, ky)) if plane == "kxky" else (kx, (ky, z))
        self.padding = (0, self.shape[1])
        self.cache_path = self._cache_file() if plane == "kykz" else None

    def _index_acquisitions(self, head: np.ndarray) -> None:
        """Build the (slice, ky) -> acquisition-number map ``self._acq`` ``(Z, KY)`` and check it."""
        keep = np.flatnonzero((head["flags"] & _NOISE_FLAG) == 0)
        if keep.size == 0:
            raise ExplorerError(f"{self.path.name} holds only noise acquisitions")
        head = head[keep]
        samples, coils = np.unique(head["number_of_samples"]), np.unique(head["active_channels"])
        if samples.size != 1 or coils.size != 1 or samples[0] == 0 or coils[0] == 0:
            raise ExplorerError(f"{self.path.name}: acquisitions differ in readout length or coil count "
                                f"(samples {samples.tolist()[:4]}, coils {coils.tolist()[:4]})")
        if np.unique(head["idx"]["kspace_encode_step_2"]).size != 1:
            raise ExplorerError(f"{self.path.name}: kz is encoded in k-space (kspace_encode_step_2 varies); "
                                "only the Stanford image-space slice layout is supported")
        zs, kys = head["idx"]["slice"].astype(np.int64), head["idx"]["kspace_encode_step_1"].astype(np.int64)
        nz, nky = int(zs.max()) + 1, int(kys.max()) + 1
        # counted over the acquisitions, not over the declared grid (which headers could make huge)
        cells, counts = np.unique(zs * nky + kys, return_counts=True)
        if (counts > 1).any():
            z0, k0 = divmod(int(cells[np.argmax(counts > 1)]), nky)
            raise ExplorerError(f"{self.path.name}: {int((counts > 1).sum())} duplicate acquisitions in the {nz} slices x "
                                f"{nky} ky grid (first: slice {z0}, ky {k0})")
        if cells.size != nz * nky:
            gaps = np.flatnonzero(cells != np.arange(cells.size))
            z0, k0 = divmod(int(gaps[0]) if gaps.size else cells.size, nky)
            raise ExplorerError(f"{self.path.name}: {nz * nky - cells.size} missing acquisitions in the {nz} slices x "
                                f"{nky} ky grid (first: slice {z0}, ky {k0})")
        self._acq = np.empty((nz, nky), np.int64)
        self._acq[zs, kys] = keep
        self.volume_shape = (int(coils[0]), nz, nky, int(samples[0]))
        c, kx = self.volume_shape[0], self.volume_shape[3]
        check_slice_size(self.path.name, (c, kx, nky))  # a kx-ky slice, before any read allocates it
        check_slice_size(self.path.name, (c, nky, nz))  # a ky-kz plane

    @property
    def name(self) -> str:
        """Display name (file name or sample spec)."""
        return self.source if self.source.startswith("sample:") else self.path.name

    def _read_lines(self, ds: h5py.Dataset, acq: np.ndarray) -> np.ndarray:
        """Read acquisitions ``acq`` (any shape) -> complex64 ``(*acq.shape, C, KX)``, sign not undone."""
        c, _, _, kx = self.volume_shape
        flat = acq.reshape(-1)
        order = np.argsort(flat)
        try:
            raw = ds[flat[order]]["data"]  # whole records: partial vlen reads leak (see _read_heads)
        except (OSError, ValueError, TypeError) as exc:
            raise ExplorerError(f"{self.name}: cannot read acquisitions ({exc})") from None
        out = np.empty((flat.size, c, kx), np.complex64)
        for pos, line in zip(order, raw):
            if line.size != 2 * c * kx:
                raise ExplorerError(f"{self.name}: acquisition {flat[pos]} holds {line.size // 2} complex samples, "
                                    f"expected {c} coils x {kx}")
            out[pos] = np.asarray(line, np.float32).view(np.complex64).reshape(c, kx)
        if not np.isfinite(out).all():
            raise ExplorerError(f"{self.name}: k-space contains NaN or Inf")
        return out.reshape(*acq.shape, c, kx)

    def read_slice(self, index: int) -> Slice:
        """Read one plane.

        Returns:
            :class:`Slice` with k-space complex64 ``(C, KX, KY)`` (``"kxky"``) or ``(C, KY, KZ)``
            (``"kykz"``) and target float32 ``(H, W)``: the RSS of its full ``ifft2c``.

        Raises:
            ExplorerError: index out of range, malformed acquisitions, NaN/Inf.
        """
        if not isinstance(index, (int, np.integer)) or not 0 <= index < self.num_slices:
            raise ExplorerError(f"slice {index} out of range: {self.name} ({self.plane}) has slices "
                                f"0..{self.num_slices - 1}")
        index = int(index)
        if self.plane == "kxky":
            with open_h5(self.path) as hf:
                lines = self._read_lines(hf["dataset/data"], self._acq[index])  # (KY, C, KX)
            k = torch.from_numpy(lines).permute(1, 2, 0).contiguous() * (-1) ** index
        else:
            with open_h5(self.ensure_cache()) as hf:
                k = torch.from_numpy(np.asarray(hf["kspace"][index], np.complex64))
        meta = SliceMeta(source=self.source, index=index, num_slices=self.num_slices, challenge=self.challenge,
                         padding=self.padding, encoding_size=self.encoding_size, recon_size=self.recon_size,
                         attrs={"plane": self.plane, "format": "ismrmrd", "anatomy": "knee"})
        return Slice(kspace=k, target=reference_from_kspace(k, self.shape).numpy(), meta=meta)

    def _cache_file(self) -> Path:
        stat = self.path.stat()
        key = f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|v{CACHE_VERSION}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return (self._cache_root or cache_dir()) / f"{self.path.stem}.{digest}.kykz.h5"

    def _cache_valid(self) -> bool:
        try:
            with h5py.File(self.cache_path, "r") as hf:
                ds = hf.get("kspace")
                c, z, ky, kx = self.volume_shape
                return bool(hf.attrs.get("complete")) and ds is not None and ds.shape == (kx, c, ky, z)
        except (OSError, ValueError):
            return False

    def ensure_cache(self, progress: Callable[[float], None] | None = None) -> Path:
        """Build the ky-kz cache file if absent or stale (atomically), and return its path.

        Args:
            progress: optional callback receiving the done fraction in ``[0, 1]``.
        """
        if self.cache_path is None:
            raise ExplorerError("the cache exists only for plane 'kykz'")
        if not self._cache_valid():
            _build_kykz_cache(self, self.cache_path, progress)
        return self.cache_path


def _build_kykz_cache(vol: IsmrmrdVolume, dest: Path, progress: Callable[[float], None] | None) -> None:
    """Stream the volume into ``dest``: dataset ``kspace`` ``(X, C, KY, KZ)`` complex64.

    Pass 1 reads z slabs, undoes the ``(-1)**z`` sign and inverse-FFTs the readout, writing
    hybrid ``(x, ky, z)`` data; pass 2 FFTs x blocks along z in place. Chunks ``(1, C, KY, zb)``
    make both passes write whole chunks; peak memory is ~6 slabs of 32 MB (~200 MB for a real file).
    """
    c, nz, nky, nx = vol.volume_shape
    zb = max(1, min(nz, _SLAB_BYTES // (8 * c * nky * nx)))
    xb = max(1, min(nx, _SLAB_BYTES // (8 * c * nky * nz)))
    report = progress or (lambda _f: None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.part-{os.getpid()}")
    try:
        with open_h5(vol.path) as src, h5py.File(tmp, "w") as out:
            ds = out.create_dataset("kspace", (nx, c, nky, nz), np.complex64, chunks=(1, c, nky, zb))
            for z0 in range(0, nz, zb):
                lines = vol._read_lines(src["dataset/data"], vol._acq[z0:z0 + zb])  # (zb, KY, C, KX)
                hyb = torch.from_numpy(lines)
                hyb *= torch.tensor([(-1.0) ** z for z in range(z0, z0 + hyb.shape[0])]).view(-1, 1, 1, 1)
                hyb = _centered(hyb, -1, inverse=True)  # (zb, KY, C, x)
                ds[:, :, :, z0:z0 + hyb.shape[0]] = hyb.permute(3, 2, 1, 0).numpy()
                report(0.5 * min(z0 + zb, nz) / nz)
            for x0 in range(0, nx, xb):
                ds[x0:x0 + xb] = _centered(torch.from_numpy(ds[x0:x0 + xb]), -1, inverse=False).numpy()
                report(0.5 + 0.5 * min(x0 + xb, nx) / nx)
            out.attrs.update(complete=True, version=CACHE_VERSION, source=str(vol.path))
        os.replace(tmp, dest)
    except OSError as exc:
        raise ExplorerError(f"cannot write the ky-kz cache {dest} ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
