"""Reader studies in the study report: sessions registered with a study folder (explorer.readers.links) appear in its
HTML report as a "Reader study" part with the analysis' own numbers (readers, cases, the answer to "does accuracy
predict what readers see?", the results page's tables) and one CSV download; a folder without sessions adds nothing.
Synthetic sessions and SIMULATED readers (no engine: fast)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

import pandas as pd
import pytest

from explorer.engine.table import write_records
from explorer.errors import ExplorerError
from explorer.readers.analysis import analyse
from explorer.readers.links import FOLDER, link_file, register, study_sessions
from explorer.readers.names import display_order
from explorer.readers.options import ReadingOptions
from explorer.readers.report import ACCURACY, CSV_NAME, accuracy_answers, study_readers
from explorer.readers.session import build_session
from explorer.readers.simulated import ModelObserver, simulate
from explorer.readers.store import session_meta
from explorer.study.report import report_html
from explorer.study.runner import RESULTS, SPEC
from tests.readers.conftest import make_recons

N_BOOT = 200


@pytest.fixture
def study(tmp_path):
    """An empty study folder (its spec and an empty results table: the report's reader part needs no rows)."""
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / SPEC).write_text("name: fake-study\n")
    write_records(folder / RESULTS, [])
    return folder


def session(tmp_path, study, task: str, name: str, readers: int = 2):
    """A synthetic session built "from" ``study`` (recorded and registered as a study build does), read by
    ``readers`` noiseless SIMULATED readers."""
    recons = make_recons(lesion=task == "detection")
    path = build_session(tmp_path / f"{name}.reading", recons, ReadingOptions(task=task, name=name, repeats=0.25),
                         f"study {study}", study=study).path
    register(path, study)
    if readers:
        simulate(path, readers=readers, observer=ModelObserver(noise=0.0, bias=0.0))
    return path


def csv_in(page: str) -> pd.DataFrame:
    """The CSV the report's download link carries."""
    found = re.search(r'download="([^"]+)" href="data:text/csv;charset=utf-8;base64,([A-Za-z0-9+/=]+)"', page)
    assert found and found.group(1) == CSV_NAME
    return pd.read_csv(io.StringIO(base64.b64decode(found.group(2)).decode()))


def cell(value: float) -> str:
    """A number as the report's tables print it."""
    return f"<td>{value:.4g}</td>"


def test_a_study_without_sessions_gets_no_reader_part(study):
    part = study_readers(study)
    assert part.sessions == () and part.sections() == [] and part.files() == [] and part.csv() == ""
    page = report_html([], "", "Study", part.sections(), part.files())
    assert "Reader study" not in page and "data:text/csv" not in page
    assert page == report_html([], "", "Study")  # exactly the report without the reader part
    (study / FOLDER).mkdir()
    assert study_readers(study).sections() == []


def test_the_report_shows_the_reader_analysis_with_its_numbers(tmp_path, study):
    path = session(tmp_path, study, "likert", "knee-likert")
    assert session_meta(path)["study"] == str(study.resolve())
    part = study_readers(study, n_boot=N_BOOT)
    (section,) = part.sections()
    page = report_html([], "", "Study", part.sections(), part.files())
    result = analyse(path, n_boot=N_BOOT)
    cases = 4 * 2 * 3  # subjects x conditions x methods
    assert section.title == "Reader study: knee-likert" and "<h2>Reader study: knee-likert</h2>" in page
    assert f"2 readers answered (2 of them SIMULATED model observers, not people), 2 added; {cases} cases" \
        in section.caption and "SIMULATED" in page
    assert [caption for caption, _ in section.tables] == [
        "Readers", ACCURACY, "Mean rating per method", "Reader scores against the metrics",
        "Differences between methods", "Inter-reader agreement", "Inter-reader agreement: intraclass correlation",
        "Intra-reader consistency (repeated cases)"]
    tables = dict(section.tables)
    assert [(r["reader"], r["answered"], r["of"]) for r in tables["Readers"]] == [
        ("simulated reader 1 (model observer)", 30, 30), ("simulated reader 2 (model observer)", 30, 30)]

    ratings = result.tables["ratings"]  # the results page's numbers, in the report and in its CSV
    assert [r["mean"] for r in tables["Mean rating per method"]] == pytest.approx(list(ratings["mean"]))
    for value in list(ratings["mean"]) + list(ratings["ci_low"]) + list(result.tables["icc"]["icc2_1"]):
        assert cell(value) in page
    correlation = result.tables["metric_correlation"]
    overall = correlation[correlation["measure"] == "rating overall"].set_index("metric")
    answers = {r["metric"]: r for r in tables[ACCURACY]}
    assert set(answers) == {"ssim", "psnr", "nmse"}
    for metric, row in answers.items():  # noiseless observers rate by SSIM: SSIM predicts them, NMSE the other way
        assert row["value"] == pytest.approx(overall.loc[metric, "spearman"])
        assert row["n"] == cases and cell(row["value"]) in page
    assert answers["ssim"]["answer"] == "yes" and answers["ssim"]["value"] > 0.9
    assert answers["nmse"]["value"] < 0 and f"{ACCURACY} SSIM: yes (rho +" in section.caption

    frame = csv_in(page)
    assert set(frame["session"]) == {"knee-likert"} and set(frame["task"]) == {"likert"}
    assert list(dict.fromkeys(frame["table"])) == ["readers", "accuracy", *display_order(result.tables)]
    rows = frame[frame["table"] == "ratings"]
    assert list(rows["mean"]) == pytest.approx(list(ratings["mean"]))
    assert list(rows["label"]) == list(ratings["label"]) and list(rows["criterion"]) == list(ratings["criterion"])
    assert frame.equals(pd.read_csv(io.StringIO(part.csv())))


def test_every_registered_session_gets_its_part_and_a_2afc_answer(tmp_path, study):
    session(tmp_path, study, "likert", "a-likert")
    path = session(tmp_path, study, "2afc", "b-2afc", readers=1)
    part = study_readers(study, n_boot=0)
    assert [s.title for s in part.sections()] == ["Reader study: a-likert", "Reader study: b-2afc"]
    rows = accuracy_answers(part.sessions[1].analysis)
    agreement = analyse(path, n_boot=0).tables["metric_agreement"].set_index(["condition", "metric"])
    assert [r["metric"] for r in rows] == ["ssim", "psnr", "nmse"]
    for r in rows:  # over all conditions: the share of choices for the image the metric ranks better
        assert r["value"] == pytest.approx(agreement.loc[("all", r["metric"]), "share"])
        assert r["n"] == agreement.loc[("all", r["metric"]), "choices"]
    assert rows[0]["answer"] == "yes" and rows[0]["ci_low"] > 0.5  # noiseless SSIM observer: always the better SSIM
    assert set(part.frame()["session"]) == {"a-likert", "b-2afc"}


def test_registration_links_finds_and_notes(tmp_path, study):
    path = session(tmp_path, study, "likert", "s", readers=0)
    link = link_file(path, study)
    assert study_sessions(study) == ([path.resolve()], [])
    assert register(path, study) == link and len(list((study / FOLDER).glob("*.json"))) == 1  # again: the same link
    doc = json.loads(link.read_text())
    assert doc["session"] == str(path.resolve()) and doc["relative"] == "../s.reading"
    with pytest.raises(ExplorerError, match="not a study folder"):
        register(path, tmp_path)
    (tmp_path / "junk.reading").write_text("not a session")
    with pytest.raises(ExplorerError, match="not a reading session"):
        register(tmp_path / "junk.reading", study)
    moved = tmp_path / "moved"  # the study folder and its session moved together: the relative path finds it
    shutil.copytree(study, moved / "study")
    shutil.copy(path, moved / "s.reading")
    path.unlink()
    assert study_sessions(moved / "study") == ([(moved / "s.reading").resolve()], [])
    sessions, notes = study_sessions(study)  # the original link names nothing any more
    assert sessions == [] and len(notes) == 1 and link.name in notes[0]
    inside = study / FOLDER / "here.reading"  # a session placed in readers/ itself counts, without a link
    shutil.copy(moved / "s.reading", inside)
    assert register(inside, study) == inside.resolve()
    assert study_sessions(study)[0] == [inside.resolve()]
    (study / FOLDER / "broken.reading").write_text("not a session")  # an unreadable one: a line, not a crash
    part = study_readers(study, n_boot=0)
    broken = [s for s in part.sessions if s.error]
    assert len(broken) == 1 and "could not be read" in part.sections()[0].caption
