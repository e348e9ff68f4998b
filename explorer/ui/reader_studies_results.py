"""The results of a reading session on the Reader studies page: the analysis (:func:`explorer.readers.analysis
.analyse`) as tables with human column names, in the order and under the titles of :mod:`explorer.readers.names` (the
study report's too), the simulated-readers caveat, and the downloads (answers, audit log, each table as CSV)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from explorer.errors import ExplorerError
from explorer.readers.names import TITLES, display_order
from explorer.readers.store import SUFFIX
from explorer.readers.tasks import CRITERIA
from explorer.ui import present
from explorer.ui.runs.protocol import Download, downloads

COLUMNS = {
    "criterion": "Criterion", "condition": "Condition", "label": "Method", "mean": "Mean rating",
    "ci_low": "Interval low", "ci_high": "Interval high", "readers": "Readers", "subjects": "Slices",
    "ratings": "Ratings", "first": "Method A", "second": "Method B", "difference": "Difference (A − B)",
    "pairs": "Paired ratings", "pair": "Pair", "choices": "Choices", "first_chosen": "A chosen",
    "share": "Share", "wilson_low": "Wilson low", "wilson_high": "Wilson high", "p_value": "Binomial p",
    "comparisons": "Comparisons", "wins": "Wins", "measure": "Measure", "reader_a": "Reader A",
    "reader_b": "Reader B", "items": "Cases", "kappa": "κ", "exact": "Identical answers",
    "icc2_1": "ICC(2,1)", "icc1_1": "ICC(1,1)", "icc3_1": "ICC(3,1)", "reader": "Reader", "repeats": "Repeats",
    "metric": "Metric", "n": "Images", "spearman": "Spearman ρ", "spearman_p": "Spearman p",
    "kendall": "Kendall τ", "kendall_p": "Kendall p", "agree": "Choices agreeing", "auc": "ROC AUC",
    "auc_low": "ROC AUC low", "auc_high": "ROC AUC high", "lroc_auc": "LROC AUC", "lroc_low": "LROC AUC low",
    "lroc_high": "LROC AUC high", "sensitivity": "Sensitivity", "localised": "Localised sensitivity",
    "specificity": "Specificity", "present": "Cases with a lesion", "absent": "Cases without",
    "tolerance": "Tolerance (px)",
}
SHARES = {"preference": "Share choosing A", "method_preference": "Share of wins", "metric_agreement": "Share agreeing"}
METRIC_NAMES = {"ssim": "SSIM", "psnr": "PSNR", "nmse": "NMSE"}
METHOD_VALUES = ("label", "first", "second")


def condition_name(condition: str) -> str:
    """A case condition for people: ``attack eps=0.05`` -> ``attacked (ε = 0.05)``, ``shift:brain`` -> ``shifted
    (brain)``, ``lesion`` -> ``with a lesion``."""
    text = str(condition)
    if text.startswith("attack eps="):
        return f"attacked (ε = {text.split('=', 1)[1]})"
    if text.startswith("shift:"):
        return f"shifted ({text[len('shift:'):]})"
    return {"lesion": "with a lesion", "all": "all conditions"}.get(text, text)


def measure_name(measure: str) -> str:
    """What an agreement row measures: ``rating overall`` -> ``Overall image quality``."""
    text = str(measure)
    if text.startswith("rating ") and text[len("rating "):] in CRITERIA:
        return CRITERIA[text[len("rating "):]].title
    return {"choice": "Choice (2AFC)", "detection score": "Detection score (1-10)"}.get(text, text)


def human_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """An analysis table with human column names, method display names and metric names."""
    names = present.method_names()
    out = frame.copy()
    for column in METHOD_VALUES:
        if column in out:
            out[column] = [present.method_name(v, names) for v in out[column]]
    if "pair" in out:
        out["pair"] = [" vs ".join(str(present.method_name(p, names)) for p in str(v).split(" vs "))
                       for v in out["pair"]]
    if "metric" in out:
        out["metric"] = [METRIC_NAMES.get(v, v) for v in out["metric"]]
    if "condition" in out:
        out["condition"] = [condition_name(v) for v in out["condition"]]
    if "criterion" in out:
        out["criterion"] = [CRITERIA[v].title if v in CRITERIA else v for v in out["criterion"]]
    if "measure" in out:
        out["measure"] = [measure_name(v) for v in out["measure"]]
    columns = dict(COLUMNS)
    if name in SHARES:
        columns["share"] = SHARES[name]
    return out.rename(columns=columns)


#: Column (raw name) -> its display format; :data:`FORMATS` keys them by their human names.
VALUE_FORMATS = {"mean": "%.2f", "ci_low": "%.2f", "ci_high": "%.2f", "difference": "%+.2f", "share": "%.2f",
                 "wilson_low": "%.2f", "wilson_high": "%.2f", "p_value": "%.3g", "kappa": "%.3f", "exact": "%.2f",
                 "icc2_1": "%.3f", "icc1_1": "%.3f", "icc3_1": "%.3f", "spearman": "%+.3f", "spearman_p": "%.3g",
                 "kendall": "%+.3f", "kendall_p": "%.3g", "auc": "%.3f", "auc_low": "%.3f", "auc_high": "%.3f",
                 "lroc_auc": "%.3f", "lroc_low": "%.3f", "lroc_high": "%.3f", "sensitivity": "%.2f", "localised": "%.2f",
                 "specificity": "%.2f", "tolerance": "%g"}
FORMATS = {**{COLUMNS[k]: f for k, f in VALUE_FORMATS.items()},
           **{title: VALUE_FORMATS["share"] for title in SHARES.values()}}


def rating_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """The mean ratings as one row per method and condition, one column per criterion: ``mean [low, high]``."""
    names = present.method_names()
    rows: dict[tuple, dict] = {}
    for r in frame.itertuples():
        row = rows.setdefault((r.label, r.condition), {"Method": present.method_name(r.label, names),
                                                        "Condition": condition_name(r.condition)})
        interval = "" if pd.isna(r.ci_low) else f" [{r.ci_low:.2f}, {r.ci_high:.2f}]"
        row[CRITERIA[r.criterion].title if r.criterion in CRITERIA else r.criterion] = f"{r.mean:.2f}{interval}"
    grid = pd.DataFrame(list(rows.values()))
    titles = [c.title for c in CRITERIA.values() if c.title in grid.columns]
    return grid[["Method", "Condition", *titles, *[c for c in grid.columns if c not in ("Method", "Condition", *titles)]]]


@st.cache_data(show_spinner="Analysing the answers…", max_entries=8)
def _analysis(path: str, stamp: tuple, n_boot: int, kinds: tuple[str, ...]) -> Any:
    """The session's analysis (``stamp``: the readers' progress, so new answers give a new analysis)."""
    from explorer.readers.analysis import analyse  # noqa: PLC0415

    return analyse(path, n_boot=n_boot, kinds=kinds)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def results_section(path: Path) -> None:
    """The analysis tables (human names, captions, the simulated-readers caveat) and the downloads."""
    from explorer.readers.tables import answers_frame, audit_frame, status  # noqa: PLC0415

    name = path.name[:-len(SUFFIX)]
    info = status(path)
    kinds_present = {r["kind"] for r in info.readers if r["answered"]}
    c1, c2 = st.columns(2)
    n_boot = int(c1.number_input("Bootstrap replicates", 0, 20000, 2000, step=500, key="readers.boot",
                                 help="Resampling readers and cases; 0: no intervals."))
    with_simulated = c2.checkbox("Include simulated readers", value=True, key="readers.with_sim",
                                 disabled="simulated" not in kinds_present,
                                 help="Simulated readers are scripted model observers (tests and demonstrations).")
    kinds = ("human", "simulated") if with_simulated else ("human",)
    stamp = tuple((r["reader_id"], r["answered"], r["changes"], r["last"]) for r in info.readers)
    try:
        result = _analysis(str(path), stamp, n_boot, kinds)
    except ExplorerError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    for note in result.notes:
        if "SIMULATED" in note:
            st.warning(f"**Simulated readers**: {note}. Read these tables as a demonstration of the analysis, not as "
                       "a reader study.", icon=":material/smart_toy:")
        else:
            st.caption(note[:1].upper() + note[1:] + ".")
    csvs = []
    for key in display_order(result.tables):
        frame = result.tables[key]
        st.markdown(f"**{TITLES.get(key, key)}**")
        st.caption(result.captions.get(key, ""))
        if frame.empty:
            st.caption("No rows yet (too few answers, readers or repeats).")
            continue
        shown, config = present.table(human_table(key, frame), formats=FORMATS)
        if key == "ratings":  # the grid first; every row (with counts) folded away
            st.dataframe(rating_grid(frame), hide_index=True, key="readers.table.ratings_grid", width="stretch")
        with st.expander("Every rating row (with counts)") if key == "ratings" else contextlib.nullcontext():
            st.dataframe(shown, hide_index=True, key=f"readers.table.{key}", width="stretch",
                         column_config=present.column_config(config))
        csvs.append(Download(f"{TITLES.get(key, key)} (CSV)", present.frame_csv(shown), f"{name}_{key}.csv",
                             "text/csv", icon=":material/table:"))
    st.markdown("**Downloads**")
    answers = answers_frame(path)
    audit = audit_frame(path)
    downloads("readers.dl", [
        Download("Answers, unblinded (CSV)", answers.to_csv(index=False), f"{name}_answers.csv", "text/csv",
                 help="One row per reader and case: the answer, the reading time and the case's key (method, "
                      "condition, metrics); the columns of `python -m explorer readers export`."),
        Download("Answers, unblinded (Parquet)", _parquet(answers), f"{name}_answers.parquet"),
        Download("Audit log (CSV)", audit.to_csv(index=False), f"{name}_audit.csv", "text/csv",
                 help="Every showing, answer and change with its time."),
    ])
    if csvs:
        with st.expander("Each analysis table (CSV)"):
            downloads("readers.tables", csvs)


__all__ = ["COLUMNS", "FORMATS", "METRIC_NAMES", "SHARES", "VALUE_FORMATS", "condition_name", "human_table",
           "measure_name", "rating_grid", "results_section"]
