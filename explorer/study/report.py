"""Summaries and figures of a study's results table (records in; rows, ``go.Figure`` and HTML out; no Streamlit).

* :func:`attack_summary`: SSIM / PSNR drop per method and budget, mean and spread over slices;
* :func:`feature_rows`: one row per (record, inserted feature), for recovery vs whole-image SSIM;
* :func:`shift_summary`: per model mean SSIM on the in-distribution and the shifted set, with the least-squares
  line across models and per family;
* :func:`ttt_summary`: per (slice, network) SSIM before and after test-time training, the reference, the gap
  closed;
* :func:`report_html`: all of it in one self-contained HTML file (figures, tables, the spec, provenance).
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.engine.tasks import Record
from explorer.figures.style import FONT, TEMPLATE
from explorer.robustness.shift import linear_fit
from explorer.figures.shift import PALETTE, shift_figure


def _ok(records: Iterable[Record], experiment: str) -> list[Record]:
    return [r for r in records if r.experiment == experiment and not r.error]


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return (float(a.mean()), float(a.std())) if a.size else (float("nan"), float("nan"))


def attack_summary(records: Iterable[Record]) -> list[dict]:
    """``[{label, method, eps, n, ssim_clean, ssim_drop, ssim_drop_sd, psnr_drop, psnr_drop_sd}]`` sorted by label
    and eps (eps 0 rows carry the clean values with zero drop)."""
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    methods = {}
    for r in _ok(records, "attack"):
        scores = json.loads(r.scores) if r.scores else {}
        groups[(r.label, float(scores.get("eps", json.loads(r.perturbation or "{}").get("eps", 0.0))))].append(scores)
        methods[r.label] = r.method
    rows = []
    for (label, eps), items in sorted(groups.items()):
        ssim_drop, ssim_sd = _mean_sd([s.get("ssim_drop") for s in items])
        psnr_drop, psnr_sd = _mean_sd([s.get("psnr_drop") for s in items])
        rows.append({"label": label, "method": methods[label], "eps": eps, "n": len(items),
                     "ssim_clean": _mean_sd([s.get("ssim_clean") for s in items])[0], "ssim_drop": ssim_drop,
                     "ssim_drop_sd": ssim_sd, "psnr_drop": psnr_drop, "psnr_drop_sd": psnr_sd})
    return rows


def attack_figure(rows: Sequence[dict], *, height: int = 340) -> go.Figure:
    """SSIM drop against the budget per method: the mean over slices with a band of one standard deviation."""
    fig = go.Figure()
    for i, label in enumerate(dict.fromkeys(r["label"] for r in rows)):
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["eps"])
        x = [0.0] + [r["eps"] for r in mine]
        y = [0.0] + [r["ssim_drop"] for r in mine]
        sd = [0.0] + [r["ssim_drop_sd"] for r in mine]
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=x + x[::-1], y=[a + b for a, b in zip(y, sd)] + [a - b for a, b in zip(y, sd)][::-1],
                                 fill="toself", fillcolor=color, opacity=0.15, line=dict(width=0), hoverinfo="skip",
                                 showlegend=False, legendgroup=label))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, legendgroup=label, line=dict(color=color),
                                 customdata=[0] + [r["n"] for r in mine],
                                 hovertemplate=f"<b>{label}</b><br>eps %{{x:g}}<br>SSIM drop %{{y:.4f}}"
                                               "<br>slices %{customdata}<extra></extra>"))
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, margin=dict(l=60, r=20, t=30, b=40),
                      xaxis_title="eps = ||e|| / ||k||", yaxis_title="SSIM drop (mean ± sd over slices)",
                      legend=dict(orientation="h", y=-0.22, yanchor="top", x=0))
    return fig


def feature_rows(records: Iterable[Record]) -> list[dict]:
    """One row per (record, feature) of the features experiment (:func:`explorer.robustness.features.study_rows`)."""
    from explorer.robustness.features import study_rows  # noqa: PLC0415

    return study_rows(_ok(records, "features"))


def shift_pairs(records: Iterable[Record]) -> list[str]:
    """The shifted sets of a study's shift pairs (``role`` ``"ood:<set>"`` -> ``"<set>"``), in first-seen order."""
    return list(dict.fromkeys(r.role[4:] for r in _ok(records, "shift") if r.role.startswith("ood:")))


def shift_summary(records: Iterable[Record], pair: str | None = None) -> tuple[list[dict], dict | None,
                                                                              dict[str, dict | None]]:
    """Per model (instance label) mean SSIM on the ``id`` rows and on the shifted set ``pair`` (default: the first);
    the fit across all models and per family.

    Returns:
        ``(rows, fit, fits_by_family)``; rows as :func:`explorer.figures.shift.shift_figure` takes them.
    """
    from explorer.recon.base import get_method  # noqa: PLC0415

    records = list(records)
    pairs = shift_pairs(records)
    pair = pair if pair is not None else (pairs[0] if pairs else None)
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"id": [], "ood": []})
    methods = {}
    for r in _ok(records, "shift"):
        role = "id" if r.role == "id" else ("ood" if r.role == f"ood:{pair}" else None)
        if r.ssim is not None and role is not None:
            values[r.label][role].append(r.ssim)
            methods[r.label] = r.method
    rows = []
    for label, v in values.items():
        if v["id"] and v["ood"]:
            family = get_method(methods[label]).family
            rows.append({"label": label, "method": methods[label], "family": family,
                         "ssim_id": float(np.mean(v["id"])), "ssim_ood": float(np.mean(v["ood"])),
                         "gap": float(np.mean(v["id"]) - np.mean(v["ood"])),
                         "slices_id": len(v["id"]), "slices_ood": len(v["ood"])})
    fit = linear_fit([r["ssim_id"] for r in rows], [r["ssim_ood"] for r in rows])
    families = {f: linear_fit([r["ssim_id"] for r in rows if r["family"] == f],
                              [r["ssim_ood"] for r in rows if r["family"] == f])
                for f in dict.fromkeys(r["family"] for r in rows)}
    return rows, fit, families


def ttt_summary(records: Iterable[Record]) -> list[dict]:
    """One row per (network, slice): SSIM before and after test-time training, the reference, the gap closed."""
    rows = []
    for r in _ok(records, "ttt"):
        s = json.loads(r.scores) if r.scores else {}
        rows.append({"label": r.label, "method": r.method, "data": r.file or r.data, "slice": r.slice,
                     "ssim_before": s.get("ssim_before"), "ssim_after": s.get("ssim_after"),
                     "ssim_reference": s.get("ssim_reference"), "gap_closed": s.get("gap_closed"),
                     "steps": s.get("steps"), "stop_reason": s.get("stop_reason")})
    return rows


def ttt_figure(rows: Sequence[dict], *, height: int = 340) -> go.Figure:
    """Mean SSIM per network: before test-time training, after it, and the reference network's."""
    fig = go.Figure()
    labels = list(dict.fromkeys(r["label"] for r in rows))
    for i, (key, name) in enumerate((("ssim_before", "before TTT"), ("ssim_after", "after TTT"),
                                     ("ssim_reference", "trained on the target"))):
        means = [_mean_sd([r[key] for r in rows if r["label"] == label])[0] for label in labels]
        fig.add_trace(go.Bar(x=labels, y=means, name=name, marker_color=PALETTE[i]))
    fig.update_layout(height=height, template=TEMPLATE, font=FONT, barmode="group", yaxis_title="mean SSIM",
                      margin=dict(l=60, r=20, t=30, b=40), legend=dict(orientation="h", y=-0.2, yanchor="top", x=0))
    return fig


def slice_table(records: Iterable[Record]) -> list[dict]:
    """The per-slice rows of every experiment (what the page's table and the CSV show)."""
    out = []
    for r in records:
        perturbation = json.loads(r.perturbation) if r.perturbation else {}
        out.append({"experiment": r.experiment, "role": r.role, "data": r.file or r.data, "slice": r.slice,
                    "label": r.label, "method": r.method, "mask": f"{r.mask_type} {r.acceleration:g}x",
                    "eps": perturbation.get("eps"), "ssim": r.ssim, "psnr": r.psnr, "nmse": r.nmse,
                    "seconds": r.seconds, "error": r.error})
    return out


def figures(records: list[Record]) -> dict[str, go.Figure]:
    """Every figure the records support, by name (``attack``, ``features``, ``shift``, ``ttt``)."""
    from explorer.figures.features import scatter_figure  # noqa: PLC0415
    from explorer.robustness.features import correlation  # noqa: PLC0415

    out = {}
    attack = attack_summary(records)
    if attack:
        out["attack"] = attack_figure(attack)
    feats = feature_rows(records)
    if feats:
        out["features"] = scatter_figure(feats, correlation(feats))
    for pair in shift_pairs(records):
        shift_rows, fit, families = shift_summary(records, pair)
        if shift_rows:
            out[f"shift:{pair}"] = shift_figure(shift_rows, fit, family_fits=families)
    ttt = ttt_summary(records)
    if ttt:
        out["ttt"] = ttt_figure(ttt)
    return out


def _table_html(rows: Sequence[dict], digits: int = 4) -> str:
    if not rows:
        return "<p>(none)</p>"
    keys = list(rows[0])

    def cell(v):
        if isinstance(v, float):
            return "" if not math.isfinite(v) else f"{v:.{digits}g}"
        return html.escape("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(k))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_html(records: list[Record], spec_text: str = "", title: str = "Study report") -> str:
    """A self-contained HTML report: every figure (plotly embedded once, no network needed), the summary tables,
    the spec and the provenance (versions, devices, checkpoints)."""
    figs = figures(records)
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(records)} rows, {sum(bool(r.error) for r in records)} failed.</p>"]
    first = True
    captions = {"attack": "Adversarial attacks: SSIM drop vs budget", "features": "Small features: recovery vs whole-image SSIM",
                "shift": "Distribution shift: SSIM in- vs out-of-distribution", "ttt": "Test-time training"}
    for name, fig in figs.items():
        caption = captions.get(name) or f"{captions['shift']}: {name.split(':', 1)[1]}"
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=True if first else False))
        first = False
    attack = attack_summary(records)
    if attack:
        parts += ["<h3>Attack summary</h3>", _table_html(attack)]
    for pair in shift_pairs(records):
        shift_rows, fit, families = shift_summary(records, pair)
        fits = [{"family": "all models", **(fit or {})}] + [{"family": f, **(v or {})} for f, v in families.items()]
        parts += [f"<h3>Shift to {html.escape(pair)}: per model</h3>", _table_html(shift_rows),
                  "<h3>Linear fits</h3>", _table_html(fits)]
    ttt = ttt_summary(records)
    if ttt:
        parts += ["<h3>Test-time training per slice</h3>", _table_html(ttt)]
    parts += ["<h2>Per-slice rows</h2>", _table_html(slice_table(records))]
    provenance = sorted({(r.explorer_version, r.torch_version, r.numpy_version, r.fastmri_version, r.device)
                         for r in records})
    checkpoints = sorted({(r.label, r.checkpoint_sha256) for r in records if r.checkpoint_sha256})
    parts += ["<h2>Provenance</h2>",
              _table_html([{"explorer": p[0], "torch": p[1], "numpy": p[2], "fastmri": p[3], "device": p[4]}
                           for p in provenance]),
              _table_html([{"instance": label, "checkpoint sha256": sha} for label, sha in checkpoints]),
              "<h2>Spec</h2>", f"<pre>{html.escape(spec_text)}</pre>"]
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


__all__ = ["attack_figure", "attack_summary", "feature_rows", "figures", "report_html", "shift_summary",
           "slice_table", "ttt_figure", "ttt_summary"]
