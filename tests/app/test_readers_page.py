"""The Reader studies page (pages/readers.py, explorer/ui/reader_studies*.py): build a tiny demonstration session
with progress, its investigator code shown once, add a reader (their personal link opens the session through the
reading API), simulated readers, the status table, the results with human column names and the simulated-readers
caveat, and the downloads. Sessions open only with their investigator code; one built elsewhere can be given one.
"""

from __future__ import annotations

import io
import urllib.parse

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from explorer.errors import ExplorerError
from explorer.readers.analysis import analyse
from explorer.readers.reading import Reading
from explorer.readers.session import build_demo
from explorer.ui import reader_studies_results as results
from explorer.ui import reader_studies_sessions as sessions
from explorer.ui import reading as ui
from tests.app.conftest import APP

RAW = {"ci_low", "ci_high", "label", "first_chosen", "wilson_low", "p_value", "reader_a", "icc2_1", "spearman",
       "kendall_p", "auc", "lroc_auc", "zero_filled"}


@pytest.fixture()
def data_dir(tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLORER_SAMPLE_SIZE", "64")
        mp.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
        mp.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
        mp.delenv("EXPLORER_DEVICE", raising=False)
        (tmp_path / "data").mkdir()
        st.cache_data.clear()
        st.cache_resource.clear()
        yield tmp_path / "data"
        st.cache_data.clear()
        st.cache_resource.clear()


def open_readers() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("pages/readers.py").run()
    assert not at.exception, at.exception
    return at


def codes_shown(at: AppTest) -> list[str]:
    return [c.value for c in at.main.get("code")]


def test_build_add_readers_and_read_the_results(data_dir):
    at = open_readers()
    assert at.button(key="readers.run").disabled  # no name yet
    at.text_input(key="readers.build.name").set_value("knee-2afc")
    at.selectbox(key="readers.build.task").set_value("2afc")
    at.number_input(key="readers.build.size").set_value(32)
    at.number_input(key="readers.build.slices").set_value(1)
    at.run()
    at.button(key="readers.run").click().run()
    assert not at.exception, at.exception
    path = data_dir / ui.FOLDER / "knee-2afc.reading"
    assert path.is_file()
    [code] = codes_shown(at)  # the investigator code, once
    assert sessions.check_investigator_code(path, code) and not sessions.check_investigator_code(path, "wrong")
    assert code not in sessions.key_file(path).read_text()  # only its hash is kept
    assert any("cases" in s.value for s in at.success)
    assert at.selectbox(key="readers.session").value == "knee-2afc"  # opened (unlocked) right away

    at.text_input(key="readers.add.name").set_value("AB")
    at.button(key="readers.add").click().run()
    assert not at.exception, at.exception
    link = next(c for c in codes_shown(at) if "reading?" in c)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    assert query["session"] == "knee-2afc"
    reader_code = query["code"]
    assert reader_code in codes_shown(at)
    reading = Reading(path)
    view = reading.next_item(reader_code)
    reading.answer(reader_code, view.item_id, {"choice": "left"})
    at.run()
    table = at.dataframe[0].value
    assert list(table["Reader"]) == ["AB"] and table["Answered"].iloc[0] == 1 and table["Kind"].iloc[0] == "person"

    at.number_input(key="readers.sim.n").set_value(2)
    at.button(key="readers.sim").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert len(table) == 3 and (table["Kind"] == "simulated (model observer)").sum() == 2

    at.radio(key="readers.section").set_value("results").run()
    assert not at.exception, at.exception
    assert any("Simulated readers" in w.value for w in at.warning)  # the caveat
    frames = [d.value for d in at.dataframe]  # the analysis tables, in order (keys are not in a table's proto)
    assert len(frames) == 5  # preference, wins per method, agreement, consistency, metric agreement
    for frame in frames:
        assert not RAW & set(frame.columns), frame.columns
    preference = next(f for f in frames if "Pair" in f.columns)
    assert {"Pair", "Method A", "Method B", "Share choosing A", "Wilson low", "Binomial p"} <= set(preference.columns)
    assert "Zero-filled" in set(preference["Method A"]) | set(preference["Method B"])  # display names
    metric = next(f for f in frames if "Share agreeing" in f.columns)
    assert set(metric["Metric"]) == {"SSIM", "PSNR", "NMSE"}
    labels = [b.label for b in at.get("download_button")]
    assert {"Answers, unblinded (CSV)", "Answers, unblinded (Parquet)", "Audit log (CSV)"} <= set(labels)

    at.checkbox(key="readers.with_sim").uncheck().run()  # the person alone: no caveat
    assert not any("Simulated readers" in w.value for w in at.warning)
    assert analyse(path, n_boot=0, kinds=("human",)).readers["name"].tolist() == ["AB"]


def test_sessions_open_only_with_their_investigator_code(data_dir):
    folder = data_dir / ui.FOLDER
    folder.mkdir()
    locked = folder / "locked.reading"
    build_demo(locked, "likert", size=32, slices=1, seed=0, repeats=0.0)
    code = sessions.set_investigator_code(locked)
    with pytest.raises(ExplorerError):
        sessions.set_investigator_code(locked)  # never replaced
    at = open_readers()
    assert at.selectbox(key="readers.session").value == "locked"
    assert not at.get("radio") or all(r.key != "readers.section" for r in at.radio)  # nothing shown yet
    at.text_input(key="readers.code").set_value("aaaa-bbbb-cccc")
    [submit] = [b for b in at.button if b.label == "Open"]
    submit.click().run()
    assert [e.value for e in at.main.get("error")] == ["This investigator code is not valid for this session."]
    assert not at.dataframe
    at.text_input(key="readers.code").set_value(code)
    [submit] = [b for b in at.button if b.label == "Open"]
    submit.click().run()
    assert not at.main.get("error")
    assert at.radio(key="readers.section").value == "readers"

    # a session copied in from the command line has no code until one is set here
    (folder / "cli.reading").write_bytes(locked.read_bytes())
    at.run()
    at.selectbox(key="readers.session").set_value("cli").run()
    assert any("no investigator code" in w.value for w in at.warning)
    at.button(key="readers.claim").click().run()
    [claimed] = codes_shown(at)
    assert sessions.check_investigator_code(folder / "cli.reading", claimed)


def test_human_tables_and_links():
    frame = pd.DataFrame({"pair": ["zero_filled vs unet"], "condition": ["attack eps=0.05"], "first": ["zero_filled"],
                          "second": ["unet"], "share": [0.5], "p_value": [1.0]})
    out = results.human_table("preference", frame)
    assert list(out.columns) == ["Pair", "Condition", "Method A", "Method B", "Share choosing A", "Binomial p"]
    assert out.iloc[0]["Condition"] == "attacked (ε = 0.05)"
    assert "zero_filled" not in out.iloc[0]["Pair"]
    assert results.measure_name("rating overall") == "Overall image quality"
    assert sessions.reading_link("s1", "abcd-efgh-jkmn", "http://host:8501/readers") == \
        "http://host:8501/reading?session=s1&code=abcd-efgh-jkmn"
    assert sessions.reading_link("s1", "c", "https://x.org/app/readers?x=1") == "https://x.org/app/reading?session=s1&code=c"
    assert sessions.reading_link("s 1", "c", None) == "/reading?session=s+1&code=c"


def test_session_names_are_plain(data_dir):
    for bad in ("", "../x", "a/b", ".hidden", "x" * 65):
        with pytest.raises(ExplorerError):
            sessions.new_session_file(bad)
    assert sessions.new_session_file("ok-1.2_x").name == "ok-1.2_x.reading"


def test_parquet_download_round_trips():
    frame = pd.DataFrame({"reader": ["AB"], "answer": ['{"choice": "left"}'], "seconds": [1.5]})
    assert pd.read_parquet(io.BytesIO(results._parquet(frame))).equals(frame)
