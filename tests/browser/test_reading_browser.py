"""Real-browser reading (streamlit server + headless Chromium): two readers read one tiny detection session at the same
time in two browser contexts, with the viewer's keys (y / n, 1-5, Enter) and its Mark tool (a click on the image);
one reader closes the tab midway, the server is stopped and a new one started on the same data folder, the other
reader's open tab reconnects and goes on, and the first opens the link again and continues at the first unanswered
case. Every answer is then stored exactly once and none is lost (``store.answers_frame`` and the audit log), and
neither reader's page text, websocket messages or HTTP responses hold a method name, a condition or the other
reader's name; every viewer payload's labels are opaque ("Image").

``EXPLORER_UPDATE_SCREENSHOT=1`` also renders the README screenshots assets/reading.png (the reading page) and
assets/reader_results.png (the results of the Reader studies page, simulated readers).

Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, _free_port, wait_until_healthy

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
VIEWER = "[data-testid=mrxv-viewer]"
FOLDER = "reader-studies"


class Server:
    """``streamlit run app.py`` on a fixed port with a data directory (the launcher of tests/browser/test_browser.py,
    restartable: stop it and start a new process on the same port and folder)."""

    def __init__(self, tmp: Path, data: Path, sample_size: int = 64):
        self.tmp, self.data, self.sample_size = tmp, data, sample_size
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> str:
        self.starts += 1
        env = dict(os.environ, EXPLORER_SAMPLE_SIZE=str(self.sample_size), EXPLORER_CACHE_DIR=str(self.tmp / "cache"),
                   EXPLORER_DEVICE="cpu", EXPLORER_DATA_DIR=str(self.data))
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(self.port)]
        log_path = self.tmp / f"streamlit-{self.starts}.log"
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until_healthy(self.url, self.proc, log_path)
        return self.url

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


class Traffic:
    """What a page received: websocket messages (Streamlit's ForwardMsg protobufs) and HTTP response bodies, as text
    (every string field; viewer payloads as their decoded headers, never their pixels)."""

    def __init__(self):
        self.texts: list[str] = []
        self.headers: list[dict] = []
        self.messages = 0

    def attach(self, page) -> None:
        page.on("websocket", lambda ws: ws.on("framereceived", self.frame))
        page.on("response", self.response)

    def frame(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: PLC0415

        if isinstance(payload, str):
            self.texts.append(payload)
            return
        msg = ForwardMsg()
        msg.ParseFromString(payload)
        self.messages += 1
        self._walk(msg)

    def _walk(self, message) -> None:
        from explorer.viewer.payload import MAGIC, decode  # noqa: PLC0415

        for field, value in message.ListFields():
            repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
            values = value if repeated else [value]
            for v in values:
                if field.type == field.TYPE_MESSAGE:
                    self._walk(v)
                elif field.type == field.TYPE_BYTES:
                    if v.startswith(MAGIC):
                        self.headers.append(decode(v)[0])
                    else:
                        self.texts.append(v.decode("latin-1"))
                elif field.type == field.TYPE_STRING:
                    self.texts.append(v)

    def response(self, response) -> None:
        from explorer.viewer.payload import MAGIC, decode  # noqa: PLC0415

        if "/static/" in response.url or response.request.resource_type in ("image", "font", "stylesheet"):
            return
        try:
            body = response.body()
        except Exception:  # noqa: BLE001 (a redirect or a closed page has no body)
            return
        if body.startswith(MAGIC):
            self.headers.append(decode(body)[0])
        else:
            self.texts.append(body.decode("latin-1"))

    def text(self) -> str:
        return "\n".join(self.texts) + "\n" + "\n".join(json.dumps(h) for h in self.headers)


def build_session(data: Path) -> Path:
    """A 4-case detection session: zero-filled and the U-net, clean and with one lesion, 32 px, one slice."""
    from explorer.readers.options import ReadingOptions  # noqa: PLC0415
    from explorer.readers.session import build_from_spec, demo_spec  # noqa: PLC0415

    (data / FOLDER).mkdir(parents=True, exist_ok=True)
    path = data / FOLDER / "det.reading"
    built = build_from_spec(path, demo_spec("detection", size=32, slices=1, seed=0),
                            ReadingOptions(task="detection", methods=("zero_filled", "unet"), seed=0))
    assert built.items == 4
    return path


def focus_and_press(page, key: str) -> None:
    """Press ``key`` in the viewer (keys reach the page while the viewer has the focus) once the rerun that may be
    drawing a fresh viewer has finished."""
    for _ in range(300):  # the viewer is in its component's shadow root: Playwright's locators reach it
        if page.locator(VIEWER).count() == 1 and page.locator("[data-stale=true]").count() == 0:
            break
        page.wait_for_timeout(100)
    page.locator(VIEWER).focus()
    page.keyboard.press(key)


def answer_case(page, position: int, total: int, present: bool) -> None:
    """Answer the case on screen with the keys and, when present, a click of the Mark tool."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.get_by_text(f"Case {position} of {total} ·").wait_for(timeout=90_000)
    page.wait_for_selector(f"{VIEWER}[data-ready='1']", timeout=60_000)
    radios = page.locator("[class*='st-key-reading-g'][class*='-present'] input[type=radio]")
    focus_and_press(page, "y" if present else "n")
    expect(radios.nth(0 if present else 1)).to_be_checked(timeout=30_000)
    if present:
        page.wait_for_selector(f"{VIEWER}[data-ready='1']", timeout=30_000)
        canvas = page.locator(".mrxv-image canvas").first
        box = canvas.bounding_box()
        canvas.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.5})
        try:
            page.get_by_text(re.compile(r"Marked at row \d+, column \d+")).wait_for(timeout=30_000)
        except Exception:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "reading_failed.png"))
            print(page.inner_text("body"))
            raise
    page.wait_for_selector(f"{VIEWER}[data-ready='1']", timeout=30_000)
    focus_and_press(page, "4" if present else "2")
    page.get_by_text(re.compile(r"Saved · \d+ s on this case")).wait_for(timeout=30_000)
    page.wait_for_selector(f"{VIEWER}[data-ready='1']", timeout=30_000)
    focus_and_press(page, "Enter")
    if position < total:
        page.get_by_text(f"Case {position + 1} of {total} ·").wait_for(timeout=60_000)
    else:
        page.get_by_text(f"All {total} cases are answered").wait_for(timeout=60_000)


def assert_blind(traffic: Traffic, page_text: str, words: list[str]) -> None:
    text = traffic.text() + "\n" + page_text
    for word in words:
        pattern = re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(word)}(?![A-Za-z0-9_-])", re.IGNORECASE)
        assert not pattern.search(text), f"{word!r} reached the reader's browser"
    assert traffic.headers, "no viewer payload was seen"
    for header in traffic.headers:
        for frame in header["frames"]:
            assert frame["labels"] == ["Image"], frame["labels"]
            assert not frame["subtitles"]
        assert header["settings"]["filename"] == "case"


def test_two_readers_a_closed_tab_and_a_server_restart(tmp_path):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    from explorer.readers.codes import add_reader  # noqa: PLC0415
    from explorer.readers.tables import answers_frame, audit_frame, key_frame  # noqa: PLC0415
    from explorer.ui.present import method_names  # noqa: PLC0415

    data = tmp_path / "data"
    path = build_session(data)
    codes = {name: add_reader(path, name).code for name in ("reader-alpha", "reader-beta")}
    key = key_frame(path)
    labels = sorted(set(key["label"]) | set(key["method"]))
    names = method_names()
    secret = labels + [names.get(label, label) for label in labels] + ["eps=", "attack eps", "clean", "lesion present",
                                                                       "model observer"]
    given = {"reader-alpha": {}, "reader-beta": {}}  # reader -> {position: present}
    server = Server(tmp_path, data)
    server.start()
    traffic = {"reader-alpha": Traffic(), "reader-beta": Traffic()}
    texts = {"reader-alpha": "", "reader-beta": ""}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                pages = {}
                for name in codes:
                    context = browser.new_context(viewport={"width": 1400, "height": 900})
                    page = context.new_page()
                    traffic[name].attach(page)
                    page.goto(f"{server.url}/reading?session=det&code={codes[name]}")
                    pages[name] = page

                def read(name: str, position: int) -> None:
                    present = (position + (name == "reader-beta")) % 2 == 1
                    answer_case(pages[name], position, 4, present)
                    given[name][position] = present

                read("reader-alpha", 1)
                read("reader-beta", 1)
                read("reader-alpha", 2)
                texts["reader-alpha"] += pages["reader-alpha"].inner_text("body")
                context_alpha = pages["reader-alpha"].context
                pages["reader-alpha"].close()  # alpha closes the tab midway

                beta = pages["reader-beta"]
                server.stop()  # the server goes down and a new one starts on the same folder
                server.start()
                # beta's tab reconnects by itself; Streamlit gives it a new session and runs the page at its next
                # action (that action only redraws it: the new session has no callbacks yet), so beta presses a key
                # and the page is drawn anew at beta's first unanswered case (its answer widgets: showing 1)
                beta.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')"
                                       " || !/connect/i.test(document.querySelector('[data-testid=stStatusWidget]')"
                                       ".innerText)", timeout=60_000)
                for _ in range(30):
                    focus_and_press(beta, "Enter")
                    if beta.locator("[class*='st-key-reading-g1-present']").count():
                        break
                    beta.wait_for_timeout(1000)
                # beta's open tab reconnects by itself and continues at its first unanswered case
                for position in (2, 3, 4):
                    read("reader-beta", position)
                texts["reader-beta"] += pages["reader-beta"].inner_text("body")

                page = context_alpha.new_page()  # alpha opens the link again: case 3 of 4
                traffic["reader-alpha"].attach(page)
                page.goto(f"{server.url}/reading?session=det&code={codes['reader-alpha']}")
                pages["reader-alpha"] = page
                page.get_by_text("Case 3 of 4 · 2 of 4 answered").wait_for(timeout=90_000)
                for position in (3, 4):
                    read("reader-alpha", position)
                texts["reader-alpha"] += page.inner_text("body")
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "reading_done.png"))
                for page in pages.values():
                    assert page.locator("[data-testid='stMainBlockContainer'] [data-testid='stAlertContentError']").count() == 0
            finally:
                browser.close()
    finally:
        server.stop()

    answers = answers_frame(path)
    assert len(answers) == 8  # 2 readers x 4 cases: none lost
    assert not answers.duplicated(["reader", "item_id"]).any()  # each stored once
    assert set(answers["revision"]) == {1}
    audit = audit_frame(path)
    assert (audit["event"] == "answer").sum() == 8 and not (audit["event"] == "change").any()
    for name, by_position in given.items():
        mine = answers[answers["reader"] == name]
        order = {r.item_id: r.position for r in _items(path, codes[name])}
        for row in mine.itertuples():
            present = by_position[order[row.item_id]]
            assert row.present == present
            assert (row.click_row is not None and row.click_row == row.click_row) == present
            assert row.confidence == (4 if present else 2)
            if present:
                assert abs(row.click_row - 16) <= 2 and abs(row.click_col - 16) <= 2  # the centre of 32 x 32
            assert 0 <= row.seconds < 300
    for name, other in (("reader-alpha", "reader-beta"), ("reader-beta", "reader-alpha")):
        assert traffic[name].messages > 10
        assert_blind(traffic[name], texts[name], secret + [other])


def _items(path: Path, code: str):
    from explorer.readers.reading import Reading  # noqa: PLC0415

    return Reading(path).items(code)


@pytest.mark.skipif(not os.environ.get("EXPLORER_UPDATE_SCREENSHOT"), reason="set EXPLORER_UPDATE_SCREENSHOT=1")
def test_readme_reader_study_screenshots(tmp_path):
    """Renders assets/reading.png (a Likert case of the 160 px demonstration, two criteria rated by keys) and
    assets/reader_results.png (its Reader studies results with three simulated readers and the caveat)."""
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415

    from explorer.readers.codes import add_reader  # noqa: PLC0415
    from explorer.readers.session import build_demo  # noqa: PLC0415
    from explorer.readers.simulated import simulate  # noqa: PLC0415
    from explorer.ui.reader_studies_sessions import set_investigator_code  # noqa: PLC0415

    data = tmp_path / "data"
    (data / FOLDER).mkdir(parents=True)
    path = data / FOLDER / "knee-demo.reading"
    build_demo(path, "likert", size=160, slices=2, seed=0, repeats=0.25)
    investigator = set_investigator_code(path)
    code = add_reader(path, "AB").code
    simulate(path, readers=3, seed=0)
    server = Server(tmp_path, data)
    server.start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.goto(f"{server.url}/reading?session=knee-demo&code={code}")
                page.get_by_text("Case 1 of").wait_for(timeout=90_000)
                page.wait_for_selector(f"{VIEWER}[data-ready='1']", timeout=60_000)
                for key, criterion in (("4", "overall"), ("3", "artifacts")):  # the next criterion not yet rated
                    focus_and_press(page, key)
                    checked = page.locator(f"[class*='st-key-reading-g'][class*='-{criterion}'] input[type=radio]")
                    expect(checked.nth(int(key) - 1)).to_be_checked(timeout=30_000)
                    page.wait_for_selector(f"{VIEWER}[data-ready='1']", timeout=30_000)
                page.mouse.move(5, 5)
                page.evaluate("() => { window.scrollTo(0, 0); document.querySelector('[data-testid=stMain]')"
                              "?.scrollTo(0, 0); }")
                page.wait_for_timeout(800)
                page.screenshot(path=str(ARTIFACTS / "reading.png"))
                shutil.copyfile(ARTIFACTS / "reading.png", ROOT / "assets" / "reading.png")
                assert (ROOT / "assets" / "reading.png").stat().st_size > 50_000

                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.goto(f"{server.url}/readers")
                page.locator(".st-key-readers-code input").fill(investigator, timeout=90_000)
                page.get_by_test_id("stBaseButton-secondaryFormSubmit").click()
                page.locator(".st-key-readers-section label", has_text="Results").click(timeout=60_000)
                page.get_by_text("Does accuracy predict what readers see?").first.wait_for(timeout=90_000)
                page.wait_for_timeout(1500)
                assert page.locator("[data-testid='stMainBlockContainer'] [data-testid='stAlertContentError']").count() == 0
                top = page.get_by_text("2 · Readers, progress and results").bounding_box()["y"] - 12
                bottom = page.get_by_text("Differences between methods", exact=True).bounding_box()["y"] - 8
                main = page.locator("[data-testid='stMainBlockContainer']").bounding_box()
                page.set_viewport_size({"width": 1600, "height": int(max(bottom + 40, 1000))})
                page.wait_for_timeout(800)
                clip = {"x": main["x"], "y": max(top, 0), "width": main["width"], "height": bottom - top}
                page.screenshot(path=str(ARTIFACTS / "reader_results.png"), clip=clip)
                shutil.copyfile(ARTIFACTS / "reader_results.png", ROOT / "assets" / "reader_results.png")
                assert (ROOT / "assets" / "reader_results.png").stat().st_size > 50_000
            finally:
                browser.close()
    finally:
        server.stop()
