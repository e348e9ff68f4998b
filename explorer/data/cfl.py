"""BART's ``.cfl``/``.hdr`` file pair (used by the BART reference tests and benchmarks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_cfl(base: str | Path, array: np.ndarray) -> None:
    """Write ``array`` (in BART's dimension order) as ``base.hdr`` + ``base.cfl``, column-major complex64."""
    base = Path(base)
    array = np.asarray(array, dtype=np.complex64)
    base.with_suffix(".hdr").write_text("# Dimensions\n" + " ".join(map(str, array.shape)) + "\n")
    array.ravel(order="F").tofile(base.with_suffix(".cfl"))


def read_cfl(base: str | Path) -> np.ndarray:
    """Read ``base.hdr`` + ``base.cfl`` into a complex64 array of the header's dimensions."""
    base = Path(base)
    dims = [int(d) for d in base.with_suffix(".hdr").read_text().splitlines()[1].split()]
    return np.fromfile(base.with_suffix(".cfl"), dtype=np.complex64, count=int(np.prod(dims))).reshape(dims, order="F")
