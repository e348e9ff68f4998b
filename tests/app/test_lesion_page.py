"""AppTest of the Lesions page on the 64x64 embedded knee: both questions, the headline table, the viewer's pairs
and lesion box, a bad setting as one error line."""

from __future__ import annotations

import pytest

from explorer.ui.runs import lesion as lesion_run
from tests.app.conftest import open_page, viewer

pytestmark = pytest.mark.usefixtures("small_sample_app")


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_hallucination_headline_and_viewer():
    at = open_page("lesion", timeout=240)
    assert at.title[0].value == "Lesions"
    at.radio(key="lesion.mode").set_value("hallucination").run()
    at.multiselect(key="lesion.methods").set_value(["zero_filled", "sense"]).run()
    at.text_input(key="lesion.eps").set_value("0.02,0.08").run()
    at.number_input(key="lesion.steps").set_value(3).run()
    at.number_input(key="lesion.row").set_value(30).run()
    at.number_input(key="lesion.col").set_value(32).run()
    at.button(key="lesion.run").click().run()
    assert not at.exception and not _errors(at), _errors(at)
    table = at.dataframe[0].value
    assert list(table["Method"]) == ["Zero-filled", "SENSE (CG)"]
    run = at.session_state[lesion_run.RUN.handoff.key]
    for outcome, cell in zip(run.outcomes, table["Smallest budget"]):
        assert cell == lesion_run.verdict(outcome)
        assert outcome.headline is not None and outcome.headline.results
    header, _ = viewer(at, "lesion")
    labels = header["frames"][0]["labels"]
    assert "Zero-filled: clean" in labels and any(label.startswith("Zero-filled: attacked eps") for label in labels)
    box = list(run.outcomes[0].headline.results[0].structure.box)
    assert box[0] <= 30 < box[2] and box[1] <= 32 < box[3]
    assert box in header["settings"]["boxes"] and header["settings"]["box_labels"] == ["lesion"]
    assert header["settings"]["pairs"]  # each attacked image paired with its clean one: the difference map


def test_false_negative_search_and_a_bad_region():
    at = open_page("lesion", timeout=240)
    at.radio(key="lesion.mode").set_value("false-negative").run()
    at.multiselect(key="lesion.methods").set_value(["zero_filled"]).run()
    at.text_input(key="lesion.region").set_value("10,10,5,5").run()
    assert any("region" in e.lower() or "row0" in e for e in _errors(at)), _errors(at)
    at.text_input(key="lesion.region").set_value("").run()
    at.text_input(key="lesion.eps").set_value("0.04").run()
    at.number_input(key="lesion.steps").set_value(2).run()
    at.number_input(key="lesion.candidates").set_value(2).run()
    at.number_input(key="lesion.refine").set_value(1).run()
    at.button(key="lesion.run").click().run()
    assert not at.exception and not _errors(at), _errors(at)
    run = at.session_state[lesion_run.RUN.handoff.key]
    outcome = run.outcomes[0]
    assert outcome.search is not None and outcome.search.worst is not None and len(outcome.search.candidates) == 2
    table = at.dataframe[0].value
    assert table["Lesion"][0].startswith(outcome.search.worst.feature.shape)


def test_placement_viewer_marks_the_lesion_and_hands_a_drawn_box_to_the_region():
    at = open_page("lesion", timeout=240)
    at.radio(key="lesion.mode").set_value("hallucination").run()
    at.number_input(key="lesion.row").set_value(20).run()
    at.number_input(key="lesion.col").set_value(25).run()
    header, _ = viewer(at, "lesion.place")
    assert header["settings"]["mark"] is True and header["settings"]["point"] == [20, 25]
    at.radio(key="lesion.mode").set_value("false-negative").run()
    at.toggle(key="lesion.place.roi.on").set_value(True).run()
    for name, value in (("top", 10), ("left", 12), ("bottom", 40), ("right", 44)):
        at.number_input(key=f"lesion.place.roi.{name}").set_value(value).run()
    at.button(key="lesion.use_roi").click().run()
    assert not at.exception and not _errors(at), _errors(at)
    assert at.text_input(key="lesion.region").value == "10,12,41,45"  # half-open: bottom and right + 1
