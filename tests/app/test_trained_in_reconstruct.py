"""AppTest: trained networks in the Reconstruct page, the anatomy-shift label and a missing checkpoint."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from explorer.recon.checkpoints import random_checkpoint
from tests.conftest import TINY_ARCH

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_trained_nets_run_and_a_knee_checkpoint_on_brain_data_is_labelled(tmp_path, monkeypatch):
    folder = tmp_path / "shipped"  # knee checkpoints only: brain ones "not trained yet"
    for kind in ("unet", "varnet"):
        random_checkpoint(kind, TINY_ARCH[kind], folder / f"{kind}_knee.pt", card={"data": {"anatomy": "knee"}})
    monkeypatch.setenv("EXPLORER_CHECKPOINT_DIR", str(folder))
    monkeypatch.setenv("EXPLORER_SAMPLE_SIZE", "64")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("pages/reconstruct.py").run()
    at.selectbox(key="src.family").set_value("brain").run()
    at.number_input(key="reconstruct.mask.acceleration").set_value(3.0).run()
    at.multiselect(key="reconstruct.methods").set_value(["zero_filled", "unet", "varnet"]).run()
    # brain data: "auto" means the brain checkpoints
    assert at.text_input(key="reconstruct.params.unet.checkpoint.brain").value == "brain"
    at.text_input(key="reconstruct.params.varnet.checkpoint.brain").set_value("knee").run()
    at.button(key="reconstruct.run").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "U-net" in errors[0] and "missing" in errors[0] and "--model unet" in errors[0]
    assert list(at.dataframe[0].value["Method"]) == ["Zero-filled", "E2E VarNet"]
    infos = _notes(at)  # in the one notes box above the viewer
    assert any("E2E VarNet" in i and "knee checkpoint · on brain data: anatomy shift" in i for i in infos), infos
    # the random-weights card records no masks: only the anatomy differs; the note points to test-time training
    assert any(i.startswith("**E2E VarNet**: distribution shift (trained on knee, this is brain)") and
               "test-time training" in i for i in infos), infos


def _notes(at) -> list[str]:
    """The notes on the results: one line each in the results' notes box (``**method**: note``)."""
    return [line[2:] for e in at.expander if "note" in e.label for m in e.markdown for line in m.value.splitlines()]


def test_a_shipped_real_anatomy_checkpoint_is_offered_by_name_and_listed(tmp_path, monkeypatch):
    """A shipped checkpoint beyond the anatomy slots (``unet_brain-real.pt``) is named under the parameters, runs when
    its name is typed as the checkpoint (though the shipped folder is outside the data directory), and the Models page
    lists it with its card; a path outside the data directory still gets the confinement error."""
    folder = tmp_path / "shipped"
    random_checkpoint("unet", TINY_ARCH["unet"], folder / "unet_brain.pt", card={"data": {"anatomy": "brain"}})
    random_checkpoint("unet", TINY_ARCH["unet"], folder / "unet_brain-real.pt",
                      card={"data": {"anatomy": "brain", "challenge": "multicoil"},
                            "provenance": {"summary": "SIAT-500 real brain T2"}})
    monkeypatch.setenv("EXPLORER_CHECKPOINT_DIR", str(folder))
    monkeypatch.setenv("EXPLORER_SAMPLE_SIZE", "64")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("pages/reconstruct.py").run()
    at.selectbox(key="src.family").set_value("brain").run()
    at.multiselect(key="reconstruct.methods").set_value(["zero_filled", "unet"]).run()
    captions = [c.value for c in at.caption]
    assert any("Also shipped: `brain-real` (brain, multicoil, SIAT-500 real brain T2)" in c for c in captions), captions
    at.text_input(key="reconstruct.params.unet.checkpoint.brain").set_value("brain-real").run()
    at.button(key="reconstruct.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert list(at.dataframe[0].value["Method"]) == ["Zero-filled", "U-net"]
    assert any("checkpoint unet_brain-real.pt" in i for i in _notes(at)), _notes(at)
    at.text_input(key="reconstruct.params.unet.checkpoint.brain").set_value(str(tmp_path / "elsewhere.pt")).run()
    assert any("outside the data directory" in e.value for e in at.error), [e.value for e in at.error]

    models = AppTest.from_file(APP, default_timeout=90)
    models.switch_page("pages/models.py").run()
    assert not models.exception and not models.error
    assert any("real scans" in s.value for s in models.subheader)
    tables = [d.value for d in models.dataframe]
    assert any("brain-real" in list(t.iloc[:, 0]) for t in tables), tables
