"""AppTest of the Home page's teaching mode: every control changes what is shown, bad settings are one-line
errors, and each guided-path button opens its page with the step's settings (64x64 sample, CPU)."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from explorer.teaching.path import STEPS, readme_passage
from tests.app.conftest import APP, figure

pytestmark = pytest.mark.usefixtures("small_sample_app")
TIMEOUT = 120


def _home(section: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if section is not None:
        at.radio(key="home.teach.section").set_value(section).run()
        _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not [e.value for e in at.error], [e.value for e in at.error]


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _title(at: AppTest, key: str) -> str:
    return figure(at, key)["layout"]["title"]["text"]


def _data(at: AppTest, key: str) -> str:
    return json.dumps(figure(at, key)["data"], sort_keys=True)


def _charts(at: AppTest) -> set[str]:
    return {c.key for c in at.main.get("plotly_chart") if c.key}


def test_primer_mask_drawn_line_by_line_with_its_actual_r():
    from explorer.masks import MaskConfig, make_mask

    at = _home()
    at.radio(key="home.mask").set_value("equispaced").run()
    at.slider(key="home.acceleration").set_value(8).run()
    _ok(at)
    fig = figure(at, "home.mask_fig")
    assert fig["layout"]["title"]["text"] == "<b>Mask · R = 8 (actual 5.82)</b>"  # 64 columns: 11 sampled
    lines = [t for t in fig["data"] if t["type"] == "scatter" and t.get("fill") != "toself"]
    sampled = make_mask(MaskConfig("equispaced", 8.0), (64, 64)).pattern((64, 64))[0]
    assert len(lines) == 1 and lines[0]["line"]["width"] >= 1
    assert sorted({x for x in lines[0]["x"] if x is not None}) == [float(c) for c in sampled.nonzero()[0]]
    assert any("Nominal R = 8, actual R = 64/11 = 5.82" in c.value and "added on top" in c.value for c in at.caption)


def test_kspace_explorer_region_radius_and_band():
    at = _home()  # the default section
    assert at.radio(key="home.teach.section").value == "kspace"
    assert {"home.teach.region_kspace", "home.teach.region_image", "home.teach.region_full"} <= _charts(at)
    image, kspace, title = _data(at, "home.teach.region_image"), _data(at, "home.teach.region_kspace"), \
        _title(at, "home.teach.region_image")
    at.slider(key="home.teach.radius").set_value(0.3).run()
    _ok(at)
    assert _data(at, "home.teach.region_image") != image and _title(at, "home.teach.region_image") != title
    assert _data(at, "home.teach.region_kspace") != kspace
    seen = {}
    for kind in ("square", "periphery", "rows", "columns", "disc"):
        at.radio(key="home.teach.region").set_value(kind).run()
        _ok(at)
        seen[kind] = _data(at, "home.teach.region_image")
    assert len(set(seen.values())) == 5
    assert at.slider(key="home.teach.radius").label == "Radius"
    at.radio(key="home.teach.region").set_value("rows").run()
    assert at.slider(key="home.teach.radius").label == "Half-height"
    # the band between two radii: its outer slider, and a clear error when it is not outside the inner one
    at.radio(key="home.teach.region").set_value("annulus").run()
    _ok(at)
    band = _data(at, "home.teach.region_image")
    at.slider(key="home.teach.outer").set_value(0.6).run()
    _ok(at)
    assert _data(at, "home.teach.region_image") != band
    at.slider(key="home.teach.outer").set_value(0.1).run()
    assert not at.exception and len(_errors(at)) == 1 and "outer radius" in _errors(at)[0]
    # a periphery beyond the corners holds nothing
    at.radio(key="home.teach.region").set_value("periphery").run()
    at.slider(key="home.teach.radius").set_value(1.5).run()
    assert not at.exception and _errors(at) == ["this region holds no k-space sample: widen it"]


def test_masks_and_psfs_acceleration_families_and_scale():
    at = _home("masks")
    assert {"home.teach.psf_masks_fig", "home.teach.psf_fig", "home.teach.psf_zero_filled",
            "home.teach.psf_profile"} <= _charts(at)
    table = at.dataframe[0].value
    assert len(table) == 4
    spr = dict(zip(table["Mask"], table["Peak side lobe / peak"]))
    assert spr["2D Poisson disc (variable density)"] < spr["Equispaced (fastMRI)"]  # incoherent vs coherent
    psf = _data(at, "home.teach.psf_fig")
    at.slider(key="home.teach.psf_accel").set_value(6).run()
    _ok(at)
    assert _data(at, "home.teach.psf_fig") != psf
    assert list(at.dataframe[0].value["Actual R"]) != list(table["Actual R"])
    psf = _data(at, "home.teach.psf_fig")
    at.radio(key="home.teach.psf_scale").set_value("linear").run()
    _ok(at)
    assert _data(at, "home.teach.psf_fig") != psf
    # the PSF tiles: the centre (main lobe, first aliases) or the whole image, block maxima with offsets as x/y
    centre = figure(at, "home.teach.psf_fig")["data"][0]
    assert 0 in centre["x"] and max(centre["x"]) < 64 // 2
    at.radio(key="home.teach.psf_area").set_value("whole").run()
    _ok(at)
    whole = figure(at, "home.teach.psf_fig")["data"][0]
    assert max(whole["x"]) > max(centre["x"]) and len(whole["x"]) > len(centre["x"])
    # the masks are drawn line by line: every sampled column of a column mask is a line of its own
    masks = figure(at, "home.teach.psf_masks_fig")["data"]
    assert any(t["type"] == "scatter" and t.get("line", {}).get("width", 0) >= 1 for t in masks)
    # why each actual R differs from the nominal one
    notes = [m.value for m in at.markdown if m.value.startswith("**Why the actual R differs")]
    assert len(notes) == 1 and "**Equispaced (fastMRI)**: Nominal R = 6, actual R" in notes[0]
    assert "added on top" in notes[0] and "probability" in notes[0]
    at.multiselect(key="home.teach.psf_masks").set_value(["equispaced_fraction", "random"]).run()
    _ok(at)
    assert len(figure(at, "home.teach.psf_fig")["data"]) == 2 and len(at.dataframe[0].value) == 2
    at.multiselect(key="home.teach.psf_masks").set_value([]).run()
    assert not at.exception and "home.teach.psf_fig" not in _charts(at)
    assert any("at least one mask" in i.value for i in at.info)


def test_coils_and_sense_acceleration_and_single_coil():
    at = _home("sense")
    assert {"home.teach.coils", "home.teach.maps", "home.teach.sense_aliased", "home.teach.sense_unfolded"} <= _charts(at)
    assert len(figure(at, "home.teach.coils")["data"]) == 8  # one panel per coil of the sample
    aliased, unfolded = _title(at, "home.teach.sense_aliased"), _title(at, "home.teach.sense_unfolded")
    assert "4× (actual" in aliased and "SSIM" in unfolded  # from R = 4, where there is something to unfold
    assert at.slider(key="home.teach.sense_accel").min == 4 and at.slider(key="home.teach.sense_accel").max == 8
    assert any("Nominal R = 4, actual R" in c.value for c in at.caption)
    at.slider(key="home.teach.sense_accel").set_value(5).run()
    _ok(at)
    assert _title(at, "home.teach.sense_aliased") != aliased and _title(at, "home.teach.sense_unfolded") != unfolded
    at.slider(key="home.teach.sense_accel").set_value(8).run()  # a 64-column image: 3 centre columns, too few for ESPIRiT
    assert not at.exception and len(_errors(at)) <= 1
    at.sidebar.selectbox(key="src.variant.knee").set_value("coils=1").run()
    assert not at.exception and any("single-coil" in i.value for i in at.info)


def test_families_iterates_fit_and_trained_networks():
    at = _home("families")
    keys = _charts(at)
    assert {"home.teach.iterate_fig", "home.teach.net_input", "home.teach.net_output"} <= keys
    assert "home.teach.fit_fig" not in keys  # the fit runs on its button only
    title = _title(at, "home.teach.iterate_fig")
    assert "k = 10" in title
    at.select_slider(key="home.teach.iterate").set_value(2).run()
    _ok(at)
    assert "k = 2" in _title(at, "home.teach.iterate_fig")
    assert at.radio(key="home.teach.iter_output").value == "dc_rss"  # what every page scores
    assert any("The method's output is what every page scores" in c.value for c in at.caption)
    image = _data(at, "home.teach.iterate_fig")
    at.radio(key="home.teach.iter_output").set_value("image").run()
    _ok(at)
    assert _data(at, "home.teach.iterate_fig") != image
    why = [c.value for c in at.caption if "zero-filled** (SSIM" in c.value]  # measured on this slice
    assert len(why) == 1 and "fully sampled k-space, combined with these maps, scores only SSIM" in why[0]
    at.selectbox(key="home.teach.solver").set_value("tv").run()
    _ok(at)
    assert _title(at, "home.teach.iterate_fig").startswith("<b>Total variation")
    at.button(key="home.teach.iter_all").click().run()
    _ok(at)
    curve = figure(at, "home.teach.iterate_curve")
    assert len(curve["data"][0]["x"]) == 7  # every iterate of the slider, each a scored run
    assert curve["layout"]["xaxis"]["ticktext"] == ["1", "2", "5", "10", "20", "50", "100"]  # not "8 9 1 2 ... 5"
    assert any(a["text"].startswith("zero-filled") for a in curve["layout"]["annotations"])  # its SSIM, dashed
    assert at.button(key="home.teach.iter_all").disabled
    # the trained network's one forward pass
    out = _title(at, "home.teach.net_output")
    at.selectbox(key="home.teach.net").set_value("varnet").run()
    _ok(at)
    assert _title(at, "home.teach.net_output") != out and "VarNet" in _title(at, "home.teach.net_output")
    # the un-trained fit: steps, button, snapshot slider, view
    at.select_slider(key="home.teach.fit_steps").set_value(25).run()
    at.button(key="home.teach.fit_run").click().run()
    _ok(at)
    assert "step 25" in _title(at, "home.teach.fit_fig")
    assert at.select_slider(key="home.teach.fit_snapshot").options == ["0", "1", "2", "5", "10", "25"]
    generator = _data(at, "home.teach.fit_fig")
    at.radio(key="home.teach.fit_view").set_value("consistent").run()
    _ok(at)
    assert _data(at, "home.teach.fit_fig") != generator
    at.select_slider(key="home.teach.fit_snapshot").set_value(0).run()
    _ok(at)
    assert "step 0" in _title(at, "home.teach.fit_fig")
    at.selectbox(key="home.teach.fit_method").set_value("deep_decoder").run()
    _ok(at)
    assert "home.teach.fit_fig" not in _charts(at)  # another network: not fitted yet


def test_guided_path_buttons_open_each_page_with_its_settings():
    at = _home("path")
    assert len([b for b in at.button if b.key and b.key.startswith("home.path.")]) == len(STEPS)
    answer = readme_passage("Adversarial attacks: what we measured", "Answer on this data")
    assert answer and any(answer[:80] in m.value for m in at.markdown)  # README's measured answer, quoted
    for step in STEPS:
        at.radio(key="home.teach.section").set_value("path").run()
        slug = step.page.removeprefix("pages/").removesuffix(".py")
        at.button(key=f"home.path.{slug}").click().run()
        assert not at.exception, (step.title, at.exception)
        assert at.title[0].value == step.title, step.title
        for key, value in step.settings.items():
            assert at.session_state[key] == value, (step.title, key)
        for key, value in step.sidebar.items():
            assert at.session_state[key] == value, (step.title, key)
        assert not [w.value for w in at.warning if "Session State API" in w.value]
        if step.title == "Attack":  # the page's widgets show the values
            assert at.text_input(key="attack.eps").value == "0.02, 0.04, 0.08"
            assert at.multiselect(key="attack.methods").value == ["zero_filled", "sense", "unet"]
        if step.title == "Test-time training":  # brain data, the knee U-net adapted, the brain one as reference
            assert at.sidebar.selectbox(key="src.family").value == "brain"
            assert at.text_input(key="ttt.params.unet.checkpoint.brain").value == "knee"
            assert at.text_input(key="ttt.reference").value == "brain"
        at.switch_page("pages/home.py").run()
        assert not at.exception


def test_artifacts_every_corruption_changes_the_image():
    at = _home("artifacts")
    assert {"home.teach.art.kspace", "home.teach.art.image", "home.teach.art.error"} <= _charts(at)
    shown = {}
    for kind in ("noise", "motion", "spikes", "partial", "gibbs"):
        at.radio(key="home.teach.art.kind").set_value(kind).run()
        _ok(at)
        shown[kind] = _data(at, "home.teach.art.image")
        assert "Relative error of this image" in " ".join(c.value for c in at.caption)
    assert len(set(shown.values())) == 5  # five different images
    at.radio(key="home.teach.art.kind").set_value("motion").run()
    before = _data(at, "home.teach.art.image")
    at.radio(key="home.teach.art.ordering").set_value("interleaved").run()
    _ok(at)
    assert _data(at, "home.teach.art.image") != before and "interleaved" in _title(at, "home.teach.art.kspace")
    at.radio(key="home.teach.art.kind").set_value("gibbs").run()
    before = _data(at, "home.teach.art.image")
    at.toggle(key="home.teach.art.hamming").set_value(True).run()
    _ok(at)
    assert _data(at, "home.teach.art.image") != before and "Hamming" in _title(at, "home.teach.art.kspace")
