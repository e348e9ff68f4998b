"""The browser viewer's data: every image of a result sent once, as 16-bit integers with a scale (numpy in, bytes
out; no Streamlit).

A payload is ``b"MRXV"``, the header's length (uint32, little-endian), the header (UTF-8 JSON), one pad byte when
the header's length is odd, then the planes: each image ``(h, w)`` as little-endian uint16, row by row, holding
``round(value / scale * 65535)`` (``scale`` = the image's maximum, so the error of a pixel is at most
``scale / 131070``: 0.0008 % of its maximum, far below any window a reader uses). A 320x320 image is 200 KiB,
a reference and six reconstructions 1.4 MiB (a plotly figure of the same images: about 7 MB of JSON).

The header (:func:`encode` documents its fields) names the frames (one per slice of the volume), the images of
each frame and where their planes start. A frame the browser already holds (:class:`Sent`) is sent as its header
only: the browser keeps the frames it has received, so going back to a slice needs no data at all.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

MAGIC = b"MRXV"
VERSION = 1
LEVELS = 65535


@dataclass(frozen=True)
class Frame:
    """One slice's images.

    Attributes:
        slice: the slice index in its volume.
        images: ``{label: magnitude (h, w)}``, the reference first if there is one (``reference`` names it).
        reference: the label of the reference image (error maps are measured against it), or ``None``.
        subtitles: ``{label: text}`` under the panel titles (e.g. the metrics).
        windows: window presets ``{name: (low, high)}`` of this slice (e.g. from
            :func:`explorer.viewer.measure.window_preset`).
    """

    slice: int
    images: Mapping[str, np.ndarray]
    reference: str | None = None
    subtitles: Mapping[str, str] = field(default_factory=dict)
    windows: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def planes(self) -> tuple[str, dict[str, tuple[np.ndarray, float]]]:
        """``(id, {label: (uint16 plane (h, w), scale)})``: the id is a digest of the labels, the planes and their
        scales (equal data, equal id)."""
        digest = hashlib.blake2b(digest_size=12)
        planes = {}
        for label, image in self.images.items():
            plane, scale = planes[label] = quantise(image)
            digest.update(repr((label, plane.shape, scale)).encode())
            digest.update(plane.tobytes())
        return f"{self.slice}-{digest.hexdigest()}", planes


@dataclass
class Sent:
    """The frames a browser session already holds, per viewer (kept in the session's state)."""

    ids: set[str] = field(default_factory=set)


def quantise(image: np.ndarray) -> tuple[np.ndarray, float]:
    """``image`` ``(h, w)`` (finite, >= 0 expected; negatives clip to 0) -> (uint16 plane ``(h, w)``, scale)."""
    a = np.nan_to_num(np.asarray(image, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if a.ndim != 2:
        raise ValueError(f"a viewer image must be 2-D (h, w), got shape {a.shape}")
    scale = float(a.max()) if a.size and a.max() > 0 else 1.0
    plane = np.clip(np.rint(a / scale * LEVELS), 0, LEVELS).astype("<u2")
    return plane, scale


def encode(frames: Sequence[Frame], current: int, *, sent: Sent | None = None, **settings) -> bytes:
    """The payload of ``frames`` (same image shape), showing ``frames[current]``.

    Args:
        frames: the slices to send (the current one and any neighbours).
        current: index into ``frames`` of the slice to show.
        sent: frames this browser already holds: those are sent as headers only, and the frames sent now are
            added to it.
        settings: JSON-serialisable display settings copied into the header (``pairs``, ``pair_name``, ``boxes``,
            ``box_labels``, ``pixel_mm``, ``layout``, ``columns``, ``error``, ``slices``, ``roi``, ``line``,
            ``filename``...).

    Header fields: ``v`` (version), ``shape`` ``[h, w]``, ``current`` (a frame id), ``frames``: a list of
    ``{id, slice, reference, labels, subtitles, windows, planes}`` where ``planes`` is ``{label: [offset, scale]}``
    (bytes from the start of the plane section) or ``null`` for a frame the browser holds, plus ``settings``.
    """
    if not frames:
        raise ValueError("a viewer payload needs at least one frame")
    if not 0 <= current < len(frames):
        raise ValueError(f"current frame {current} is not one of the {len(frames)} frames")
    shapes = {np.shape(image) for f in frames for image in f.images.values()}
    if len(shapes) != 1:
        raise ValueError(f"every image of a viewer payload needs the same shape, got {sorted(shapes)}")
    (shape,) = shapes
    blobs: list[bytes] = []
    offset = 0
    headers = []
    for frame in frames:
        if not frame.images:
            raise ValueError(f"frame of slice {frame.slice} holds no image")
        if frame.reference is not None and frame.reference not in frame.images:
            raise ValueError(f"the reference {frame.reference!r} is not one of the frame's images")
        fid, quantised = frame.planes()
        planes = None
        if sent is None or fid not in sent.ids:
            planes = {}
            for label, (plane, scale) in quantised.items():
                planes[label] = [offset, scale]
                blobs.append(plane.tobytes())
                offset += plane.nbytes
            if sent is not None:
                sent.ids.add(fid)
        headers.append({"id": fid, "slice": int(frame.slice), "reference": frame.reference,
                        "labels": list(frame.images), "subtitles": dict(frame.subtitles),
                        "windows": {k: [float(lo), float(hi)] for k, (lo, hi) in frame.windows.items()},
                        "planes": planes})
    header = {"v": VERSION, "shape": [int(shape[0]), int(shape[1])], "current": headers[current]["id"],
              "frames": headers, "settings": settings}
    text = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    pad = b" " if len(text) % 2 else b""
    return MAGIC + struct.pack("<I", len(text) + len(pad)) + text + pad + b"".join(blobs)


def decode(payload: bytes) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """The inverse of :func:`encode` (what the browser does): ``(header, {frame id: {label: float32 (h, w)}})``
    for the frames whose planes the payload carries.

    Raises:
        ValueError: not a viewer payload, or a truncated one.
    """
    if payload[:4] != MAGIC or len(payload) < 8:
        raise ValueError("not a viewer payload")
    (length,) = struct.unpack("<I", payload[4:8])
    header = json.loads(payload[8:8 + length])
    start = 8 + length
    h, w = header["shape"]
    frames: dict[str, dict[str, np.ndarray]] = {}
    for frame in header["frames"]:
        if frame["planes"] is None:
            continue
        images = {}
        for label, (offset, scale) in frame["planes"].items():
            a, b = start + offset, start + offset + 2 * h * w
            if b > len(payload):
                raise ValueError("truncated viewer payload")
            plane = np.frombuffer(payload[a:b], "<u2").reshape(h, w)
            images[label] = (plane.astype(np.float32) * np.float32(scale / LEVELS))
        frames[frame["id"]] = images
    return header, frames
