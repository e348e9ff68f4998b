"""A study's report from its results table: every registered experiment's sections (figures and tables), the
per-slice rows, provenance and the spec; records in, rows and HTML out (no Streamlit).

* :func:`conclusions`: the papers' conclusions beside what this run measured (the report's first section);
* :func:`sections`: each experiment's :attr:`~explorer.robustness.registry.Experiment.report` on its records;
* :func:`summaries`: each experiment's summary rows;
* :func:`slice_table`: the per-slice rows of every experiment;
* :func:`report_html`: all of it in one self-contained HTML file (plotly embedded once, no network needed), with any
  further sections and CSV downloads its caller adds (a study folder's reader studies:
  :func:`explorer.readers.report.study_readers`; this layer does not import that one).
"""

from __future__ import annotations

import base64
import html
import json
import math
from typing import Iterable, Sequence

from explorer.engine.tasks import Record
from explorer.robustness.registry import Section, experiments, records_of


def definitions(records: Sequence[Record]) -> str:
    """One line naming the metric definition(s) of the records (and each protocol their experiments ran under)."""
    from explorer.metrics import METRIC_DEFINITIONS  # noqa: PLC0415

    metrics = sorted({r.metric for r in records})
    text = "Metrics: " + "; ".join(f"{m} ({METRIC_DEFINITIONS.get(m, 'unknown')})" for m in metrics) + "."
    protocols = sorted({(r.experiment, json.loads(r.scores).get("protocol")) for r in records
                        if r.scores.startswith("{") and "protocol" in json.loads(r.scores)})
    if protocols:
        text += " Protocols: " + ", ".join(f"{e} {p}" for e, p in protocols) + "."
    return text


def conclusions(records: Sequence[Record]) -> list[dict]:
    """The talk's conclusions that this run's experiments test, each beside what was measured: rows of
    :meth:`~explorer.robustness.registry.Verdict.row` in registry order."""
    return [verdict.row() for entry in experiments() for verdict in entry.conclusions(records_of(records, entry.name))]


def conclusions_section(records: Sequence[Record]) -> Section | None:
    """The report's first page: the papers' conclusions beside this run's numbers (``None`` when none applies)."""
    rows = conclusions(records)
    if not rows:
        return None
    counts = {v: sum(r["this run"] == v for r in rows) for v in ("agrees", "disagrees", "undecided")}
    return Section("The papers' conclusions beside this run", None, (("Conclusions", rows),),
                   f"{counts['agrees']} agree, {counts['disagrees']} disagree, {counts['undecided']} undecided. Each "
                   "verdict follows the rule in its row, fixed before any run; the numbers are this run's, on its data "
                   "and settings. " + definitions(records))


def sections(records: Sequence[Record]) -> list[tuple[str, Section]]:
    """``(key, section)`` of the conclusions (key ``conclusions``) and then every registered experiment's report on
    its records, in registry order; the key is ``<experiment>.<n>`` (its n-th section)."""
    first = conclusions_section(records)
    return ([("conclusions", first)] if first else []) + [
        (f"{entry.name}.{n}", section) for entry in experiments()
        for n, section in enumerate(entry.report(records_of(records, entry.name)))]


def summaries(records: Sequence[Record]) -> dict[str, list[dict]]:
    """``{experiment name: summary rows}`` of the experiments that have rows."""
    out = {}
    for entry in experiments():
        rows = entry.summary(records_of(records, entry.name))
        if rows:
            out[entry.name] = rows
    return out


def slice_table(records: Iterable[Record]) -> list[dict]:
    """The per-slice rows of every experiment (what the page's table and the CSV show)."""
    out = []
    for r in records:
        perturbation = json.loads(r.perturbation) if r.perturbation else {}
        out.append({"experiment": r.experiment, "role": r.role, "data": r.file or r.data, "slice": r.slice,
                    "label": r.label, "method": r.method, "mask": f"{r.mask_type} {r.acceleration:g}x",
                    "metric": r.metric,
                    "eps": perturbation.get("eps"), "ssim": r.ssim, "psnr": r.psnr, "nmse": r.nmse,
                    "seconds": r.seconds, "error": r.error})
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


def _download(label: str, name: str, text: str) -> str:
    """A link that saves ``text`` as the CSV file ``name`` (a data URI: the report stays one self-contained file)."""
    data = base64.b64encode(text.encode()).decode()
    return (f"<p><a download=\"{html.escape(name)}\" href=\"data:text/csv;charset=utf-8;base64,{data}\">"
            f"{html.escape(label)}</a></p>")


def report_html(records: list[Record], spec_text: str = "", title: str = "Study report", more: Sequence[Section] = (),
                files: Sequence[tuple[str, str, str]] = ()) -> str:
    """A self-contained HTML report: every experiment's sections (plotly embedded once, no network needed), then the
    ``more`` sections and the ``files`` (``(label, file name, CSV text)``, offered as download links), the per-slice
    rows, the spec and the provenance (versions, devices, checkpoints)."""
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(records)} rows, {sum(bool(r.error) for r in records)} failed.</p>",
             f"<p>{html.escape(definitions(records))}</p>"]
    first = True
    for section in [*(section for _, section in sections(records)), *more]:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.caption:
            parts.append(f"<p>{html.escape(section.caption)}</p>")
        if section.figure is not None:
            parts.append(section.figure.to_html(full_html=False, include_plotlyjs=True if first else False))
            first = False
        for caption, rows in section.tables:
            parts += [f"<h3>{html.escape(caption)}</h3>", _table_html(rows)]
    parts += [_download(*file) for file in files]
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


__all__ = ["conclusions", "conclusions_section", "definitions", "report_html", "sections", "slice_table", "summaries"]
