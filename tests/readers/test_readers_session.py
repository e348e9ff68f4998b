"""Sessions built through the engine: from a study spec, from a study folder (metrics cross-checked with its table),
detection sessions with lesion ground truth, and the demonstration. Small sizes (32-48 px)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.errors import ExplorerError
from explorer.readers.codes import add_reader
from explorer.readers.links import study_sessions
from explorer.readers.options import ReadingOptions
from explorer.readers.reading import Reading
from explorer.readers.session import build_demo, build_from_spec, build_from_study, demo_spec
from explorer.readers.store import image_array, opened, session_meta
from explorer.readers.tables import key_frame
from explorer.study.runner import run_study
from explorer.study.spec import parse_spec

SAMPLE = "sample:knee,size=32,slices=3,coils=4"
RAW = {"name": "tiny-reading", "data": [{"source": SAMPLE, "slices": [1, 2]}],
       "methods": ["zero_filled", {"label": "sense5", "method": "sense", "config": {"iterations": 5}}],
       "experiments": ["clean", {"attack": {"eps": [0.02, 0.05], "steps": 2}},
                       {"features": {"count": 1, "sizes": [3], "contrasts": [0.4], "shape": "disk"}}]}


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "readers-cache"))


def test_a_spec_session_reads_every_condition_with_its_metrics(tmp_path):
    built = build_from_spec(tmp_path / "s.reading", parse_spec(RAW), ReadingOptions(task="likert", repeats=0.25))
    assert built.labels == ("zero_filled", "sense5")
    assert built.conditions == ("clean", "attack eps=0.02", "attack eps=0.05", "lesion")
    assert built.reconstructions == built.cases == 2 * 2 * 4 and built.items == 16 + 4
    key = key_frame(built.path)
    first = key[key["repeat"] == 0]
    assert ((first["ssim"] > 0) & (first["ssim"] <= 1)).all() and first["psnr"].notna().all()
    ssim = first.set_index(["subject", "condition", "label"])["ssim"]
    for subject in {s for s, _, _ in ssim.index}:  # a stronger attack never scores better
        for label in ("zero_filled", "sense5"):
            assert ssim[(subject, "attack eps=0.05", label)] <= ssim[(subject, "clean", label)] + 1e-6
    meta = session_meta(built.path)
    assert meta["name"] == "tiny-reading" and meta["task"] == "likert" and meta["labels"] == ["zero_filled", "sense5"]
    with opened(built.path) as conn:  # every image of a slice shares one scale: its brightest reference peaks at 1
        for _, part in key.groupby("subject"):
            peaks = [image_array(conn, int(i)).max() for i in part["reference_image"].unique()]
            assert max(peaks) == pytest.approx(1.0, abs=1e-3) and len(peaks) == 2  # clean and with the lesion
    reader = add_reader(built.path)
    view = Reading(built.path).next_item(reader.code)
    assert view.images[0].shape == (32, 32) and np.isfinite(view.images[0]).all()


def test_a_detection_session_keeps_clean_and_lesion_cases_with_ground_truth(tmp_path):
    built = build_from_spec(tmp_path / "d.reading", parse_spec(RAW), ReadingOptions(task="detection"))
    assert built.conditions == ("clean", "lesion") and built.cases == 2 * 2 * 2
    key = key_frame(built.path)
    with opened(built.path) as conn:
        for row in key[key["lesion"]].itertuples():
            (lesion,) = json.loads(row.lesions)
            r0, c0, r1, c1 = lesion["box"]
            assert r0 <= lesion["row"] < r1 and c0 <= lesion["col"] < c1 and lesion["size"] == 3
            reference = image_array(conn, int(row.reference_image))
            assert reference[r0:r1, c0:c1].mean() > reference.mean()  # the bright lesion is in the reference
    assert key[~key["lesion"]]["lesions"].map(json.loads).map(len).eq(0).all()


def test_a_study_folder_session_matches_the_study_table(tmp_path):
    raw = {**RAW, "experiments": ["clean", {"attack": {"eps": [0.03], "steps": 2}}]}
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(raw))
    out = tmp_path / "study"
    run_study(parse_spec(raw, base=str(tmp_path)), out, spec_file=spec_file)
    built = build_from_study(tmp_path / "f.reading", out, ReadingOptions(task="2afc", seed=3))
    assert built.cases == 2 * 2 and built.notes == ()  # slices x conditions, one pair each; metrics as the table's
    assert session_meta(built.path)["study"] == str(out.resolve())  # the session records its study folder ...
    assert built.link.parent == (out / "readers").resolve() and built.as_dict()["link"] == str(built.link)
    assert study_sessions(out) == ([built.path.resolve()], [])  # ... and is registered there
    key = key_frame(built.path)
    for side in ("left", "right"):
        assert np.allclose(key[f"ssim_{side}"], key[f"study_ssim_{side}"], atol=1e-4)
    with pytest.raises(ExplorerError, match="not a study folder"):
        build_from_study(tmp_path / "g.reading", tmp_path, ReadingOptions())
    with pytest.raises(ExplorerError, match="no method labelled 'varnet'"):
        build_from_study(tmp_path / "g.reading", out, ReadingOptions(methods=("varnet",)))
    with pytest.raises(ExplorerError, match="no units to read"):
        build_from_study(tmp_path / "g.reading", out, ReadingOptions(conditions=("shift",)))


def test_the_demonstration_is_seeded_and_small(tmp_path):
    spec = demo_spec("detection", size=48, slices=2)
    assert [m.label for m in spec.methods] == ["zero_filled", "l1", "unet"]
    assert spec.masks[0].acceleration == 4
    built = build_demo(tmp_path / "demo.reading", "detection", size=48, slices=2, seed=1)
    assert built.labels == ("zero_filled", "l1", "unet") and built.conditions == ("clean", "lesion")
    assert built.cases == 12 and built.items == 15  # repeats 0.25 by default
    again = build_demo(tmp_path / "again.reading", "detection", size=48, slices=2, seed=1)
    a, b = key_frame(built.path), key_frame(again.path)
    assert a["lesions"].tolist() == b["lesions"].tolist() and np.allclose(a["ssim"], b["ssim"])
    with pytest.raises(ExplorerError, match="exists"):
        build_demo(built.path, "detection", size=48, slices=2)
    for kwargs, message in [({"size": 8}, "demo size"), ({"slices": 0}, "demo slices"), ({"task": "rank"}, "task")]:
        with pytest.raises(ExplorerError, match=message):
            demo_spec(**kwargs)


def test_a_shift_study_reads_in_distribution_slices_as_clean_and_shifted_ones_as_shift(tmp_path):
    raw = {"data": [{"source": SAMPLE, "slices": [1]}], "methods": ["zero_filled", "sense"],
           "experiments": ["clean", {"shift": {"ood": [{"source": "sample:brain,size=32,slices=3,coils=4",
                                                       "slices": [1]}]}}]}
    built = build_from_spec(tmp_path / "shift.reading", parse_spec(raw), ReadingOptions(task="2afc"))
    assert built.conditions == ("clean", "shift:sample:brain,size=32,slices=3,coils=4")
    assert built.cases == 2  # one pair on the knee slice (the clean and shift-id units read once), one on the brain's
    key = key_frame(built.path)
    assert set(key["subject"]) == {f"{SAMPLE}#1", "sample:brain,size=32,slices=3,coils=4#1"}
    only = build_from_spec(tmp_path / "only.reading", parse_spec(raw), ReadingOptions(task="likert",
                                                                                      conditions=("shift",)))
    assert only.conditions == ("shift:sample:brain,size=32,slices=3,coils=4",) and only.cases == 2
