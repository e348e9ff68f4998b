"""The statistics of reader studies against textbook values: ROC area (Hanley & McNeil 1982), Wilson intervals
(Newcombe 1998), Cohen's kappa (the usual 2x2 example), weighted kappa (by hand and the quadratic-kappa identity),
ICC (Shrout & Fleiss 1979), the LROC area by hand, and the two-way bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from explorer.errors import ExplorerError
from explorer.readers.analysis import (auc, bootstrap_means, icc, lroc_auc, metric_agreement, preference_summary,
                                       weighted_kappa, wilson)


def test_roc_area_of_hanley_and_mcneil_1982():
    # Table I of Hanley & McNeil (Radiology 143:29): 109 CT images rated 1 (definitely normal) .. 5; area 0.893
    normal = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    abnormal = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    assert auc(abnormal, normal) == pytest.approx(0.893, abs=5e-4)
    assert auc([1, 2], [3, 4]) == 0.0 and auc([3, 4], [1, 2]) == 1.0 and auc([2, 2], [2, 2]) == 0.5  # ties: 1/2
    with pytest.raises(ExplorerError):
        auc([1, 2], [])


def test_lroc_area_counts_only_localised_abnormal_cases():
    # psi(8,5)=1, psi(8,8)=1/2, psi(6,5)=1, psi(6,8)=0; the second abnormal case is mislocalised
    assert auc([8, 6], [5, 8]) == pytest.approx(2.5 / 4)
    assert lroc_auc([8, 6], [1, 0], [5, 8]) == pytest.approx(1.5 / 4)
    assert lroc_auc([8, 6], [1, 1], [5, 8]) == pytest.approx(auc([8, 6], [5, 8]))
    assert lroc_auc([8, 6], [0, 0], [5, 8]) == 0.0


@pytest.mark.parametrize("k, n, low, high", [
    (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Table I: method 3 (Wilson score)
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_intervals_of_newcombe_1998(k, n, low, high):
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=5e-5) and hi == pytest.approx(high, abs=5e-5)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_cohens_kappa_of_the_textbook_two_by_two():
    # 50 proposals: both yes 20, both no 15, A yes / B no 5, A no / B yes 10: p_o = 0.7, p_e = 0.5, kappa = 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert weighted_kappa(a, b, ["yes", "no"], "none") == pytest.approx(0.4)
    assert weighted_kappa(a, b, ["yes", "no"]) == pytest.approx(0.4)  # two categories: every weighting agrees


def test_weighted_kappa_by_hand_and_the_quadratic_identity():
    # O: (1,1) (1,2) (2,2) (2,3) (3,3) (3,3); rows 2,2,2; columns 1,2,3 (n = 6)
    a, b = [1, 1, 2, 2, 3, 3], [1, 2, 2, 3, 3, 3]
    assert weighted_kappa(a, b, (1, 2, 3), "linear") == pytest.approx(1 - (2 / 6) / (32 / 36))  # 0.625
    assert weighted_kappa(a, b, (1, 2, 3), "quadratic") == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, 200)
    y = np.clip(x + rng.integers(-1, 2, 200), 1, 5)
    # quadratic kappa = 2 cov / (var_x + var_y + (mean_x - mean_y)^2), moments with 1/n (Fleiss & Cohen 1973)
    identity = 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert weighted_kappa(list(x), list(y)) == pytest.approx(identity)
    assert weighted_kappa([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == 1.0
    assert math.isnan(weighted_kappa([3, 3, 3], [3, 3, 3]))  # no expected disagreement: undefined
    with pytest.raises(ExplorerError):
        weighted_kappa([1, 6], [1, 2])


def test_icc_of_shrout_and_fleiss_1979():
    # Table 2 of Shrout & Fleiss (Psychol Bull 86:420): 6 targets x 4 judges; ICC(1,1)=.17, ICC(2,1)=.29, ICC(3,1)=.71
    table = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    out = icc(table)
    assert (out["n"], out["k"]) == (6, 4)
    assert round(out["icc1_1"], 2) == 0.17 and round(out["icc2_1"], 2) == 0.29 and round(out["icc3_1"], 2) == 0.71
    with pytest.raises(ExplorerError):
        icc([[1, np.nan], [2, 3]])


def test_two_way_bootstrap_is_seeded_and_brackets_the_mean():
    rng = np.random.default_rng(1)
    cube = 3 + rng.standard_normal((2, 4, 30))
    cube[1] += 1
    cube[0, 0, :5] = np.nan  # missing answers are left out, not counted as zeros
    a = bootstrap_means(cube, 500, seed=3)
    b = bootstrap_means(cube, 500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert (a["ci_low"] < a["mean"]).all() and (a["mean"] < a["ci_high"]).all()
    assert a["mean"][0] == pytest.approx(np.nanmean(cube[0]))
    constant = bootstrap_means(np.full((1, 3, 5), 4.0), 100)
    assert constant["ci_low"][0] == constant["ci_high"][0] == 4.0
    # resampling readers widens the interval when readers differ (cases alike)
    readers_differ = np.repeat(np.array([1.0, 3.0, 5.0])[None, :, None], 20, axis=2)
    wide = bootstrap_means(readers_differ, 500)
    assert wide["ci_high"][0] - wide["ci_low"][0] > 1


def test_two_afc_preference_and_metric_agreement_on_a_hand_made_frame():
    rows = []
    for reader in (1, 2):
        for s in range(10):
            left_is_a = s % 2 == 0
            chose_a = s < 8  # A preferred in 8 of 10 cases by both readers
            rows.append({"reader_id": reader, "reader": f"r{reader}", "reader_kind": "human", "repeat": 0,
                         "item_id": f"i{reader}{s}", "case_id": f"c{s}", "subject": f"s{s}", "condition": "clean",
                         "pair": "A vs B", "label_left": "A" if left_is_a else "B", "label_right": "B" if left_is_a else "A",
                         "chosen": "A" if chose_a else "B", "choice": "left" if chose_a == left_is_a else "right",
                         "ssim_left": 0.9 if left_is_a else 0.8, "ssim_right": 0.8 if left_is_a else 0.9,
                         "psnr_left": 30.0, "psnr_right": 30.0, "nmse_left": 0.1, "nmse_right": 0.1})
    frame = pd.DataFrame(rows)
    pref = preference_summary(frame, n_boot=300)
    assert pref["choices"].tolist() == [20] and pref["first_chosen"].tolist() == [16]
    assert pref["share"][0] == pytest.approx(0.8)
    low, high = wilson(16, 20)
    assert pref["wilson_low"][0] == pytest.approx(low) and pref["wilson_high"][0] == pytest.approx(high)
    assert pref["p_value"][0] == pytest.approx(0.01181793, rel=1e-4)  # two-sided exact binomial, 16 of 20
    agree = metric_agreement(frame).set_index(["condition", "metric"])
    assert agree.loc[("all", "ssim"), "share"] == pytest.approx(0.8)  # A has the higher SSIM throughout
    assert agree.loc[("all", "psnr"), "choices"] == 0  # a tie decides nothing
