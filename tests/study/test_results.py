"""Numbers tied to commands: results files record their commands, commit, date and code hash; interrupted runs
resume; README blocks are redrawn from the files; the check catches a stale file, a changed table and a missing file;
and the README's own blocks are current (the staleness test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.errors import ExplorerError
from explorer.study import measured, provenance, results

ROOT = Path(__file__).resolve().parents[2]


def toy(files=(), name="toy") -> results.Measurement:
    def render(outputs):
        return "| part | value |\n|---|---|\n" + "\n".join(f"| {label} | {out['value']} |" for label, out in outputs)

    return results.Measurement(name=name, title="a toy", render=render, code=("explorer.physics",), files=files,
                               parts=(results.Part("a", ("methods", "--json")), results.Part("b", ("sample", "x"))))


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


def test_a_run_records_commands_commit_date_and_code(results_dir):
    calls = []
    result = results.run(toy(), execute=lambda argv: calls.append(argv) or {"value": len(calls)}, progress=lambda _: None)
    on_disk = json.loads((results_dir / "toy.json").read_text())
    assert on_disk == result
    assert calls == [("methods", "--json"), ("sample", "x")]
    assert result["command"] == "python -m explorer results run toy"
    assert len(result["commit"]) == 40 and result["date"].endswith("UTC")
    assert result["dirty"] is False  # only the modules and files the numbers depend on count (a clean checkout)
    assert result["code_hash"] == toy().code_hash()[0]
    assert "explorer.physics" in result["code"] and "explorer.cli.methods" in result["code"]
    assert [p["output"]["value"] for p in result["parts"]] == [1, 2]
    assert not (results_dir / ".partial" / "toy.json").exists()


def test_an_interrupted_run_resumes_where_it_stopped(results_dir):
    def fail_second(argv):
        if argv[0] == "sample":
            raise ExplorerError("boom")
        return {"value": 7}

    with pytest.raises(ExplorerError):
        results.run(toy(), execute=fail_second, progress=lambda _: None)
    assert not (results_dir / "toy.json").exists()
    calls = []
    result = results.run(toy(), execute=lambda argv: calls.append(argv) or {"value": 9}, progress=lambda _: None)
    assert calls == [("sample", "x")]  # the first part was kept
    assert [p["output"]["value"] for p in result["parts"]] == [7, 9]


def test_the_readme_is_redrawn_and_checked(results_dir, tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"one")
    m = toy(files=(str(weights),))
    found = {"toy": m}
    text = "intro\n<!-- results:toy -->\nold table\n<!-- /results:toy -->\nafter\n"
    assert any("no results/toy.json" in p for p in results.check(found, text))
    results.run(m, execute=lambda argv: {"value": argv[0]}, progress=lambda _: None)
    assert any("differs" in p for p in results.check(found, text))
    new, updated = results.update_readme(text, found)
    assert updated == ["toy"]
    assert "| a | methods |" in new and "| b | sample |" in new and "old table" not in new
    assert new.startswith("intro\n") and new.endswith("after\n")
    assert "`python -m explorer results run toy`" in new
    assert results.check(found, new) == []
    # a hand edit of a generated number is caught
    assert any("differs" in p for p in results.check(found, new.replace("| a | methods |", "| a | 0.99 |")))
    # so is a change of what the numbers depend on
    weights.write_bytes(b"two")
    assert any("older than the code" in p for p in results.check(found, new))
    # and a block no measurement draws
    assert any("no such measurement" in p for p in results.check({}, new))


def test_a_work_directory_is_fresh_for_each_run_and_stays_after_it(results_dir):
    m = results.Measurement(name="work", title="t", render=lambda outputs: "", code=("explorer.physics",),
                            parts=(results.Part("a", ("study", "--out", "{work}/study", "--json")),))
    seen = []

    def execute(argv):
        out = argv[2]
        assert argv[2].endswith("/study") and not __import__("os").path.exists(out)
        __import__("os").makedirs(out)
        (Path(out) / "results.parquet").write_text("x")
        seen.append(out)
        return {}

    first = results.run(m, execute=execute, progress=lambda _: None)
    assert first["parts"][0]["argv"][2] == "{work}/study"  # recorded as written
    assert seen[0] == str(results_dir / ".work" / "work" / "study") and Path(seen[0], "results.parquet").is_file()
    results.run(m, execute=execute, progress=lambda _: None)  # emptied first, so the command finds no old study
    assert len(seen) == 2


def test_later_parts_read_what_earlier_parts_wrote_in_the_work_directory(results_dir):
    """A zoo trained by the first part is still there for the parts that evaluate it (the work directory is emptied
    once per fresh run, not before every part), also when a run is resumed after its first part."""
    m = results.Measurement(name="zoo", title="t", render=lambda outputs: "", code=("explorer.physics",),
                            parts=(results.Part("zoo", ("zoo", "--out", "{work}/zoo")),
                                   results.Part("a", ("shift", "--zoo", "{work}/zoo", "--ood", "a")),
                                   results.Part("b", ("shift", "--zoo", "{work}/zoo", "--ood", "b"))))
    calls = []

    def execute(argv):
        calls.append(argv[0])
        folder = Path(argv[2])
        if argv[0] == "zoo":
            assert not folder.exists()  # a fresh run: nothing left from an earlier one
            folder.mkdir(parents=True)
            (folder / "zoo.json").write_text("{}")
        elif argv[0] == "shift" and len(calls) == 2 and interrupt:
            raise KeyboardInterrupt
        else:
            assert (folder / "zoo.json").is_file()
        return {}

    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        results.run(m, execute=execute, progress=lambda _: None)
    interrupt = False
    calls.clear()
    results.run(m, execute=execute, progress=lambda _: None)  # resumed: the zoo part is not run again
    assert calls == ["shift", "shift"]
    calls.clear()
    results.run(m, execute=execute, progress=lambda _: None)  # a fresh run empties the folder first
    assert calls == ["zoo", "shift", "shift"]


def test_malformed_duplicate_and_missing_blocks_are_reported(results_dir):
    found = {"toy": toy()}
    assert any("no closing marker" in p for p in results.check(found, "<!-- results:toy -->\n<!-- /results:toy -->"))
    assert any("no closing marker" in p for p in results.check(found, "<!-- results:toy -->\nx\n"))
    twice = "<!-- results:toy -->\n\n<!-- /results:toy -->\n" * 2
    assert any("appears 2 times" in p for p in results.check(found, twice))
    assert any("has no block in the README" in p for p in results.check(found, "no blocks here"))
    results.run(toy(), execute=lambda argv: {"other": 1}, progress=lambda _: None)  # the table cannot be drawn
    assert any("cannot be drawn: KeyError" in p
               for p in results.check(found, "<!-- results:toy -->\n\n<!-- /results:toy -->"))


def test_a_run_refuses_another_checkpoint_directory_and_code_that_changes_under_it(results_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CHECKPOINT_DIR", str(tmp_path))
    with pytest.raises(ExplorerError, match="EXPLORER_CHECKPOINT_DIR"):
        results.run(toy(), execute=lambda argv: {"value": 1}, progress=lambda _: None)
    monkeypatch.delenv("EXPLORER_CHECKPOINT_DIR")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"one")

    def edits_the_weights(argv):
        weights.write_bytes(b"two")
        return {"value": 1}

    with pytest.raises(ExplorerError, match="changed during the run"):
        results.run(toy(files=(str(weights),)), execute=edits_the_weights, progress=lambda _: None)


def _cli_json(capsys, *argv) -> dict:
    from explorer.cli.main import main

    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_the_renderers_draw_what_the_commands_print(capsys, multicoil_file):
    """Each README table drawn from real (small) outputs of the commands its measurement runs."""
    data = ("--data", str(multicoil_file), "--slice", "1", "--acceleration", "3", "--center-fraction", "0.25")
    attack = [(m, _cli_json(capsys, "attack", *data, "--method", m, "--eps", measured.ATTACK_EPS, "--steps", "2",
                            "--objective", "paper", "--json")) for m in ("zero_filled", "sense")]
    table = measured.render_attack(attack).splitlines()
    assert len(table) == 6 and table[2].startswith("| Zero-filled | target | fastmri | ")
    assert table[4].count(" / ") == 4  # three budgets for SSIM and PSNR drops
    # under each method its noise row: Gaussian perturbations of the same norm, mean ± sd over the 3 draws
    assert table[3].startswith("| Zero-filled: Gaussian noise, same norm (3 draws) | noise | fastmri | ")
    assert table[5].count(" ± ") == 6 and table[5].startswith("| SENSE (CG): Gaussian noise")

    ttt = _cli_json(capsys, "ttt", *data, "--method", "unet", "--set", "unet.checkpoint=knee", "--reference-checkpoint",
                    "brain", "--steps", "3", "--json")
    table = measured.render_ttt([("U-net", ttt), ("U-net", ttt)]).splitlines()
    assert len(table) == 3 and table[2].startswith("| U-net, lr 1e-05 | custom | fastmri | 2 | ")  # --steps departs from ours

    features = _cli_json(capsys, "features", "--data", "sample:knee,size=64,slices=2,coils=4", "--slices", "0,1",
                         "--random", "2", "--sizes", "3", "--contrasts", "0.2", "--method", "zero_filled", "--method",
                         "sense", "--json")
    text = measured.render_features([("knee", features)])
    assert "| Zero-filled | fastmri | " in text and "over all 8 (feature, method) pairs" in text
    bench = subprocess.run([sys.executable, "bench/bench_singlecoil.py", "--smoke", "--json"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    singlecoil = measured.render_singlecoil([("bench", json.loads(bench.stdout))])
    assert singlecoil.count("\n| sample:") == 3 and "Our tuned `lam`" in singlecoil, singlecoil
    for drawn in (measured.render_attack(attack), measured.render_ttt([("U-net", ttt)]), text,
                  singlecoil.split("\n\n")[0]):
        header, delimiter, *rows = drawn.splitlines()
        cells = header.count("|")  # markdown draws a table only when its delimiter row has the header's cells
        assert delimiter.count("|") == cells and set(delimiter) <= {"|", "-"}, drawn
        assert all(row.count("|") == cells for row in rows if row.startswith("|")), drawn


def test_a_failing_command_is_one_clear_error(tmp_path):
    with pytest.raises(ExplorerError, match="failed with exit status 2"):
        results.run_part(("recon", "--data", str(tmp_path / "missing.h5"), "--method", "zero_filled", "--json"))


def test_the_code_hash_ignores_docstrings_and_comments_but_not_code():
    base = 'def f(x):\n    """Doc."""\n    return x + 1\n'
    assert provenance.source_digest(base) == provenance.source_digest(
        '"""Module doc."""\n# a comment\ndef f(x):\n    """Other doc."""\n\n    return x + 1  # why\n')
    assert provenance.source_digest(base) != provenance.source_digest(base.replace("+ 1", "+ 2"))


def test_the_code_a_command_runs_is_followed_through_its_imports():
    covered = provenance.closure(["explorer.cli.ttt"])
    assert {"explorer.robustness.ttt", "explorer.physics", "explorer.metrics"} <= set(covered)
    assert "explorer.robustness.attack" not in covered
    with pytest.raises(KeyError):
        provenance.closure(["explorer.nope"])


def test_the_readme_tables_match_their_results_files_and_the_code():
    """The staleness test: every generated README block equals its results file, and no file is older than the
    code it measured. On failure: re-measure (`python -m explorer results run NAME`), never edit the numbers."""
    problems = results.check(measured.MEASUREMENTS)
    assert problems == [], "\n".join(problems)


def test_records_csv_stamps_columns_unless_a_row_has_its_own():
    from explorer.export import metrics_csv, records_csv

    text = records_csv([{"label": "a", "ssim": 0.5}, {"label": "b", "metric": "volume"}], {"metric": "paper"})
    assert text.splitlines() == ["metric,label,ssim", "paper,a,0.5", "volume,b,"]
    assert metrics_csv([{"method": "l1", "label": "l1", "ssim": 0.7}], "volume").splitlines()[1].endswith(",volume")


def test_a_benchmark_script_is_a_part_its_imports_and_source_in_the_hash():
    bench = measured.get("singlecoil-sparse")
    assert results.is_script(bench.parts[0].argv) and bench.scripts() == ("bench/bench_singlecoil.py",)
    assert {"explorer.engine", "explorer.data.sources", "explorer.recon.sparse"} <= set(bench.entries())
    digest, covered = bench.code_hash()
    assert "bench/bench_singlecoil.py" in covered and "explorer.engine.core" in covered
    assert results.command_line(bench.parts[0].argv) == "python bench/bench_singlecoil.py --json"
    attack = measured.get("attack-knee")
    assert results.command_line(attack.parts[0].argv).startswith("python -m explorer attack ")


def test_run_stale_measures_only_what_is_missing_or_older_than_its_code(results_dir, monkeypatch, tmp_path, capsys):
    from explorer import resources  # noqa: PLC0415
    from explorer.cli.main import main  # noqa: PLC0415

    fresh, missing = toy(name="fresh"), toy(name="missing")
    results.run(fresh, execute=lambda argv: {"value": 1}, progress=lambda _: None)
    monkeypatch.setattr(measured, "MEASUREMENTS", {"fresh": fresh, "missing": missing})
    readme = tmp_path / "README.md"
    readme.write_text("# x\n")
    monkeypatch.setattr(resources, "readme", lambda: readme)
    ran = []
    monkeypatch.setattr(results, "run", lambda measurement: ran.append(measurement.name))
    assert main(["results", "run", "--stale"]) == 0 and ran == ["missing"]
    assert main(["results", "check", "--stale"]) == 2
    assert "--stale goes with `results run` and no names" in capsys.readouterr().err
