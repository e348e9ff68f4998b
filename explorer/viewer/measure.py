"""What the viewer measures (numpy in, numbers and arrays out; no plotly, no Streamlit).

* error maps of a reconstruction against the reference: ``|error|``, signed error, the local SSIM map;
* window/level presets: full range, tissue (Otsu foreground), auto (percentiles);
* a region of interest (ROI) box and its statistics per image: mean, std, SSIM and PSNR inside the box;
* a line profile between two points (bilinear samples, one per pixel of length).

Conventions: images are float ``(h, w)`` magnitudes, row 0 at the top; plot coordinates are
``x = column``, ``y = row`` with pixel ``(r, c)`` covering ``[c - 0.5, c + 0.5] x [r - 0.5, r + 0.5]``.
SSIM and PSNR follow :mod:`explorer.metrics` (fastMRI): ``data_range`` = the reference's maximum over the
WHOLE image, SSIM with scikit-image's 7x7 uniform window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

ERROR_MODES: dict[str, str] = {
    "abs": "|error|",
    "signed": "signed error",
    "ssim": "local SSIM",
    "off": "off",
}
WINDOW_PRESETS: dict[str, str] = {
    "full": "full range",
    "tissue": "tissue",
    "auto": "auto (percentile)",
}
SSIM_WINDOW = 7  # fastmri.evaluate.ssim: skimage's default 7x7 uniform window


def ssim_map(target: np.ndarray, image: np.ndarray, data_range: float | None = None) -> np.ndarray:
    """Local SSIM of ``image`` against ``target``: skimage ``structural_similarity(..., full=True)``.

    Args:
        target, image: float ``(h, w)``, both at least 7x7.
        data_range: default ``target.max()`` (fastMRI's convention).

    Returns:
        float32 ``(h, w)`` map (1 = identical neighbourhood); its mean over the interior (3 pixels from
        each border) is the image SSIM that :func:`explorer.metrics.compute_metrics` reports.
    """
    from skimage.metrics import structural_similarity  # noqa: PLC0415 (scipy: imported on first use)

    t, x = np.asarray(target, np.float64), np.asarray(image, np.float64)
    if t.shape != x.shape:
        raise ValueError(f"target {t.shape} and image {x.shape} differ in shape")
    if min(t.shape) < SSIM_WINDOW:
        raise ValueError(f"a local SSIM map needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {t.shape}")
    rng = float(t.max()) if data_range is None else float(data_range)
    _, full = structural_similarity(t, x, data_range=rng if rng > 0 else 1.0, win_size=SSIM_WINDOW, full=True)
    return full.astype(np.float32)


def error_map(target: np.ndarray, image: np.ndarray, mode: str) -> np.ndarray:
    """The error map of ``image`` ``(h, w)`` against ``target`` ``(h, w)`` in ``mode`` (a key of :data:`ERROR_MODES`).

    ``abs``: ``|image - target|``; ``signed``: ``image - target``; ``ssim``: :func:`ssim_map`.
    """
    if mode == "abs":
        return np.abs(np.asarray(image, np.float32) - np.asarray(target, np.float32))
    if mode == "signed":
        return np.asarray(image, np.float32) - np.asarray(target, np.float32)
    if mode == "ssim":
        return ssim_map(target, image)
    raise ValueError(f"unknown error mode {mode!r}; choose one of {', '.join(m for m in ERROR_MODES if m != 'off')}")


def window_preset(reference: np.ndarray, preset: str, percentile: float = 99.5) -> tuple[float, float]:
    """Display window ``(low, high)`` for ``reference`` ``(h, w)``.

    * ``full``: ``(0, max)``: the whole range, the default of every page;
    * ``tissue``: the 0.5th to 99.5th percentile of the pixels above the Otsu threshold (the object, not the
      background): more contrast inside the anatomy;
    * ``auto``: ``(0, the given percentile)``: a few bright pixels no longer darken the rest.
    """
    ref = np.asarray(reference, np.float64)
    top = float(ref.max()) if ref.size else 0.0
    if top <= 0:
        return 0.0, 1.0
    if preset == "full":
        return 0.0, top
    if preset == "auto":
        if not 50.0 <= percentile <= 100.0:
            raise ValueError(f"the auto window's percentile must be in [50, 100], got {percentile:g}")
        return 0.0, max(float(np.percentile(ref, percentile)), top * 1e-3)
    if preset == "tissue":
        from skimage.filters import threshold_otsu  # noqa: PLC0415

        inside = ref[ref > threshold_otsu(ref)] if np.ptp(ref) > 0 else ref.ravel()
        lo, hi = (float(v) for v in np.percentile(inside if inside.size else ref, [0.5, 99.5]))
        return lo, hi if hi > lo else lo + top * 1e-3
    raise ValueError(f"unknown window preset {preset!r}; choose one of {', '.join(WINDOW_PRESETS)}")


@dataclass(frozen=True)
class Box:
    """A region of interest: rows ``r0 .. r1 - 1`` and columns ``c0 .. c1 - 1`` (half-open, like numpy slices)."""

    r0: int
    c0: int
    r1: int
    c1: int

    def __post_init__(self) -> None:
        if not (self.r1 > self.r0 >= 0 and self.c1 > self.c0 >= 0):
            raise ValueError(f"an ROI needs 0 <= top < bottom and 0 <= left < right, got rows {self.r0}..{self.r1 - 1}, "
                             f"columns {self.c0}..{self.c1 - 1}")

    @classmethod
    def from_selection(cls, x: tuple[float, float], y: tuple[float, float], shape: tuple[int, int]) -> "Box":
        """The pixels whose centres lie in a plotly box selection ``x`` (columns) x ``y`` (rows), inside ``shape``.

        A box too small to hold a pixel centre becomes the pixel nearest its centre.
        """
        h, w = shape
        (x0, x1), (y0, y1) = sorted(float(v) for v in x), sorted(float(v) for v in y)
        c0, c1 = max(math.ceil(x0), 0), min(math.floor(x1), w - 1) + 1
        r0, r1 = max(math.ceil(y0), 0), min(math.floor(y1), h - 1) + 1
        if c1 <= c0:
            c0 = min(max(round((x0 + x1) / 2), 0), w - 1)
            c1 = c0 + 1
        if r1 <= r0:
            r0 = min(max(round((y0 + y1) / 2), 0), h - 1)
            r1 = r0 + 1
        return cls(r0, c0, r1, c1)

    @classmethod
    def parse(cls, text: str) -> "Box":
        """``"TOP,LEFT,BOTTOM,RIGHT"`` (inclusive rows and columns, as the app's inputs) -> a box.

        Raises:
            ValueError: not four integers, or bottom above top / right left of left.
        """
        top, left, bottom, right = _integers(text, 4, "--roi TOP,LEFT,BOTTOM,RIGHT")
        return cls(top, left, bottom + 1, right + 1)

    def check(self, shape: tuple[int, int]) -> None:
        """Raise ValueError unless the box lies inside an image of ``shape`` ``(h, w)``."""
        h, w = shape
        if self.r1 > h or self.c1 > w:
            raise ValueError(f"the ROI (rows {self.r0}-{self.r1 - 1}, columns {self.c0}-{self.c1 - 1}) leaves the "
                             f"{h}x{w} image")

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.r0, self.r1), slice(self.c0, self.c1)

    @property
    def size(self) -> tuple[int, int]:
        return self.r1 - self.r0, self.c1 - self.c0

    def describe(self) -> str:
        return f"rows {self.r0}–{self.r1 - 1}, columns {self.c0}–{self.c1 - 1} ({self.size[0]}×{self.size[1]} px)"


def roi_stats(target: np.ndarray | None, images: Mapping[str, np.ndarray], box: Box,
              ssim_maps: Mapping[str, np.ndarray] | None = None) -> list[dict]:
    """Statistics inside ``box`` for the reference and every image.

    Args:
        target: reference ``(h, w)`` or ``None`` (then no SSIM/PSNR).
        images: ``{label: (h, w)}``.
        box: the ROI (inside the images).
        ssim_maps: precomputed :func:`ssim_map` per label (computed here otherwise).

    Returns:
        one row per image, the reference first (label ``"reference"``): ``label``, ``mean``, ``std`` of the
        intensities in the box, and against the reference ``ssim`` (mean of the local SSIM map over the box)
        and ``psnr`` (dB, ``10 log10(max(target)^2 / MSE in the box)``, inf for no error); ``None`` where
        undefined.
    """
    shapes = {np.shape(im) for im in images.values()} | ({np.shape(target)} if target is not None else set())
    if len(shapes) != 1:
        raise ValueError(f"all images must have the same shape, got {sorted(shapes)}")
    box.check(next(iter(shapes)))
    rows_, cols_ = box.slices
    rows = []
    peak = float(np.max(target)) if target is not None else 0.0
    if target is not None:
        patch = np.asarray(target, np.float64)[rows_, cols_]
        rows.append({"label": "reference", "mean": float(patch.mean()), "std": float(patch.std()), "ssim": None, "psnr": None})
    for label, image in images.items():
        patch = np.asarray(image, np.float64)[rows_, cols_]
        row = {"label": label, "mean": float(patch.mean()), "std": float(patch.std()), "ssim": None, "psnr": None}
        if target is not None and peak > 0:
            ref = np.asarray(target, np.float64)[rows_, cols_]
            mse = float(np.mean((patch - ref) ** 2))
            row["psnr"] = math.inf if mse == 0 else float(10 * np.log10(peak ** 2 / mse))
            if min(np.shape(target)) >= SSIM_WINDOW:
                local = ssim_maps[label] if ssim_maps and label in ssim_maps else ssim_map(target, image)
                row["ssim"] = float(np.mean(local[rows_, cols_]))
        rows.append(row)
    return rows


def line_profile(image: np.ndarray, start: tuple[float, float], end: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Intensities of ``image`` ``(h, w)`` along the segment ``start`` -> ``end`` (``(row, col)``, may be fractional).

    Bilinear samples (scikit-image ``profile_line``, order 1, width 1) one pixel apart, both ends included.

    Returns:
        ``(distance in pixels from start, values)``, both float ``(n,)``.
    """
    from skimage.measure import profile_line  # noqa: PLC0415

    img = np.asarray(image, np.float64)
    h, w = img.shape
    for name, (r, c) in (("start", start), ("end", end)):
        if not (0 <= r <= h - 1 and 0 <= c <= w - 1):
            raise ValueError(f"the line's {name} ({r:g}, {c:g}) lies outside the {h}x{w} image")
    values = profile_line(img, start, end, order=1, mode="constant", linewidth=1, reduce_func=None)
    values = np.asarray(values, np.float64).reshape(-1)
    length = math.hypot(end[0] - start[0], end[1] - start[1])
    return np.linspace(0.0, length, len(values)), values


def parse_line(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """``"ROW0,COL0,ROW1,COL1"`` -> ``((row0, col0), (row1, col1))``.

    Raises:
        ValueError: not four integers, or both ends on one pixel.
    """
    r0, c0, r1, c1 = _integers(text, 4, "--profile ROW0,COL0,ROW1,COL1")
    if (r0, c0) == (r1, c1):
        raise ValueError("the profile line's two ends are the same pixel")
    return (float(r0), float(c0)), (float(r1), float(c1))


def _integers(text: str, count: int, usage: str) -> list[int]:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or any(v < 0 for v in values):
        raise ValueError(f"expected {usage} ({count} non-negative integers), got {text!r}")
    return values


def line_from_stroke(x: list[float], y: list[float], shape: tuple[int, int]) -> tuple[tuple[float, float], tuple[float, float]]:
    """A straight line from a drawn stroke (a plotly lasso path): its first point to its last, ``(row, col)`` each,
    clipped into an image of ``shape``.

    Raises:
        ValueError: fewer than two points, or a stroke shorter than one pixel.
    """
    if len(x) < 2 or len(x) != len(y):
        raise ValueError("draw a line: press, drag and release along it")
    h, w = shape
    start = (min(max(float(y[0]), 0.0), h - 1.0), min(max(float(x[0]), 0.0), w - 1.0))
    end = (min(max(float(y[-1]), 0.0), h - 1.0), min(max(float(x[-1]), 0.0), w - 1.0))
    if math.hypot(end[0] - start[0], end[1] - start[1]) < 1.0:
        raise ValueError("the line is shorter than one pixel: drag further")
    return start, end


__all__ = ["Box", "ERROR_MODES", "SSIM_WINDOW", "WINDOW_PRESETS", "error_map", "line_from_stroke", "line_profile",
           "parse_line", "roi_stats", "ssim_map", "window_preset"]
