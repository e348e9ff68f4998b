"""The installable package: pyproject's dependencies are requirements.txt's; a wheel installed into a fresh venv gives
``mri-explorer`` (= ``python -m explorer``) and serves the app, both from a directory outside the checkout, with the
shipped checkpoints found in the installed package (not the checkout's)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.browser.test_browser import CHROMIUM, CHROMIUM_ARGS, _free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]


def _requirement_lines() -> list[str]:
    """requirements.txt's runtime lines (before its ``# tests`` section), without comments."""
    lines = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip().startswith("# tests"):
            break
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def test_pyproject_declares_the_requirements_and_the_console_command():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == _requirement_lines()
    assert not any(d.startswith("fastmri") for d in project["dependencies"])  # installed apart, with --no-deps
    assert project["scripts"]["mri-explorer"] == "explorer.cli.main:console"
    assert {re.split(r"[=<>]", d)[0] for d in project["optional-dependencies"]["dev"]} >= {"pytest", "playwright"}
    requirements = (ROOT / "requirements.txt").read_text()
    for name in ("requests", "runstats"):  # fastmri's own imports, which --no-deps does not bring
        line = next(line for line in requirements.splitlines() if line.startswith(name))
        assert "fastmri" in line, line


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv (on top of this interpreter's packages, for torch and the rest) with the wheel of this checkout."""
    tmp = tmp_path_factory.mktemp("package")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp.glob("mri_explorer-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--force-reinstall", str(wheel)], check=True, capture_output=True, timeout=300)
    away = tmp / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPLORER_") and k != "PYTHONPATH"}
    env["EXPLORER_CACHE_DIR"] = str(tmp / "cache")
    return venv, away, env


def test_the_installed_command_runs_from_another_directory(installed):
    venv, away, env = installed
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import explorer, explorer.resources as r; "
                            "print(explorer.__file__); print(r.root()); print(r.checkpoint_dir())"],
                           cwd=away, env=env, capture_output=True, text=True, check=True)
    module, root, checkpoints = where.stdout.split()
    assert Path(module).is_relative_to(venv) and Path(root).is_relative_to(venv), where.stdout
    assert (Path(checkpoints) / "unet_knee.pt").is_file()
    out = subprocess.run([str(venv / "bin" / "mri-explorer"), "recon", "--data", "sample:knee,size=64,slices=2,coils=4",
                          "--acceleration", "3", "--method", "zero_filled", "--method", "unet", "--json"],
                         cwd=away, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    assert [r["label"] for r in results] == ["zero_filled", "unet"] and all(0 < r["ssim"] <= 1 for r in results)
    same = subprocess.run([str(venv / "bin" / "python"), "-m", "explorer", "experiments", "--json"], cwd=away, env=env,
                          capture_output=True, text=True, timeout=120)
    assert [e["name"] for e in json.loads(same.stdout)] == ["clean", "attack", "features", "shift", "filtered", "ttt"]
    bad = subprocess.run([str(venv / "bin" / "mri-explorer"), "recon", "--data", "nowhere.h5", "--method", "sense"],
                         cwd=away, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
def test_the_installed_app_serves_from_another_directory(installed, tmp_path):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    venv, away, env = installed
    port = _free_port()
    log = tmp_path / "app.log"
    with open(log, "w") as handle:
        server = subprocess.Popen([str(venv / "bin" / "mri-explorer"), "app", "--port", str(port), "--address",
                                   "127.0.0.1"], cwd=away, env={**env, "EXPLORER_SAMPLE_SIZE": "64"},
                                  stdout=handle, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, server, log, timeout=90)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(f"{url}/reconstruct")
                page.wait_for_selector(".st-key-reconstruct-run button", timeout=120_000)
                nav = page.locator("[data-testid='stSidebarNav']").inner_text()
                assert all(title in nav for title in ("Reconstruct", "Attack", "Small features", "Study", "Models"))
                assert page.locator("[data-testid='stException']").count() == 0
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
