"""The lesion measurement's table (explorer.study.measured_lesions) from the ``lesion`` command's real outputs on a
small volume: one cell per method and question, the headline budget, the last attack's measure and the noise's."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from explorer.cli.main import main
from explorer.data.fastmri import write_volume
from explorer.study.measured_lesions import CENTRES, lesion_parts, render_lesions
from tests.conftest import multicoil_kspace


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    path = write_volume(tmp_path_factory.mktemp("lesions") / "m.h5", multicoil_kspace(slices=1, coils=2, h=48, w=48))
    common = ["lesion", "--data", str(path), "--acceleration", "3", "--method", "zero_filled", "--method", "sense",
              "--set", "sense.iterations=8", "--eps", "0.01,0.04", "--steps", "3", "--json"]
    docs = []
    for label, extra in (("knee appear", ["--mode", "hallucination", "--at", "24,24", "--size", "5"]),
                         ("knee vanish", ["--mode", "false-negative", "--sizes", "5,5", "--contrasts", "0.1667,0.1667",
                                          "--region", "21,21,28,28", "--candidates", "1", "--refine", "0"])):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main([*common, *extra]) == 0
        docs.append((label, json.loads(out.getvalue())))
    return docs


def test_table_cells_follow_the_headlines(outputs):
    text = render_lesions(outputs)
    assert text.splitlines()[0] == "| method | knee: lesion appears | knee: lesion vanishes |"
    for label, doc in outputs:
        column = 1 + [lab for lab, _ in outputs].index(label)
        for head in doc["headline"]:
            line = next(line for line in text.splitlines() if line.startswith(f"| {'Zero-filled' if head['label'] == 'zero_filled' else 'SENSE (CG)'} |"))
            cell = line.split(" | ")[column].rstrip(" |")
            if head["clean_met"]:
                assert cell.startswith("0 (clean")
            elif head["smallest_eps"] is None:
                assert cell.startswith("> 0.04")
            elif head["smallest_eps"] <= 0.005:  # the measurement list's first budget: a bound
                assert cell.startswith(f"<= {head['smallest_eps']:g} (")
            else:
                assert cell.startswith(f"{head['smallest_eps']:g} (")
    vanish = dict(outputs)["knee vanish"]
    assert vanish["searches"][0]["worst"]["row"] == 24 and vanish["searches"][0]["worst"]["col"] == 24  # pinned


def test_parts_pin_the_vanishing_lesion_to_the_appearing_one():
    for part in lesion_parts():
        anatomy, mode = part.label.split()
        row, col = CENTRES[anatomy]
        argv = list(part.argv)
        if mode == "appear":
            assert argv[argv.index("--at") + 1] == f"{row},{col}"
        else:
            assert argv[argv.index("--region") + 1] == f"{row - 3},{col - 3},{row + 4},{col + 4}"
            assert argv[argv.index("--candidates") + 1] == "1"
