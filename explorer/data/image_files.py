"""Input files of the dataset adapter (:mod:`explorer.data.adapter`): a folder of complex images, one ``(H, W)``
image or a ``(S, H, W)`` stack per file, listed in natural numeric order (``2.mat`` before ``10.mat``), selected by a
1-based range and grouped into volumes.

Formats: ``.mat`` v5 (``scipy.io.loadmat``) and v7.3 (HDF5; MATLAB's column-major layout transposed back, complex
data stored as a compound of ``real``/``imag`` joined), the variable picked by ``key`` (default: the only one);
``.npy`` (no pickles); BART ``.cfl``/``.hdr`` (singleton dimensions dropped, then ``(H, W)`` or ``(H, W, S)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from explorer.data.cfl import read_cfl
from explorer.errors import ExplorerError

SUFFIXES = (".mat", ".npy", ".cfl")
MIN_SIDE = 8  # pixels per side of an image
MAX_SIDE = 1024
MAX_FILES = 4096  # files of one build
def natural_key(name: str) -> tuple:
    """Sort key: digit runs compare as numbers (``2.mat`` < ``10.mat``)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name)
                 if part)


def list_inputs(folder: str | Path) -> list[Path]:
    """The input files of ``folder`` (``.mat``, ``.npy``, ``.cfl`` with its ``.hdr``), in natural order.

    Raises:
        ExplorerError: not a folder, or no such file in it.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ExplorerError(f"input folder not found: {folder}")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES
             and (p.suffix.lower() != ".cfl" or p.with_suffix(".hdr").is_file())]
    if not files:
        raise ExplorerError(f"no readable files in {folder}: expected .mat, .npy or .cfl/.hdr images")
    return sorted(files, key=lambda p: natural_key(p.name))


def parse_range(text: str) -> tuple[int, int]:
    """``"A-B"`` -> ``(A, B)``: 1-based inclusive positions, ``1 <= A <= B``.

    Raises:
        ExplorerError: not of that form.
    """
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text or "")
    if not match:
        raise ExplorerError(f"--range must be A-B (1-based file positions, inclusive), got {text!r}")
    a, b = int(match.group(1)), int(match.group(2))
    if not 1 <= a <= b:
        raise ExplorerError(f"--range {text}: need 1 <= A <= B")
    return a, b


def select(files: list[Path], file_range: tuple[int, int] | None) -> list[tuple[int, Path]]:
    """The files of ``file_range`` as ``(position, path)`` (position 1-based in ``files``), capped at
    :data:`MAX_FILES`.

    Raises:
        ExplorerError: the range passes the number of files, or too many files.
    """
    a, b = file_range or (1, len(files))
    if b > len(files):
        raise ExplorerError(f"--range {a}-{b} passes the {len(files)} input files")
    chosen = list(enumerate(files, start=1))[a - 1:b]
    if len(chosen) > MAX_FILES:
        raise ExplorerError(f"{len(chosen)} input files, more than the limit of {MAX_FILES}: use --range to build in parts")
    return chosen


def _pick(name: str, variables: dict[str, object], key: str | None) -> object:
    if key is not None:
        if key not in variables:
            raise ExplorerError(f"{name} has no variable {key!r}; it holds: {', '.join(sorted(variables)) or 'nothing'}")
        return variables[key]
    if len(variables) != 1:
        what = ", ".join(sorted(variables)) if variables else "no array"
        raise ExplorerError(f"{name} holds {what}: pick the variable with --key")
    return next(iter(variables.values()))


def _read_mat73(path: Path, key: str | None) -> np.ndarray:
    """A MATLAB v7.3 variable as MATLAB sees it (HDF5 holds it transposed); compound real/imag -> complex."""
    with h5py.File(path, "r") as hf:
        variables = {k: v for k, v in hf.items() if not k.startswith("#") and isinstance(v, h5py.Dataset)}
        ds = _pick(path.name, variables, key)
        data = ds[()]
    if data.dtype.names is not None:
        if not {"real", "imag"} <= set(data.dtype.names):
            raise ExplorerError(f"{path.name}: a compound variable without real/imag fields ({', '.join(data.dtype.names)})")
        data = data["real"] + 1j * data["imag"]
    return np.asarray(data).T


def read_array(path: str | Path, key: str | None = None) -> np.ndarray:
    """The array stored in one input file, as stored (MATLAB's view for ``.mat``, BART's dims for ``.cfl``).

    Raises:
        ExplorerError: unreadable or corrupt file (named), missing or ambiguous variable.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".cfl":
            return read_cfl(path.with_suffix(""))
        if suffix == ".mat":
            if h5py.is_hdf5(path):
                return _read_mat73(path, key)
            import scipy.io  # noqa: PLC0415  (heavy; only for .mat)

            variables = {k: v for k, v in scipy.io.loadmat(path).items()
                         if not k.startswith("__") and isinstance(v, np.ndarray)}
            return _pick(path.name, variables, key)
    except ExplorerError:
        raise
    except Exception as exc:  # noqa: BLE001  (any reader failure is a corrupt file)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExplorerError(f"cannot read {path.name}: unreadable or corrupt ({reason})") from None
    raise ExplorerError(f"{path.name}: unsupported file type {suffix!r} (use .mat, .npy or .cfl)")


def as_images(array: np.ndarray, name: str, bart: bool = False) -> np.ndarray:
    """Check one file's array and return its images.

    Args:
        array: complex ``(H, W)`` or ``(S, H, W)``; with ``bart``, BART dims ``(H, W[, 1...], S)``.
        name: file name for the messages.

    Returns:
        complex64 ``(S, H, W)``.

    Raises:
        ExplorerError: not complex, wrong dimensions, too small or too large, NaN/Inf.
    """
    array = np.asarray(array)
    if array.dtype.kind != "c":
        raise ExplorerError(f"{name}: the image is not complex (dtype {array.dtype}); the adapter needs complex images")
    if bart:
        array = array.reshape([d for d in array.shape if d != 1] or [1])
        if array.ndim == 3:
            array = np.moveaxis(array, -1, 0)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or min(array.shape) == 0:
        raise ExplorerError(f"{name}: expected a complex image (H, W) or a stack (S, H, W), got shape {array.shape}")
    h, w = array.shape[-2:]
    if max(h, w) > MAX_SIDE:
        raise ExplorerError(f"{name}: image {h}x{w} is larger than the limit of {MAX_SIDE}x{MAX_SIDE}")
    if min(h, w) < MIN_SIDE:
        raise ExplorerError(f"{name}: image {h}x{w} is smaller than {MIN_SIDE}x{MIN_SIDE}")
    if not np.isfinite(array).all():
        raise ExplorerError(f"{name}: the image contains NaN or Inf values")
    return array.astype(np.complex64)


def load_images(path: str | Path, key: str | None = None) -> np.ndarray:
    """complex64 ``(S, H, W)`` images of one input file (see :func:`read_array`, :func:`as_images`)."""
    path = Path(path)
    return as_images(read_array(path, key), path.name, bart=path.suffix.lower() == ".cfl")


@dataclass
class VolumeInput:
    """The images of one output volume: ``images`` complex64 ``(S, H, W)``, their files (names) and the 1-based
    position of the first file in the sorted input list."""

    images: np.ndarray
    files: list[str]
    first_position: int


def volumes(chosen: list[tuple[int, Path]], key: str | None, slices_per_volume: int | None) -> Iterator[VolumeInput]:
    """Group the slices of ``chosen`` files into volumes, reading one file at a time.

    One volume per file (``slices_per_volume`` None), or consecutive blocks of ``slices_per_volume`` slices across
    files (the last block may hold fewer).

    Raises:
        ExplorerError: a bad file, or image sizes that differ within one volume (files named).
    """
    if slices_per_volume is not None and slices_per_volume < 1:
        raise ExplorerError(f"--slices-per-volume must be >= 1, got {slices_per_volume}")
    pending: list[np.ndarray] = []
    owners: list[tuple[int, str]] = []  # (position, name) of each pending slice

    def flush(count: int) -> VolumeInput:
        block, names = pending[:count], owners[:count]
        del pending[:count], owners[:count]
        shapes = {s.shape for s in block}
        if len(shapes) > 1:
            first = names[0][1]
            other = next(n for s, (_, n) in zip(block, names) if s.shape != block[0].shape)
            raise ExplorerError(f"image sizes differ within one volume: {first} is {block[0].shape[0]}x"
                                f"{block[0].shape[1]}, {other} is {'x'.join(map(str, next(iter(shapes - {block[0].shape}))))}")
        unique = list(dict.fromkeys(n for _, n in names))
        return VolumeInput(np.stack(block), unique, names[0][0])

    for position, path in chosen:
        images = load_images(path, key)
        if slices_per_volume is None:
            yield VolumeInput(images, [path.name], position)
            continue
        pending.extend(images)
        owners.extend([(position, path.name)] * len(images))
        while len(pending) >= slices_per_volume:
            yield flush(slices_per_volume)
    if pending:
        yield flush(len(pending))


__all__ = ["MAX_FILES", "MAX_SIDE", "MIN_SIDE", "SUFFIXES", "VolumeInput", "as_images", "list_inputs", "load_images",
           "natural_key", "parse_range", "read_array", "select", "volumes"]
