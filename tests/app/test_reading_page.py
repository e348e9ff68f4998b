"""The Reading page (pages/reading.py, explorer/ui/reading.py) on tiny demonstration sessions (32 px, one slice).

A reader opens a session with a personal link (query parameters) or a typed code and reads each case: Likert
ratings, a 2AFC choice, a detection (present/absent, the marked location, confidence). Every answer is stored through
the library as soon as it is complete (checked with ``store.answers_frame``), changes make a new revision, Previous /
Next / Pause move through the cases and opening the link again continues at the first unanswered case. Any bad link
or code gives one error line, the same whatever the reason. No method name, condition, metric or other reader's
name or answer is anywhere in the page: every element's text and the viewer's payload are scanned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from explorer.readers.codes import add_reader
from explorer.readers.reading import Reading
from explorer.readers.session import build_demo
from explorer.readers.tables import answers_frame, key_frame
from explorer.readers.tasks import CRITERIA, task_info
from explorer.ui import reading as ui
from explorer.ui import reading_answers as answers
from explorer.ui import reading_case as case
from tests.app.conftest import APP

SIZE = 32


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """A data directory with three demonstration sessions (likert, 2afc, detection) and two readers each:
    ``{task: (path, {reader name: code})}``."""
    root = tmp_path_factory.mktemp("reading-data")
    folder = root / ui.FOLDER
    folder.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLORER_SAMPLE_SIZE", "64")
        mp.setenv("EXPLORER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("EXPLORER_DATA_DIR", str(root))
        mp.delenv("EXPLORER_DEVICE", raising=False)
        st.cache_data.clear()
        st.cache_resource.clear()
        out = {}
        for task in ("likert", "2afc", "detection"):
            path = folder / f"{task}.reading"
            build_demo(path, task, size=SIZE, slices=1, seed=0, repeats=0.25)
            out[task] = (path, {name: add_reader(path, name).code for name in ("reader-one", "reader-two")})
        yield out
        st.cache_data.clear()
        st.cache_resource.clear()


def open_reading(params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/reading.py").run()
    assert not at.exception, at.exception
    return at


def link(sessions, task: str, reader: str = "reader-one") -> AppTest:
    return open_reading({"session": task, "code": sessions[task][1][reader]})


def progress_text(at: AppTest) -> str:
    return at.main.get("progress")[0].proto.text


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.main.get("error")]


def mine(path: Path, reader: str):
    frame = answers_frame(path)
    return frame[frame["reader"] == reader] if len(frame) else frame


def submit(at: AppTest) -> None:
    """Press the form's Open button."""
    [button] = [b for b in at.button if b.label == "Open"]
    button.click().run()


def gen(at: AppTest) -> int:
    return int(at.session_state[case.GEN])


def viewer_header(at: AppTest) -> dict:
    from explorer.viewer.payload import decode  # noqa: PLC0415

    found = [e.proto for e in at.main if type(getattr(e, "proto", None)).__name__ == "BidiComponent"]
    assert found, "no viewer on the page"
    return decode(found[-1].bytes)[0]


def page_text(at: AppTest) -> tuple[str, str]:
    """``(main, sidebar)``: every element's protobuf text (the viewer: its decoded header, not its pixels)."""
    from explorer.viewer.payload import decode  # noqa: PLC0415

    def walk(node, parts):
        proto = getattr(node, "proto", None)
        if type(proto).__name__ == "BidiComponent":
            parts.append(json.dumps(decode(proto.bytes)[0]))
        elif proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child, parts)
        return parts

    return "\n".join(walk(at.main, [])), "\n".join(walk(at.sidebar, []))


def forbidden(path: Path, other: str) -> tuple[list[str], list[str]]:
    """``(anywhere, main only)``: words the reader must never see: method labels and names and their display names,
    the other reader's name; in the page itself also conditions and metrics."""
    from explorer.ui.present import method_names  # noqa: PLC0415

    key = key_frame(path)
    labels = {v for c in key.columns if c.startswith(("label", "method")) for v in key[c].dropna().astype(str)}
    names = method_names()
    everywhere = sorted(labels | {names.get(v, v) for v in labels} | {other, "simulated"})
    conditions = {"clean", "attack", "eps", "shift", "ssim", "psnr", "nmse"}
    return everywhere, sorted(conditions)


def assert_blind(at: AppTest, path: Path, other: str) -> None:
    main, sidebar = page_text(at)
    everywhere, page_only = forbidden(path, other)
    for word in everywhere:
        pattern = re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(word)}(?![A-Za-z0-9_-])", re.IGNORECASE)
        assert not pattern.search(main), f"{word!r} on the reading page"
        assert not pattern.search(sidebar), f"{word!r} in the sidebar"
    for word in page_only:
        assert not re.search(rf"\b{word}", main, re.IGNORECASE), f"{word!r} on the reading page"
    header = viewer_header(at)
    labels = {label for f in header["frames"] for label in f["labels"]}
    assert labels <= {"Image", "Left", "Right", "Reference"}, labels
    assert not any(f["subtitles"] for f in header["frames"])


# --------------------------------------------------------------------------- the three tasks

def test_likert_flow_stores_each_answer_once_changes_and_resumes(sessions):
    path, codes = sessions["likert"]
    at = link(sessions, "likert")
    total = Reading(path).progress(codes["reader-one"]).total
    assert progress_text(at) == f"Case 1 of {total} · 0 of {total} answered"
    assert at.button(key="reading.next").disabled and at.button(key="reading.prev").disabled
    criteria = list(CRITERIA)
    radios = {c: at.radio(key=f"reading.g{gen(at)}.{c}") for c in criteria}
    assert all(r.value is None for r in radios.values())
    assert "non-diagnostic" in " ".join(radios["overall"].options)  # the anchors are on the scale
    for n, c in enumerate(criteria[:-1]):
        radios[c].set_value(n + 2)
    at.run()
    assert mine(path, "reader-one").empty  # incomplete: nothing stored yet
    at.radio(key=f"reading.g{gen(at)}.{criteria[-1]}").set_value(5).run()
    stored = mine(path, "reader-one")
    assert len(stored) == 1
    first = stored.iloc[0]
    assert json.loads(first["answer"]) == {"ratings": {"overall": 2, "artifacts": 3, "sharpness": 4, "confidence": 5}}
    assert first["revision"] == 1 and 0 <= first["seconds"] < 60
    assert progress_text(at) == f"Case 1 of {total} · 1 of {total} answered"
    assert any("Saved" in c.value for c in at.main.get("caption"))
    assert_blind(at, path, "reader-two")

    at.button(key="reading.next").click().run()
    assert progress_text(at).startswith(f"Case 2 of {total}")
    assert all(at.radio(key=f"reading.g{gen(at)}.{c}").value is None for c in criteria)
    at.button(key="reading.prev").click().run()
    assert progress_text(at).startswith(f"Case 1 of {total}")
    assert [at.radio(key=f"reading.g{gen(at)}.{c}").value for c in criteria] == [2, 3, 4, 5]  # own answer shown
    at.radio(key=f"reading.g{gen(at)}.overall").set_value(1).run()  # a change: revision 2, still one row
    stored = mine(path, "reader-one")
    assert len(stored) == 1 and stored.iloc[0]["revision"] == 2
    assert json.loads(stored.iloc[0]["answer"])["ratings"]["overall"] == 1

    at.button(key="reading.pause").click().run()
    assert any("Paused" in i.value for i in at.info)
    assert not at.main.get("progress")  # no case on screen while paused
    again = link(sessions, "likert")  # the link opened again: the first unanswered case
    assert progress_text(again) == f"Case 2 of {total} · 1 of {total} answered"
    assert len(mine(path, "reader-one")) == 1


def test_2afc_flow_to_the_end(sessions):
    path, codes = sessions["2afc"]
    at = link(sessions, "2afc")
    total = Reading(path).progress(codes["reader-one"]).total
    header = viewer_header(at)
    assert header["frames"][0]["labels"] == ["Left", "Right"]
    assert header["settings"]["keys"] == list(answers.KEYS["2afc"])
    choices = []
    for n in range(total):
        assert progress_text(at).startswith(f"Case {n + 1} of {total}")
        choice = "left" if n % 2 == 0 else "right"
        radio = at.radio(key=f"reading.g{gen(at)}.choice")
        assert radio.value is None
        radio.set_value(choice).run()
        choices.append((at.session_state[case.ITEM], choice))
        assert not at.button(key="reading.next").disabled
        if n == 1:
            assert_blind(at, path, "reader-two")
        at.button(key="reading.next").click().run()
    assert any(f"All {total} cases are answered" in s.value for s in at.success)
    stored = mine(path, "reader-one")
    assert len(stored) == total and stored["item_id"].is_unique and set(stored["revision"]) == {1}
    assert {(r.item_id, json.loads(r.answer)["choice"]) for r in stored.itertuples()} == set(choices)

    # the other reader starts from nothing: none of reader one's answers shows, nor their name
    other = link(sessions, "2afc", "reader-two")
    assert progress_text(other) == f"Case 1 of {total} · 0 of {total} answered"
    assert other.radio(key=f"reading.g{gen(other)}.choice").value is None
    assert_blind(other, path, "reader-one")


def test_detection_flow_with_a_marked_location(sessions):
    path, codes = sessions["detection"]
    at = link(sessions, "detection")
    header = viewer_header(at)
    assert header["settings"]["mark"] is True and header["settings"]["point"] is None
    assert header["frames"][0]["labels"] == ["Image"]
    g = gen(at)
    at.radio(key=f"reading.g{g}.present").set_value(True).run()
    at.radio(key=f"reading.g{g}.confidence").set_value(4).run()
    assert mine(path, "reader-one").empty  # present without a location: not complete
    at.session_state[case.POINT] = (10, 12)  # what the viewer's Mark tool hands to on_point
    at.run()
    stored = mine(path, "reader-one")
    assert len(stored) == 1
    assert json.loads(stored.iloc[0]["answer"]) == {"confidence": 4, "location": [10.0, 12.0], "present": True}
    assert viewer_header(at)["settings"]["point"] == [10, 12]  # the mark drawn
    assert_blind(at, path, "reader-two")
    at.button(key="reading.next").click().run()
    g = gen(at)
    at.radio(key=f"reading.g{g}.present").set_value(False).run()
    at.radio(key=f"reading.g{g}.confidence").set_value(2).run()
    stored = mine(path, "reader-one")
    assert len(stored) == 2
    assert json.loads(stored.iloc[1]["answer"]) == {"confidence": 2, "location": None, "present": False}
    assert viewer_header(at)["settings"]["point"] is None


def test_a_session_that_shows_the_reference(sessions):
    from explorer.readers.options import ReadingOptions  # noqa: PLC0415
    from explorer.readers.session import build_from_spec, demo_spec  # noqa: PLC0415

    path = sessions["likert"][0].parent / "withref.reading"
    build_from_spec(path, demo_spec("likert", size=SIZE, slices=1),
                    ReadingOptions(task="likert", criteria=("overall",), show_reference=True, methods=("zero_filled",),
                                   conditions=("clean",)))
    code = add_reader(path, "reader-one").code
    at = open_reading({"session": "withref", "code": code})
    assert viewer_header(at)["frames"][0]["labels"] == ["Reference", "Image"]
    at.radio(key=f"reading.g{gen(at)}.overall").set_value(4).run()
    assert json.loads(mine(path, "reader-one").iloc[0]["answer"]) == {"ratings": {"overall": 4}}
    assert_blind(at, path, "reader-two")


# --------------------------------------------------------------------------- bad links and codes

def test_any_bad_link_or_code_gives_the_same_one_line(sessions, tmp_path):
    path, codes = sessions["likert"]
    (path.parent / "junk.reading").write_text("not a session")
    outside = tmp_path / "outside.reading"
    outside.write_bytes(path.read_bytes())
    other_code = sessions["2afc"][1]["reader-one"]
    bad = [
        {"session": "likert", "code": "aaaa-bbbb-cccc"},        # a wrong code
        {"session": "likert", "code": other_code},              # another session's code
        {"session": "nosuch", "code": codes["reader-one"]},     # no such session
        {"session": "junk", "code": codes["reader-one"]},       # not a session file
        {"session": "../reader-studies/likert", "code": codes["reader-one"]},  # a path
        {"session": str(outside.with_suffix("")), "code": codes["reader-one"]},  # outside the folder
    ]
    for params in bad:
        at = open_reading(params)
        assert errors(at) == [ui.INVALID], params
        assert not at.main.get("progress")
        assert at.text_input(key="reading.open.code").value == ""  # the form to type a code
    assert all(e.value != ui.INVALID for e in open_reading({"session": "likert", "code": codes["reader-one"]}).error)


def test_a_typed_code_opens_the_session_and_a_wrong_one_is_one_error(sessions):
    path, codes = sessions["detection"]
    at = open_reading()
    assert not errors(at)
    at.text_input(key="reading.open.session").set_value("detection")
    at.text_input(key="reading.open.code").set_value("zzzz-zzzz-zzzz")
    submit(at)
    assert errors(at) == [ui.INVALID]
    at.text_input(key="reading.open.code").set_value(codes["reader-two"].upper().replace("-", " "))  # as typed
    submit(at)
    assert not errors(at) and progress_text(at).startswith("Case 1 of")
    assert at.query_params["session"] == ["detection"] or at.query_params["session"] == "detection"


# --------------------------------------------------------------------------- the page's pure parts

def test_keys_rate_choose_and_advance():
    likert, afc, detection = (task_info(k) for k in ("likert", "2afc", "detection"))
    draft = {c: None for c in answers.fields(likert)}
    assert answers.key_action(likert, "4", draft) == ({"overall": 4}, False)
    assert answers.key_action(likert, "2", {**draft, "overall": 4}) == ({"artifacts": 2}, False)
    assert answers.key_action(likert, "3", {c: 1 for c in draft}) == ({}, False)
    assert answers.key_action(likert, "Enter", draft) == ({}, True)
    assert answers.key_action(afc, "a", {}) == ({"choice": "left"}, False)
    assert answers.key_action(afc, "2", {}) == ({"choice": "right"}, False)
    assert answers.key_action(detection, "y", {}) == ({"present": True}, False)
    assert answers.key_action(detection, "n", {}) == ({"present": False}, False)
    assert answers.key_action(detection, "5", {}) == ({"confidence": 5}, False)
    assert answers.key_action(detection, "x", {}) == ({}, False)
    viewer_keys = set("fbgeirwpzol+-") | {"ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", " ", "?"}
    assert not viewer_keys & {k for keys in answers.KEYS.values() for k in keys}


def test_answers_from_drafts_and_back():
    detection = task_info("detection")
    assert answers.answer_of(detection, {"present": True, "confidence": 3}, None) is None
    answer = answers.answer_of(detection, {"present": True, "confidence": 3}, (4, 5))
    assert answer == {"present": True, "confidence": 3, "location": [4, 5]}
    assert answers.draft_of(detection, answer) == ({"present": True, "confidence": 3}, (4, 5))
    assert answers.answer_of(detection, {"present": False, "confidence": 1}, (4, 5))["location"] is None
    likert = task_info("likert", ("overall", "sharpness"))
    assert answers.answer_of(likert, {"overall": 3}, None) is None
    assert answers.answer_of(likert, {"overall": 3, "sharpness": 5}, None) == {"ratings": {"overall": 3, "sharpness": 5}}


def test_navigation_targets():
    from explorer.readers.reading import ItemStatus  # noqa: PLC0415

    items = [ItemStatus(f"i{n}", n, done) for n, done in enumerate([True, False, True, False], 1)]
    assert answers.next_target(items, None, "resume") == 2
    assert answers.next_target(items, 2, "next") == 4
    assert answers.next_target(items, 4, "next") == 2  # wraps to the first unanswered
    assert answers.next_target(items, 3, "prev") == 2
    assert answers.next_target(items, 1, "prev") == 1
    assert answers.next_target(items, 2, ("at", 9)) == 4
    done = [ItemStatus(f"i{n}", n, True) for n in range(1, 4)]
    assert answers.next_target(done, None, "resume") is None
    assert answers.next_target(done, 1, "next") == 2  # reviewing: simply the next one
    assert answers.next_target(done, 3, "next") is None
