"""AppTest of the Study page: open a study folder (figures, tables, downloads), run a small spec with progress,
resume, and one-line errors."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from explorer.study.runner import run_study
from explorer.study.spec import parse_spec
from tests.app.conftest import APP

SOURCE = "sample:knee,size=64,slices=2,coils=4"
SPEC = {"name": "page", "data": [{"source": SOURCE, "slices": "all"}],
        "masks": [{"type": "random", "acceleration": 3, "center_fraction": 0.2}],
        "methods": ["zero_filled", "sense"],
        "experiments": ["clean", {"attack": {"eps": [0.02, 0.04], "steps": 2}},
                        {"shift": {"ood": [{"source": "sample:brain,size=64,slices=2,coils=4", "slices": "all"}]}}]}

pytestmark = pytest.mark.usefixtures("small_sample_app")


def _page(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/study.py").run()
    assert not at.exception and at.title[0].value == "Study"
    return at


def test_open_a_study_folder(tmp_path, monkeypatch):
    run_study(parse_spec(SPEC), tmp_path / "studies" / "demo")
    at = _page(tmp_path, monkeypatch)
    at.text_input(key="study.folder").set_value("studies/demo").run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    charts = {c.key for c in at.main.get("plotly_chart")}
    assert charts == {"study.fig.attack.0", "study.fig.shift.0"}
    conclusions, attack, shift, fits, rows = (d.value for d in at.dataframe)  # in page order
    # the page opens with the talk's conclusions this study tests (attack: 1; shift: 2), each with a verdict
    assert len(conclusions) == 3 and set(conclusions["This run"]) <= {"agrees", "disagrees", "undecided"}
    assert conclusions["The papers' conclusion"].iloc[0].startswith("No evidence that DNNs")
    # human names and units: no registry keys or raw column names
    # every worst case followed by its Gaussian-noise baseline of the same norm
    assert list(attack["Budget ε (‖e‖/‖k‖)"]) == [0.02, 0.02, 0.04, 0.04] * 2
    assert list(attack["Kind"]) == ["worst case", "noise"] * 4
    noise, worst = attack[attack["Kind"] == "noise"], attack[attack["Kind"] == "worst case"]
    assert (noise["SSIM drop"].to_numpy() < worst["SSIM drop"].to_numpy()).all()  # SENSE and zero-filled, both eps
    assert set(attack["Method"]) == {"Zero-filled", "SENSE (CG)"} and "SSIM drop, sd" in attack.columns
    assert set(shift["Method"]) == {"Zero-filled", "SENSE (CG)"} and list(fits["Models"]) == ["all", "classical"]
    assert any("n = 2 models: too few points" in c.value for c in at.caption)  # n beside the fits
    assert len(rows) == 4 + 8 + 8  # clean 2x2, attack 2x2x2, shift (2+2)x2
    at.multiselect(key="study.filter").set_value(["attack"]).run()
    assert len(at.dataframe[-1].value) == 8
    assert {b.key for b in at.get("download_button")} == {"study.report", "study.csv", "study.bundle"}


def test_run_a_spec_from_the_page_then_resume(tmp_path, monkeypatch):
    at = _page(tmp_path, monkeypatch)
    at.radio(key="study.mode").set_value("run").run()
    at.text_input(key="study.folder").set_value("runs/one").run()
    at.text_area(key="study.spec").set_value(json.dumps({**SPEC, "experiments": ["clean"]})).run()
    at.button(key="study.run").click().run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    assert (tmp_path / "runs" / "one" / "results.parquet").is_file()
    assert len(at.dataframe[-1].value) == 4
    at.button(key="study.run").click().run()  # again without Resume: refused, one line
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and "holds a study already: add --resume" in errors[0], errors
    at.checkbox(key="study.resume").check().run()
    at.button(key="study.run").click().run()
    assert not at.main.error and len(at.dataframe[-1].value) == 4


_ZF = '"methods": ["zero_filled"]'
_SMALL = '"data": [{"source": "sample:knee"}]'


@pytest.mark.parametrize("spec, message", [
    ("data: [", "not valid YAML"),
    ('{"data": []}', "data must be a non-empty list"),
    ('{"data": [{"source": "/etc/passwd"}], %s}' % _ZF, "data[0]: the path '/etc/passwd' is outside the data directory"),
    ('{"data": [{"source": "/etc/no-such.h5"}], %s}' % _ZF, "data[0]: the path '/etc/no-such.h5' is outside"),
    ('{"data": ["../../../../../../../../etc/passwd"], %s}' % _ZF, "is outside the data directory"),
    ('{%s, "methods": [{"method": "unet", "config": {"checkpoint": "/etc/x.pt"}}]}' % _SMALL, "methods unet: the path"),
    ('{%s, %s, "experiments": [{"shift": {"ood": [{"source": "/etc"}]}}]}' % (_SMALL, _ZF), "experiments[0].data"),
    ('{%s, %s, "experiments": [{"attack": {"steps": 1.5}}]}' % (_SMALL, _ZF), "steps must be an integer, got 1.5"),
    ('{%s, %s, "experiments": [{"attack": {"seed": .inf}}]}' % (_SMALL, _ZF), "seed must be a finite number"),
    ("%s: [{source: sample:knee}]\n%s: x\nexperiments: [{attack: {seed: .inf}}]" % ("data", "methods"),
     "must be a finite number"),
    ('{%s, %s, "experiments": [{"features": {"shape": "bogus"}}]}' % (_SMALL, _ZF), "feature shape must be one of"),
    ('{%s, %s, "experiments": [{"attack": [0.08]}]}' % (_SMALL, _ZF), "the settings of attack must be a mapping"),
    ("data: " + "[" * 5000 + "]" * 5000, "nests brackets 5000 deep"),
])
def test_bad_specs_and_folders_are_one_line_errors(tmp_path, monkeypatch, spec, message):
    at = _page(tmp_path, monkeypatch)
    at.radio(key="study.mode").set_value("run").run()
    at.text_input(key="study.folder").set_value("runs/bad").run()
    at.text_area(key="study.spec").set_value(spec).run()
    at.button(key="study.run").click().run()
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and message in errors[0] and not at.exception, errors
    at.text_input(key="study.folder").set_value("/etc").run()
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and "outside the data directory" in errors[0], errors


def test_a_spec_cannot_read_the_upload_store(tmp_path, monkeypatch):
    from explorer.ui import uploads

    monkeypatch.setenv("EXPLORER_UPLOAD_DIR", str(tmp_path / "uploads"))  # inside the data directory, still refused
    other = uploads.save(uploads.new_token(), "private.h5", b"another session's file")
    at = _page(tmp_path, monkeypatch)
    at.radio(key="study.mode").set_value("run").run()
    at.text_input(key="study.folder").set_value("runs/leak").run()
    for source in (str(other), str(other.parent), "../uploads"):  # relative paths start at the study folder
        at.text_area(key="study.spec").set_value(json.dumps({"data": [source], "methods": ["zero_filled"]})).run()
        at.button(key="study.run").click().run()
        errors = [e.value for e in at.main.error]
        assert len(errors) == 1 and "is outside the data directory" in errors[0] and not at.exception, errors
        assert "private" not in errors[0] or str(other) in errors[0]  # only the path the user typed is named
    assert not (tmp_path / "runs" / "leak" / "results.parquet").exists()


def test_a_row_opens_its_slice_on_the_matching_page(tmp_path, monkeypatch):
    """A study on the app's own sample (64x64 here): selecting an attack row and opening it lands on the Attack
    page with that slice, mask and method."""
    spec = {"name": "open", "data": [{"source": "sample:knee", "slices": [3]}],
            "masks": [{"type": "equispaced", "acceleration": 3, "center_fraction": 0.2, "seed": 5}],
            "methods": [{"method": "l1", "config": {"lam": 0.02}}],
            "experiments": [{"attack": {"eps": [0.02], "steps": 1}}]}
    run_study(parse_spec(spec), tmp_path / "studies" / "open")
    at = _page(tmp_path, monkeypatch)
    at.text_input(key="study.folder").set_value("studies/open").run()
    assert "study.open" not in [b.key for b in at.button]
    at.session_state["study.table.rows"] = {"selection": {"rows": [0], "columns": [], "cells": []}}  # a click
    at.run()
    button = at.button(key="study.open")
    assert button.label == "Reconstruct slice 3 of sample:knee with l1-wavelet again on the attack page"
    assert not button.disabled
    button.click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Attack"
    assert at.slider(key="attack.slice").value == 3
    assert at.selectbox(key="attack.mask.type").value == "equispaced"
    assert at.number_input(key="attack.mask.acceleration").value == 3.0
    assert at.number_input(key="attack.mask.seed").value == 5
    assert at.number_input(key="attack.mask.cf").value == 0.2
    assert at.multiselect(key="attack.methods").value == ["l1"]
    assert at.number_input(key="attack.params.l1.lam.knee").value == 0.02
