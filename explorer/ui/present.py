"""How the app presents results to people: human column names with units, method and family names instead of
registry keys, no "None" cells, CSV downloads with the same headers, SSIM axes inside [0, 1], and the number of
points beside every fit.

The library's rows keep their raw keys (``ssim_drop_sd``, ``zero_filled``): they are what studies, the CLI and the
results files store. The pages rename them here, for the tables they show and the CSVs they offer. Pure functions
(no Streamlit), so they are tested without a page.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

MISSING = "—"  # what a table or CSV shows where a value is undefined (no reference, a failed unit)

FAMILIES = {"baseline": "classical", "sparse": "sparse / ℓ1", "untrained": "un-trained network",
            "trained": "trained network"}

# Raw row keys -> what a person reads (with units). Keys not listed are written "Like this" from "like_this".
COLUMNS = {
    "label": "Method", "method": "Algorithm", "method_label": "Method", "family": "Family", "models": "Models",
    "experiment": "Experiment", "role": "Role", "data": "Data", "file": "File", "slice": "Slice", "mask": "Mask",
    "metric": "Metric definition", "error": "Error", "seconds": "Time (s)", "maps_seconds": "Coil maps (s)",
    "ssim": "SSIM", "psnr": "PSNR (dB)", "nmse": "NMSE",
    "eps": "Budget ε (‖e‖/‖k‖)", "ratio": "‖e‖/‖k‖ reached", "objective": "Objective value",
    "objective_name": "Objective", "protocol": "Protocol", "budget": "Budget relative to", "strategy": "Strategy",
    "steps": "Steps", "stopped": "Stopped early", "maps": "Coil maps", "seed": "Seed",
    "ssim_clean": "SSIM clean", "ssim_perturbed": "SSIM perturbed", "ssim_drop": "SSIM drop",
    "ssim_drop_sd": "SSIM drop, sd", "psnr_clean": "PSNR clean (dB)", "psnr_perturbed": "PSNR perturbed (dB)",
    "psnr_drop": "PSNR drop (dB)", "psnr_drop_sd": "PSNR drop, sd (dB)", "nmse_clean": "NMSE clean",
    "nmse_perturbed": "NMSE perturbed", "nmse_drop": "NMSE drop",
    "source": "Perturbation found for", "target": "Reconstructed by",
    "n": "n", "pearson": "Pearson r", "spearman": "Spearman ρ", "slope": "Slope", "intercept": "Intercept",
    "r": "Pearson r",
    "ssim_id": "SSIM on P (in-distribution)", "ssim_ood": "SSIM on Q (shifted)", "psnr_id": "PSNR on P (dB)",
    "psnr_ood": "PSNR on Q (dB)", "gap": "SSIM gap (P − Q)", "slices_id": "Slices in P", "slices_ood": "Slices in Q",
    "ssim_pool": "SSIM on the pool", "ssim_filtered": "SSIM on the kept slices", "slices_pool": "Slices in the pool",
    "slices_filtered": "Slices kept",
    "feature": "Feature #", "shape": "Shape", "row": "Row", "col": "Column", "size": "Size (px)",
    "contrast": "Contrast (× reference)", "relative_to": "Contrast relative to", "angle": "Angle (°)",
    "width": "Line width (px)", "window_mse": "Window MSE", "contrast_recovery": "Contrast recovery",
    "local_ssim": "Local SSIM", "box": "Box (row0, col0, row1, col1)", "row0": "Row 0", "col0": "Column 0",
    "row1": "Row 1", "col1": "Column 1",
    "best_step": "Weights of step", "stop_reason": "Stopped because", "lr": "Learning rate", "holdout": "Held-out share",
    "ssim_before": "SSIM as shipped", "ssim_after": "SSIM after TTT", "psnr_before": "PSNR as shipped (dB)",
    "psnr_after": "PSNR after TTT (dB)", "nmse_before": "NMSE as shipped", "nmse_after": "NMSE after TTT",
    "ssim_reference": "SSIM in-distribution network", "gap_closed": "Gap closed",
    "acceleration": "Acceleration R", "center_fraction": "Centre fraction", "mask_seed": "Mask seed",
}
# Columns whose values may be registry names of methods (shown as the methods' display names).
METHOD_COLUMNS = ("label", "method", "method_label", "source", "target")


def column(key: str) -> str:
    """The human name of a raw row key (``"ssim_drop_sd"`` -> ``"SSIM drop, sd"``)."""
    if key in COLUMNS:
        return COLUMNS[key]
    text = key.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else key


def method_names() -> dict[str, str]:
    """``{registry name: display name}`` of every registered method."""
    from explorer.recon.base import available_methods  # noqa: PLC0415

    return {m.name: m.label for m in available_methods()}


def method_name(value: Any, names: Mapping[str, str] | None = None) -> Any:
    """A method's display name for its registry name (anything else unchanged)."""
    names = method_names() if names is None else names
    return names.get(value, value) if isinstance(value, str) else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def value(key: str, raw: Any, names: Mapping[str, str]) -> Any:
    """One cell for people: method and family names, a dash where undefined, lists as text."""
    if _missing(raw):
        return MISSING if not isinstance(raw, float) or math.isnan(raw) else raw
    if key in METHOD_COLUMNS:
        return method_name(raw, names)
    if key in ("family", "models"):
        return FAMILIES.get(raw, method_name(raw, names))
    if isinstance(raw, (list, tuple)):
        return ", ".join(str(v) for v in raw)
    return raw


def human_rows(rows: Iterable[Mapping[str, Any]], drop: Sequence[str] = ()) -> list[dict]:
    """Rows with human keys and values (see :func:`column`, :func:`value`); ``drop``: raw keys left out."""
    names = method_names()
    return [{column(k): value(k, v, names) for k, v in row.items() if k not in drop} for row in rows]


def _printf(fmt: str, v: float) -> str:
    try:
        return fmt % v
    except (TypeError, ValueError):
        return f"{v:g}"


def table(rows: Iterable[Mapping[str, Any]] | pd.DataFrame, formats: Mapping[str, str] | None = None,
          drop: Sequence[str] = (), widths: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, dict]:
    """A frame for ``st.dataframe`` and its column configuration, from raw rows (or a frame with raw columns).

    Columns get human names; method and family names replace registry keys; an undefined number is shown as a
    dash (a numeric column with a gap becomes text, formatted with its ``formats`` entry, else ``%.4g``), never
    "None". ``formats``: printf formats by raw or human column name; ``widths``: ``"small"`` / ``"medium"`` /
    ``"large"`` by raw or human column name (numbers default to ``"small"``, so wide tables fit the page).

    Returns:
        ``(frame, column_config)``: the config maps human column names to ``st.column_config`` entries as plain
        dicts (``{"type": "number", "format": ..., "width": ...}``); :func:`column_config` turns them into
        Streamlit objects.
    """
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else [dict(r) for r in rows]
    keys = list(dict.fromkeys(k for r in records for k in r if k not in drop))
    names = method_names()
    formats = dict(formats or {})
    widths = dict(widths or {})
    columns: dict[str, list] = {}
    config: dict[str, dict] = {}
    for key in keys:
        human = column(key)
        raw = [r.get(key) for r in records]
        present = [v for v in raw if not _missing(v)]
        numeric = bool(present) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in present)
        fmt = formats.get(key) or formats.get(human)
        width = widths.get(key) or widths.get(human)
        if numeric and len(present) == len(raw):
            columns[human] = [float(v) if isinstance(v, float) else v for v in raw]
            config[human] = {"type": "number", "format": fmt, "width": width or "small"}
        elif numeric:
            columns[human] = [MISSING if _missing(v) else _printf(fmt or "%.4g", v) for v in raw]
            config[human] = {"type": "text", "width": width or "small"}
        else:
            columns[human] = [value(key, v, names) for v in raw]
            config[human] = {"type": "text", "width": width}
    return pd.DataFrame(columns), config


def column_config(config: Mapping[str, Mapping[str, Any]]) -> dict:
    """:func:`table`'s plain column configuration as ``st.column_config`` objects."""
    import streamlit as st  # noqa: PLC0415

    out = {}
    for name, entry in config.items():
        if entry.get("type") == "number":
            out[name] = st.column_config.NumberColumn(format=entry.get("format"), width=entry.get("width"))
        else:
            out[name] = st.column_config.TextColumn(width=entry.get("width"))
    return out


def csv_text(rows: Iterable[Mapping[str, Any]], stamp: Mapping[str, Any] | None = None,
             drop: Sequence[str] = ()) -> str:
    """CSV text of raw rows with human headers and names (``stamp``: columns every row carries first, e.g. the
    metric definition); undefined values are blank."""
    from explorer.export import records_csv  # noqa: PLC0415

    names = method_names()
    out = []
    for row in rows:
        merged = {**(stamp or {}), **row}
        out.append({column(k): (None if _missing(v) else value(k, v, names)) for k, v in merged.items()
                    if k not in drop})
    return records_csv(out)


def frame_csv(frame: pd.DataFrame) -> str:
    """CSV text of a frame already shown with human headers (a dash where undefined becomes blank)."""
    return frame.replace({MISSING: None}).to_csv(index=False, lineterminator="\n")


# --------------------------------------------------------------------------- figures

_NOT_SSIM = re.compile(r"drop|gap|mse|loss|error", re.IGNORECASE)


def _axis_title(axis) -> str:
    title = getattr(axis, "title", None)
    return (getattr(title, "text", None) or "") if title is not None else ""


def _numbers(values) -> list[float]:
    if values is None:
        return []
    out = []
    for v in values:
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v)):
            out.append(float(v))
    return out


def bound_ssim_axes(fig, extra: Sequence[str] = ()) -> Any:
    """Keep every SSIM axis of ``fig`` (a plotly figure) inside [0, 1]: an axis titled SSIM (not a drop or a gap),
    an axis holding a trace named SSIM, or one named in ``extra`` (``"yaxis2"``) is given a range around its data
    that never passes 1 (nor 0 from above). Returns ``fig``."""
    layout = fig.layout
    names = [k for k in layout.to_plotly_json() if re.fullmatch(r"[xy]axis\d*", k)]
    for axis_name in ("xaxis", "yaxis"):
        if axis_name not in names:
            names.append(axis_name)
    chosen = set(extra)
    for name in names:
        title = _axis_title(layout[name])
        if "SSIM" in title and not _NOT_SSIM.search(title):
            chosen.add(name)
    for trace in fig.data:
        if "SSIM" in (getattr(trace, "name", None) or "") and not _NOT_SSIM.search(trace.name):
            ref = getattr(trace, "yaxis", None) or "y"
            chosen.add("yaxis" + ref[1:])
    for name in chosen:
        letter, suffix = name[0], name[5:]
        ref = letter + suffix
        values = []
        for trace in fig.data:
            if (getattr(trace, f"{letter}axis", None) or letter) != ref:
                continue
            data = _numbers(getattr(trace, letter, None))
            values += data
            error = getattr(trace, f"error_{letter}", None)
            spread = _numbers(getattr(error, "array", None)) if error is not None else []
            values += [d + e for d, e in zip(data, spread)] + [d - e for d, e in zip(data, spread)]
        if not values:
            continue
        lo, hi = min(values), max(values)
        pad = max(0.02, 0.05 * (hi - lo))
        top = min(1.0, hi + pad)
        bottom = lo - pad if lo < 0 else max(0.0, lo - pad)
        if top - bottom < 1e-6:
            bottom = top - 0.1
        current = layout[name].range
        if current is not None and current[0] is not None and current[1] is not None and current[1] <= 1.0:
            continue
        layout[name].range = [bottom, top]
        layout[name].autorange = False
    return fig


def fit_caption(n: int | None, what: str = "models") -> str:
    """The number of points behind a fit (or a correlation), with a caveat when they are few."""
    if n is None:
        return ""
    text = f"n = {n} {what}"
    if n < 3:
        return text + ": too few points for a fit"
    if n < 10:
        return text + ": few points, read the fit as a rough guide"
    return text


__all__ = ["COLUMNS", "FAMILIES", "MISSING", "bound_ssim_axes", "column", "column_config", "csv_text", "fit_caption",
           "frame_csv", "human_rows", "method_name", "method_names", "table", "value"]
