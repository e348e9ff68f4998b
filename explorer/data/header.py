"""ISMRMRD XML header: the parts fastMRI uses (matrix sizes and the acquired ky band)."""

from __future__ import annotations

import xml.etree.ElementTree as etree
from dataclasses import dataclass

from explorer.errors import ExplorerError

NAMESPACE = "http://www.ismrm.org/ISMRMRD"
_NS = {"i": NAMESPACE}


@dataclass(frozen=True)
class HeaderInfo:
    """Geometry read from an ISMRMRD header.

    Attributes:
        encoding_size: encoded matrix ``(x, y, z)``.
        recon_size: reconstruction matrix ``(x, y, z)``.
        padding: acquired column band ``(left, right)`` computed as fastMRI does:
            ``left = enc_y // 2 - limits.center``, ``right = left + limits.maximum + 1``.
    """

    encoding_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    padding: tuple[int, int]


def _find_int(root: etree.Element, path: list[str]) -> int:
    node = root.find("." + "".join(f"//i:{p}" for p in path), _NS)
    if node is None or node.text is None:
        raise ExplorerError(f"ismrmrd_header lacks {'/'.join(path)}")
    try:
        return int(node.text)
    except ValueError:
        raise ExplorerError(f"ismrmrd_header {'/'.join(path)} is not an integer: {node.text!r}") from None


def parse_header(xml: bytes | str) -> HeaderInfo:
    """Parse the sizes and acquired band from an ISMRMRD XML header.

    Raises:
        ExplorerError: the XML is malformed or lacks a needed field.
    """
    try:
        root = etree.fromstring(xml)
    except etree.ParseError as exc:
        raise ExplorerError(f"ismrmrd_header is not valid XML ({exc})") from None
    enc = [_find_int(root, ["encoding", "encodedSpace", "matrixSize", a]) for a in "xyz"]
    rec = [_find_int(root, ["encoding", "reconSpace", "matrixSize", a]) for a in "xyz"]
    for name, sizes in (("encodedSpace", enc), ("reconSpace", rec)):
        if min(sizes) < 1:
            raise ExplorerError(f"ismrmrd_header {name} matrix size {tuple(sizes)} must be positive")
    center = _find_int(root, ["encoding", "encodingLimits", "kspace_encoding_step_1", "center"])
    maximum = _find_int(root, ["encoding", "encodingLimits", "kspace_encoding_step_1", "maximum"])
    left = enc[1] // 2 - center
    return HeaderInfo(tuple(enc), tuple(rec), (left, left + maximum + 1))


def build_header(
    encoding_size: tuple[int, int, int],
    recon_size: tuple[int, int, int],
    ky_center: int | None = None,
    ky_maximum: int | None = None,
) -> str:
    """Build a minimal ISMRMRD XML header that :func:`parse_header` (and fastMRI) read.

    Args:
        encoding_size: encoded matrix ``(x, y, z)``; ``y`` is the number of k-space columns.
        recon_size: reconstruction matrix ``(x, y, z)``.
        ky_center / ky_maximum: encoding limits of ``kspace_encoding_step_1``; by
            default the whole width is acquired (no padding).
    """
    ey = encoding_size[1]
    ky_center = ey // 2 if ky_center is None else ky_center
    ky_maximum = ey - 1 if ky_maximum is None else ky_maximum

    def size(tag: str, s: tuple[int, int, int]) -> str:
        return (
            f"<{tag}><matrixSize><x>{s[0]}</x><y>{s[1]}</y><z>{s[2]}</z></matrixSize>"
            f"<fieldOfView_mm><x>{s[0]}</x><y>{s[1]}</y><z>1</z></fieldOfView_mm></{tag}>"
        )

    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<ismrmrdHeader xmlns="{NAMESPACE}">'
        "<encoding>"
        + size("encodedSpace", encoding_size)
        + size("reconSpace", recon_size)
        + "<encodingLimits><kspace_encoding_step_1>"
        f"<minimum>0</minimum><maximum>{ky_maximum}</maximum><center>{ky_center}</center>"
        "</kspace_encoding_step_1></encodingLimits>"
        "<trajectory>cartesian</trajectory></encoding></ismrmrdHeader>"
    )
