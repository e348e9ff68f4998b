"""The session file and the reading API: blinding, personal codes, answers stored once (idempotent, audited), a
restart that loses nothing, two readers writing at once from two processes, reading times, export and copy."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from explorer.errors import ExplorerError
from explorer.readers.codes import add_reader
from explorer.readers.reading import Reading
from explorer.readers.store import connect, copy_session
from explorer.readers.tables import answers_frame, audit_frame, export, key_frame, status
from tests.readers.conftest import CONDITIONS, LABELS, METHODS


def _likert(value: int = 3) -> dict:
    return {"ratings": {c: value for c in ("overall", "artifacts", "sharpness", "confidence")}}


def _strings(obj) -> list[str]:
    """Every string (and number as text) inside a returned value, dataclasses and arrays' metadata included."""
    if dataclasses.is_dataclass(obj):
        return [s for f in dataclasses.fields(obj) for s in [f.name] + _strings(getattr(obj, f.name))]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in [str(k)] + _strings(v)]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in _strings(v)]
    if isinstance(obj, np.ndarray):
        return [str(obj.dtype), str(obj.shape)]
    return [str(obj)]


FORBIDDEN = [*LABELS, *METHODS.values(), "CONDATTACK", "attack", "clean", "ssim", "psnr", "nmse", "case-0"]


@pytest.mark.parametrize("task", ["likert", "2afc", "detection"])
def test_the_reading_api_never_returns_method_names_conditions_metrics_or_others_answers(make_session, task):
    path = make_session(task, repeats=0.3)
    alice, bob = add_reader(path, "alice"), add_reader(path, "bob")
    reading = Reading(path)
    answer = {"likert": _likert(4), "2afc": {"choice": "left"},
              "detection": {"present": True, "confidence": 4, "location": [10, 12]}}[task]
    returned = [reading.task(alice.code), reading.progress(alice.code), reading.items(alice.code)]
    while (view := reading.next_item(alice.code)) is not None:
        returned += [view, reading.answer(alice.code, view.item_id, answer), reading.item(alice.code, view.item_id)]
        assert view.names == (("left", "right") if task == "2afc" else ("image",))
        assert all(im.dtype == np.float32 and im.shape == (32, 32) for im in view.images)
        assert view.reference is None
    returned += [reading.my_answers(alice.code), reading.item_at(alice.code, 1), reading.progress(alice.code)]
    text = " ".join(_strings(returned))
    for word in FORBIDDEN:
        assert word not in text, word
    # bob sees none of alice's answers, and cannot answer or open as her
    assert reading.my_answers(bob.code) == [] and reading.progress(bob.code).answered == 0
    first = reading.items(bob.code)[0].item_id
    assert reading.item(bob.code, first).answer is None
    assert len(reading.my_answers(alice.code)) == reading.progress(alice.code).total
    tampered = alice.code[:-1] + ("y" if alice.code.endswith("x") else "x")  # always differs from alice's code
    for bad in ("", "nope-nope-nope", tampered):
        with pytest.raises(ExplorerError, match="not valid for this session"):
            reading.progress(bad)


def test_codes_are_personal_hashed_and_typed_loosely(make_session):
    path = make_session()
    r = add_reader(path, "carol")
    assert len(r.code) == 14 and r.code.count("-") == 2
    with connect(path) as conn:
        stored = [row[0] for row in conn.execute("SELECT token_sha256 FROM readers")]
    assert r.code not in stored and all(len(s) == 64 for s in stored)  # only the hash is kept
    reading = Reading(path)
    assert reading.progress(f"  {r.code.upper().replace('-', ' ')} ").name == "carol"
    with pytest.raises(ExplorerError, match="reader named 'carol' already"):
        add_reader(path, "carol")
    with pytest.raises(ExplorerError, match="reader kind"):
        add_reader(path, "dave", kind="robot")


def test_answering_again_updates_once_and_the_audit_log_keeps_every_change(make_session):
    path = make_session("likert")
    r = add_reader(path)
    reading = Reading(path)
    view = reading.next_item(r.code)
    first = reading.answer(r.code, view.item_id, _likert(2), seconds=4.0)
    same = reading.answer(r.code, view.item_id, _likert(2), seconds=9.0)
    changed = reading.answer(r.code, view.item_id, _likert(5), seconds=1.5)
    assert (first.event, same.event, changed.event) == ("answer", "same", "change")
    assert (first.revision, same.revision, changed.revision) == (1, 1, 2)
    assert changed.seconds == pytest.approx(5.5) and changed.answered == 1  # a change adds its time; no duplicate
    frame = answers_frame(path)
    assert len(frame) == 1 and frame["rating_overall"].iloc[0] == 5 and frame["revision"].iloc[0] == 2
    events = audit_frame(path)
    mine = events[events["item_id"] == view.item_id]["event"].tolist()
    assert mine == ["shown", "answer", "same", "change"]
    assert json.loads(events[events["event"] == "change"]["value"].iloc[0])["ratings"]["overall"] == 5
    assert status(path).readers[0]["changes"] == 1


@pytest.mark.parametrize("task, bad, message", [
    ("likert", {"ratings": {"overall": 3}}, "missing"),
    ("likert", {"ratings": {"overall": 6, "artifacts": 3, "sharpness": 3, "confidence": 3}}, "from 1 to 5"),
    ("likert", {"ratings": {"overall": 2.5, "artifacts": 3, "sharpness": 3, "confidence": 3}}, "from 1 to 5"),
    ("likert", [3], "mapping"),
    ("2afc", {"choice": "both"}, "left"),
    ("detection", {"present": True, "confidence": 3}, "needs its location"),
    ("detection", {"present": True, "confidence": 3, "location": [40, 3]}, "outside the 32x32 image"),
    ("detection", {"present": False, "confidence": 3, "location": [4, 3]}, "has no location"),
    ("detection", {"present": "yes", "confidence": 3}, "true or false"),
])
def test_malformed_answers_are_refused_and_nothing_is_stored(make_session, task, bad, message):
    path = make_session(task)
    r = add_reader(path)
    reading = Reading(path)
    view = reading.next_item(r.code)
    with pytest.raises(ExplorerError, match=message):
        reading.answer(r.code, view.item_id, bad)
    with pytest.raises(ExplorerError, match="not one of this reader's items"):
        reading.answer(r.code, "i0000000000", {"choice": "left"})
    with pytest.raises(ExplorerError, match="seconds"):
        reading.answer(r.code, view.item_id, bad, seconds=-1)
    assert reading.progress(r.code).answered == 0 and answers_frame(path).empty


def test_reading_time_runs_from_the_last_showing(make_session):
    path = make_session()
    r = add_reader(path)
    reading = Reading(path)
    view = reading.next_item(r.code)
    time.sleep(0.25)
    receipt = reading.answer(r.code, view.item_id, _likert(3))
    assert 0.2 <= receipt.seconds < 5
    reading.item(r.code, view.item_id)  # shown again (e.g. after a pause), then changed
    time.sleep(0.1)
    again = reading.answer(r.code, view.item_id, _likert(4))
    assert again.seconds == pytest.approx(receipt.seconds + 0.1, abs=0.09)
    silent = reading.next_item(r.code, record_view=False)
    assert reading.answer(r.code, silent.item_id, _likert(3)).seconds is None  # never shown: no time claimed


def test_a_reopened_session_keeps_everything(make_session, tmp_path):
    path = make_session("2afc", repeats=0.2)
    r = add_reader(path, "erin")
    reading = Reading(path)
    done = []
    for _ in range(5):
        view = reading.next_item(r.code)
        reading.answer(r.code, view.item_id, {"choice": "right"})
        done.append(view.item_id)
    del reading  # the "server" goes away; a new process opens the file from scratch
    script = textwrap.dedent(f"""
        import json
        from explorer.readers.reading import Reading
        reading = Reading({str(path)!r})
        p = reading.progress({r.code!r})
        print(json.dumps({{"answered": p.answered, "next": p.next_position,
                          "items": [a["item_id"] for a in reading.my_answers({r.code!r})]}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=".")
    doc = json.loads(out.stdout)
    assert doc["answered"] == 5 and doc["next"] == 6 and doc["items"] == done
    assert len(answers_frame(path)) == 5


WORKER = """
import sys, time, pathlib
from explorer.readers.reading import Reading
path, code, go, choice = sys.argv[1:5]
reading = Reading(path)
while not pathlib.Path(go).exists():
    time.sleep(0.01)
while (view := reading.next_item(code)) is not None:
    reading.answer(code, view.item_id, {"choice": choice})
    reading.answer(code, view.item_id, {"choice": choice})  # a double submit: stored once
print(reading.progress(code).answered)
"""


def test_two_readers_writing_at_once_from_two_processes_lose_nothing(make_session, tmp_path):
    path = make_session("2afc", recons=None, repeats=0.5)
    readers = [add_reader(path, "left-reader"), add_reader(path, "right-reader")]
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(path), r.code, str(go), choice],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r, choice in zip(readers, ("left", "right"))]
    time.sleep(0.5)
    go.touch()  # both start together
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    total = Reading(path).progress(readers[0].code).total
    assert [int(out.strip()) for out, _ in outputs] == [total, total]
    frame = answers_frame(path)
    assert len(frame) == 2 * total and not frame.duplicated(["reader_id", "item_id"]).any()
    for r, choice in zip(readers, ("left", "right")):  # each reader's answers are their own
        assert set(frame[frame["reader"] == r.name]["choice"]) == {choice}
        assert {a["answer"]["choice"] for a in Reading(path).my_answers(r.code)} == {choice}
    events = audit_frame(path)
    assert (events["event"] == "answer").sum() == 2 * total and (events["event"] == "same").sum() == 2 * total
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_export_copy_and_the_unblinded_tables(make_session, tmp_path):
    path = make_session("likert", repeats=0.25)
    r = add_reader(path, "fay")
    reading = Reading(path)
    while (view := reading.next_item(r.code)) is not None:
        reading.answer(r.code, view.item_id, _likert(3))
    key = key_frame(path)
    assert set(key["label"]) == set(LABELS) and set(key["condition"]) == {c for c, _ in CONDITIONS}
    assert set(key["method"]) == set(METHODS.values())
    csv = export(path, tmp_path / "answers.csv", "csv")
    parquet = export(path, tmp_path / "answers.parquet", "parquet")
    a, b = pd.read_csv(csv), pd.read_parquet(parquet)
    assert len(a) == len(b) == len(key) and {"label", "ssim", "rating_overall", "seconds"} <= set(b.columns)
    with pytest.raises(ExplorerError, match="exists"):
        export(path, csv, "csv")
    export(path, tmp_path / "audit.csv", "csv", table="audit")
    with pytest.raises(ExplorerError, match="table must be one of"):
        export(path, tmp_path / "x.csv", "csv", table="secrets")
    copy = copy_session(path, tmp_path / "copy.reading")
    assert len(answers_frame(copy)) == len(key) and status(copy).readers[0]["answered"] == len(key)
    assert Reading(copy).progress(r.code).done  # the codes travel with the copy
    with pytest.raises(ExplorerError, match="exists"):
        copy_session(path, copy)


def test_a_session_file_is_checked_and_never_overwritten(make_session, tmp_path):
    path = make_session()
    with pytest.raises(ExplorerError, match="exists; add --force"):
        make_session()
    (tmp_path / "other.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ExplorerError, match="not a reading session"):
        Reading(tmp_path / "other.db")
    with pytest.raises(ExplorerError, match="no reading session"):
        Reading(tmp_path / "missing.reading")
    assert not (tmp_path / "missing.reading").exists()  # opening never creates a file
    plain = tmp_path / "plain.sqlite"
    sqlite3.connect(plain).execute("CREATE TABLE meta (key TEXT, value TEXT)").connection.commit()
    with pytest.raises(ExplorerError, match="not a reading session"):
        status(plain)
    assert status(path).task == "likert"
