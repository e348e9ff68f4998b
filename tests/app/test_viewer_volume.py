"""The viewer's scale bar: the pixel size read from a file's ISMRMRD header (explorer.ui.volume.pixel_mm)."""

from __future__ import annotations

import h5py

from explorer.ui.state import Source
from explorer.ui.volume import pixel_mm

HEADER = ("<ismrmrdHeader><encoding><reconSpace><matrixSize><x>{x}</x><y>{y}</y><z>1</z></matrixSize>"
          "<fieldOfView_mm><x>{fx}</x><y>{fy}</y><z>3</z></fieldOfView_mm></reconSpace></encoding></ismrmrdHeader>")


def _file(tmp_path, name: str, header: str | None):
    path = tmp_path / name
    with h5py.File(path, "w") as f:
        if header is not None:
            f.create_dataset("ismrmrd_header", data=header.encode())
    return Source("dir", str(path), name, "0")


def test_pixel_size_from_the_header(tmp_path):
    knee = _file(tmp_path, "knee.h5", HEADER.format(x=320, y=320, fx=140.0, fy=140.0))
    assert pixel_mm(knee, (320, 320)) == (140.0 / 320, 140.0 / 320)  # fastMRI knee: 0.4375 mm
    brain = _file(tmp_path, "brain.h5", HEADER.format(x=320, y=320, fx=220, fy=227.5))
    assert pixel_mm(brain, (320, 320)) == (227.5 / 320, 220 / 320)  # (row, column)
    assert pixel_mm(knee, (256, 256)) is None  # another matrix than the one shown: no scale bar
    assert pixel_mm(_file(tmp_path, "bare.h5", None), (320, 320)) is None
    assert pixel_mm(_file(tmp_path, "junk.h5", "<not xml"), (320, 320)) is None
    assert pixel_mm(Source("sample", "sample:knee", "knee", "320"), (320, 320)) is None  # a phantom has no size
    assert pixel_mm(Source("dir", str(tmp_path / "missing.h5"), "x", "0"), (320, 320)) is None
