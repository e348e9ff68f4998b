"""Export results: PNG images (windowed), NumPy arrays and a metrics CSV."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from explorer.errors import ExplorerError

METRICS_COLUMNS = ("method", "label", "ssim", "psnr", "nmse", "seconds", "metric")


def png_bytes(image: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> bytes:
    """8-bit grayscale PNG of a magnitude image ``(h, w)`` windowed to ``[vmin, vmax]``."""
    image = np.asarray(image, dtype=np.float64)
    lo = float(image.min()) if vmin is None else vmin
    hi = float(image.max()) if vmax is None else vmax
    scaled = np.clip((image - lo) / max(hi - lo, 1e-30), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((scaled * 255).round().astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    """``.npy`` serialisation of ``array``."""
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def records_csv(rows: Iterable[dict], stamp: dict | None = None) -> str:
    """CSV text of flat records, columns in first-seen order (blank where a record lacks one or it is None);
    ``stamp``: columns every row carries first (e.g. ``{"metric": "fastmri"}``: which definition produced the
    numbers), unless the row has its own value."""
    rows = [{**(stamp or {}), **row} for row in rows]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{k: ("" if v is None else v) for k, v in row.items()} for row in rows])
    return buf.getvalue()


def metrics_csv(rows: Iterable[dict], metric: str | None = None) -> str:
    """CSV text with columns method, label, ssim, psnr, nmse, seconds and metric (the metric definition: ``metric``
    unless the row names its own; blank when undefined)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRICS_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        row = {"metric": metric, **row}
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in METRICS_COLUMNS})
    return buf.getvalue()


def write_results(out_dir: str | Path, target: np.ndarray | None, pattern: np.ndarray,
                  images: dict[str, np.ndarray], rows: list[dict], metric: str | None = None) -> list[Path]:
    """Write target.npy/png, mask.npy/png, <label>.npy/png (``images`` by instance label) and metrics.csv into ``out_dir``.

    Images share one window ``[0, max(target)]`` (or the max over images without a target).

    Returns:
        the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vmax = float(target.max()) if target is not None else max(float(im.max()) for im in images.values())
    arrays = {"mask": pattern.astype(bool)}
    if target is not None:
        arrays["target"] = target
    arrays.update(images)
    written = []
    for name, array in arrays.items():
        np.save(out / f"{name}.npy", array)
        window = (0.0, 1.0) if name == "mask" else (0.0, vmax)
        (out / f"{name}.png").write_bytes(png_bytes(array.astype(np.float64), *window))
        written += [out / f"{name}.npy", out / f"{name}.png"]
    (out / "metrics.csv").write_text(metrics_csv(rows, metric))
    written.append(out / "metrics.csv")
    return written


def output_dir(out: str) -> Path:
    """An output directory, created now (before any work): one clear error if it cannot be."""
    if not out.strip():
        raise ExplorerError("--out is empty: give an output directory")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ExplorerError(f"--out {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExplorerError(f"cannot create the --out directory {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise ExplorerError(f"the --out directory {path} is not writable")
    return path
