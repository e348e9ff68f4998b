"""Pathology boxes from annotation CSVs, converted to the image as stored in the fastMRI file, and scored.

Two layouts are read (recognised by their header):

* **fastMRI+** (Zhao et al. 2022, ``microsoft/fastmri-plus`` ``Annotations/knee.csv`` / ``brain.csv``):
  ``file,slice,study_level,x,y,width,height,label``. ``slice`` is 0-based (the official example indexes the
  volume with it directly; brain boxes exist on slice 0). ``x`` is the column and ``y`` the row of the box's
  top-left corner **in the image flipped up-down** (the example notebook flips ``reconstruction_rss`` before
  drawing; the README warns of the flip). In the stored orientation the box covers rows
  ``[H - y - height, H - y)`` and columns ``[x, x + width)``, ``H`` the reference image's height (fastMRI's own
  loader does the same). Study-level rows (``study_level = Yes``, no coordinates) are not boxes.
* **Calivà et al.** (``fcaliva/fastMRI_BB_abnormalities_annotation``, the boxes of the robustness paper):
  ``filename,slice,numBBs,labels,coords`` with ``coords = [[x0 x1 y0 y1] ...]`` in the image flipped up-down and
  **1-based** slices (its ``main.py`` subtracts 1). The paper's code used the slice unchanged and indexed the
  window ``[x0:x1, y0:y1]`` (rows by x): transposed; this reader does neither.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.engine import MethodResult, Problem
from explorer.errors import ExplorerError
from explorer.robustness.feature_scores import score_feature

FASTMRI_PLUS = ("file", "slice", "study_level", "x", "y", "width", "height", "label")
CALIVA = ("filename", "slice", "numbbs", "labels", "coords")
MAX_ROWS = 200_000


@dataclass(frozen=True)
class Box:
    """One annotation box in flipped-image coordinates, as the CSV gives it.

    Attributes:
        file: the volume's file stem (``file1000001``); slice: the 0-based slice index.
        x, y, width, height: the box in the image flipped up-down (x = column, y = row of the top-left corner).
        label: the finding; layout: ``"fastmri+"`` or ``"caliva"``.
    """

    file: str
    slice: int
    x: float
    y: float
    width: float
    height: float
    label: str
    layout: str

    def rows_cols(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """The half-open box ``(row0, col0, row1, col1)`` in the stored (unflipped) image of ``shape``, clipped.

        Raises:
            ExplorerError: the box is empty inside the image.
        """
        h, w = shape
        row0, row1 = h - self.y - self.height, h - self.y
        col0, col1 = self.x, self.x + self.width
        r0, r1 = max(int(math.floor(row0)), 0), min(int(math.ceil(row1)), h)
        c0, c1 = max(int(math.floor(col0)), 0), min(int(math.ceil(col1)), w)
        if r1 <= r0 or c1 <= c0:
            raise ExplorerError(f"box {self.label!r} of {self.file} slice {self.slice} is empty inside the {h}x{w} image")
        return r0, c0, r1, c1


def _stem(name: str) -> str:
    return Path(str(name).strip()).name.removesuffix(".h5")


def read_boxes(path: str | Path) -> list[Box]:
    """The boxes of an annotation CSV (study-level rows and degenerate boxes are skipped).

    Raises:
        ExplorerError: unreadable file, an unknown header, or a malformed row (named by its line).
    """
    path = Path(path).expanduser()
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExplorerError(f"cannot read annotation CSV {path.name}: {exc}") from None
    if not rows:
        raise ExplorerError(f"{path.name} is empty")
    if len(rows) > MAX_ROWS:
        raise ExplorerError(f"{path.name} has more than {MAX_ROWS} rows")
    header = tuple(c.strip().lower() for c in rows[0])
    if header[:len(FASTMRI_PLUS)] == FASTMRI_PLUS:
        parse = _fastmri_plus
    elif header[:len(CALIVA)] == CALIVA:
        parse = _caliva
    else:
        raise ExplorerError(f"{path.name}: unknown header {','.join(rows[0])[:80]!r}; expected fastMRI+ "
                            f"({','.join(FASTMRI_PLUS)}) or Calivà ({','.join(CALIVA)})")
    boxes: list[Box] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            boxes += parse(row)
        except (ValueError, IndexError):
            raise ExplorerError(f"{path.name} line {line}: malformed row {','.join(row)[:80]!r}") from None
    return boxes


def _fastmri_plus(row: list[str]) -> list[Box]:
    file, slice_, level, x, y, width, height, label = (c.strip() for c in row[:8])
    if level.lower() == "yes" or not x:
        return []  # a study-level finding: no box
    box = Box(_stem(file), int(slice_), float(x), float(y), float(width), float(height), label, "fastmri+")
    if box.slice < 0 or min(box.width, box.height) <= 0:
        return []
    return [box]


def _caliva(row: list[str]) -> list[Box]:
    file, slice_, _, labels, coords = (c.strip() for c in row[:5])
    names = re.findall(r"'([^']*)'", labels) or [labels.strip("[] ")]
    quads = [[float(v) for v in q.split()] for q in re.findall(r"\[([^\[\]]+)\]", coords)]
    out = []
    for name, quad in zip(names, quads):
        x0, x1, y0, y1 = quad
        out.append(Box(_stem(file), int(slice_) - 1, x0, y0, x1 - x0, y1 - y0, name, "caliva"))  # 1-based slices
    return [b for b in out if b.slice >= 0 and b.width > 0 and b.height > 0]


def boxes_for(boxes: list[Box], volume, index: int) -> list[Box]:
    """The boxes of slice ``index`` of ``volume`` (matched by file stem)."""
    stem = _stem(getattr(volume, "name", str(volume)))
    return [b for b in boxes if b.file == stem and b.slice == index]


def score_boxes(problem: Problem, results: list[MethodResult], boxes: list[Box]) -> list[dict]:
    """Window MSE and local SSIM of every box in every result (against the problem's reference).

    Returns:
        rows ``{"label", "row0", "col0", "row1", "col1", "method_label", "method", "window_mse", "local_ssim",
        "ssim"}``.

    Raises:
        ExplorerError: no reference in this file.
    """
    if problem.target is None:
        raise ExplorerError("this file has no fully sampled reference: its boxes cannot be scored")
    truth = np.asarray(problem.target)
    rows = []
    for box in boxes:
        r0, c0, r1, c1 = box.rows_cols(truth.shape)
        for result in results:
            score = score_feature(result.image, truth, box=(r0, c0, r1, c1))
            rows.append({"label": box.label, "row0": r0, "col0": c0, "row1": r1, "col1": c1,
                         "method_label": result.instance or result.label, "method": result.method,
                         "window_mse": score.window_mse, "local_ssim": score.local_ssim,
                         "ssim": (result.metrics or {}).get("ssim")})
    return rows


__all__ = ["Box", "boxes_for", "read_boxes", "score_boxes"]
