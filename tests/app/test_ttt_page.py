"""AppTest of the Test-time training page on the 64x64 embedded brain sample with the shipped checkpoints:
knee-trained VarNet adapted to brain data, the brain-trained one as the reference; bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.robustness.ttt import gap_closed
from explorer.ui.runs import ttt as ttt_run
from tests.app.conftest import open_page, viewer

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


pytestmark = pytest.mark.usefixtures("small_sample_app")


def _page(family: str = "brain") -> AppTest:
    return open_page("ttt", timeout=180, family=family)


def test_knee_varnet_adapted_to_brain_with_the_brain_varnet_as_reference():
    at = _page()
    assert at.title[0].value == "Test-time training"
    assert set(at.selectbox(key="ttt.method").options) == {"U-net", "E2E VarNet"}  # the methods with weights
    at.selectbox(key="ttt.method").set_value("varnet").run()
    at.text_input(key="ttt.params.varnet.checkpoint.brain").set_value("knee").run()
    assert at.text_input(key="ttt.reference").value == "brain"
    at.number_input(key="ttt.steps").set_value(10).run()
    at.number_input(key="ttt.window").set_value(2).run()
    at.number_input(key="ttt.monitor").set_value(5).run()
    at.button(key="ttt.run").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["Network"]) == ["as shipped", "after TTT", "in-distribution"]
    run = at.session_state[ttt_run.RUN.handoff.key]
    result = run.result
    assert result.steps <= 10 and 0 <= result.best_step <= result.steps
    expected = gap_closed(table["SSIM"][0], table["SSIM"][1], table["SSIM"][2])
    shown = at.metric[0].value
    assert shown == ("—" if expected is None else f"{expected:.0%}")
    assert table["SSIM"][2] != table["SSIM"][0]  # the brain network differs from the knee one
    curves = json.loads([c for c in at.main.get("plotly_chart") if c.key == "ttt.curves"][0].proto.spec)
    assert {d["name"] for d in curves["data"]} == {"training loss", "held-out error", "SSIM"}
    assert len(viewer(at, "ttt")[0]["frames"][0]["labels"]) == 4  # the reference and three reconstructions


def test_bad_reference_checkpoint_and_settings_are_one_line_errors():
    at = _page()
    at.text_input(key="ttt.reference").set_value("/nonexistent/model.pt").run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "model.pt" in errors[0], errors
    assert not at.exception
    assert "is outside the data directory" in errors[0]  # the same answer as for a file that exists:
    at.text_input(key="ttt.reference").set_value("/etc/passwd").run()
    assert [e.value.replace("/etc/passwd", "X") for e in at.error] == [errors[0].replace("/nonexistent/model.pt", "X")]
    at.text_input(key="ttt.params.unet.checkpoint.brain").set_value("/etc/passwd").run()  # the network's own file too
    assert any("unet.checkpoint" in e.value and "outside the data directory" in e.value for e in at.error)
    at.text_input(key="ttt.params.unet.checkpoint.brain").set_value("knee").run()
    at.text_input(key="ttt.reference").set_value("").run()
    assert not at.exception and not at.error


def test_real_data_arm_adapts_the_brain_real_network_without_a_reference():
    at = _page()
    at.selectbox(key="ttt.method").set_value("unet").run()
    assert at.text_input(key="ttt.params.unet.checkpoint.brain").value == "knee"  # the page opens on a shift
    at.button(key="ttt.real_arm").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    assert at.text_input(key="ttt.params.unet.checkpoint.brain").value == "brain-real"
    assert at.text_input(key="ttt.reference").value == ""
    assert at.radio(key="ttt.protocol").value == "paper" and at.number_input(key="ttt.window").value == 20
    at.number_input(key="ttt.steps").set_value(4).run()
    at.number_input(key="ttt.window").set_value(1).run()
    at.button(key="ttt.run").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    assert list(at.dataframe[0].value["Network"]) == ["as shipped", "after TTT"]  # no reference: no gap closed
    run = at.session_state[ttt_run.RUN.handoff.key]
    assert Path(run.request.method.config.checkpoint).name == "unet_brain-real.pt"
    at.selectbox(key="ttt.method").set_value("varnet").run()  # a kind with its own brain-real: offered there too
    assert [b for b in at.button if b.key == "ttt.real_arm"]


def test_the_papers_four_shifts_set_up_the_page(tmp_path, monkeypatch):
    """The shift picker: the anatomy shift with the shipped knee/brain networks; the dataset shift once its reference
    (here a stand-in with random weights) is among the shipped checkpoints; a shift whose reference is not shipped
    cannot be set up."""
    import shutil

    from explorer.recon.checkpoints import random_checkpoint
    from explorer.resources import checkpoint_dir
    from explorer.robustness.ttt_shifts import get_shift

    for anatomy in ("knee", "brain"):
        for suffix in (".pt", ".json"):
            shutil.copy(checkpoint_dir() / f"unet_{anatomy}{suffix}", tmp_path / f"unet_{anatomy}{suffix}")
    random_checkpoint("unet", {"chans": 8, "num_pool_layers": 2}, tmp_path / "unet_knee-stanford.pt",
                      card={"data": {"anatomy": "knee"}})
    monkeypatch.setenv("EXPLORER_CHECKPOINT_DIR", str(tmp_path))
    at = _page("knee")
    at.selectbox(key="ttt.method").set_value("unet").run()
    shifts = at.selectbox(key="ttt.paper_shift")
    missing = " (checkpoints not shipped)"
    assert shifts.options == [get_shift("anatomy").title, get_shift("dataset").title,
                              get_shift("contrast").title + missing, get_shift("acceleration").title + missing]
    shifts.set_value("contrast").run()
    assert at.button(key="ttt.paper_shift_apply").disabled  # no brain-t1 reference here
    at.selectbox(key="ttt.paper_shift").set_value("anatomy").run()
    assert not at.button(key="ttt.paper_shift_apply").disabled
    at.button(key="ttt.paper_shift_apply").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    assert at.sidebar.selectbox(key="src.family").value == "brain"
    assert at.text_input(key="ttt.params.unet.checkpoint.brain").value == "knee"
    assert at.text_input(key="ttt.reference").value == "brain"
    assert at.radio(key="ttt.protocol").value == "paper" and at.number_input(key="ttt.window").value == 100

    at.selectbox(key="ttt.paper_shift").set_value("dataset").run()
    at.button(key="ttt.paper_shift_apply").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    assert at.sidebar.selectbox(key="src.family").value == "knee"
    assert at.sidebar.selectbox(key="src.variant.knee").value == "dataset=stanford"
    assert at.number_input(key="ttt.mask.acceleration").value == 4
    assert at.text_input(key="ttt.reference").value == "knee-stanford" and at.number_input(key="ttt.window").value == 20
    at.number_input(key="ttt.steps").set_value(2).run()
    at.number_input(key="ttt.window").set_value(1).run()
    at.button(key="ttt.run").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    assert list(at.dataframe[0].value["Network"]) == ["as shipped", "after TTT", "in-distribution"]
    run = at.session_state[ttt_run.RUN.handoff.key]
    assert run.request.source.spec == "sample:knee,dataset=stanford"
    assert Path(run.request.reference.config.checkpoint).name == "unet_knee-stanford.pt"
    assert run.request.method.config.checkpoint == "knee"  # the network trained on P: the shipped knee U-net
