"""Streamlit AppTest of the whole app: every page runs, the Reconstruct flow works, bad
inputs show ``st.error`` and the app keeps working.

Runs on the embedded sample at 64x64 (``EXPLORER_SAMPLE_SIZE=64``) with a private cache
directory; CPU only, well under a minute.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.data.fastmri import write_volume
from explorer.physics import fft2c, ifft2c, rss
from explorer.recon import base
from explorer.ui import state
from tests.app.conftest import viewer

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
RECONSTRUCT = "pages/reconstruct.py"
TIMEOUT = 90


pytestmark = pytest.mark.usefixtures("small_sample_app")


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _reconstruct(at: AppTest) -> AppTest:
    at.switch_page(RECONSTRUCT).run()
    assert not at.exception, at.exception
    return at


def _errors(at: AppTest, where=None) -> list[str]:
    return [e.value for e in (where or at).error]


def _figure(at: AppTest, key: str) -> dict:
    charts = [c for c in at.main.get("plotly_chart") if getattr(c, "key", None) == key]
    assert charts, f"no plotly chart {key!r}"
    return json.loads(charts[-1].proto.spec)


def _run_button(at: AppTest):
    return at.button(key="reconstruct.run")


@pytest.fixture
def data_dir(tmp_path):
    """A fully sampled 2-slice volume, a test-style (undersampled, no reference) one, and junk."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[-1:1:48j, -1:1:48j]
    image = ((yy / 0.8) ** 2 + (xx / 0.6) ** 2 < 1).astype(np.float32) + 0.3 * ((xx**2 + yy**2) < 0.1)
    coils = np.stack([np.exp(-((yy - np.sin(a)) ** 2 + (xx - np.cos(a)) ** 2)) for a in (0, 2, 4)]).astype(np.complex64)
    k = fft2c(torch.from_numpy(coils * image)).numpy()
    k = np.stack([k, k * 0.9]) + 1e-3 * (rng.standard_normal((2, *k.shape)) + 1j * rng.standard_normal((2, *k.shape)))
    k = k.astype(np.complex64)
    target = rss(ifft2c(torch.from_numpy(k)), dim=1).numpy()
    write_volume(tmp_path / "full.h5", k, target)
    mask = np.zeros(48, bool)
    mask[::3] = True
    mask[20:28] = True
    write_volume(tmp_path / "sub" / "test_file.h5", k * mask, mask=mask)
    (tmp_path / "junk.h5").write_bytes(b"this is not HDF5")
    return tmp_path


# ----------------------------------------------------------------------------- pages


def test_home_page_renders_primer():
    at = _app()
    assert at.title[0].value == "MRI robustness explorer"
    assert not _errors(at)
    keys = {c.key for c in at.main.get("plotly_chart")}
    assert {"home.kspace", "home.image", "home.mask_fig", "home.zero_filled"} <= keys
    assert "Compute device" in " ".join(c.value for c in at.sidebar.caption)
    title_4x = _figure(at, "home.mask_fig")["layout"]["title"]["text"]
    at.slider(key="home.acceleration").set_value(8).run()
    at.radio(key="home.mask").set_value("equispaced").run()
    assert not at.exception and not _errors(at)
    title_8x = _figure(at, "home.mask_fig")["layout"]["title"]["text"]
    assert "R = " in title_8x and title_8x != title_4x  # the actual acceleration of the new mask


def test_reconstruct_page_runs_and_caches(monkeypatch):
    at = _reconstruct(_app())
    assert at.title[0].value == "Reconstruct"
    assert at.multiselect(key="reconstruct.methods").value == ["zero_filled", "l1", "unet"]  # classical, sparse, trained
    at.multiselect(key="reconstruct.methods").set_value(["zero_filled", "sense"]).run()
    # 64 columns: 3x keeps a 7-column centre (ESPIRiT needs 6); default centre fraction.
    at.number_input(key="reconstruct.mask.acceleration").set_value(3.0).run()
    assert "0.1067" in at.toggle(key="reconstruct.mask.cf_default").label
    assert any("Actual acceleration" in m.value for m in at.markdown)
    assert len(at.main.get("image")) == 2  # static mask and k-space previews
    assert not at.dataframe  # nothing run yet

    _run_button(at).click().run()
    assert not at.exception and not _errors(at), _errors(at)
    table = at.dataframe[0].value
    assert list(table["Method"]) == ["Zero-filled", "SENSE (CG)"]
    for _, row in table.iterrows():
        assert 0 < row["SSIM"] <= 1
        assert math.isfinite(row["PSNR (dB)"]) and row["PSNR (dB)"] > 0
        assert row["NMSE"] >= 0 and row["Recon (s)"] >= 0
    header, frames = viewer(at, "reconstruct")
    shown = frames[header["current"]]
    assert list(shown) == ["Target (reference)", *table["Method"]]  # the reference and every reconstruction, once
    assert header["settings"]["error"] == "abs" and header["frames"][0]["reference"] == "Target (reference)"
    assert all(image.shape == (64, 64) for image in shown.values())
    assert {d.label for d in at.download_button} >= {".npy", ".png", "Metrics (.csv)"}

    # A rerun (e.g. moving the window) is served from the caches: no method runs again.
    calls = []
    import explorer.ui.cache as cache_mod  # noqa: PLC0415

    real = cache_mod.run_method
    monkeypatch.setattr(cache_mod, "run_method", lambda *a, **k: calls.append(getattr(a[1], "name", a[1])) or real(*a, **k))
    before, _ = viewer(at, "reconstruct")
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    assert not at.exception and calls == []
    print(f"cached rerun (AppTest, 64x64): {elapsed:.3f} s")
    # window / level and the error maps are the browser's (no rerun): it gets the presets, and nothing is sent twice
    again, frames = viewer(at, "reconstruct")
    assert again["current"] == before["current"] and frames == {}  # the browser holds this frame already
    assert set(before["frames"][0]["windows"]) == {"full", "tissue", "auto"}
    assert before["frames"][0]["windows"]["full"][0] == 0

    # Changed settings: the old results stay, with a note, until Run is pressed again.
    at.number_input(key="reconstruct.mask.seed").set_value(1).run()
    assert any("Settings changed" in i.value for i in at.info)
    assert viewer(at, "reconstruct")[0]["current"] == before["current"]  # same images: the browser keeps its view
    _run_button(at).click().run()
    assert not any("Settings changed" in i.value for i in at.info)
    assert sorted(calls) == ["sense", "zero_filled"]  # each once (speculatively or on Run)


def test_cheap_methods_run_speculatively_once(monkeypatch):
    """The page starts the instant methods before Run; pressing Run reuses them, nothing runs twice."""
    import explorer.ui.cache as cache_mod  # noqa: PLC0415

    calls = []
    real = cache_mod.run_method
    monkeypatch.setattr(cache_mod, "run_method",
                        lambda *a, **k: calls.append((a[1].name, a[0].sampled.config.seed)) or real(*a, **k))
    at = _reconstruct(_app())
    at.multiselect(key="reconstruct.methods").set_value(["zero_filled", "sense"]).run()
    at.number_input(key="reconstruct.mask.seed").set_value(7).run()
    cache_mod.JOBS.wait(timeout=TIMEOUT)
    assert sorted(name for name, seed in calls if seed == 7) == ["sense", "zero_filled"]
    before = len(calls)
    _run_button(at).click().run()
    assert not at.exception and not _errors(at), _errors(at)
    assert list(at.dataframe[0].value["Method"]) == ["Zero-filled", "SENSE (CG)"]
    assert len(calls) == before  # Run reused the speculative results


@dataclass(frozen=True)
class _AllTypesConfig:
    steps: int = field(default=3, metadata={"help": "iterations", "min": 1, "max": 50})
    scale: float = field(default=1.0, metadata={"help": "output scale", "min": 0.0, "max": 2.0})
    flip: bool = field(default=False, metadata={"help": "negate (magnitude unchanged)"})
    combine: str = field(default="rss", metadata={"help": "combination", "choices": ("rss", "sum")})
    note: str = field(default="hello", metadata={"help": "free text"})


def _all_types(config: _AllTypesConfig):
    def recon(y, op, progress=None):
        x = rss(ifft2c(y * op.mask), dim=1).to(y.dtype) * config.scale
        for i in range(config.steps):
            if progress is not None and progress(i + 1, config.steps, {"loss": 1.0 / (i + 1)}):
                break
        return -x if config.flip else x

    return recon


def test_parameters_render_generically_from_paramspec(monkeypatch):
    base.available_methods()  # load the built-ins before adding one
    monkeypatch.setitem(base.REGISTRY, "all_types", base.MethodSpec(
        "all_types", "All types", "sparse", _AllTypesConfig, _all_types, "Test method with every parameter type.",
        lambda cfg: False))
    at = _reconstruct(_app())
    at.multiselect(key="reconstruct.methods").set_value(["all_types"]).run()
    prefix = "reconstruct.params.all_types"
    assert at.number_input(key=f"{prefix}.steps").value == 3
    assert at.number_input(key=f"{prefix}.scale").value == 1.0
    assert at.checkbox(key=f"{prefix}.flip").value is False
    assert at.selectbox(key=f"{prefix}.combine").options == ["rss", "sum"]
    assert at.text_input(key=f"{prefix}.note").value == "hello"
    assert at.number_input(key=f"{prefix}.steps").help == "iterations"

    at.number_input(key=f"{prefix}.steps").set_value(7)
    at.number_input(key=f"{prefix}.scale").set_value(0.5)
    at.checkbox(key=f"{prefix}.flip").check()
    at.selectbox(key=f"{prefix}.combine").set_value("sum").run()
    _run_button(at).click().run()
    assert not at.exception and not _errors(at), _errors(at)
    (instance,) = at.session_state[state.REQUEST].methods
    assert (instance.label, instance.name, instance.config) == ("all_types", "all_types", _AllTypesConfig(7, 0.5, True, "sum", "hello"))
    assert viewer(at, "reconstruct")[0]["frames"][0]["labels"] == ["Target (reference)", "All types"]
    assert 0 < at.dataframe[0].value["SSIM"].iloc[0] <= 1

    at.button(key=f"{prefix}.__reset").click().run()
    assert at.number_input(key=f"{prefix}.steps").value == 3


ISSUE3_TINY = {  # (method, {param: value}): sparse and un-trained methods with tiny settings
    "l1": {"iterations": 5},
    "tv": {"iterations": 5},
    "convdecoder": {"iterations": 6, "width": 8, "layers": 3},
    "deep_decoder": {"iterations": 6, "width": 8, "layers": 3},
    "dip": {"iterations": 6, "width": 8, "layers": 2},
}


def test_each_sparse_and_untrained_method_runs_in_the_page():
    at = _reconstruct(_app())
    at.number_input(key="reconstruct.mask.acceleration").set_value(3.0).run()
    at.multiselect(key="reconstruct.methods").set_value(["zero_filled", *ISSUE3_TINY]).run()
    # l1/TV show the lam tuned for the data's anatomy (knee sample) as their default
    from explorer.recon.sparse import tuned_lambda  # noqa: PLC0415

    assert at.number_input(key="reconstruct.params.l1.lam.knee").value == pytest.approx(tuned_lambda("l1", "knee"))
    for name, params in ISSUE3_TINY.items():
        for param, value in params.items():
            at.number_input(key=f"reconstruct.params.{name}.{param}").set_value(value)
    at.run()
    assert _run_button(at).disabled  # the un-trained networks take minutes: confirmed first
    at.checkbox(key="reconstruct.confirm_long").check().run()
    _run_button(at).click().run()
    assert not at.exception and not _errors(at), _errors(at)
    table = at.dataframe[0].value
    assert list(table["Method"]) == ["Zero-filled", "l1-wavelet", "Total variation", "ConvDecoder", "Deep Decoder",
                                     "Deep Image Prior"]
    assert table["SSIM"].between(0, 1).all() and (table["Recon (s)"] > 0).all()
    assert viewer(at, "reconstruct")[0]["frames"][0]["labels"] == ["Target (reference)", *table["Method"]]
    # the three fits report their data-consistency loss: one curve each, 6 points
    curves = _figure(at, "reconstruct.loss_fig")["data"]
    assert [c["name"] for c in curves] == ["ConvDecoder", "Deep Decoder", "Deep Image Prior"]
    assert all(len(_values(c["x"])) == 6 for c in curves)
    assert not any("stopped" in w.value for w in at.warning)


def _values(array) -> list:
    """Plotly JSON arrays: a list, or a base64 typed array {"dtype", "bdata"}."""
    if isinstance(array, dict):
        import base64  # noqa: PLC0415

        return list(np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]))
    return list(array)


def test_progress_feedback_turns_an_interruption_into_a_stop():
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException  # noqa: PLC0415

    from explorer.ui.widgets import _Throttled  # noqa: PLC0415

    class Bar:
        calls = 0

        def progress(self, value, text=""):
            Bar.calls += 1
            if Bar.calls >= 2:
                raise StopException()  # what Streamlit raises at the next st call after a click

    feedback = _Throttled(Bar(), "fit")
    assert feedback(1, 100, {"loss": 0.5}) is None
    feedback.last = 0.0  # past the throttle
    assert feedback(2, 100, {"loss": 0.4}) is True and isinstance(feedback.interrupt, StopException)
    assert feedback(3, 100, {"loss": 0.3}) is True  # keeps asking to stop; no further st calls
    assert Bar.calls == 2 and feedback.losses == [(1, 0.5), (2, 0.4), (3, 0.3)]


# ----------------------------------------------------------------------------- data sources


def test_data_directory_and_test_file_without_reference(data_dir, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["src.kind"] = "dir"
    at.session_state["src.dir"] = str(data_dir)
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox(key="src.file").options == ["full.h5", "junk.h5", "sub/test_file.h5"]
    assert "fully sampled" in " ".join(c.value for c in at.sidebar.caption)

    at.session_state["src.file"] = "junk.h5"  # sidebar widgets are set through their keys
    at.run()
    assert any("not a readable HDF5 file" in e for e in _errors(at, at.sidebar)), _errors(at)
    at.session_state["src.file"] = "sub/test_file.h5"
    at.run()
    assert not at.exception and not _errors(at)
    assert any("already undersampled" in i.value for i in at.info)  # home primer shows the file's own mask

    _reconstruct(at)
    assert any("already undersampled" in w.value for w in at.warning)
    at.multiselect(key="reconstruct.methods").set_value(["zero_filled"]).run()
    _run_button(at).click().run()
    assert not at.exception and not _errors(at), _errors(at)
    assert any("No reference image" in i.value for i in at.info)
    table = at.dataframe[0].value
    assert "SSIM" not in table.columns and list(table["Method"]) == ["Zero-filled"]
    header, _ = viewer(at, "reconstruct")
    assert header["frames"][0]["labels"] == ["Zero-filled"] and header["frames"][0]["reference"] is None
    assert header["settings"]["error"] == "off"  # images only, no error maps


def test_raw_ismrmrd_volume_offers_planes(tmp_path, monkeypatch):
    from explorer.data.ismrmrd_write import write_stanford_like  # noqa: PLC0415

    rng = np.random.default_rng(1)
    vol = (rng.standard_normal((4, 12, 32, 24)) + 1j * rng.standard_normal((4, 12, 32, 24))).astype(np.complex64)
    write_stanford_like(tmp_path / "raw" / "knee_raw.h5", vol)
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["src.kind"] = "dir"
    at.session_state["src.dir"] = str(tmp_path / "raw")
    at.run()
    _reconstruct(at)
    assert at.radio(key="reconstruct.plane").options == ["kxky", "kykz"]
    assert at.slider(key="reconstruct.slice").max == 11  # 12 stored z positions
    at.radio(key="reconstruct.plane").set_value("kykz").run()  # builds the ky-kz cache once
    assert not at.exception and not _errors(at), _errors(at)
    assert at.slider(key="reconstruct.slice").max == 23  # one plane per readout position
    at.selectbox(key="reconstruct.mask.type").set_value("poisson")
    at.number_input(key="reconstruct.mask.acceleration").set_value(2.0).run()
    at.multiselect(key="reconstruct.methods").set_value(["zero_filled"]).run()
    _run_button(at).click().run()
    assert not at.exception and not _errors(at), _errors(at)
    assert 0 < at.dataframe[0].value["SSIM"].iloc[0] <= 1


def test_data_dir_from_arguments_and_environment(monkeypatch, tmp_path):
    assert state.default_data_dir(["--data-dir", str(tmp_path)]) == str(tmp_path)
    assert state.default_data_dir(["-q", "tests/app"]) == ""
    monkeypatch.setenv("EXPLORER_DATA_DIR", "/data/knee")
    assert state.default_data_dir([]) == "/data/knee"
    assert state.default_data_dir(["--data-dir", "/x"]) == "/x"


def test_nonexistent_data_dir_shows_error_and_app_keeps_working(monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", "/nonexistent/mri-data")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["src.kind"] = "dir"
    at.session_state["src.dir"] = "/nonexistent/mri-data"
    at.run()
    assert not at.exception
    assert any("data directory not found" in e for e in _errors(at, at.sidebar))
    _reconstruct(at)
    assert any("valid data source" in i.value for i in at.info)
    # back to the embedded sample: everything works again
    at.session_state["src.kind"] = "sample"
    at.run()
    assert not at.exception and not _errors(at)
    assert at.slider(key="reconstruct.slice").value == 2


def test_bad_upload_shows_error_and_good_upload_works(data_dir):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["src.kind"] = "upload"
    at.run()
    assert any("Upload" in i.value for i in at.sidebar.info)
    at.sidebar.file_uploader(key="src.upload").upload("broken.h5", b"\x89HDF\r\n garbage").run()
    assert not at.exception
    assert any("broken.h5" in e for e in _errors(at, at.sidebar))
    _reconstruct(at)
    assert any("valid data source" in i.value for i in at.info)

    at.switch_page("pages/home.py").run()
    at.sidebar.file_uploader(key="src.upload").set_value(
        ("full.h5", (data_dir / "full.h5").read_bytes(), "application/x-hdf5")).run()
    assert not at.exception and not _errors(at, at.sidebar)
    assert "full.h5" in " ".join(c.value for c in at.sidebar.caption)
    _reconstruct(at)
    assert at.slider(key="reconstruct.slice").max == 1


@pytest.mark.parametrize(("mask", "acceleration", "message"), [
    ("equispaced", 2.5, "integer acceleration"),
    ("magic", 64.0, "samples nothing"),
    ("random", 64.0, "samples nothing"),
])
def test_acceleration_edge_cases_show_error_and_recover(mask, acceleration, message):
    at = _reconstruct(_app())
    at.selectbox(key="reconstruct.mask.type").set_value(mask)
    at.number_input(key="reconstruct.mask.acceleration").set_value(acceleration).run()
    assert not at.exception
    assert any(message in e for e in _errors(at)), _errors(at)
    assert not at.button  # the page stopped cleanly before the methods
    at.number_input(key="reconstruct.mask.acceleration").set_value(4.0).run()
    assert not at.exception and not _errors(at)
    assert _run_button(at)


def test_bad_sample_size_is_a_clean_error(monkeypatch):
    monkeypatch.setenv("EXPLORER_SAMPLE_SIZE", "huge")
    at = _app()
    assert any("EXPLORER_SAMPLE_SIZE" in e for e in _errors(at, at.sidebar))


def test_a_second_instance_of_a_method_runs_beside_the_first():
    at = _reconstruct(_app())
    at.multiselect(key="reconstruct.methods").set_value(["sense"]).run()
    at.selectbox(key="reconstruct.add_method").set_value("sense")
    at.button(key="reconstruct.add_instance").click().run()
    assert not at.exception
    at.number_input(key="reconstruct.params.sense#2.iterations").set_value(1).run()
    _run_button(at).click().run()
    assert not at.exception and not _errors(at), _errors(at)
    table = at.dataframe[0].value
    assert list(table["Method"]) == ["SENSE (CG)", "SENSE (CG) #2"]
    assert table["SSIM"].iloc[0] != table["SSIM"].iloc[1]  # 10 CG iterations vs 1
    (first, second) = at.session_state[state.REQUEST].methods
    assert (first.label, second.label, second.config.iterations) == ("sense", "SENSE (CG) #2", 1)
    assert "SENSE (CG) #2" in viewer(at, "reconstruct")[0]["frames"][0]["labels"]
    at.button(key="reconstruct.remove.sense#2").click().run()
    assert not at.exception
    with pytest.raises(KeyError):
        at.number_input(key="reconstruct.params.sense#2.iterations")


def test_the_data_directory_browser_is_confined_to_the_data_roots(data_dir, monkeypatch, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    write_volume(outside / "secret.h5", np.zeros((1, 2, 8, 8), np.complex64))
    (data_dir / "escape").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(data_dir))
    for folder in ("/", str(outside), str(data_dir / ".."), str(data_dir / "escape")):
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.session_state["src.kind"] = "dir"
        at.session_state["src.dir"] = folder
        at.run()
        assert not at.exception and any("outside the data directory" in e for e in _errors(at, at.sidebar)), folder
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["src.kind"] = "dir"
    at.session_state["src.dir"] = "sub"  # relative to the data directory
    at.run()
    assert not at.exception and at.sidebar.selectbox(key="src.file").options == ["test_file.h5"]
    at.session_state["src.dir"] = str(data_dir)
    at.run()
    assert not [n for n in at.sidebar.selectbox(key="src.file").options if "secret" in n]  # not through the symlink


def test_the_sidebars_metric_definition_scores_every_result_and_is_named():
    """The sidebar's "Metrics" choice reaches the scores (the papers' definition rescales first: a different SSIM
    for the same image), is named under the table, and results of each definition are cached apart."""
    import numpy as np  # noqa: PLC0415

    from explorer.metrics import compute_metrics  # noqa: PLC0415

    at = _reconstruct(_app())
    at.number_input(key="reconstruct.mask.acceleration").set_value(3.0).run()
    at.multiselect(key="reconstruct.methods").set_value(["zero_filled"]).run()
    _run_button(at).click().run()
    fastmri_ssim = at.dataframe[0].value["SSIM"].iloc[0]
    assert any("Metrics: fastmri" in c.value for c in at.caption)
    at.sidebar.selectbox(key="explorer.metric").set_value("paper").run()
    _run_button(at).click().run()
    assert not at.exception and not _errors(at), _errors(at)
    paper_ssim = at.dataframe[0].value["SSIM"].iloc[0]
    assert any("Metrics: paper" in c.value for c in at.caption) and paper_ssim != fastmri_ssim
    shown = at.session_state["reconstruct.request"]
    from explorer.ui import cache  # noqa: PLC0415

    problem = cache._prepare(shown.source, shown.plane, shown.index, shown.mask, cache._device_key(), 0.95, "paper")
    image = cache._get(cache._key(shown.source, shown.plane, shown.index, shown.mask, shown.methods[0])).image
    assert paper_ssim == compute_metrics(problem.target, np.asarray(image), "paper")["ssim"]
