"""Signing in behind a proxy, in a real browser (Debian's chromium, headless, through Playwright).

The app is served with ``EQUISEARCH_AUTH=proxy`` behind :class:`IdentityProxy`,
a stand-in for the authenticating reverse proxy (oauth2-proxy, an SSO
gateway): it drops any ``X-Forwarded-Email`` the browser sends and puts its
own signed-in identity on every request, the websocket handshake included.
This checks what AppTest cannot: that the identity really arrives through
``st.context.headers``, which Streamlit reads from the websocket handshake.
Without the header: one line, no page; a reader: no Add sources page; an
editor named in ``EQUISEARCH_EDITORS``: Add sources; a browser that forges
the header itself (Playwright's ``extra_http_headers``) gains nothing.

Why not Playwright's ``extra_http_headers`` alone: Chromium before 151 does
not send them on websocket handshakes (playwright#28948; Debian's chromium
here is 150), so the session would never see them.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from .conftest import ROOT
from .test_ui_browser import ARGS, CHROMIUM, TIMEOUT_MS, _free_port, _need_chromium, wait_idle

pytestmark = [pytest.mark.slow, pytest.mark.browser]
EDITOR = "ann@school.example"
HEADER = "X-Forwarded-Email"


class IdentityProxy:
    """A loopback TCP proxy that signs every request in as ``identity`` (None: strips the header only).

    It rewrites each request head: any client copy of the identity header is
    dropped, the proxy's own is added. Plain requests get ``Connection: close``
    (one request a connection, so every head is seen); a websocket upgrade is
    piped both ways after its head.
    """

    def __init__(self, upstream_port: int, identity: str | None):
        self.upstream_port, self.identity = upstream_port, identity
        self.heads: list[str] = []
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _handle(self, reader, writer) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self._forward(reader, writer)
        except asyncio.CancelledError:
            writer.close()
        finally:
            self._tasks.discard(task)

    async def _forward(self, reader, writer) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        first, *lines = [line for line in head.split("\r\n") if line]
        upgrade = any(line.lower().startswith("upgrade:") for line in lines)
        lines = [line for line in lines if not line.lower().startswith(HEADER.lower() + ":")
                 and (upgrade or not line.lower().startswith("connection:"))]
        if self.identity:
            lines.append(f"{HEADER}: {self.identity}")
        if not upgrade:
            lines.append("Connection: close")
        self.heads.append("\r\n".join([first, *lines]))
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(("\r\n".join([first, *lines]) + "\r\n\r\n").encode("latin-1"))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _shutdown(self) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._loop.stop()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def proxied_server(ui_store, tmp_path_factory):
    _need_chromium()
    home = tmp_path_factory.mktemp("browser_auth") / "store"
    shutil.copytree(ui_store, home)
    port = _free_port()
    env = {**os.environ, "EQUISEARCH_HOME": str(home), "PYTHONPATH": str(ROOT), "EQUISEARCH_AUTH": "proxy",
           "EQUISEARCH_EDITORS": EDITOR}
    log_path = home.parent / "streamlit.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"),
             "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(home.parent))
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
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    ours = [line for line in log_path.read_text().splitlines() if line.strip().startswith(f'File "{ROOT}/')]
    assert not ours, log_path.read_text()[-3000:]


@pytest.fixture(scope="module")
def browser():
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Visit:
    """A browser context reaching the app through a proxy that signs it in as ``identity``."""

    def __init__(self, browser, upstream_port: int, identity: str | None, forged: str | None = None):
        self.proxy = IdentityProxy(upstream_port, identity)
        headers = {HEADER: forged} if forged else {}
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers=headers)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.base = f"http://127.0.0.1:{self.proxy.port}"
        self.page.goto(self.base)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.context.close()
        self.proxy.close()


def nav_links(page) -> list[str]:
    page.locator('[data-testid="stSidebarNav"]').wait_for()
    wait_idle(page)
    # Each link's text is its icon's name, then its title.
    return [t.strip().splitlines()[-1] for t in page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()]


def test_no_header_is_refused_in_one_line(browser, proxied_server):
    with Visit(browser, proxied_server, None) as v:
        alert = v.page.locator('[data-testid="stAlert"]')
        alert.wait_for()
        wait_idle(v.page)
        assert alert.inner_text().strip() == "sign-in required: open equisearch through the organisation's sign-in page"
        assert v.page.locator('[data-testid="stSidebarNav"]').count() == 0
        assert v.page.get_by_label("Your question").count() == 0
        # The websocket handshake went through the proxy too (that is where Streamlit reads headers).
        assert any(h.lower().startswith("get /_stcore/stream") for h in v.proxy.heads)


def test_reader_gets_no_add_sources_page(browser, proxied_server):
    with Visit(browser, proxied_server, "bob@school.example") as v:
        page = v.page
        assert nav_links(page) == ["Ask", "Sources", "Reading lists"]
        assert page.get_by_text("Signed in as bob@school.example (reader)").count() == 1
        page.get_by_label("Your question").wait_for()
        # The page's address does not open it either: Streamlit shows the default page instead.
        page.goto(v.base + "/add_sources")
        page.get_by_label("Your question").wait_for()
        wait_idle(page)
        assert page.get_by_role("heading", name="Add sources").count() == 0


def test_editor_gets_add_sources(browser, proxied_server):
    with Visit(browser, proxied_server, "Ann@School.example") as v:
        page = v.page
        assert nav_links(page) == ["Ask", "Sources", "Add sources", "Reading lists"]
        assert page.get_by_text(f"Signed in as {EDITOR} (editor)").count() == 1
        page.locator('[data-testid="stSidebarNavLink"]', has_text="Add sources").click()
        page.get_by_role("heading", name="Add sources").wait_for()
        page.get_by_role("button", name="Add sources").wait_for()
        page.get_by_text("Web pages (one URL per line)").wait_for()


def test_a_header_the_browser_forges_gains_nothing(browser, proxied_server):
    # Playwright sends the editor's address on every request it can; the proxy's identity wins.
    with Visit(browser, proxied_server, "bob@school.example", forged=EDITOR) as v:
        assert nav_links(v.page) == ["Ask", "Sources", "Reading lists"]
        assert v.page.get_by_text("Signed in as bob@school.example (reader)").count() == 1
