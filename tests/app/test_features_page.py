"""AppTest of the Small features page on the 64x64 embedded sample: the run and its views agree with the library,
clicked positions are added, boxes from an uploaded CSV are scored, bad settings are one-line errors, and the
study shows its scatter and correlation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.data.fastmri import write_volume
from explorer.engine import prepare
from explorer.robustness.features import run_features
from explorer.ui.runs import features as feature_run
from tests.app.conftest import figure, open_page, viewer
from tests.conftest import multicoil_kspace

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 120


pytestmark = pytest.mark.usefixtures("small_sample_app")


def _page() -> AppTest:
    return open_page("features")


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_features_page_run_views_and_library_agreement():
    at = _page()
    assert at.title[0].value == "Small features"
    assert at.button(key="features.run").disabled  # nothing placed yet
    at.multiselect(key="features.methods").set_value(["zero_filled", "sense"]).run()
    at.text_input(key="features.positions").set_value("30,30; 20,40").run()
    at.number_input(key="features.random").set_value(1).run()
    assert not at.exception and not _errors(at)
    assert len(figure(at, "features.reference")["layout"]["shapes"]) == 3  # the three features drawn
    at.button(key="features.run").click().run()
    assert not at.exception and not _errors(at), _errors(at)

    table = at.dataframe[0].value
    assert len(table) == 6 and list(table["#"]) == [1, 2, 3, 1, 2, 3]
    assert list(table[["Row", "Col"]].iloc[0]) == [30, 30] and list(table[["Row", "Col"]].iloc[1]) == [20, 40]
    header, _ = viewer(at, "features")
    assert len(header["frames"][0]["labels"]) == 3  # reference with the features, 2 methods
    assert len(header["settings"]["boxes"]) == 3  # every feature's box (drawn on every panel)
    assert len(figure(at, "features.tiles")["data"]) == 3 * 4  # per feature: without, with, 2 methods
    assert len(figure(at, "features.profile")["data"]) == 4
    labels = {d.label for d in at.download_button}
    assert {"Feature scores (.csv)", "Reference with features (.npy)", "Reconstructions (.npy, stacked)"} <= labels

    # The library, on the same slice and mask, gives the page's numbers.
    page_run = at.session_state[feature_run.RUN.handoff.key]
    request = page_run.request
    from explorer.data.fastmri import FastMRIVolume  # noqa: PLC0415
    from explorer.data.sample import SampleSpec, sample_path  # noqa: PLC0415

    volume = FastMRIVolume(sample_path(SampleSpec(family="knee", size=64)))
    problem = prepare(volume.read_slice(request.index), request.mask, "cpu")
    run = run_features(problem, request.features, list(request.methods), request.mode)
    np.testing.assert_allclose(table["Window MSE"].to_numpy(), [r["window_mse"] for r in run.rows], rtol=1e-5)
    np.testing.assert_allclose(table["Local SSIM"].to_numpy(), [r["local_ssim"] for r in run.rows], rtol=1e-5)
    np.testing.assert_allclose(table["SSIM"].to_numpy(), [r["ssim"] for r in run.rows], rtol=1e-6)


def test_a_picked_pixel_becomes_a_position():
    """A box drawn on the reference heatmap (x = columns, y = rows) -> its centre ``row,col``; a clicked point
    -> itself."""
    event = {"selection": {"points": [], "box": [{"x": [1, 2], "y": [1, 2]}, {"x": [30.4, 36.2], "y": [18.1, 23.9]}]}}
    assert feature_run.clicked_position(event) == (21, 33)
    event = {"selection": {"points": [{"x": 10, "y": 3, "z": 0.5}, {"x": 33.2, "y": 20.8, "z": 0.1}], "box": []}}
    assert feature_run.clicked_position(event) == (21, 33)
    assert feature_run.clicked_position({"selection": {"points": [], "box": []}}) is None
    assert feature_run.clicked_position(None) is None
    assert feature_run.append_position("", (21, 33)) == "21,33"
    assert feature_run.append_position("1,2; ", (21, 33)) == "1,2; 21,33"


@pytest.mark.parametrize("widget, value, message", [
    ("features.positions", "3;4", "ROW,COL"),
    ("features.positions", "1,1", "does not fit inside"),
])
def test_bad_positions_are_one_line_errors(widget, value, message):
    at = _page()
    at.text_input(key=widget).set_value(value).run()
    assert not at.exception
    errors = _errors(at)
    assert len(errors) == 1 and message in errors[0], errors
    at.text_input(key=widget).set_value("30,30").run()
    assert not at.exception and not _errors(at)


def test_too_many_random_features_and_bad_study_lists():
    at = _page()
    at.number_input(key="features.size").set_value(20).run()
    at.number_input(key="features.random").set_value(12).run()
    assert any("no room inside the anatomy" in e for e in _errors(at))
    at.number_input(key="features.random").set_value(0).run()
    at.number_input(key="features.size").set_value(5).run()
    at.text_input(key="features.study_sizes").set_value("three").run()
    assert any("comma-separated numbers" in e for e in _errors(at))
    assert not at.exception


def test_boxes_from_an_uploaded_csv_are_scored(tmp_path, monkeypatch):
    write_volume(tmp_path / "file1000001.h5", multicoil_kspace(slices=2, coils=4, h=48, w=48))
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.session_state["src.kind"] = "dir"
    at.session_state["src.dir"] = str(tmp_path)
    at.run()
    at.session_state["src.file"] = "file1000001.h5"
    at.switch_page("pages/features.py").run()
    at.multiselect(key="features.methods").set_value(["zero_filled", "sense"]).run()
    at.slider(key="features.slice").set_value(1).run()
    at.number_input(key="features.mask.acceleration").set_value(2.0).run()
    csv_text = "file,slice,study_level,x,y,width,height,label\nfile1000001,1,No,20,18,6,5,spot\nfile1000001,0,No,1,1,4,4,other\n"
    at.file_uploader(key="features.boxes_csv").upload("boxes.csv", csv_text.encode(), "text/csv").run()
    assert not at.exception and not _errors(at), _errors(at)
    assert any("1 box(es) for file1000001.h5 slice 1" in c.value for c in at.caption)
    at.button(key="features.run").click().run()
    assert not at.exception and not _errors(at), _errors(at)
    boxes = at.dataframe[-1].value
    assert list(boxes["Algorithm"]) == ["Zero-filled", "SENSE (CG)"]  # human names, not registry keys
    assert (boxes["Row 0"].iloc[0], boxes["Row 1"].iloc[0], boxes["Column 0"].iloc[0],
            boxes["Column 1"].iloc[0]) == (25, 30, 20, 26)


def test_study_scatter_and_correlation():
    at = _page()
    at.multiselect(key="features.methods").set_value(["zero_filled", "sense"]).run()
    at.multiselect(key="features.study_slices").set_value([1, 2]).run()
    at.number_input(key="features.study_count").set_value(3).run()
    at.button(key="features.study_run").click().run()
    assert not at.exception and not _errors(at), _errors(at)
    scatter = figure(at, "features.scatter")
    assert len(scatter["data"]) == 2 and "Pearson r" in scatter["layout"]["title"]["text"]
    corr = at.dataframe[-1].value
    assert list(corr["Method"]) == ["all", "Zero-filled", "SENSE (CG)"] and corr["n"].iloc[0] == 12
    study = at.session_state[feature_run.STUDY.handoff.key]
    assert len(study.records) == 4 and not study.stopped
    assert all(-1 <= v <= 1 for v in corr["Pearson r"])
