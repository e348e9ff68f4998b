"""Analysis of whole sessions filled by SIMULATED readers (model observers): every table the task promises, the
simulated readers labelled, intra-reader consistency from repeats, and "does accuracy predict what readers see?"
answered with numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.errors import ExplorerError
from explorer.readers.analysis import TASK_TABLES, analyse
from explorer.readers.codes import add_reader
from explorer.readers.reading import Reading
from explorer.readers.simulated import ModelObserver, detect, simulate
from explorer.readers.tables import answers_frame, readers_frame
from tests.readers.conftest import LABELS


def test_likert_session_with_noiseless_observers(make_session):
    path = make_session("likert", repeats=0.5)
    added = simulate(path, readers=3, observer=ModelObserver(noise=0.0, bias=0.0))
    assert [r.kind for r in added] == ["simulated"] * 3 and all("simulated" in r.name for r in added)
    assert set(readers_frame(path)["kind"]) == {"simulated"}
    result = analyse(path, n_boot=200)
    assert list(result.tables) == list(TASK_TABLES["likert"])
    assert any("SIMULATED" in note for note in result.notes)
    ratings = result.tables["ratings"]
    clean = ratings[(ratings["criterion"] == "overall") & (ratings["condition"] == "clean")].set_index("label")
    assert list(clean.index) == list(LABELS)  # in the session's build order
    assert clean["mean"]["LABELALPHA"] > clean["mean"]["LABELBETA"] > clean["mean"]["LABELGAMMA"]  # SSIM order
    assert (ratings["ci_low"] <= ratings["mean"]).all() and (ratings["mean"] <= ratings["ci_high"]).all()
    assert (ratings["readers"] == 3).all() and (ratings["subjects"] == 4).all()
    corr = result.tables["metric_correlation"].set_index(["measure", "metric"])
    assert corr.loc[("rating overall", "ssim"), "spearman"] > 0.9  # they rate by SSIM: it predicts them
    assert corr.loc[("rating overall", "nmse"), "spearman"] < 0  # an error: agreement shows as a negative rho
    consistency = result.tables["consistency"]
    assert (consistency["exact"] == 1.0).all() and set(consistency["repeats"]) == {12}  # noiseless: consistent
    agreement = result.tables["agreement"]
    assert len(agreement) == 3 * 4 and (agreement["kappa"] == 1.0).all()
    icc = result.tables["icc"]
    assert np.allclose(icc["icc2_1"], 1.0) and (icc["items"] == 24).all()
    diffs = result.tables["rating_differences"]
    row = diffs[(diffs["criterion"] == "overall") & (diffs["condition"] == "clean") & (diffs["first"] == "LABELALPHA")
                & (diffs["second"] == "LABELGAMMA")]
    assert row["difference"].iloc[0] > 0 and row["ci_low"].iloc[0] > 0
    doc = json.loads(json.dumps(result.as_dict()))  # JSON-ready, nan as null
    assert doc["task"] == "likert" and set(doc["tables"]) == set(TASK_TABLES["likert"])


def test_noisy_observers_disagree_somewhat_and_answers_are_reproducible(make_session, tmp_path):
    a = make_session("likert", name="a.reading", repeats=0.5, seed=1)
    simulate(a, readers=2, observer=ModelObserver(noise=1.0), seed=4)
    frame = answers_frame(a)
    again = make_session("likert", name="b.reading", repeats=0.5, seed=1)
    simulate(again, readers=2, observer=ModelObserver(noise=1.0), seed=4)
    cols = ["reader", "case_id", "repeat", "rating_overall", "rating_sharpness"]
    pd_a = frame[cols].sort_values(cols[:3]).reset_index(drop=True)
    pd_b = answers_frame(again)[cols].sort_values(cols[:3]).reset_index(drop=True)
    assert pd_a.equals(pd_b)  # same seeds, same answers
    result = analyse(a, n_boot=100)
    assert (result.tables["consistency"]["exact"] < 1).any()
    assert (result.tables["agreement"]["kappa"] < 1).all()


def test_two_afc_session_metric_agreement_and_preferences(make_session):
    path = make_session("2afc", repeats=0.25)
    simulate(path, readers=2, observer=ModelObserver(noise=0.0))
    result = analyse(path, n_boot=200)
    assert list(result.tables) == list(TASK_TABLES["2afc"])
    agree = result.tables["metric_agreement"].set_index(["condition", "metric"])
    assert agree.loc[("all", "ssim"), "share"] == 1.0 and agree.loc[("all", "ssim"), "choices"] == 2 * 24
    pref = result.tables["preference"]
    first = pref[(pref["pair"] == "LABELALPHA vs LABELBETA") & (pref["condition"] == "clean")]
    assert first["share"].iloc[0] == 1.0 and first["p_value"].iloc[0] < 0.05
    wins = result.tables["method_preference"].set_index(["condition", "label"])
    assert wins.loc[("clean", "LABELALPHA"), "share"] == 1.0 and wins.loc[("clean", "LABELGAMMA"), "share"] == 0.0
    consistency = result.tables["consistency"]  # the repeat shows the pair the other way round: same method chosen
    assert (consistency["exact"] == 1.0).all()


def test_detection_session_roc_and_localisation(make_session):
    path = make_session("detection", repeats=0.25)
    simulate(path, readers=2, observer=ModelObserver(noise=0.0, threshold=4.0))
    result = analyse(path, n_boot=200)
    assert list(result.tables) == list(TASK_TABLES["detection"])
    det = result.tables["detection"].set_index("label")
    assert set(det.index) == set(LABELS)
    assert (det["present"] == 8).all() and (det["absent"] == 8).all() and (det["readers"] == 2).all()
    # the synthetic lesion is bright against little noise: a background-known observer finds and localises it
    assert det.loc["LABELALPHA", "auc"] == 1.0 and det.loc["LABELALPHA", "lroc_auc"] == 1.0
    assert (det["lroc_auc"] <= det["auc"] + 1e-12).all() and (det["tolerance"] == 5).all()
    strict = analyse(path, n_boot=0, tolerance=0.0).tables["detection"].set_index("label")
    assert np.isnan(strict["auc_low"]).all()  # no replicates: no intervals
    assert (strict["lroc_auc"] <= det["lroc_auc"] + 1e-12).all()
    # a human's mislocalised click does not count as a localised detection
    r = add_reader(path, "gil")
    reading = Reading(path)
    while (view := reading.next_item(r.code)) is not None:
        reading.answer(r.code, view.item_id, {"present": True, "confidence": 5, "location": [0, 0]})
    human = analyse(path, n_boot=0, kinds=("human",)).tables["detection"]
    assert (human["auc"] == 0.5).all() and (human["lroc_auc"] == 0.0).all() and (human["sensitivity"] == 1.0).all()
    assert not any("SIMULATED" in n for n in analyse(path, n_boot=0, kinds=("human",)).notes)


def test_the_detection_observer_on_a_plain_image():
    rng = np.random.default_rng(0)
    background = np.full((40, 40), 0.5)
    image = background + 0.01 * rng.standard_normal((40, 40))
    image[20:25, 10:15] += 0.5
    found = detect(image, 5, 4.0, rng, background=background)
    assert found["present"] and abs(found["location"][0] - 22) <= 2 and abs(found["location"][1] - 12) <= 2
    empty = detect(background + 0.01 * rng.standard_normal((40, 40)), 5, 6.0, rng, background=background)
    assert not empty["present"] and empty["location"] is None


def test_analysis_settings_are_checked(make_session):
    path = make_session()
    assert analyse(path, n_boot=10).notes == ("no answers yet",)
    for kwargs, message in [({"level": 1.5}, "level"), ({"n_boot": -1}, "bootstrap"),
                            ({"tolerance": -2.0}, "tolerance"), ({"kinds": ("robot",)}, "reader kinds")]:
        with pytest.raises(ExplorerError, match=message):
            analyse(path, **kwargs)
    with pytest.raises(ExplorerError, match="simulated readers must be"):
        simulate(path, readers=0)
    with pytest.raises(ExplorerError, match="metric must be"):
        ModelObserver(metric="mse")


def test_the_analysis_as_report_sections(make_session):
    from explorer.readers.analysis import sections

    path = make_session("2afc")
    simulate(path, readers=1, observer=ModelObserver(noise=0.0))
    result = analyse(path, n_boot=50)
    out = sections(result)
    assert [s.title for s in out] == [f"Reader study: {n.replace('_', ' ')}" for n in TASK_TABLES["2afc"]]
    assert "SIMULATED" in out[0].caption and out[0].tables[0][0] == "preference"
    assert out[0].tables[0][1][0]["pair"] == "LABELALPHA vs LABELBETA"
