"""Open any supported data source as a volume that reads one slice at a time.

Sources: a fastMRI-layout ``.h5`` file (fastMRI knee/brain, converted Stanford
knees, the embedded sample), a raw ISMRMRD ``.h5`` file (mridata.org Stanford
knees), or ``sample:<family>`` for the embedded sample (no download).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from explorer.data.fastmri import FastMRIVolume, open_h5
from explorer.data.slice import Slice
from explorer.errors import ExplorerError

PLANES: tuple[str, ...] = ("kxky", "kykz")


class Volume(Protocol):
    """What every source provides."""

    name: str
    num_slices: int
    num_coils: int
    shape: tuple[int, int]
    challenge: str

    def read_slice(self, index: int) -> Slice: ...


def open_volume(spec: str | Path, plane: str = "kxky") -> Volume:
    """Open ``spec``: a file path or ``sample:<family>``.

    Args:
        spec: path to an ``.h5`` file, or ``sample:knee`` / ``sample:brain`` with optional fields
            (``sample:knee,dataset=stanford``; :func:`explorer.data.sample.parse_source`).
        plane: for raw ISMRMRD 3D volumes, ``"kxky"`` (the papers' 2D slices) or
            ``"kykz"`` (planes for 2D Poisson masks); ignored otherwise.

    Raises:
        ExplorerError: unknown sample family, missing/unreadable/unsupported file.
    """
    text = str(spec)
    if text.startswith("sample:"):
        from explorer.data.sample import sample_path  # noqa: PLC0415
        from explorer.data.sample_sources import parse_source  # noqa: PLC0415

        return FastMRIVolume(sample_path(parse_source(text)), source=text)
    if plane not in PLANES:
        raise ExplorerError(f"unknown plane {plane!r}; choose one of {', '.join(PLANES)}")
    path = Path(text).expanduser()
    with open_h5(path) as hf:
        is_fastmri = "kspace" in hf
        is_raw = "dataset" in hf
    if is_fastmri:
        return FastMRIVolume(path)
    if is_raw:
        from explorer.data.ismrmrd import IsmrmrdVolume  # noqa: PLC0415

        return IsmrmrdVolume(path, plane=plane)
    raise ExplorerError(f"{path.name} is neither a fastMRI file (no 'kspace') nor a raw ISMRMRD file (no 'dataset')")
