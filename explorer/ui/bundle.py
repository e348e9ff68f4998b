"""The per-run download bundle of every experiment page: one zip with the run's settings (JSON), its tables (CSV with
human headers), its images (``.npy`` float32 magnitude and a windowed ``.png`` each) and, where the run has them,
its perturbations (``.npy`` complex and a ``.png`` of their image-domain magnitude).

:func:`build` is pure (a :class:`Bundle` in, zip bytes out); :func:`settings` turns a page's request (frozen
dataclasses) into plain JSON values; :func:`offer` is the page's download button, which builds the zip only when it
is clicked.

Layout of the zip (``<stem>`` is the bundle's name)::

    <stem>/README.txt            what each file is
    <stem>/settings.json         the request: data, slice, mask, methods and their parameters, the experiment's settings
    <stem>/<table>.csv           e.g. metrics.csv
    <stem>/images/<name>.npy     float32 magnitude (h, w)
    <stem>/images/<name>.png     8-bit, windowed to the bundle's window
    <stem>/perturbations/<name>.npy / .png
    <stem>/<extra>.npy / .png    e.g. the sampling mask
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from explorer.export import npy_bytes, png_bytes


@dataclass
class Bundle:
    """What goes into a run's zip.

    Attributes:
        name: the zip's stem (also its top folder).
        settings: JSON-able settings of the run (see :func:`settings`).
        tables: ``{file name: CSV text}`` (e.g. ``{"metrics.csv": ...}``).
        images: ``{name: magnitude (h, w)}``: written as ``.npy`` and as a ``.png`` windowed to ``window``.
        window: ``(lo, hi)`` of the PNGs (default: each image's own range).
        perturbations: ``{name: array}`` (complex k-space perturbations ``(C, H, W)``): ``.npy``; with
            ``perturbation_images`` (``{name: magnitude (h, w)}``) also a ``.png`` each (own range).
        notes: extra lines for the README.
        extras: ``{name: array}`` beside the images (e.g. the sampling mask): ``.npy`` and a ``.png`` (own range).
    """

    name: str
    settings: dict
    tables: dict[str, str] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    window: tuple[float, float] | None = None
    perturbations: dict[str, np.ndarray] = field(default_factory=dict)
    perturbation_images: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def safe_name(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits, ``._-``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return cleaned or "item"


def _unique(names: Mapping[str, Any]) -> dict[str, str]:
    """``{key: unique safe file stem}``."""
    out, taken = {}, set()
    for key in names:
        stem = safe_name(key)
        candidate, n = stem, 2
        while candidate.lower() in taken:
            candidate, n = f"{stem}_{n}", n + 1
        taken.add(candidate.lower())
        out[key] = candidate
    return out


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON values: dataclasses as dicts of their fields, tuples as lists, paths as text,
    non-finite floats as ``None``, numpy scalars and arrays as numbers and lists, anything else as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if hasattr(value, "capabilities") and hasattr(value, "name") and hasattr(value, "config"):
            out = {"label": out.get("label"), "method": out.get("name"), "parameters": out.get("config")}
        return out
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return str(value)


def settings(request: Any, page: str, **extra: Any) -> dict:
    """The settings block of a bundle: the page, the time, the explorer's version and the request's fields."""
    from explorer import __version__  # noqa: PLC0415

    return {"page": page, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "explorer_version": __version__, "request": jsonable(request), **{k: jsonable(v) for k, v in extra.items()}}


def _readme(bundle: Bundle, images: dict[str, str], perturbations: dict[str, str]) -> str:
    window = (f"windowed to [{bundle.window[0]:g}, {bundle.window[1]:g}]" if bundle.window is not None
              else "each windowed to its own range")
    lines = [f"{bundle.name}: one run of the MRI robustness explorer", "",
             "settings.json  the run's settings (data, slice, mask, methods and parameters, experiment settings)"]
    lines += [f"{name:<14} a table of the run (CSV, human headers)" for name in bundle.tables]
    if images:
        lines += ["", f"images/: {len(images)} image(s); .npy = float32 magnitude, .png = 8-bit, {window}:"]
        lines += [f"  {stem}  {key}" for key, stem in images.items()]
    if perturbations:
        lines += ["", "perturbations/: .npy = the perturbation as computed (complex k-space (C, H, W) where it is "
                  "one); .png = the magnitude of its image (own range):"]
        lines += [f"  {stem}  {key}" for key, stem in perturbations.items()]
    if bundle.extras:
        lines += ["", "Also: " + ", ".join(f"{safe_name(k)}.npy/.png ({k})" for k in bundle.extras)]
    lines += ["", *bundle.notes] if bundle.notes else []
    return "\n".join(lines) + "\n"


def build(bundle: Bundle) -> bytes:
    """The zip (bytes) of ``bundle`` (see the module docstring for its layout)."""
    top = safe_name(bundle.name)
    images = _unique(bundle.images)
    perturbations = _unique({**bundle.perturbations, **{k: None for k in bundle.perturbation_images
                                                         if k not in bundle.perturbations}})
    lo_hi = bundle.window or (None, None)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr(f"{top}/README.txt", _readme(bundle, images, perturbations))
        zf.writestr(f"{top}/settings.json", json.dumps(jsonable(bundle.settings), indent=2, ensure_ascii=False))
        for name, text in bundle.tables.items():
            zf.writestr(f"{top}/{safe_name(name)}", text)
        for key, stem in images.items():
            image = np.asarray(bundle.images[key], dtype=np.float32)
            zf.writestr(f"{top}/images/{stem}.npy", npy_bytes(image))
            zf.writestr(f"{top}/images/{stem}.png", png_bytes(image, *lo_hi))
        for key, stem in _unique(bundle.extras).items():
            array = np.asarray(bundle.extras[key])
            zf.writestr(f"{top}/{stem}.npy", npy_bytes(array))
            if array.ndim == 2:
                zf.writestr(f"{top}/{stem}.png", png_bytes(np.abs(array).astype(np.float32)))
        for key, stem in perturbations.items():
            if key in bundle.perturbations:
                zf.writestr(f"{top}/perturbations/{stem}.npy", npy_bytes(np.asarray(bundle.perturbations[key])))
            if key in bundle.perturbation_images:
                zf.writestr(f"{top}/perturbations/{stem}.png", png_bytes(np.abs(bundle.perturbation_images[key])))
    return buf.getvalue()


def results_bundle(name: str, page: str, request: Any, results: list, target: np.ndarray | None,
                   window: tuple[float, float], metrics_csv: str, metric: str,
                   extras: Mapping[str, np.ndarray] | None = None) -> Callable[[], Bundle]:
    """A maker of the bundle of a page's reconstructions (:class:`~explorer.engine.MethodResult` s): the request,
    ``metrics.csv``, the reference (when there is one) and every image. Everything is captured now: the maker runs
    outside the script run, where the session state cannot be read."""
    images = {**({"reference": target} if target is not None else {}), **{r.label: r.image for r in results}}
    notes = [f"{r.label}: {note}" for r in results for note in r.notes]

    def make() -> Bundle:
        return Bundle(name, settings(request, page, metric=metric), {"metrics.csv": metrics_csv}, images, window,
                      extras=dict(extras or {}), notes=notes)

    return make


def offer(key: str, name: str, make: Callable[[], Bundle], label: str = "Download this run (.zip)",
          container=None) -> None:
    """A download button for the run's bundle; ``make`` runs (and the zip is built) only when it is clicked. The
    maker is kept in the session state under ``<key>.make`` (tests open the zip through it)."""
    import streamlit as st  # noqa: PLC0415

    st.session_state[f"{key}.make"] = make
    box = container if container is not None else st
    box.download_button(label, lambda: build(make()), f"{safe_name(name)}.zip", "application/zip", key=key,
                        on_click="ignore", icon=":material/folder_zip:", type="primary",
                        help="One zip: the settings (JSON), the tables (CSV), every image (.npy and .png) and the "
                             "perturbations where the run has them.")


__all__ = ["Bundle", "build", "jsonable", "offer", "results_bundle", "safe_name", "settings"]
