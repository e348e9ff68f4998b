"""Annotation boxes (fastMRI+ and Calivà layouts: flip, row/column, slice base) and the ``features`` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.cli.main import main
from explorer.data.fastmri import write_volume
from explorer.engine import prepare, run_method
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.robustness.boxes import boxes_for, read_boxes, score_boxes
from tests.conftest import multicoil_kspace

H = W = 48


def _flipped_box(stored: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the nonzero region as an annotator sees it: in the image flipped up-down."""
    rows, cols = np.nonzero(np.flipud(stored))
    return int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


def test_fastmri_plus_boxes_round_trip_to_the_stored_orientation(tmp_path):
    stored = np.zeros((H, W))
    stored[30:34, 10:15] = 1  # a lesion at rows 30-33, columns 10-14 of the image as stored in the file
    x, y, w, h = _flipped_box(stored)
    assert (x, y, w, h) == (10, 14, 5, 4)  # what the annotator wrote
    csv_path = tmp_path / "knee.csv"
    csv_path.write_text("file,slice,study_level,x,y,width,height,label\n"
                        f"file1000001,0,No,{x},{y},{w},{h},Meniscus Tear\n"
                        "file1000001,3,No,1,2,3,4,Effusion\n"
                        "file1000001,0,Yes,,,,,artifact\n"
                        "file1000002,0,No,5,5,0,4,degenerate\n")
    boxes = read_boxes(csv_path)
    assert [b.label for b in boxes] == ["Meniscus Tear", "Effusion"]  # study-level and empty boxes skipped
    r0, c0, r1, c1 = boxes[0].rows_cols((H, W))
    assert (r0, c0, r1, c1) == (30, 10, 34, 15)
    assert stored[r0:r1, c0:c1].all() and stored.sum() == (r1 - r0) * (c1 - c0)  # exactly the lesion

    class Volume:
        name = "file1000001.h5"

    assert [b.label for b in boxes_for(boxes, Volume(), 0)] == ["Meniscus Tear"]  # slices are 0-based
    assert [b.label for b in boxes_for(boxes, Volume(), 3)] == ["Effusion"]


def test_caliva_boxes_use_one_based_slices_and_x_as_column(tmp_path):
    stored = np.zeros((H, W))
    stored[5:12, 20:26] = 1
    x, y, w, h = _flipped_box(stored)
    csv_path = tmp_path / "singlecoil_bb_val.csv"
    csv_path.write_text("filename,slice,numBBs,labels,coords\n"
                        f"file1000196,26,1,['Med_Men'],[[{x} {x + w} {y} {y + h}]]\n")
    (box,) = read_boxes(csv_path)
    assert box.slice == 25 and box.label == "Med_Men" and box.layout == "caliva"
    assert box.rows_cols((H, W)) == (5, 20, 12, 26)


@pytest.mark.parametrize("text, message", [
    ("a,b,c\n1,2,3\n", "unknown header"),
    ("file,slice,study_level,x,y,width,height,label\nf,zero,No,1,2,3,4,x\n", "line 2: malformed row"),
    ("", "is empty"),
])
def test_bad_annotation_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ExplorerError, match=message):
        read_boxes(path)


def test_boxes_are_scored_in_every_result(tmp_path):
    path = write_volume(tmp_path / "file1000001.h5", multicoil_kspace(slices=1, coils=4, h=H, w=W))
    from explorer.data.sources import open_volume  # noqa: PLC0415
    from explorer.robustness.insertion import reference_image  # noqa: PLC0415

    volume = open_volume(str(path))
    slc = volume.read_slice(0)
    slc = type(slc)(kspace=slc.kspace, target=reference_image(slc.kspace, (H, W)), meta=slc.meta)
    problem = prepare(slc, MaskConfig("equispaced_fraction", 2.0, center_fraction=0.25), "cpu")
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("file,slice,study_level,x,y,width,height,label\nfile1000001,0,No,20,20,6,5,spot\n")
    results = [run_method(problem, "zero_filled"), run_method(problem, "sense")]
    rows = score_boxes(problem, results, boxes_for(read_boxes(csv_path), volume, 0))
    assert [r["method"] for r in rows] == ["zero_filled", "sense"]
    assert (rows[0]["row0"], rows[0]["row1"], rows[0]["col0"], rows[0]["col1"]) == (23, 28, 20, 26)
    assert all(r["window_mse"] >= 0 and -1 <= r["local_ssim"] <= 1 for r in rows)


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def volume_path(tmp_path):
    return str(write_volume(tmp_path / "file1000001.h5", multicoil_kspace(slices=2, coils=4, h=H, w=W)))


def test_features_cli_json(capsys, volume_path, tmp_path):
    code, out, err = _run(capsys, "features", "--data", volume_path, "--slice", "0", "--mask", "equispaced_fraction",
                          "--acceleration", "2", "--center-fraction", "0.25", "--method", "zero_filled", "--method",
                          "sense", "--at", "20,24", "--random", "2", "--sizes", "2,3", "--feature-seed", "1",
                          "--json", "--out", str(tmp_path / "out"))
    assert code == 0, err
    result = json.loads(out)
    assert result["mode"] == "coil" and len(result["features"]) == 3
    assert result["features"][0]["row"] == 20 and result["features"][0]["col"] == 24
    assert len(result["results"]) == 6 and {r["label"] for r in result["results"]} == {"zero_filled", "sense"}
    for row in result["results"]:
        assert {"window_mse", "contrast_recovery", "local_ssim", "ssim", "row", "col", "size", "contrast"} <= set(row)
    assert (tmp_path / "out" / "features.csv").exists() and (tmp_path / "out" / "target_with_features.npy").exists()
    code, again, _ = _run(capsys, "features", "--data", volume_path, "--slice", "0", "--mask", "equispaced_fraction",
                          "--acceleration", "2", "--center-fraction", "0.25", "--method", "zero_filled", "--method",
                          "sense", "--at", "20,24", "--random", "2", "--sizes", "2,3", "--feature-seed", "1", "--json")
    assert json.loads(again)["results"] == result["results"]  # same seed, same numbers


def test_features_cli_study(capsys, volume_path):
    code, out, err = _run(capsys, "features", "--data", volume_path, "--slices", "0,1", "--mask", "equispaced_fraction",
                          "--acceleration", "2", "--center-fraction", "0.25", "--method", "zero_filled",
                          "--method", "sense", "--random", "3", "--sizes", "2,3", "--contrasts", "0.2,0.4", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert len(result["rows"]) == 12 and result["correlation"]["all"]["n"] == 12


@pytest.mark.parametrize("argv, message", [
    (["--at", "3;4"], "ROW,COL"),
    (["--shape", "star", "--at", "20,20"], "shape must be one of"),
    ([], "give feature positions"),
    (["--at", "1,1"], "does not fit inside"),
    (["--random", "2", "--sizes", "x"], "--sizes"),
    (["--slices", "0,9", "--random", "2"], "out of range"),
    (["--boxes", "/nonexistent.csv"], "cannot read annotation CSV"),
])
def test_features_cli_bad_input(capsys, volume_path, argv, message):
    code, out, err = _run(capsys, "features", "--data", volume_path, "--method", "zero_filled", *argv)
    assert code == 2 and not out
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
