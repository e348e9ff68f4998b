"""AppTest: the sidebar's sample acquisitions (contrast, dataset, folded field of view, single-coil), and the
Reconstruct page saying which coil map sets SENSE used on folded anatomy."""

from __future__ import annotations

import pytest

from explorer.data.sample_sources import SAMPLE_OPTIONS
from tests.app.conftest import open_page

pytestmark = pytest.mark.usefixtures("small_sample_app")


def test_every_sample_acquisition_opens():
    at = open_page("reconstruct")
    for family, options in SAMPLE_OPTIONS.items():
        at.sidebar.selectbox(key="src.family").set_value(family).run()
        for variant in options:
            at.sidebar.selectbox(key=f"src.variant.{family}").set_value(variant).run()
            assert not at.exception and not at.sidebar.error, (family, variant)
            caption = at.sidebar.caption[0].value
            assert ("1 coil(s)" in caption) == (variant == "coils=1"), caption
            if variant.startswith("fov="):
                assert f"64×{2 * round(float(variant[4:]) * 64 / 2)} k-space" in caption, caption


def test_folded_knee_sense_notes_its_map_sets():
    at = open_page("reconstruct", family="knee")
    at.sidebar.selectbox(key="src.variant.knee").set_value("fov=0.75").run()
    at.number_input(key="reconstruct.mask.acceleration").set_value(3.0).run()
    at.multiselect(key="reconstruct.methods").set_value(["zero_filled", "sense"]).run()
    assert at.selectbox(key="reconstruct.params.sense.maps").value == "auto"
    at.button(key="reconstruct.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    infos = _notes(at)  # in the one notes box above the viewer
    assert any(i.startswith("**SENSE (CG)**: 2 ESPIRiT map sets (auto: second eigenvalue >= 0.95 over") for i in infos), infos
    at.selectbox(key="reconstruct.params.sense.maps").set_value("1").run()
    at.button(key="reconstruct.run").click().run()
    assert "**SENSE (CG)**: 1 ESPIRiT map set" in _notes(at), _notes(at)


def _notes(at) -> list[str]:
    """The notes on the results: one line each in the results' notes box (``**method**: note``)."""
    return [line[2:] for e in at.expander if "note" in e.label for m in e.markdown for line in m.value.splitlines()]
