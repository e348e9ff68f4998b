"""The app's presentation helpers without a page: human names and units in tables and CSVs (no registry keys, no
"None"), SSIM axes inside [0, 1], the caveat beside small fits, the per-run zip, the method picker's cost badges and
defaults, and the output folder outside the checkout."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from explorer.errors import ExplorerError
from explorer.figures.shift import shift_figure
from explorer.figures.ttt import curves_figure
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance, available_methods
from explorer.ui import bundle, paths, pickers, present, state

ROOT = Path(__file__).resolve().parents[2]


def test_tables_show_human_names_units_and_no_none():
    rows = [{"label": "zero_filled", "method": "zero_filled", "family": "baseline", "eps": 0.02, "ssim_drop": 0.1,
             "ssim_drop_sd": None, "psnr_drop": 1.5},
            {"label": "unet", "method": "unet", "family": "trained", "eps": 0.02, "ssim_drop": 0.2,
             "ssim_drop_sd": 0.01, "psnr_drop": 2.5}]
    frame, config = present.table(rows, formats={"ssim_drop_sd": "%.4f"})
    assert list(frame.columns) == ["Method", "Algorithm", "Family", "Budget ε (‖e‖/‖k‖)", "SSIM drop", "SSIM drop, sd",
                                   "PSNR drop (dB)"]
    assert list(frame["Method"]) == ["Zero-filled", "U-net"] and list(frame["Family"]) == ["classical",
                                                                                           "trained network"]
    assert list(frame["SSIM drop, sd"]) == ["—", "0.0100"]  # a gap is a dash, never "None"
    assert config["SSIM drop"]["type"] == "number" and config["SSIM drop, sd"]["type"] == "text"
    text = frame.astype(str).to_string()
    assert "None" not in text and "zero_filled" not in text and "unet" not in text
    assert present.column("some_new_key") == "Some new key"


def test_csv_headers_are_human_and_undefined_is_blank():
    text = present.csv_text([{"label": "l1", "method": "l1", "ssim": 0.5, "nmse": None, "seconds": 1.0}],
                            {"metric": "fastmri"})
    header, row = text.splitlines()
    assert header == "Metric definition,Method,Algorithm,SSIM,NMSE,Time (s)"
    assert row == "fastmri,l1-wavelet,l1-wavelet,0.5,,1.0"


def test_ssim_axes_never_run_past_one():
    rows = [{"label": "a", "family": "trained", "ssim_id": 0.97, "ssim_ood": 0.99},
            {"label": "b", "family": "sparse", "ssim_id": 0.90, "ssim_ood": 0.93}]
    fig = present.bound_ssim_axes(shift_figure(rows, None))
    assert fig.layout.xaxis.range[1] <= 1.0 and fig.layout.yaxis.range[1] <= 1.0
    assert fig.layout.yaxis.range[0] < 0.93  # the data stay inside
    bars = go.Figure(go.Bar(x=["a"], y=[0.98], text=["0.98"], textposition="outside"))
    bars.update_layout(yaxis_title="mean SSIM")
    assert present.bound_ssim_axes(bars).layout.yaxis.range[1] == 1.0
    curves = present.bound_ssim_axes(curves_figure([(1, 0.5, 0.4, 0.95), (2, 0.3, 0.35, 0.99)]))
    assert curves.layout.yaxis2.range[1] <= 1.0 and curves.layout.yaxis.range is None  # the loss axis untouched
    drops = make_subplots(rows=1, cols=1)
    drops.add_trace(go.Scatter(x=[0.02], y=[0.3]))
    drops.update_yaxes(title_text="SSIM drop (mean ± sd over slices)")
    assert present.bound_ssim_axes(drops).layout.yaxis.range is None  # a drop is not an SSIM


def test_fit_captions_state_n_and_warn_when_few():
    assert present.fit_caption(2) == "n = 2 models: too few points for a fit"
    assert present.fit_caption(5).startswith("n = 5 models: few points")
    assert present.fit_caption(12, "features") == "n = 12 features"


def test_the_bundle_holds_settings_tables_images_and_perturbations():
    request = {"method": MethodInstance.of("l1", {"lam": 0.01}), "mask": MaskConfig(acceleration=4.0),
               "eps": (0.02, float("nan"))}
    made = bundle.Bundle("run one", bundle.settings(request, "attack"), {"metrics.csv": "Method\nU-net\n"},
                         {"reference": np.ones((8, 8)), "U-net": np.zeros((8, 8)), "U net": np.eye(8)}, (0.0, 1.0),
                         {"U-net e": np.ones((2, 8, 8), np.complex64)}, {"U-net e": np.eye(8)},
                         extras={"sampling mask": np.ones((8, 8))})
    archive = zipfile.ZipFile(io.BytesIO(bundle.build(made)))
    names = set(archive.namelist())
    assert names == {"run_one/README.txt", "run_one/settings.json", "run_one/metrics.csv",
                     *{f"run_one/images/{n}.{x}" for n in ("reference", "U-net", "U_net") for x in ("npy", "png")},
                     "run_one/perturbations/U-net_e.npy", "run_one/perturbations/U-net_e.png",
                     "run_one/sampling_mask.npy", "run_one/sampling_mask.png"}
    settings = json.loads(archive.read("run_one/settings.json"))
    assert settings["page"] == "attack" and settings["request"]["eps"] == [0.02, None]
    assert settings["request"]["method"] == {"label": "l1", "method": "l1",
                                             "parameters": settings["request"]["method"]["parameters"]}
    assert settings["request"]["method"]["parameters"]["lam"] == 0.01
    e = np.load(io.BytesIO(archive.read("run_one/perturbations/U-net_e.npy")))
    assert e.dtype == np.complex64 and e.shape == (2, 8, 8)
    assert np.load(io.BytesIO(archive.read("run_one/images/reference.npy"))).dtype == np.float32
    assert archive.read("run_one/images/reference.png").startswith(b"\x89PNG")


def test_picker_options_carry_cost_badges_and_defaults_are_classical_sparse_trained():
    methods = {m.name: m for m in available_methods()}
    labels = {name: pickers.option_label(spec) for name, spec in methods.items()}
    assert labels["unet"] == "U-net · trained network · seconds"
    assert labels["zero_filled"].endswith("· instant") and labels["convdecoder"].endswith("· minutes")
    # typing "U-net" (the multiselect filters by substring) matches the U-net alone
    assert [n for n, text in labels.items() if "u-net" in text.lower()] == ["unet"]
    defaults = pickers.default_methods(methods)
    caps = [methods[n].capabilities for n in defaults]
    assert len(defaults) == 3 and caps[0].cost == "instant" and not caps[1].weights and caps[2].weights
    assert not any(c.long for c in caps)


def test_outputs_go_to_a_per_user_folder_outside_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("EXPLORER_DATA_DIR", raising=False)
    monkeypatch.setattr("sys.argv", ["app.py"])
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(ROOT)  # started from the checkout
    root = state.output_root()
    assert root == (tmp_path / "xdg" / "mri-explorer").resolve() and not root.is_relative_to(ROOT)
    assert paths.confine_output("studies/teaching", "the study folder") == root / "studies" / "teaching"
    for outside in (str(ROOT / "studies"), "../escape", "/etc"):
        with pytest.raises(ExplorerError, match="outside the app's output folder"):
            paths.confine_output(outside, "the study folder")
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))  # a data directory: outputs go there
    assert state.output_root() == (tmp_path / "data").resolve()


def test_report_figures_name_methods_and_families_in_words():
    from explorer.ui.runs.study import human_figure  # noqa: PLC0415

    fig = go.Figure([go.Scatter(x=[0.5], y=[0.1], name=n, hovertemplate="<b>a</b><br>ssim %{x}<br>window_mse %{y}")
                     for n in ("zero_filled (r = +0.39)", "baseline", "baseline fit: slope 0.75", "unet")])
    fig.update_layout(title_text="window_mse vs whole-image ssim")
    human = human_figure(fig)
    assert [t.name for t in human.data] == ["Zero-filled (r = +0.39)", "classical", "classical fit: slope 0.75", "U-net"]
    assert human.layout.title.text == "Window MSE vs whole-image SSIM"
    assert "window MSE" in human.data[0].hovertemplate and "SSIM" in human.data[0].hovertemplate
