"""UI timing: how long a warm answer takes to show in a real browser.

Usage: python bench/bench_ui.py [--store DIR] [--edu DIR] [--rounds 2] [--screenshots]

Makes sure the store holds the starter corpus plus shared/data/edu (an
idempotent ingest: unchanged files cost nothing), then:

1. times the warm in-process ``Engine.ask`` call the Ask page makes;
2. starts ``streamlit run ui/app.py`` on a free loopback port, opens it in
   Debian's chromium (headless, Playwright), asks one question to load the
   model (the cold start, reported separately), then for every question
   times Enter -> the answer's source cards painted and Streamlit idle.

Writes bench/UI.md (date, machine, versions, store size) and prints it.
With ``--screenshots`` it also refreshes docs/screenshots/ from this store.
Figures only: no target is asserted here.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, percentile  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def questions() -> list[str]:
    out = []
    for path in (ROOT.parent / "shared" / "dev-eval" / "seeds.jsonl", ROOT / "tests" / "data" / "starter_questions.jsonl"):
        if path.exists():
            out += [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]
    return out


def ensure_store(store: Path, edu: Path) -> dict:
    from ingest.pipeline import Ingestor
    from search.settings import Settings
    from search.store import Store

    s = Store.open(store)
    t0 = time.perf_counter()
    report = Ingestor(s, Settings(home=str(store))).ingest_paths([ROOT / "corpus", edu])
    info = s.info()
    s.close()
    return {"documents": info.documents, "chunks": info.chunks, "ingest_s": time.perf_counter() - t0,
            "counts": report.counts}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(store: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "EQUISEARCH_HOME": str(store), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("streamlit did not start")


IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), independent of machine load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_ask(page, question: str) -> float:
    """Seconds from Enter to the cards of *this* answer painted and the run finished."""
    box = page.get_by_label("Your question")
    box.fill(question)
    page.evaluate("() => document.querySelectorAll('.eq-card').forEach(e => e.classList.add('old'))")
    t0 = time.perf_counter()
    box.press("Enter")
    page.wait_for_selector(".eq-card:not(.old)", timeout=120_000)
    page.wait_for_function(IDLE, timeout=120_000)
    return time.perf_counter() - t0


def screenshots(page, base: str) -> None:
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    page.goto(base)
    page.get_by_label("Your question").wait_for()
    page.wait_for_function(IDLE)
    browser_ask(page, "What should schools do to support previously looked-after children?")
    page.screenshot(path=str(out / "ask-edu.png"))
    page.get_by_role("button", name="Add passage to list").first.click()
    page.get_by_text("Passage added to").wait_for()
    page.wait_for_function(IDLE)
    page.get_by_role("button", name="Add whole source to list").nth(1).click()
    page.get_by_text("Whole source added to").wait_for()
    page.wait_for_function(IDLE)
    page.get_by_role("link", name="Reading lists", exact=True).click()
    page.get_by_role("button", name="Markdown").wait_for()
    page.wait_for_function(IDLE)
    page.screenshot(path=str(out / "reading-lists-edu.png"))
    page.get_by_role("link", name="Sources", exact=True).click()
    page.get_by_label("Search sources").fill("ofsted")
    page.get_by_label("Search sources").press("Enter")
    page.wait_for_function("() => { const m = document.body.innerText.match(/(\\d+) of (\\d+) sources/);"
                           " return m && m[1] !== m[2]; }")
    page.wait_for_function(IDLE)
    page.wait_for_timeout(1000)  # the data grid paints on a canvas after the run
    page.screenshot(path=str(out / "sources-edu.png"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=str(ROOT / "data"), help="store to use (filled if needed); default data/")
    ap.add_argument("--edu", default=str(ROOT.parent / "shared" / "data" / "edu"))
    ap.add_argument("--rounds", type=int, default=2,
                    help="times each question is asked in the browser (0: no timing, e.g. only --screenshots)")
    ap.add_argument("--screenshots", action="store_true", help="refresh docs/screenshots/*-edu.png")
    ap.add_argument("--out", default=str(ROOT / "bench" / "UI.md"))
    args = ap.parse_args()
    edu, store = Path(args.edu), Path(args.store)
    if not edu.exists():
        sys.exit(f"{edu} not found: pass --edu DIR (the shared/data/edu folder)")
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} not found: apt-get install chromium")
    qs = questions()
    built = ensure_store(store, edu)

    from search.api import Engine
    from search.settings import Settings

    load_before = os.getloadavg()
    engine = Engine.open(store, Settings(home=str(store)))
    engine.ask("warm up the model")
    inproc = []
    inproc_cpu = []
    for q in qs * (1 if args.rounds else 0):
        t0, c0 = time.perf_counter(), time.process_time()
        engine.ask(q)
        inproc.append((time.perf_counter() - t0) * 1000)
        inproc_cpu.append((time.process_time() - c0) * 1000)
    engine.close()

    from playwright.sync_api import sync_playwright

    if args.screenshots:
        # A fresh list for the reading-list screenshot.
        from search.errors import ListNotFound
        from search.lists import ReadingLists
        from search.store import Store

        rls = ReadingLists(Store.open(store))
        try:
            rls.delete("PLAC CPD")
        except ListNotFound:
            pass
        rls.create("PLAC CPD")
        rls.store.close()
    proc, base = start_server(store)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            t0 = time.perf_counter()
            page.goto(base)
            page.get_by_label("Your question").wait_for(timeout=120_000)
            page.wait_for_function(IDLE, timeout=120_000)
            first_paint = time.perf_counter() - t0
            cold = browser_ask(page, "How do schools support pupils with an EHC plan?")
            warm, server_cpu = [], []
            for _ in range(args.rounds):
                for q in qs:
                    c0 = cpu_seconds(proc.pid)
                    warm.append(browser_ask(page, q) * 1000)
                    server_cpu.append((cpu_seconds(proc.pid) - c0) * 1000)
            if args.screenshots:
                screenshots(page, base)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    if not args.rounds:
        return
    load_after = os.getloadavg()

    body = f"""# UI timing

Written by `bench/bench_ui.py`; do not edit by hand.

{machine_line()} Streamlit {_v('streamlit')}, Playwright {_v('playwright')}, Debian chromium.

Store: `corpus/` + `shared/data/edu`: {built['documents']} documents, {built['chunks']} passages
(ingest check this run: {built['ingest_s']:.1f} s, {built['counts']}).
Questions: {len(qs)} (shared/dev-eval/seeds.jsonl + tests/data/starter_questions.jsonl), asked
{args.rounds}x each in the browser. Load average (1 min) before / after: {load_before[0]:.1f} / {load_after[0]:.1f}
on {os.cpu_count()} cores: other work on the machine slows every figure below.

| measure | value |
|---|---|
| page first paint, server already running (s) | {first_paint:.2f} |
| first question incl. model load in the server (s) | {cold:.2f} |
| warm answer in the browser, Enter -> cards painted, p50 / p95 / max (ms) | {percentile(warm, 50):.0f} / {percentile(warm, 95):.0f} / {max(warm):.0f} |
| warm `Engine.ask` in process, p50 / p95 (ms) | {percentile(inproc, 50):.0f} / {percentile(inproc, 95):.0f} |
| CPU time per warm answer, Streamlit server process (rerun + search + answer), p50 / p95 (ms) | {percentile(server_cpu, 50):.0f} / {percentile(server_cpu, 95):.0f} |
| CPU time per warm `Engine.ask` in process, p50 / p95 (ms) | {percentile(inproc_cpu, 50):.0f} / {percentile(inproc_cpu, 95):.0f} |

The browser figure is what a teacher waits for: the Streamlit rerun, the
search and answer, the websocket deltas and the paint. Target from issue #5:
under one second warm. Wall times grow with the machine's load, and so do
the CPU times here (torch's worker threads spin while a descheduled peer
waits for a core), so neither is a quiet-machine figure: compare the browser
row with the in-process row on the same run (their difference is what the UI
and the browser add), and the in-process row with bench/RESULTS.md.
"""
    Path(args.out).write_text(body)
    print(body)


def _v(pkg: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "-"


if __name__ == "__main__":
    main()
