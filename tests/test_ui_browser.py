"""End to end in a real browser: Debian's chromium driven headless by Playwright.

Starts ``streamlit run ui/app.py`` on a free loopback port against a copy of
the UI test store (starter corpus + a document carrying script payloads), then:
asks a question and checks the answer and its citations; adds a passage to a
reading list; exports it as Markdown and checks the file; shows the payload
document and checks it is literal text that ran nothing; uploads a file on
Add sources. Screenshots go to the test's tmp dir, and to docs/screenshots/
when EQUISEARCH_UPDATE_SCREENSHOTS=1.

Never runs ``playwright install``: the browser is /usr/bin/chromium
(installed by .ci/run with apt).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT, STARTER_DOCS

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 90_000
SCREENSHOTS = ROOT / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (`apt-get install chromium`, as .ci/run does)")


@pytest.fixture(scope="module")
def server(ui_store, tmp_path_factory):
    _need_chromium()
    home = tmp_path_factory.mktemp("browser") / "store"
    shutil.copytree(ui_store, home)
    port = _free_port()
    env = {**os.environ, "EQUISEARCH_HOME": str(home), "PYTHONPATH": str(ROOT),
           "EQUISEARCH_ALLOW_PRIVATE_URLS": "0"}
    log_path = home.parent / "streamlit.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"),
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(home.parent),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("streamlit did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.5)
        yield {"base": base, "home": home, "log": log_path}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        text = log_path.read_text()
        # No unexpected error went through our code on the server side (Streamlit's own
        # noise about closed websockets, if any, is not ours to judge here).
        ours = [line for line in text.splitlines() if line.strip().startswith(f'File "{ROOT}/')]
        assert not ours, text[-3000:]


@pytest.fixture(scope="module")
def browser():
    # Checked here too: pytest sets up `browser` before `server` for `page`,
    # so a machine without Chromium must skip before Playwright is asked to launch it.
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    context.close()


def shot(page, tmp_path: Path, name: str) -> None:
    page.wait_for_timeout(300)  # let the last delta paint
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    if os.environ.get("EQUISEARCH_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / f"{name}.png")


def wait_idle(page) -> None:
    """Wait until Streamlit has finished the run (its status widget is gone)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS)


def ask(page, question: str) -> None:
    box = page.get_by_label("Your question")
    box.fill(question)
    box.press("Enter")
    page.locator(".eq-card").first.wait_for()
    wait_idle(page)


def test_ask_cite_add_to_list_and_export_markdown(page, server, tmp_path):
    page.goto(server["base"])
    page.get_by_role("button", name="How can schools collaborate to promote equity?").wait_for()
    shot(page, tmp_path, "ask-first-visit")
    ask(page, "How many pupils have SEND?")
    answer = page.locator(".eq-answer")
    answer.wait_for()
    assert "1.5 million" in answer.inner_text()
    refs = answer.locator("a.eq-ref").all_inner_texts()
    assert refs and all(r.startswith("[") for r in refs)
    cards = page.locator(".eq-card")
    assert cards.count() == 5
    cited = int(refs[0].strip("[]"))
    card = page.locator(f"#source-{cited}")
    assert card.locator("mark").count() >= 1  # the answer sentence is highlighted in its passage
    assert card.locator(".eq-title").inner_text().startswith(f"[{cited}] ")
    assert page.get_by_text("Also searched for:").count() == 1
    shot(page, tmp_path, "ask")

    passage = page.locator(".eq-passage").first.inner_text()
    page.get_by_role("button", name="Add passage to list").first.click()
    page.get_by_text("added to “My reading list”").wait_for()
    wait_idle(page)

    page.get_by_role("link", name="Reading lists", exact=True).click()
    page.get_by_role("heading", name="Reading lists").wait_for()
    page.get_by_role("button", name="Markdown").wait_for()
    wait_idle(page)
    shot(page, tmp_path, "reading-lists")
    with page.expect_download() as info:
        page.get_by_role("button", name="Markdown").click()
    download = info.value
    assert download.suggested_filename == "my-reading-list.md"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("# My reading list\n")
    assert "1 item, about 1 min of reading" in text and "## 1. " in text
    first_words = " ".join(passage.split()[:6])
    assert first_words in " ".join(text.split())
    assert not page.dialogs


def test_script_payload_from_a_document_is_text_and_never_runs(page, server, tmp_path):
    page.goto(server["base"])
    page.get_by_label("Your question").wait_for()
    ask(page, "Did breakfast clubs raise attendance?")
    card = page.locator(".eq-card", has_text="Breakfast club evaluation").first
    card.scroll_into_view_if_needed()
    text = card.inner_text()
    assert '<img src=x onerror="window.__xss=1;alert(1)"> Breakfast club evaluation' in text
    assert '<script>window.__xss = 2; alert("xss")</script>' in text
    assert "Test <b>site</b>" in text
    # Nothing ran: no flag, no dialog, no element made from the payload.
    assert page.evaluate("() => window.__xss === undefined")
    assert page.locator("img[src='x']").count() == 0
    assert page.locator(".eq-card script").count() == 0
    assert page.dialogs == []
    shot(page, tmp_path, "xss-as-text")

    page.get_by_role("link", name="Sources", exact=True).click()
    page.get_by_label("Search sources").fill("breakfast")
    page.get_by_label("Search sources").press("Enter")
    page.get_by_text(f"1 of {STARTER_DOCS + 1} sources").wait_for()
    page.locator("[data-testid=stDataFrame]").wait_for()
    wait_idle(page)
    page.wait_for_timeout(700)  # the data grid paints on a canvas after the run
    shot(page, tmp_path, "sources")
    assert page.evaluate("() => window.__xss === undefined") and page.dialogs == []


def test_add_sources_upload_in_the_browser(page, server, tmp_path):
    page.goto(server["base"] + "/add_sources")
    page.get_by_role("heading", name="Add sources").wait_for()
    upload = tmp_path / "tutoring.txt"
    upload.write_text("Small-group tutoring three times a week helped disadvantaged pupils catch up in "
                      "reading, according to the school's own evaluation.\n", encoding="utf-8")
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_text("tutoring.txt").wait_for()
    page.get_by_label("Web pages (one URL per line)").fill("http://127.0.0.1:9/private")
    page.get_by_role("button", name="Add sources").click()
    page.get_by_text("Result:").wait_for()
    wait_idle(page)
    shot(page, tmp_path, "add-sources")
    assert page.get_by_text("1 added, 1 failed").count() == 1
    assert page.dialogs == []


def test_equisearch_ui_command_serves_the_app(ui_store, tmp_path):
    """`make run` ends in `equisearch ui`: it must serve ui/app.py on the store given."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "--store", str(ui_store), "ui", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(tmp_path),
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, "equisearch ui exited"
                assert time.monotonic() < deadline, "equisearch ui did not start"
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200 and b"<div id=\"root\">" in r.read()
    finally:
        os.killpg(proc.pid, 15)  # the CLI and the streamlit process it started
        proc.wait(timeout=20)
