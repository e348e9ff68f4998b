"""AppTests of the first impression (issue 27, item 4): defaults from the guided path, cost badges and the
confirmation of minute-long methods, human names in tables and downloads, the per-run zip, Study's Open showing the
stored result, TTT opening on a real shift, all models on Shift's slice, outputs outside the checkout, a local
favicon. On the 64x64 embedded sample."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from unittest import mock

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from explorer.study.runner import run_study
from explorer.study.spec import parse_spec
from explorer.ui import bundle
from tests.app.conftest import APP, open_page

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("small_sample_app")


def _zip(at: AppTest, key: str) -> zipfile.ZipFile:
    """The zip the page's download button ``key`` gives (built as a click would build it)."""
    assert key in {b.key for b in at.get("download_button")}
    return zipfile.ZipFile(io.BytesIO(bundle.build(at.session_state[f"{key}.make"]())))


def _members(archive: zipfile.ZipFile) -> set[str]:
    return {name.split("/", 1)[1] for name in archive.namelist()}


def test_reconstruct_starts_with_three_families_and_confirms_minute_long_methods():
    at = open_page("reconstruct")
    picker = at.multiselect(key="reconstruct.methods")
    assert picker.value == ["zero_filled", "l1", "unet"]  # a classical, a sparse and a trained method
    assert picker.proto.select_all == 0 and type(picker.proto).DESCRIPTOR.fields_by_name["filter_mode"].enum_type.values_by_number[
        picker.proto.filter_mode].name == "FILTER_MODE_CONTAINS"
    options = list(picker.options)
    assert "U-net · trained network · seconds" in options and "ConvDecoder · un-trained network · minutes" in options
    assert [o for o in options if "u-net" in o.lower()] == ["U-net · trained network · seconds"]
    assert not at.button(key="reconstruct.run").disabled
    assert "reconstruct.confirm_long" not in {c.key for c in at.checkbox}

    picker.set_value(["zero_filled", "convdecoder"]).run()  # a minute-long method: confirm before it runs
    assert any("minutes per slice" in w.value for w in at.warning)
    assert at.button(key="reconstruct.run").disabled
    at.checkbox(key="reconstruct.confirm_long").check().run()
    assert not at.button(key="reconstruct.run").disabled

    at.multiselect(key="reconstruct.methods").set_value(["zero_filled", "l1", "unet"]).run()
    at.button(key="reconstruct.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert list(at.dataframe[0].value["Method"]) == ["Zero-filled", "l1-wavelet", "U-net"]
    assert len([e for e in at.expander if "note" in e.label]) <= 1  # the results' notes in one box, not five
    assert not at.main.info  # no info boxes between the Run button and the viewer
    archive = _zip(at, "reconstruct.bundle")
    assert _members(archive) == {"README.txt", "settings.json", "metrics.csv", "sampling_mask.npy", "sampling_mask.png",
                                 *{f"images/{n}.{x}" for n in ("reference", "Zero-filled", "l1-wavelet", "U-net")
                                   for x in ("npy", "png")}}
    csv_text = next(archive.read(n) for n in archive.namelist() if n.endswith("metrics.csv")).decode()
    assert csv_text.splitlines()[0].startswith("Metric definition,Method,Algorithm,SSIM,PSNR (dB),NMSE,Time (s)")
    assert "zero_filled" not in csv_text and "unet" not in csv_text
    settings = json.loads(next(archive.read(n) for n in archive.namelist() if n.endswith("settings.json")))
    assert [m["method"] for m in settings["request"]["methods"]] == ["zero_filled", "l1", "unet"]
    assert settings["request"]["mask"]["acceleration"] == 4.0


def test_attack_includes_a_network_and_its_zip_holds_the_perturbations():
    at = open_page("attack")
    assert at.multiselect(key="attack.methods").value == ["zero_filled", "l1", "unet"]
    at.multiselect(key="attack.methods").set_value(["zero_filled", "unet"]).run()
    at.number_input(key="attack.steps").set_value(2).run()
    at.button(key="attack.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    # each worst case followed by its noise baseline of the same norm
    assert list(table["Method"]) == ["Zero-filled", "Zero-filled", "U-net", "U-net"]
    assert list(table["Perturbation"]) == ["worst case", "Gaussian noise, same norm"] * 2
    assert set(table["Strategy"][::2]) == {"gradient ascent"} and set(table["Strategy"][1::2]) == {"3 random draws"}
    assert "Budget ε" in table.columns and "None" not in table.astype(str).to_string()
    archive = _zip(at, "attack.bundle")
    members = _members(archive)
    assert {"settings.json", "attack.csv", "images/reference.npy", "images/U-net_eps_0.08_perturbed.png",
            "perturbations/U-net_eps_0.08_e.npy", "perturbations/U-net_eps_0.08_e.png"} <= members
    header = next(archive.read(n) for n in archive.namelist() if n.endswith("attack.csv")).decode().splitlines()[0]
    assert "SSIM drop" in header and "ssim_drop" not in header


def test_ttt_opened_directly_adapts_the_other_anatomys_network():
    at = open_page("ttt")  # the knee sample
    assert at.text_input(key="ttt.params.unet.checkpoint.knee").value == "brain"
    assert at.text_input(key="ttt.reference").value == "knee"
    at = open_page("ttt", family="brain")
    assert at.text_input(key="ttt.params.unet.checkpoint.brain").value == "knee"
    assert at.text_input(key="ttt.reference").value == "brain"


def test_shift_shows_every_model_on_the_chosen_slice():
    at = open_page("shift")
    at.multiselect(key="shift.methods").set_value(["zero_filled", "sense"]).run()
    at.number_input(key="shift.max_slices").set_value(1).run()
    at.button(key="shift.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert list(at.dataframe[0].value["Model"]) == ["Zero-filled", "SENSE (CG)"]
    assert any("n = 2 models: too few points" in c.value for c in at.caption)  # n beside the fit
    at.button(key="shift.view").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(c.value.startswith("Every model on slice") for c in at.caption)
    views = at.session_state["shift.viewed"][1][1]
    assert list(views) == ["zero_filled", "sense"]
    assert {"settings.json", "shift.csv", "per_slice.csv", "fit.csv"} <= _members(_zip(at, "shift.bundle"))


def test_study_open_shows_the_stored_result_and_runs_nothing(tmp_path, monkeypatch):
    spec = {"name": "stored", "data": [{"source": "sample:knee", "slices": [3]}],
            "masks": [{"type": "equispaced", "acceleration": 3, "center_fraction": 0.2, "seed": 5}],
            "methods": [{"method": "l1", "config": {"lam": 0.02}}],
            "experiments": [{"attack": {"eps": [0.02], "steps": 1}}]}
    run_study(parse_spec(spec), tmp_path / "studies" / "stored")
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/study.py").run()
    at.text_input(key="study.folder").set_value("studies/stored").run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    rows = at.dataframe[-1].value  # the per-slice rows, in human names
    assert {"Experiment", "Method", "SSIM", "PSNR (dB)"} <= set(rows.columns) and list(rows["Method"]) == ["l1-wavelet"]
    with mock.patch("explorer.ui.cache.run_method", side_effect=AssertionError("nothing may run")):
        at.session_state["study.table.rows"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
        at.run()
    assert not at.exception, at.exception
    fields = next(d.value for d in at.dataframe if list(d.value.columns) == ["Field", "Value"])
    stored = dict(zip(fields["Field"], fields["Value"]))
    assert stored["Method"] == "l1-wavelet" and stored["Slice"] == "3" and stored["Mask"].startswith("equispaced 3×")
    assert "0.02" in stored["Perturbation"] and stored["SSIM"] != "—"
    assert at.title[0].value == "Study"  # it stays on the Study page
    assert at.button(key="study.open").label.startswith("Reconstruct slice 3 of sample:knee with l1-wavelet again")


def test_the_guided_study_writes_outside_the_checkout_without_a_data_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/study.py").run()
    at.radio(key="study.mode").set_value("run").run()
    at.text_input(key="study.folder").set_value("studies/teaching").run()
    root = (tmp_path / "xdg" / "mri-explorer").resolve()
    assert any(str(root) in c.value and "never into the folder" in c.value for c in at.caption)
    at.text_area(key="study.spec").set_value(json.dumps({"data": [{"source": "sample:knee", "slices": [1]}],
                                                         "methods": ["zero_filled"]})).run()
    at.button(key="study.run").click().run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    assert (root / "studies" / "teaching" / "results.parquet").is_file()
    assert not (ROOT / "studies" / "teaching").exists()
    at.text_input(key="study.folder").set_value(str(ROOT / "studies" / "x")).run()  # the checkout: refused
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and "outside the app's output folder" in errors[0], errors


def test_the_favicon_is_a_local_file():
    calls = []
    real = st.set_page_config
    with mock.patch.object(st, "set_page_config", side_effect=lambda **kw: calls.append(kw) or real(**kw)):
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
    assert not at.exception and calls
    icon = calls[0]["page_icon"]
    assert not str(icon).startswith((":material", "http")) and Path(icon).is_file()
    assert Path(icon).resolve().parent == (ROOT / "assets").resolve()
