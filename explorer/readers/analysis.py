"""Analysis of a reading session as the field does it; every result a pandas DataFrame (or plain numbers) that the
results page, the study report and the CLI show as they are.

Statistics (pure functions, checked against textbook values in ``tests/readers/test_statistics.py``):

* :func:`auc`: the empirical ROC area (Mann-Whitney U / (n1 n0), ties count one half; Hanley & McNeil 1982);
* :func:`lroc_auc`: the localisation-aware area: an abnormal image counts only when its mark is within the tolerance
  of the lesion (the nonparametric LROC area, Popescu 2007: ``P(correctly localised and rated above a normal)``);
* :func:`wilson`: the Wilson score interval of a proportion (Newcombe 1998, method 3);
* :func:`weighted_kappa`: Cohen's weighted kappa (quadratic weights by default; Cohen 1968);
* :func:`icc`: intraclass correlations ICC(1,1), ICC(2,1), ICC(3,1) of Shrout & Fleiss (1979) from the two-way ANOVA;
* :func:`bootstrap_means`: a two-way bootstrap resampling readers AND cases (subjects) with replacement, the same
  draws for every group (so differences between methods are paired); percentile intervals.

Session analyses (frames from :func:`explorer.readers.tables.answers_frame`): first showings only, except
:func:`consistency`, which pairs each repeat with its first showing. A "case" for resampling is the subject (the source
slice): every method's image of a slice, and its lesion-present and -absent versions, are resampled together.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.errors import ExplorerError

METRICS = ("ssim", "psnr", "nmse")
#: +1: higher is better; -1: lower is better.
METRIC_SIGN = {"ssim": 1.0, "psnr": 1.0, "nmse": -1.0}
N_BOOT = 2000


# ----------------------------------------------------------------------------- statistics


def _psi(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """``(n1, n0)``: 1 where a positive's score is above a negative's, 1/2 on a tie, 0 below."""
    p, n = np.asarray(positive, float)[:, None], np.asarray(negative, float)[None, :]
    return (p > n) + 0.5 * (p == n)


def auc(positive, negative) -> float:
    """The empirical ROC area of scores of abnormal (``positive``) and normal (``negative``) cases.

    Raises:
        ExplorerError: no positive or no negative score.
    """
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if not len(positive) or not len(negative):
        raise ExplorerError("an ROC area needs scores of both abnormal and normal cases")
    return float(_psi(positive, negative).mean())


def lroc_auc(positive, hits, negative) -> float:
    """The nonparametric LROC area: ``mean over (abnormal i, normal j) of hit_i * psi(x_i, y_j)``.

    Args:
        positive: scores of abnormal cases; hits: whether each abnormal case's mark localised the lesion;
        negative: scores of normal cases (their highest suspicion, wherever marked).
    """
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if not len(positive) or not len(negative):
        raise ExplorerError("an LROC area needs scores of both abnormal and normal cases")
    return float((np.asarray(hits, float)[:, None] * _psi(positive, negative)).mean())


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n`` (``(nan, nan)`` when ``n == 0``)."""
    from scipy import stats  # noqa: PLC0415

    if n <= 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def weighted_kappa(a, b, categories=(1, 2, 3, 4, 5), weights: str = "quadratic") -> float:
    """Cohen's weighted kappa of two raters' paired ratings.

    Args:
        a, b: the two raters' ratings of the same cases (equal length).
        categories: the ordered scale (ratings outside it are refused).
        weights: ``"quadratic"`` (disagreement ``(i - j)^2``), ``"linear"`` (``|i - j|``) or ``"none"``
            (Cohen's unweighted kappa).

    Returns:
        kappa, or ``nan`` when it is undefined (fewer than 2 cases, or no expected disagreement).
    """
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ExplorerError("weighted kappa needs paired ratings (equal lengths)")
    index = {c: i for i, c in enumerate(categories)}
    if any(x not in index for x in a + b):
        raise ExplorerError(f"ratings must be among {list(categories)}")
    k = len(categories)
    if len(a) < 2:
        return math.nan
    observed = np.zeros((k, k))
    for x, y in zip(a, b):
        observed[index[x], index[y]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(1), observed.sum(0))
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    w = {"quadratic": (i - j) ** 2, "linear": np.abs(i - j), "none": (i != j).astype(float)}.get(weights)
    if w is None:
        raise ExplorerError(f"weights must be quadratic, linear or none, got {weights!r}")
    denominator = float((w * expected).sum())
    return math.nan if denominator == 0 else 1.0 - float((w * observed).sum()) / denominator


def icc(matrix) -> dict:
    """Shrout & Fleiss (1979) intraclass correlations of an ``(n targets, k raters)`` table with no missing cells.

    Returns:
        ``{"icc1_1", "icc2_1", "icc3_1", "n", "k"}``: one-way random, two-way random (absolute agreement; the
        usual reader-study choice), two-way mixed (consistency); ``nan`` where undefined.
    """
    x = np.asarray(matrix, float)
    if x.ndim != 2 or np.isnan(x).any():
        raise ExplorerError("ICC needs a complete (targets x raters) table")
    n, k = x.shape
    out = {"n": int(n), "k": int(k), "icc1_1": math.nan, "icc2_1": math.nan, "icc3_1": math.nan}
    if n < 2 or k < 2:
        return out
    grand = x.mean()
    ss_rows = k * ((x.mean(1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    msw = (ss_cols + ss_err) / (n * (k - 1))

    def ratio(num, den):
        return math.nan if den == 0 else float(num / den)

    out["icc1_1"] = ratio(msr - msw, msr + (k - 1) * msw)
    out["icc2_1"] = ratio(msr - mse, msr + (k - 1) * mse + k * (msc - mse) / n)
    out["icc3_1"] = ratio(msr - mse, msr + (k - 1) * mse)
    return out


def _draws(size: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, size)`` multinomial counts: how often each of ``size`` units is drawn in each replicate."""
    return rng.multinomial(size, np.full(size, 1.0 / size), size=n_boot).astype(float)


def bootstrap_means(cube: np.ndarray, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Means of a ``(groups, readers, subjects)`` cube (``nan``: no answer) with two-way bootstrap intervals.

    Each replicate draws readers and subjects with replacement (the same draws for every group) and takes the mean of
    the drawn cells that hold answers. With one reader the interval reflects the cases only.

    Returns:
        one row per group: ``mean``, ``ci_low``, ``ci_high`` (percentile interval at ``level``).
    """
    cube = np.asarray(cube, float)
    present = ~np.isnan(cube)
    values = np.where(present, cube, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = values.sum((1, 2)) / present.sum((1, 2))
    g, r, s = cube.shape
    if n_boot < 1 or r == 0 or s == 0:
        return pd.DataFrame({"mean": mean, "ci_low": np.nan, "ci_high": np.nan})
    rng = np.random.default_rng(seed)
    wr, ws = _draws(r, n_boot, rng), _draws(s, n_boot, rng)
    num = np.einsum("br,grs,bs->bg", wr, values, ws)
    den = np.einsum("br,grs,bs->bg", wr, present.astype(float), ws)
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = num / den
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(stats, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return pd.DataFrame({"mean": mean, "ci_low": low, "ci_high": high})


def _cube(frame: pd.DataFrame, groups: list[str], value: str) -> tuple[list[tuple], np.ndarray, list, list]:
    """``(group keys, cube (G, R, S), readers, subjects)`` of ``value`` averaged per (group, reader, subject)."""
    keys = list(dict.fromkeys(map(tuple, frame[groups].itertuples(index=False, name=None))))
    readers = sorted(frame["reader_id"].unique())
    subjects = list(dict.fromkeys(frame["subject"]))
    cube = np.full((len(keys), len(readers), len(subjects)), np.nan)
    gi = {k: i for i, k in enumerate(keys)}
    ri = {r: i for i, r in enumerate(readers)}
    si = {s: i for i, s in enumerate(subjects)}
    cells = frame.groupby(groups + ["reader_id", "subject"], sort=False)[value].mean()
    for key, v in cells.items():
        cube[gi[tuple(key[:len(groups)])], ri[key[-2]], si[key[-1]]] = v
    return keys, cube, readers, subjects


# ----------------------------------------------------------------------------- session analyses


def first_showings(answers: pd.DataFrame) -> pd.DataFrame:
    """The answers to first showings (repeats left out), in the session's build order (``design_position``, when the
    frame has it: conditions and methods then come out in the order the session was built)."""
    if not len(answers):
        return answers
    frame = answers[answers["repeat"] == 0]
    return frame.sort_values("design_position", kind="stable") if "design_position" in frame else frame


def criteria_of(answers: pd.DataFrame) -> list[str]:
    """The Likert criteria in a frame (its ``rating_<criterion>`` columns)."""
    return [c[len("rating_"):] for c in answers.columns if c.startswith("rating_")]


def ratings_long(answers: pd.DataFrame) -> pd.DataFrame:
    """Likert answers in long form: one row per (answer, criterion) with ``criterion`` and ``rating``."""
    criteria = criteria_of(answers)
    if not criteria or answers.empty:
        return pd.DataFrame(columns=["reader_id", "subject", "label", "condition", "criterion", "rating", "repeat"])
    keep = [c for c in answers.columns if not c.startswith("rating_")]
    out = answers.melt(id_vars=keep, value_vars=[f"rating_{c}" for c in criteria], var_name="criterion",
                       value_name="rating")
    out["criterion"] = out["criterion"].str.slice(len("rating_"))
    return out


def rating_summary(answers: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per criterion, condition and method: mean rating with a two-way (readers x cases) bootstrap interval.

    Columns: ``criterion``, ``condition``, ``label``, ``mean``, ``ci_low``, ``ci_high``, ``readers``, ``subjects``,
    ``ratings``.
    """
    long = ratings_long(first_showings(answers))
    if long.empty:
        return pd.DataFrame(columns=["criterion", "condition", "label", "mean", "ci_low", "ci_high", "readers",
                                     "subjects", "ratings"])
    keys, cube, _, _ = _cube(long, ["criterion", "condition", "label"], "rating")
    stats = bootstrap_means(cube, n_boot, seed, level)
    counts = long.groupby(["criterion", "condition", "label"], sort=False).agg(
        readers=("reader_id", "nunique"), subjects=("subject", "nunique"), ratings=("rating", "size"))
    rows = [{"criterion": c, "condition": cond, "label": label, **stats.iloc[i].to_dict(),
             **counts.loc[(c, cond, label)].to_dict()} for i, (c, cond, label) in enumerate(keys)]
    return pd.DataFrame(rows)


def rating_differences(answers: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per criterion and condition, each pair of methods: the mean paired difference of ratings (first minus second,
    same reader and subject) with a two-way bootstrap interval; an interval excluding 0 is a difference at ``level``.

    Columns: ``criterion``, ``condition``, ``first``, ``second``, ``difference``, ``ci_low``, ``ci_high``, ``pairs``.
    """
    long = ratings_long(first_showings(answers))
    cols = ["criterion", "condition", "first", "second", "difference", "ci_low", "ci_high", "pairs"]
    if long.empty:
        return pd.DataFrame(columns=cols)
    cells = long.groupby(["criterion", "condition", "reader_id", "subject", "label"], sort=False)["rating"].mean()
    wide = cells.unstack("label")
    labels = list(dict.fromkeys(long["label"]))
    diffs = []
    for a, b in combinations(labels, 2):
        if a in wide and b in wide:
            d = (wide[a] - wide[b]).dropna().rename("rating").reset_index()
            d["first"], d["second"] = a, b
            diffs.append(d)
    if not diffs:
        return pd.DataFrame(columns=cols)
    frame = pd.concat(diffs, ignore_index=True)
    keys, cube, _, _ = _cube(frame, ["criterion", "condition", "first", "second"], "rating")
    stats = bootstrap_means(cube, n_boot, seed, level)
    sizes = frame.groupby(["criterion", "condition", "first", "second"], sort=False).size()
    return pd.DataFrame([{"criterion": k[0], "condition": k[1], "first": k[2], "second": k[3],
                          "difference": stats["mean"].iloc[i], "ci_low": stats["ci_low"].iloc[i],
                          "ci_high": stats["ci_high"].iloc[i], "pairs": int(sizes.loc[k])} for i, k in enumerate(keys)])


def preference_summary(answers: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """2AFC: per pair of methods and condition, how often the first (in the session's label order) was preferred.

    Columns: ``pair``, ``condition``, ``first``, ``second``, ``choices``, ``first_chosen``, ``share``,
    ``wilson_low``/``wilson_high`` (all choices pooled as independent), ``ci_low``/``ci_high`` (two-way bootstrap over
    readers and cases: the interval to quote when several readers read the same cases), ``p_value`` (two-sided exact
    binomial test of no preference, pooled).
    """
    from scipy import stats  # noqa: PLC0415

    cols = ["pair", "condition", "first", "second", "choices", "first_chosen", "share", "wilson_low", "wilson_high",
            "ci_low", "ci_high", "p_value"]
    frame = first_showings(answers)
    if frame.empty or "pair" not in frame:
        return pd.DataFrame(columns=cols)
    frame = frame.assign(first=frame["pair"].str.split(" vs ").str[0],
                         second=frame["pair"].str.split(" vs ").str[1])
    frame = frame.assign(first_won=(frame["chosen"] == frame["first"]).astype(float))
    keys, cube, _, _ = _cube(frame, ["pair", "condition"], "first_won")
    boot = bootstrap_means(cube, n_boot, seed, level)
    rows = []
    for i, (pair, condition) in enumerate(keys):
        part = frame[(frame["pair"] == pair) & (frame["condition"] == condition)]
        n, k = len(part), int(part["first_won"].sum())
        low, high = wilson(k, n, level)
        rows.append({"pair": pair, "condition": condition, "first": part["first"].iloc[0],
                     "second": part["second"].iloc[0], "choices": n, "first_chosen": k, "share": k / n,
                     "wilson_low": low, "wilson_high": high, "ci_low": boot["ci_low"].iloc[i],
                     "ci_high": boot["ci_high"].iloc[i], "p_value": float(stats.binomtest(k, n).pvalue)})
    return pd.DataFrame(rows, columns=cols)


def method_preference(answers: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """2AFC: each method's share of wins over all its comparisons (per condition), with a Wilson interval.

    Columns: ``condition``, ``label``, ``comparisons``, ``wins``, ``share``, ``wilson_low``, ``wilson_high``.
    """
    frame = first_showings(answers)
    cols = ["condition", "label", "comparisons", "wins", "share", "wilson_low", "wilson_high"]
    if frame.empty or "chosen" not in frame:
        return pd.DataFrame(columns=cols)
    rows = []
    for condition, part in frame.groupby("condition", sort=False):
        for label in dict.fromkeys(list(part["label_left"]) + list(part["label_right"])):
            mine = part[(part["label_left"] == label) | (part["label_right"] == label)]
            wins = int((mine["chosen"] == label).sum())
            low, high = wilson(wins, len(mine), level)
            rows.append({"condition": condition, "label": label, "comparisons": len(mine), "wins": wins,
                         "share": wins / len(mine), "wilson_low": low, "wilson_high": high})
    return pd.DataFrame(rows, columns=cols)


def default_tolerance(answers: pd.DataFrame) -> float:
    """The default localisation tolerance: the largest lesion's size (pixels from the click to the centre)."""
    sizes = [l_["size"] for text in answers.get("lesions", pd.Series(dtype=object)).dropna()
             for l_ in json.loads(text)] if len(answers) else []
    return float(max(sizes)) if sizes else 5.0


def detections(answers: pd.DataFrame, tolerance: float | None = None) -> pd.DataFrame:
    """Detection answers with ``hit``: a lesion-present image marked present with the click within ``tolerance``
    pixels of a lesion centre (default :func:`default_tolerance`)."""
    frame = answers.copy()
    if frame.empty:
        return frame.assign(hit=pd.Series(dtype=bool))
    tol = default_tolerance(frame) if tolerance is None else float(tolerance)
    frame["hit"] = frame["lesion"].astype(bool) & frame["present"].astype(bool) & \
        frame["distance"].astype(float).le(tol).fillna(False)
    frame.attrs["tolerance"] = tol
    return frame


def _reader_aucs(part: pd.DataFrame, readers: list, subjects: list, localised: bool):
    """Per reader the psi matrix pieces: ``(reader index, positive subject idx, negative subject idx, matrix)``."""
    si = {s: i for i, s in enumerate(subjects)}
    pieces = []
    for r_index, reader in enumerate(readers):
        mine = part[part["reader_id"] == reader]
        pos, neg = mine[mine["lesion"].astype(bool)], mine[~mine["lesion"].astype(bool)]
        if pos.empty or neg.empty:
            continue
        m = _psi(pos["score"].to_numpy(), neg["score"].to_numpy())
        if localised:
            m = pos["hit"].to_numpy(float)[:, None] * m
        pieces.append((r_index, pos["subject"].map(si).to_numpy(), neg["subject"].map(si).to_numpy(), m))
    return pieces


def _reader_averaged(pieces, wr: np.ndarray | None, ws: np.ndarray | None) -> np.ndarray | float:
    """Reader-averaged AUC; with draws ``wr`` (B, R) and ``ws`` (B, S): one value per replicate."""
    if wr is None:
        return float(np.mean([m.mean() for _, _, _, m in pieces])) if pieces else math.nan
    total = np.zeros(len(wr))
    weight = np.zeros(len(wr))
    for r_index, ip, ineg, m in pieces:
        a, b = ws[:, ip], ws[:, ineg]  # (B, n1), (B, n0)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.einsum("bi,ij,bj->b", a, m, b) / (a.sum(1) * b.sum(1))
        ok = np.isfinite(value)
        total += np.where(ok, value, 0.0) * wr[:, r_index]
        weight += ok * wr[:, r_index]
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / weight


def detection_summary(answers: pd.DataFrame, tolerance: float | None = None, n_boot: int = N_BOOT, seed: int = 0,
                      level: float = 0.95) -> pd.DataFrame:
    """Detection per method: the reader-averaged ROC area and LROC area (localisation within ``tolerance`` pixels)
    with two-way bootstrap intervals, sensitivity (lesion-present images marked present), localised sensitivity
    and specificity (lesion-absent images marked absent), pooled over readers.

    Columns: ``label``, ``auc``, ``auc_low``, ``auc_high``, ``lroc_auc``, ``lroc_low``, ``lroc_high``,
    ``sensitivity``, ``localised``, ``specificity``, ``readers``, ``present``, ``absent``, ``tolerance``.
    """
    cols = ["label", "auc", "auc_low", "auc_high", "lroc_auc", "lroc_low", "lroc_high", "sensitivity", "localised",
            "specificity", "readers", "present", "absent", "tolerance"]
    frame = detections(first_showings(answers), tolerance)
    if frame.empty or "score" not in frame:
        return pd.DataFrame(columns=cols)
    tol = frame.attrs["tolerance"]
    readers = sorted(frame["reader_id"].unique())
    subjects = list(dict.fromkeys(frame["subject"]))
    rng = np.random.default_rng(seed)
    wr = _draws(len(readers), n_boot, rng) if n_boot > 0 else None
    ws = _draws(len(subjects), n_boot, rng) if n_boot > 0 else None
    alpha = (1 - level) / 2
    rows = []
    for label, part in frame.groupby("label", sort=False):
        row = {"label": label}
        for name, localised in (("auc", False), ("lroc", True)):
            pieces = _reader_aucs(part, readers, subjects, localised)
            key = "auc" if name == "auc" else "lroc_auc"
            row[key] = _reader_averaged(pieces, None, None)
            low = high = math.nan
            if pieces and wr is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    low, high = np.nanpercentile(_reader_averaged(pieces, wr, ws), [100 * alpha, 100 * (1 - alpha)])
            row[f"{name}_low"], row[f"{name}_high"] = low, high
        pos, neg = part[part["lesion"].astype(bool)], part[~part["lesion"].astype(bool)]
        row.update(sensitivity=float(pos["present"].mean()) if len(pos) else math.nan,
                   localised=float(pos["hit"].mean()) if len(pos) else math.nan,
                   specificity=float((~neg["present"].astype(bool)).mean()) if len(neg) else math.nan,
                   readers=int(part["reader_id"].nunique()), present=int(len(pos)), absent=int(len(neg)), tolerance=tol)
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def _measures(frame: pd.DataFrame, task: str) -> dict[str, pd.Series]:
    """The per-answer values agreement and consistency compare: Likert ``rating <criterion>``, 2AFC the chosen label,
    detection the 1..10 score."""
    if task == "likert":
        return {f"rating {c}": frame[f"rating_{c}"] for c in criteria_of(frame)}
    if task == "2afc":
        return {"choice": frame["chosen"]}
    return {"detection score": frame["score"]}


def _kappa(x: list, y: list, task: str) -> float:
    """Kappa of two lists of paired answers (:func:`_measures` values): 2AFC Cohen's unweighted kappa of the chosen
    labels (``nan`` with a single label); Likert and detection the quadratic-weighted kappa on 1..5 and 1..10."""
    if task == "2afc":
        cats = sorted(set(x) | set(y))
        return weighted_kappa(x, y, cats, "none") if len(cats) > 1 else math.nan
    scale = tuple(range(1, 11)) if task == "detection" else (1, 2, 3, 4, 5)
    return weighted_kappa([int(v) for v in x], [int(v) for v in y], scale)


def agreement(answers: pd.DataFrame, task: str) -> pd.DataFrame:
    """Inter-reader agreement for every pair of readers on the items both answered (first showings): Likert and
    detection quadratic-weighted kappa (on 1..5 and 1..10), 2AFC Cohen's kappa of the chosen method; and the share of
    identical answers.

    Columns: ``measure``, ``reader_a``, ``reader_b``, ``items``, ``kappa``, ``exact``.
    """
    frame = first_showings(answers)
    cols = ["measure", "reader_a", "reader_b", "items", "kappa", "exact"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    names = dict(zip(frame["reader_id"], frame["reader"]))
    rows = []
    for measure, series in _measures(frame, task).items():
        table = frame.assign(_v=series).pivot_table(index="item_id", columns="reader_id", values="_v",
                                                    aggfunc="first")
        for a, b in combinations(sorted(table.columns), 2):
            both = table[[a, b]].dropna()
            x, y = list(both[a]), list(both[b])
            rows.append({"measure": measure, "reader_a": names[a], "reader_b": names[b], "items": len(both),
                         "kappa": _kappa(x, y, task),
                         "exact": float(np.mean(np.asarray(x) == np.asarray(y))) if x else math.nan})
    return pd.DataFrame(rows, columns=cols)


def icc_table(answers: pd.DataFrame, task: str) -> pd.DataFrame:
    """ICC(2,1) (and ICC(1,1), ICC(3,1)) of the readers' ratings per Likert criterion, or of detection scores, on the
    items every reader answered (first showings); empty for 2AFC or fewer than two readers.

    Columns: ``measure``, ``icc2_1``, ``icc1_1``, ``icc3_1``, ``items``, ``readers``.
    """
    frame = first_showings(answers)
    cols = ["measure", "icc2_1", "icc1_1", "icc3_1", "items", "readers"]
    if frame.empty or task == "2afc" or frame["reader_id"].nunique() < 2:
        return pd.DataFrame(columns=cols)
    rows = []
    for measure, series in _measures(frame, task).items():
        table = frame.assign(_v=series.astype(float)).pivot_table(index="item_id", columns="reader_id", values="_v",
                                                                  aggfunc="first").dropna()
        if len(table) < 2:
            continue
        value = icc(table.to_numpy())
        rows.append({"measure": measure, "icc2_1": value["icc2_1"], "icc1_1": value["icc1_1"],
                     "icc3_1": value["icc3_1"], "items": value["n"], "readers": value["k"]})
    return pd.DataFrame(rows, columns=cols)


def consistency(answers: pd.DataFrame, task: str) -> pd.DataFrame:
    """Intra-reader consistency from the repeats: each repeat paired with the same reader's first answer to that case.

    Columns: ``reader``, ``measure``, ``repeats``, ``kappa`` (quadratic-weighted for Likert and detection scores;
    Cohen's for the 2AFC choice), ``exact`` (share of identical answers; 2AFC: the same method chosen again,
    whichever side it was on).
    """
    cols = ["reader", "measure", "repeats", "kappa", "exact"]
    if answers.empty or not (answers["repeat"] > 0).any():
        return pd.DataFrame(columns=cols)
    rows = []
    for reader_id, mine in answers.groupby("reader_id", sort=True):
        first = mine[mine["repeat"] == 0].set_index("case_id")
        again = mine[mine["repeat"] > 0].set_index("case_id")
        common = first.index.intersection(again.index)
        if not len(common):
            continue
        m1, m2 = _measures(first.loc[common], task), _measures(again.loc[common], task)
        for measure in m1:
            x, y = list(m1[measure]), list(m2[measure])
            rows.append({"reader": mine["reader"].iloc[0], "measure": measure, "repeats": len(common),
                         "kappa": _kappa(x, y, task),
                         "exact": float(np.mean(np.asarray(x) == np.asarray(y)))})
    return pd.DataFrame(rows, columns=cols)


def _correlate(x, y) -> dict:
    from scipy import stats  # noqa: PLC0415

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out = {"n": int(len(x)), "spearman": math.nan, "spearman_p": math.nan, "kendall": math.nan, "kendall_p": math.nan}
    if len(x) >= 3 and x.std() > 0 and y.std() > 0:
        rho, p = stats.spearmanr(x, y)
        tau, q = stats.kendalltau(x, y)
        out.update(spearman=float(rho), spearman_p=float(p), kendall=float(tau), kendall_p=float(q))
    return out


def metric_correlation(answers: pd.DataFrame, task: str) -> pd.DataFrame:
    """Does accuracy predict what readers see? Rank correlations across images of the readers' mean score of each
    image (first showings) with its SSIM, PSNR and NMSE (Likert: per criterion; detection: the 1..10 score on
    lesion-present images). NMSE is an error: a metric that predicts the readers correlates negatively with it.

    Columns: ``measure``, ``metric``, ``n``, ``spearman``, ``spearman_p``, ``kendall``, ``kendall_p``.
    """
    cols = ["measure", "metric", "n", "spearman", "spearman_p", "kendall", "kendall_p"]
    frame = first_showings(answers)
    if frame.empty or task == "2afc":
        return pd.DataFrame(columns=cols)
    if task == "detection":
        frame = frame[frame["lesion"].astype(bool)]
    rows = []
    for measure, series in _measures(frame, task).items():
        per_image = frame.assign(_v=series.astype(float)).groupby("case_id").agg(
            score=("_v", "mean"), **{m: (m, "first") for m in METRICS})
        for metric in METRICS:
            rows.append({"measure": measure, "metric": metric, **_correlate(per_image[metric], per_image["score"])})
    return pd.DataFrame(rows, columns=cols)


def metric_agreement(answers: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """2AFC: how often the readers chose the image a metric ranks better (higher SSIM / PSNR, lower NMSE), per
    condition and overall; 0.5 means the metric says nothing about the readers' choice.

    Columns: ``condition``, ``metric``, ``choices``, ``agree``, ``share``, ``wilson_low``, ``wilson_high``.
    """
    cols = ["condition", "metric", "choices", "agree", "share", "wilson_low", "wilson_high"]
    frame = first_showings(answers)
    if frame.empty or "chosen" not in frame:
        return pd.DataFrame(columns=cols)
    rows = []
    groups = [("all", frame)] + list(frame.groupby("condition", sort=False))
    for condition, part in groups:
        for metric in METRICS:
            left, right = part[f"{metric}_left"].astype(float), part[f"{metric}_right"].astype(float)
            better = np.where(METRIC_SIGN[metric] * (left - right) > 0, "left",
                              np.where(METRIC_SIGN[metric] * (left - right) < 0, "right", ""))
            decided = (better != "") & left.notna().to_numpy() & right.notna().to_numpy()
            n = int(decided.sum())
            k = int((part["choice"].to_numpy()[decided] == better[decided]).sum())
            low, high = wilson(k, n, level)
            rows.append({"condition": condition, "metric": metric, "choices": n, "agree": k,
                         "share": k / n if n else math.nan, "wilson_low": low, "wilson_high": high})
    return pd.DataFrame(rows, columns=cols)


# ----------------------------------------------------------------------------- one call for a session

CAPTIONS = {
    "ratings": "Mean rating per method (1 worst .. 5 best) with {level:.0%} intervals from a bootstrap over readers "
               "and cases",
    "rating_differences": "Paired differences of mean ratings between methods (same reader, same slice); an interval "
                          "that excludes 0 is a difference at the {level:.0%} level",
    "preference": "2AFC: share of choices for the first method of each pair, Wilson interval (choices pooled) and "
                  "bootstrap interval over readers and cases, exact binomial p of no preference",
    "method_preference": "2AFC: each method's share of wins over all its comparisons",
    "detection": "Detection: reader-averaged ROC area and localisation-aware LROC area (a hit only when the click is "
                 "within the tolerance of the lesion), bootstrap intervals over readers and cases",
    "agreement": "Inter-reader agreement: quadratic-weighted kappa (2AFC: Cohen's kappa of the chosen method) and the "
                 "share of identical answers, per pair of readers",
    "icc": "Intraclass correlation ICC(2,1) (two-way random, absolute agreement) of the readers' scores",
    "consistency": "Intra-reader consistency: each repeated case against the same reader's first answer",
    "metric_correlation": "Does accuracy predict what readers see? Rank correlation across images of the mean reader "
                          "score with each metric (NMSE is an error: agreement shows as a negative correlation)",
    "metric_agreement": "Does accuracy predict what readers see? Share of 2AFC choices that went to the image the "
                        "metric ranks better (0.5: no better than a coin)",
}


@dataclass(frozen=True, eq=False)
class Analysis:
    """A session's analysis.

    Attributes:
        task: the session's task; readers: ``reader_id``, ``name``, ``kind``, ``answers`` (a DataFrame).
        tables: ``{name: DataFrame}`` in display order (names of :data:`CAPTIONS`; only those the task has).
        captions: ``{name: caption}``; notes: what the reader of the tables should know (simulated readers...).
    """

    task: str
    readers: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """JSON-ready: ``{"task", "notes", "readers": [...], "tables": {name: {"caption", "rows"}}}``
        (``nan`` as ``None``)."""
        def rows(frame: pd.DataFrame) -> list[dict]:
            return json.loads(frame.to_json(orient="records", double_precision=6))

        return {"task": self.task, "notes": list(self.notes), "readers": rows(self.readers),
                "tables": {name: {"caption": self.captions.get(name, ""), "rows": rows(frame)}
                           for name, frame in self.tables.items()}}


def sections(result: Analysis, title: str = "Reader study") -> list:
    """The analysis as study-report sections (:class:`~explorer.robustness.registry.Section`: title, caption, tables of
    plain rows), one per table, in display order; the first section's caption carries the notes (simulated readers)."""
    from explorer.robustness.registry import Section  # noqa: PLC0415 (the registry brings in the engine)

    rows = result.as_dict()["tables"]
    out = []
    for n, (name, table) in enumerate(rows.items()):
        caption = table["caption"] + ("." if table["caption"] else "")
        if n == 0 and result.notes:
            caption += " " + "; ".join(result.notes) + "."
        out.append(Section(f"{title}: {name.replace('_', ' ')}", None, ((name, table["rows"]),), caption))
    return out


TASK_TABLES = {
    "likert": ("ratings", "rating_differences", "agreement", "icc", "consistency", "metric_correlation"),
    "2afc": ("preference", "method_preference", "agreement", "consistency", "metric_agreement"),
    "detection": ("detection", "agreement", "icc", "consistency", "metric_correlation"),
}


def analyse_frame(answers: pd.DataFrame, task: str, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95,
                  tolerance: float | None = None) -> Analysis:
    """Every analysis of the task on an answers frame (:func:`explorer.readers.tables.answers_frame`'s columns)."""
    if not 0 < level < 1:
        raise ExplorerError(f"the interval level must be in (0, 1), got {level}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or not 0 <= n_boot <= 100_000:
        raise ExplorerError(f"bootstrap replicates must be an integer in 0..100000, got {n_boot!r}")
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise ExplorerError(f"the localisation tolerance must be a number of pixels >= 0, got {tolerance}")
    makers = {
        "ratings": lambda: rating_summary(answers, n_boot, seed, level),
        "rating_differences": lambda: rating_differences(answers, n_boot, seed, level),
        "preference": lambda: preference_summary(answers, n_boot, seed, level),
        "method_preference": lambda: method_preference(answers, level),
        "detection": lambda: detection_summary(answers, tolerance, n_boot, seed, level),
        "agreement": lambda: agreement(answers, task),
        "icc": lambda: icc_table(answers, task),
        "consistency": lambda: consistency(answers, task),
        "metric_correlation": lambda: metric_correlation(answers, task),
        "metric_agreement": lambda: metric_agreement(answers, level),
    }
    names = TASK_TABLES[task]
    tables = {name: makers[name]() for name in names}
    if answers.empty:
        readers = pd.DataFrame(columns=["reader_id", "name", "kind", "answers"])
    else:
        readers = answers.groupby("reader_id", sort=True).agg(name=("reader", "first"), kind=("reader_kind", "first"),
                                                              answers=("item_id", "size")).reset_index()
    notes = []
    simulated = int((readers["kind"] == "simulated").sum()) if len(readers) else 0
    if simulated:
        notes.append(f"{simulated} of {len(readers)} readers are SIMULATED (scripted model observers, "
                     "explorer.readers.simulated), not people")
    if answers.empty:
        notes.append("no answers yet")
    if task == "detection" and "detection" in tables and len(tables["detection"]):
        notes.append(f"localisation tolerance: {tables['detection']['tolerance'].iloc[0]:g} px from the lesion centre")
    return Analysis(task, readers, tables, {n: CAPTIONS[n].format(level=level) for n in names}, tuple(notes))


def analyse(path: str | Path, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95,
            tolerance: float | None = None, kinds: tuple[str, ...] = ("human", "simulated")) -> Analysis:
    """Analyse a session file (every answer so far).

    Args:
        n_boot: bootstrap replicates (0: no intervals); seed: their seed; level: interval level;
        tolerance: detection localisation tolerance in pixels (default: the largest lesion's size);
        kinds: which readers count (``"human"``, ``"simulated"``).

    Raises:
        ExplorerError: see :func:`explorer.readers.store.connect`; bad settings.
    """
    from explorer.readers.store import KINDS, session_meta  # noqa: PLC0415
    from explorer.readers.tables import answers_frame  # noqa: PLC0415

    for kind in kinds:
        if kind not in KINDS:
            raise ExplorerError(f"reader kinds are {', '.join(KINDS)}, got {kind!r}")
    meta = session_meta(path)
    answers = answers_frame(path)
    if len(answers):
        answers = answers[answers["reader_kind"].isin(kinds)]
    return analyse_frame(answers, meta["task"], n_boot, seed, level, tolerance)


__all__ = ["Analysis", "CAPTIONS", "METRICS", "METRIC_SIGN", "N_BOOT", "TASK_TABLES", "agreement", "analyse",
           "analyse_frame", "auc", "bootstrap_means", "consistency", "criteria_of", "default_tolerance",
           "detection_summary", "detections", "first_showings", "icc", "icc_table", "lroc_auc", "method_preference",
           "metric_agreement", "metric_correlation", "preference_summary", "rating_differences", "rating_summary",
           "ratings_long", "sections", "weighted_kappa", "wilson"]
