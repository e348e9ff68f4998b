"""SIMULATED readers: scripted model observers that fill a session with answers, for tests and the demonstration.

They are not people and say so: each is added as a reader of kind ``"simulated"`` named "simulated reader N (model
observer)", and every analysis notes how many of its readers are simulated. They answer through the same reading API
as a person (:class:`~explorer.readers.reading.Reading`), so their answers take the same path into the file.

* Likert: the rank of the image's metric (default SSIM) among the session's images, mapped to 1..5, plus a reader
  bias and Gaussian noise (in rating units), rounded and clipped;
* 2AFC: the image the metric ranks better, after Gaussian noise on the standardised metric difference;
* detection: a background-known local-contrast observer: it subtracts the subject's lesion-free reference, takes
  the local contrast of the lesion's polarity (mean in a window of the lesion's size minus the mean around it, in
  units of the map's robust spread); the strongest spot is the click; "present" when it exceeds a threshold (after
  internal noise); the confidence grows with the distance from the threshold. A method's artifacts are its noise:
  what it does to a small lesion decides whether the observer finds it.

Likert and 2AFC observers read the image's metric from the session's key (they model "a reader who sees what the
metric measures"); the detection observer reads the pixels the reading API returns and, from the key, the subject's
lesion-free reference and the lesions' size and polarity.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from explorer.errors import ExplorerError
from explorer.readers.analysis import METRIC_SIGN
from explorer.readers.codes import NewReader, add_reader
from explorer.readers.reading import ItemView, Reading
from explorer.readers.store import session_meta
from explorer.readers.tables import key_frame
from explorer.readers.tasks import AFC, DETECTION, LIKERT


@dataclass(frozen=True)
class ModelObserver:
    """A simulated reader's settings.

    Attributes:
        metric: ``"ssim"``, ``"psnr"`` or ``"nmse"`` (Likert and 2AFC).
        noise: standard deviation of the observer's noise (rating units for Likert; standardised metric differences
            for 2AFC; z units for detection).
        bias: standard deviation of each reader's constant offset (Likert, rating units).
        threshold: detection: the local-contrast z above which a lesion is reported.
        seconds: the reading time each answer records.
    """

    metric: str = "ssim"
    noise: float = 0.5
    bias: float = 0.25
    threshold: float = 6.0
    seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.metric not in METRIC_SIGN:
            raise ExplorerError(f"metric must be one of {', '.join(METRIC_SIGN)}, got {self.metric!r}")
        for name in ("noise", "bias", "threshold", "seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ExplorerError(f"{name} must be a number >= 0, got {value!r}")


def local_contrast(image: np.ndarray, size: int) -> np.ndarray:
    """Local contrast z-map of ``image`` ``(h, w)``: the mean over a ``size`` window minus the mean over a window
    three times larger, divided by the map's robust spread (1.4826 x median absolute deviation)."""
    from scipy import ndimage  # noqa: PLC0415

    size = max(int(size), 1)
    x = np.asarray(image, dtype=np.float64)
    contrast = ndimage.uniform_filter(x, size) - ndimage.uniform_filter(x, 3 * size)
    centre = np.median(contrast)
    spread = 1.4826 * np.median(np.abs(contrast - centre))
    return (contrast - centre) / (spread if spread > 0 else 1.0)


def detect(image: np.ndarray, size: int, threshold: float, rng: np.random.Generator, noise: float = 0.0,
           background: np.ndarray | None = None, polarity: float = 1.0) -> dict:
    """The detection observer's answer for one image ``(h, w)`` (the form
    :func:`~explorer.readers.tasks.check_answer` takes).

    Args:
        size: the lesion size it looks for (pixels); threshold: the z above which it reports a lesion.
        background: the lesion-free reference ``(h, w)`` it subtracts first (a background-known observer), if any.
        polarity: +1 looks for bright lesions, -1 for dark ones, 0 for either.
    """
    x = np.asarray(image, dtype=np.float64) - (0.0 if background is None else np.asarray(background, np.float64))
    z = local_contrast(x, size)
    z = np.abs(z) if polarity == 0 else np.sign(polarity) * z
    margin = max(int(size), 1)
    inner = z[margin:-margin, margin:-margin] if min(z.shape) > 2 * margin + 1 else z
    row, col = np.unravel_index(int(np.argmax(inner)), inner.shape)
    if inner is not z:
        row, col = row + margin, col + margin
    strength = float(z[row, col]) + noise * float(rng.standard_normal())
    confidence = int(np.clip(1 + math.floor(abs(strength - threshold)), 1, 5))
    if strength > threshold:
        return {"present": True, "confidence": confidence, "location": [int(row), int(col)]}
    return {"present": False, "confidence": confidence, "location": None}


def _ranks(values: dict) -> dict:
    """``{key: rank fraction in [0, 1]}`` of the values (ties share their mean rank)."""
    import pandas as pd  # noqa: PLC0415

    keys = list(values)
    if len(keys) < 2:
        return {k: 0.5 for k in keys}
    r = pd.Series([values[k] for k in keys], dtype=float).rank(method="average").to_numpy()
    return {k: float((v - 1) / (len(keys) - 1)) for k, v in zip(keys, r)}


def simulate(path: str | Path, readers: int = 2, observer: ModelObserver = ModelObserver(), seed: int = 0,
             fraction: float = 1.0, progress: Callable[[int, int, str], "bool | None"] | None = None) -> list[NewReader]:
    """Add ``readers`` simulated readers and let each answer (a ``fraction`` of) their items in their order.

    Returns:
        the readers added (kind ``"simulated"``; their codes, so a test can go on as them).

    Raises:
        ExplorerError: a bad count or fraction; Likert/2AFC sessions whose images have no metrics.
    """
    if isinstance(readers, bool) or not isinstance(readers, int) or not 1 <= readers <= 50:
        raise ExplorerError(f"simulated readers must be an integer in 1..50, got {readers!r}")
    if not (isinstance(fraction, (int, float)) and 0 <= fraction <= 1):
        raise ExplorerError(f"fraction must be in [0, 1], got {fraction!r}")
    meta = session_meta(path)
    task = meta["task"]
    key = key_frame(path).set_index("item_id")
    sign = METRIC_SIGN[observer.metric]
    if task == AFC:
        columns = [f"{observer.metric}_left", f"{observer.metric}_right"]
        diffs = (key[columns[0]] - key[columns[1]]).astype(float) * sign
        spread = float(diffs.std()) if len(diffs) > 1 and float(diffs.std()) > 0 else 1.0
    elif task == LIKERT:
        values = (key[observer.metric].astype(float) * sign)
        if values.isna().any():
            raise ExplorerError(f"simulated Likert readers need the images' {observer.metric} (a reference)")
        ranks = _ranks(dict(values.groupby(key["case_id"]).first()))
    backgrounds, size, polarity = {}, 4, 1.0
    if task == DETECTION:
        lesions = [l_ for text in key["lesions"] for l_ in json.loads(text)]
        size = int(np.median([l_["size"] for l_ in lesions])) if lesions else 4
        signs = {float(np.sign(l_["contrast"])) for l_ in lesions}
        polarity = signs.pop() if len(signs) == 1 else 0.0
        backgrounds = _backgrounds(path, key)
    reading = Reading(path)
    added = []
    for n in range(readers):
        new = add_reader(path, kind="simulated")
        added.append(new)
        rng = np.random.default_rng([int(seed), new.reader_id, 11])
        offset = observer.bias * float(rng.standard_normal())
        total = reading.progress(new.code).total
        todo = int(round(fraction * total))
        for done in range(todo):
            view = reading.next_item(new.code, record_view=False)
            if view is None:
                break
            answer = _answer(task, view, key, meta, observer, rng, offset,
                             ranks if task == LIKERT else None, spread if task == AFC else None,
                             (size, polarity, backgrounds))
            reading.answer(new.code, view.item_id, answer, seconds=observer.seconds)
            if progress is not None and progress(n * total + done + 1, readers * total, new.name):
                return added
    return added


def _backgrounds(path: str | Path, key) -> dict[str, np.ndarray]:
    """``{subject: its lesion-free reference (h, w)}`` as stored (same scale as the subject's images)."""
    from explorer.readers.store import image_array, opened  # noqa: PLC0415

    out = {}
    with opened(path) as conn:
        for subject, part in key[~key["lesion"].astype(bool)].groupby("subject"):
            ids = part["reference_image"].dropna()
            if len(ids):
                out[subject] = image_array(conn, int(ids.iloc[0]))
    return out


def _answer(task: str, view: ItemView, key, meta: dict, observer: ModelObserver, rng: np.random.Generator,
            offset: float, ranks: dict | None, spread: float | None, detection: tuple) -> dict:
    row = key.loc[view.item_id]
    if task == LIKERT:
        base = 1 + 4 * ranks[row["case_id"]] + offset
        return {"ratings": {c: int(np.clip(round(base + observer.noise * rng.standard_normal()), 1, 5))
                            for c in meta["criteria"]}}
    if task == AFC:
        m = observer.metric
        d = METRIC_SIGN[m] * (float(row[f"{m}_left"]) - float(row[f"{m}_right"])) / spread
        return {"choice": "left" if d + observer.noise * rng.standard_normal() > 0 else "right"}
    size, polarity, backgrounds = detection
    return detect(view.images[0], size, observer.threshold, rng, observer.noise, backgrounds.get(row["subject"]),
                  polarity)


__all__ = ["ModelObserver", "detect", "local_contrast", "simulate"]
