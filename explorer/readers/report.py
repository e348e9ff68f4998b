"""Reader studies in a study's report: the reading sessions registered with a study folder
(:func:`explorer.readers.links.study_sessions`), each analysed (:func:`explorer.readers.analysis.analyse`) and given as
report sections (:class:`~explorer.robustness.registry.Section`) and as one CSV.

Per session the report shows who read what (readers, how many answered, cases), the answer to "does accuracy predict
what readers see?" (:func:`accuracy_answers`) and the tables of the Reader studies page's results, in its order and
with its titles (:mod:`explorer.readers.names`). The study layer cannot import this one: the caller hands the
sections and the CSV to :func:`explorer.study.report.report_html` (``more`` and ``files``), as
``python -m explorer readers report DIR`` and the Study page do.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from explorer.errors import ExplorerError
from explorer.readers.analysis import METRIC_SIGN, N_BOOT, Analysis, analyse
from explorer.readers.links import study_sessions
from explorer.readers.names import TASK_NAMES, TITLES, display_order
from explorer.readers.tables import SessionStatus, status

CSV_NAME = "reader-analysis.csv"
#: A metric "predicts what readers see" when its rank correlation with the readers' scores (2AFC: the share of choices
#: for the image it ranks better) goes its way at this level.
ALPHA = 0.05
ACCURACY = "Does accuracy predict what readers see?"
#: Task -> how :func:`accuracy_answers` decides, as the report says it.
RULES = {"likert": f"\"yes\" when the Spearman correlation across images of the mean reader rating with the metric "
                   f"has p < {ALPHA:g} in the metric's direction (NMSE: negative)",
         "detection": f"\"yes\" when the Spearman correlation across lesion images of the mean reader score with the "
                      f"metric has p < {ALPHA:g} in the metric's direction (NMSE: negative)",
         "2afc": "\"yes\" when the 95% Wilson interval of the share of choices for the image the metric ranks better "
                 "lies above 0.5"}


# ----------------------------------------------------------------------------- the answer


def _correlation_answer(row: dict) -> str:
    rho, p = row.get("spearman"), row.get("spearman_p")
    if rho is None or p is None or not (math.isfinite(rho) and math.isfinite(p)):
        return "undecided (too few images, or no spread)"
    if p >= ALPHA:
        return "not shown"
    return "yes" if METRIC_SIGN[row["metric"]] * rho > 0 else "no: the opposite"


def _agreement_answer(row: dict) -> str:
    low, high = row.get("wilson_low"), row.get("wilson_high")
    if not row.get("choices") or low is None or not math.isfinite(low):
        return "undecided (no pair the metric ranks)"
    return "yes" if low > 0.5 else "no: the opposite" if high < 0.5 else "not shown"


def _headline_measure(measures: list[str]) -> str | None:
    """The Likert criterion the answer rests on: overall quality when asked, else the first criterion."""
    return "rating overall" if "rating overall" in measures else (measures[0] if measures else None)


def accuracy_answers(result: Analysis) -> list[dict]:
    """Does accuracy predict what readers see? One row per metric (SSIM, PSNR, NMSE) from the analysis' own tables.

    Likert and detection: the Spearman correlation across images of the mean reader score (Likert: overall quality, or
    the first criterion asked; detection: the 1..10 score on lesion-present images) with the metric; "yes" when it is
    significant at :data:`ALPHA` in the metric's direction (NMSE: negative), "no: the opposite" when significant the
    other way, else "not shown". 2AFC: the share of choices for the image the metric ranks better, over all
    conditions; "yes" when its Wilson interval (at the analysis' level) lies above 0.5, "no: the opposite" below.

    Returns:
        rows ``{"metric", "measure", "statistic", "value", "p_value", "ci_low", "ci_high", "n", "answer"}`` (``n``:
        images, or 2AFC choices; ``nan`` where a column does not apply); none before any answer.
    """
    rows = []
    if "metric_agreement" in result.tables:
        frame = result.tables["metric_agreement"]
        for row in frame[frame["condition"] == "all"].to_dict("records"):
            rows.append({"metric": row["metric"], "measure": "choice (all conditions)",
                         "statistic": "share of choices for the better-ranked image (Wilson interval)",
                         "value": row["share"], "p_value": math.nan, "ci_low": row["wilson_low"],
                         "ci_high": row["wilson_high"], "n": int(row["choices"]), "answer": _agreement_answer(row)})
    elif "metric_correlation" in result.tables:
        frame = result.tables["metric_correlation"]
        measure = _headline_measure(list(dict.fromkeys(frame["measure"])))
        for row in frame[frame["measure"] == measure].to_dict("records"):
            rows.append({"metric": row["metric"], "measure": measure, "statistic": "Spearman rho across images",
                         "value": row["spearman"], "p_value": row["spearman_p"], "ci_low": math.nan,
                         "ci_high": math.nan, "n": int(row["n"]), "answer": _correlation_answer(row)})
    return rows


def accuracy_sentence(rows: list[dict]) -> str:
    """:func:`accuracy_answers` as one line: ``"SSIM: yes (rho +0.71, p 0.003, 12 images); ..."``."""
    if not rows:
        return "no answers to compare with the metrics yet"
    parts = []
    for r in rows:
        if r["statistic"].startswith("Spearman"):
            evidence = (f"rho {r['value']:+.2f}, p {r['p_value']:.2g}, " if math.isfinite(r["value"]) else "") + \
                f"{r['n']} images"
        else:
            evidence = (f"share {r['value']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}], " if math.isfinite(
                r["ci_low"]) else "") + f"{r['n']} choices"
        parts.append(f"{r['metric'].upper()}: {r['answer']} ({evidence})")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- one session


@dataclass(frozen=True, eq=False)
class SessionReport:
    """One registered session: its ``path``, ``status`` and ``analysis`` (both ``None`` and ``error`` set when the
    file could not be read)."""

    path: Path
    status: SessionStatus | None = None
    analysis: Analysis | None = None
    error: str = ""

    @property
    def name(self) -> str:
        return self.status.name if self.status is not None and self.status.name else self.path.stem

    def tables(self) -> dict[str, list[dict]]:
        """``{table name: plain rows}``: ``readers`` (every reader added: ``reader``, ``kind``, ``answered``, ``of``,
        ``changes``), ``accuracy`` (:func:`accuracy_answers`), then the analysis tables in display order; ``nan``
        as ``None`` (what the report and the CSV show)."""
        if self.status is None or self.analysis is None:
            return {}
        out = {"readers": [{"reader": r["name"], "kind": r["kind"], "answered": r["answered"], "of": r["total"],
                            "changes": r["changes"]} for r in self.status.readers],
               "accuracy": _plain(pd.DataFrame(accuracy_answers(self.analysis)))}
        for key in display_order(self.analysis.tables):
            out[key] = _plain(self.analysis.tables[key])
        return out

    def summary(self) -> str:
        """One paragraph: the task, how many readers answered (simulated ones counted), cases and answers, the
        source, the answer to :data:`ACCURACY`, and the analysis' notes."""
        if self.status is None or self.analysis is None:
            return f"{self.path} could not be read: {self.error}"
        st, result = self.status, self.analysis
        readers = result.readers
        simulated = int((readers["kind"] == "simulated").sum()) if len(readers) else 0
        answers = int(readers["answers"].sum()) if len(readers) else 0
        text = (f"{TASK_NAMES.get(st.task, st.task)}: {len(readers)} readers answered"
                + (f" ({simulated} of them SIMULATED model observers, not people)" if simulated else "")
                + f", {len(st.readers)} added; {st.cases} cases ({st.items} items per reader with repeats); "
                f"{answers} answers. Built {st.created[:16].replace('T', ' ')} UTC from {st.source}. "
                f"{ACCURACY} {accuracy_sentence(accuracy_answers(result))}. Rule: {RULES.get(st.task, '')}.")
        if result.notes:
            text += " Notes: " + "; ".join(result.notes) + "."
        return text


def _plain(frame: pd.DataFrame) -> list[dict]:
    """A DataFrame as JSON-ready rows (``nan`` as ``None``; floats to 15 decimals)."""
    return json.loads(frame.to_json(orient="records", double_precision=15)) if len(frame) else []


def _stamp(st: SessionStatus) -> tuple:
    """What changes with a new answer (or a session rebuilt in place): an unchanged session's analysis is reused
    (:func:`_analysed`)."""
    return (st.created, st.name, *((r["reader_id"], r["answered"], r["changes"], r["last"]) for r in st.readers))


@functools.lru_cache(maxsize=16)
def _analysed(path: str, stamp: tuple, n_boot: int, seed: int) -> Analysis:
    return analyse(path, n_boot=n_boot, seed=seed)


def session_report(path: str | Path, n_boot: int = N_BOOT, seed: int = 0) -> SessionReport:
    """A session's status and analysis (every reader, simulated ones included, as the results page by default);
    an unreadable file gives a report with its ``error`` (one line) rather than raising."""
    path = Path(path)
    try:
        st = status(path)
        return SessionReport(path, st, _analysed(str(path), _stamp(st), n_boot, seed))
    except (ExplorerError, OSError, sqlite3.Error) as exc:
        return SessionReport(path, error=str(exc).splitlines()[0] if str(exc) else "unreadable")


# ----------------------------------------------------------------------------- a study's sessions


@dataclass(frozen=True, eq=False)
class StudyReaders:
    """The reader studies of a study folder: ``sessions`` (:class:`SessionReport`) and ``notes`` (links whose
    session is gone)."""

    sessions: tuple[SessionReport, ...] = ()
    notes: tuple[str, ...] = ()

    def sections(self) -> list:
        """Report sections (:class:`~explorer.robustness.registry.Section`): one per session, titled
        ``Reader study: <name>``, its caption :meth:`SessionReport.summary`, its tables those of
        :meth:`SessionReport.tables` under their titles; none without sessions."""
        from explorer.robustness.registry import Section  # noqa: PLC0415 (the registry brings in the engine)

        out = []
        for n, report in enumerate(self.sessions):
            caption = report.summary()
            if n == 0 and self.notes:
                caption += " " + "; ".join(self.notes) + "."
            titles = {"readers": "Readers", "accuracy": ACCURACY, **TITLES}
            tables = tuple((titles.get(key, key), rows) for key, rows in report.tables().items())
            out.append(Section(f"Reader study: {report.name}", None, tables, caption))
        return out

    def frame(self) -> pd.DataFrame:
        """Every table of every session in one long DataFrame: ``session``, ``task``, ``table`` (the names of
        :meth:`SessionReport.tables`), then the union of the tables' columns (empty where a table has no such
        column); empty without sessions."""
        rows = [{"session": report.name, "task": report.status.task, "table": key, **row}
                for report in self.sessions if report.status is not None
                for key, table in report.tables().items() for row in table]
        return pd.DataFrame(rows).convert_dtypes()  # whole numbers stay whole beside the empty cells

    def csv(self) -> str:
        """:meth:`frame` as CSV text (``""`` without sessions)."""
        frame = self.frame()
        return frame.to_csv(index=False) if len(frame) else ""

    def files(self) -> list[tuple[str, str, str]]:
        """``(label, file name, CSV text)`` of the downloads the report offers (none without sessions)."""
        text = self.csv()
        return [("Reader analysis (CSV)", CSV_NAME, text)] if text else []


def study_readers(study: str | Path, n_boot: int = N_BOOT, seed: int = 0) -> StudyReaders:
    """The reader studies registered with a study folder, analysed (nothing when it has none)."""
    paths, notes = study_sessions(study)
    return StudyReaders(tuple(session_report(p, n_boot, seed) for p in paths), tuple(notes))


def report_sections(study: str | Path, n_boot: int = N_BOOT, seed: int = 0) -> list:
    """The study report's "Reader study" sections of a study folder (``[]`` when no session is registered)."""
    return study_readers(study, n_boot, seed).sections()


__all__ = ["ACCURACY", "ALPHA", "CSV_NAME", "RULES", "SessionReport", "StudyReaders", "accuracy_answers", "accuracy_sentence",
           "report_sections", "session_report", "study_readers"]
