"""AppTest of the Distribution shift page on the 64x64 embedded samples (knee -> brain)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.masks import MaskConfig
from explorer.robustness.shift import shift_study
from explorer.ui.runs import shift as shift_run
from tests.app.conftest import viewer

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


pytestmark = pytest.mark.usefixtures("small_sample_app")


def test_knee_to_brain_study_matches_the_library():
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/shift.py").run()
    assert not at.exception and at.title[0].value == "Distribution shift"
    at.multiselect(key="shift.methods").set_value(["zero_filled", "sense", "unet"]).run()
    at.number_input(key="shift.max_slices").set_value(2).run()
    at.button(key="shift.run").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["Model"]) == ["Zero-filled", "SENSE (CG)", "U-net"] and list(table["Slices Q"]) == [2, 2, 2]
    fig = json.loads([c for c in at.main.get("plotly_chart") if c.key == "shift.figure"][0].proto.spec)
    assert any("fit: y =" in (d.get("name") or "") for d in fig["data"])
    run = at.session_state[shift_run.RUN.handoff.key]
    library = shift_study("sample:knee", "sample:brain", ["zero_filled", "sense", "unet"], MaskConfig(), None, 2,
                          sample_size=64)
    assert [r["ssim_ood"] for r in library.rows] == pytest.approx(list(table["SSIM Q"]))
    assert [r["ssim_id"] for r in library.rows] == pytest.approx([r["ssim_id"] for r in run.study.rows])
    at.selectbox(key="shift.drill").set_value("unet").run()
    per_slice = at.dataframe[-1].value
    assert len(per_slice) == 4  # 2 slices per set

    # One slice of Q, reconstructed again for the viewer: the study's own SSIM for it.
    at.selectbox(key="shift.view_slice").set_value(3).run()
    at.button(key="shift.view").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    header, _ = viewer(at, "shift.slice")
    labels = header["frames"][0]["labels"]
    assert labels[0] == "Target (reference)" and labels[1:] == ["Zero-filled", "SENSE (CG)", "U-net"]  # every model
    assert f"SSIM {per_slice['SSIM'][3]:.3f}" in json.dumps(header["frames"][0]["subtitles"])


def test_a_folder_outside_the_data_directory_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/shift.py").run()
    at.radio(key="shift.ood.kind").set_value("folder").run()
    at.text_input(key="shift.ood.folder").set_value("/etc").run()
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and "outside the data directory" in errors[0], errors
    assert not at.exception


def test_dataset_shift_to_the_stanford_like_sample():
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/shift.py").run()
    at.selectbox(key="shift.ood.family").set_value("sample:knee,dataset=stanford").run()
    at.multiselect(key="shift.methods").set_value(["zero_filled", "sense"]).run()
    at.number_input(key="shift.max_slices").set_value(1).run()
    at.button(key="shift.run").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    table = at.dataframe[0].value
    library = shift_study("sample:knee", "sample:knee,dataset=stanford", ["zero_filled", "sense"], MaskConfig(), None,
                          1, sample_size=64)
    assert "stanford" in library.ood_set
    assert [r["ssim_ood"] for r in library.rows] == pytest.approx(list(table["SSIM Q"]))


def test_a_model_zoo_folder_adds_every_checkpoint(tmp_path, monkeypatch):
    from explorer.training.zoo import ZooMember, ZooOptions, build_zoo  # noqa: PLC0415
    from tests.conftest import TINY_ARCH  # noqa: PLC0415

    build_zoo(ZooOptions(out=tmp_path / "zoo", size=64, subjects=1, snapshot_every=1,
                         members=(ZooMember("tiny", "unet", TINY_ARCH["unet"], 2, 2),)), log=lambda line: None)
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/shift.py").run()
    at.multiselect(key="shift.methods").set_value(["zero_filled"]).run()
    at.number_input(key="shift.max_slices").set_value(1).run()
    at.text_input(key="shift.zoo").set_value("zoo").run()
    at.button(key="shift.run").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    assert list(at.dataframe[0].value["Model"]) == ["Zero-filled", "tiny_step000001", "tiny"]
    at.text_input(key="shift.zoo").set_value("nowhere").run()
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and "no readable zoo manifest" in errors[0], errors


def test_the_distribution_shift_page_runs_the_filtered_shift():
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("pages/shift.py").run()
    at.radio(key="shift.mode").set_value("filtered").run()
    at.multiselect(key="shift.methods").set_value(["zero_filled", "sense", "unet"]).run()
    at.multiselect(key="shift.filters").set_value(["unet"]).run()
    at.number_input(key="shift.keep").set_value(2).run()
    at.number_input(key="shift.max_slices").set_value(4).run()
    at.button(key="shift.filtered_run").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["Model"]) == ["Zero-filled", "SENSE (CG)", "U-net"] and set(table["Slices kept"]) == {2}
    assert any(c.key == "shift.filtered_figure" for c in at.main.get("plotly_chart"))
    at.multiselect(key="shift.filters").set_value([]).run()
    assert any("filter models" in e.value for e in at.error) and not at.exception


def test_real_data_arms_fill_the_sets_models_and_checkpoints(tmp_path, monkeypatch):
    """With the README's real-brain build in the data directory, the real-anatomy arm puts its test slices against
    the measured ones and runs the U-net with the shipped brain-real checkpoint; without it, the arms say how to
    build it."""
    from tests.test_study import _real_brain_folder

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/shift.py").run()
    assert not at.exception
    assert not [r for r in at.radio if r.key == "shift.real_arm"]  # nothing built yet: only the how-to caption
    assert any("dataset build" in c.value for c in at.caption)

    _real_brain_folder(tmp_path / "real-brain", tests=3, measured=2)
    at.run()
    at.radio(key="shift.real_arm").set_value("scanner").run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    assert at.text_input(key="shift.id.folder").value == "real-brain/mc/test"
    assert at.text_input(key="shift.ood.folder").value == "real-brain/measured"
    assert at.text_input(key="shift.params.unet.checkpoint.any").value == "brain-real"
    at.multiselect(key="shift.methods").set_value(["zero_filled", "unet"]).run()
    at.button(key="shift.run").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["Model"]) == ["Zero-filled", "U-net"] and list(table["Slices Q"]) == [2, 2]
    run = at.session_state[shift_run.RUN.handoff.key]
    unet = next(m for m in run.request.methods if m.name == "unet")
    assert Path(unet.config.checkpoint).name == "unet_brain-real.pt"

    at.radio(key="shift.real_arm").set_value("anatomy").run()
    assert at.radio(key="shift.id.kind").value == "sample" and at.selectbox(key="shift.id.family").value == "sample:knee"
    assert at.text_input(key="shift.params.unet.checkpoint.knee").value == "auto"  # each network's knee checkpoint
