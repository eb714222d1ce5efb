"""Cold start: `equisearch --help`, a search from a fresh process, the UI's first answer.

Usage: python bench/bench_cold.py [--store DIR] [--big-store DIR] [--repeat 5] [--out bench/RESULTS.md]

Each figure is the median wall time of ``--repeat`` fresh processes (Python
start-up included), measured with the query encoder as shipped (ONNX, from
the store's query-encoder/ folder) and, for comparison in the same run, with
``EQUISEARCH_QUERY_ENCODER=torch`` (sentence-transformers). The default
store is the starter corpus ingested into /work/benchcache/cold-store;
``--big-store`` adds a row for a large store (e.g. the 100k-chunk Reuters
store of bench_scale.py). The UI's first answer is measured two ways: in a
real browser (Debian's chromium, already open, as a teacher's would be):
from launching ``equisearch ui`` to the first answer's source cards painted
(server start, page load, engine and ONNX load, the ask, the paint); and
through Streamlit's AppTest in a fresh process (script run + engine load +
first ask; no server, no paint). Rewrites the "Cold start" section of
RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, write_section  # noqa: E402

QUERY = "what works for previously looked-after pupils?"
UI_SNIPPET = """
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({app!r}, default_timeout=300)
at.run()
at.text_input(key="question").input({q!r}).run()
assert not at.exception, at.exception
# The answer is one st.html block with [n] links (or a warning when it abstains).
assert any('class="eq-answer"' in h.value and "[1]" in h.value for h in at.get("html")) or at.warning
"""


def timed(cmd: list[str], env: dict, repeat: int) -> tuple[float, str]:
    times, last = [], ""
    for _ in range(repeat):
        t = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
        if out.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}")
        last = out.stdout
    return statistics.median(times), last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="/work/benchcache/cold-store")
    ap.add_argument("--big-store", default="")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EQUISEARCH_QUERY_ENCODER": "auto"}
    env.pop("EQUISEARCH_HOME", None)
    cli = [sys.executable, "-m", "cli"]
    store = Path(args.store)
    if not (store / "query-encoder" / "model.onnx").exists():
        print(f"ingesting corpus/ into {store} ...")
        subprocess.run(cli + ["--store", str(store), "ingest", "-q", str(ROOT / "corpus")], env=env, check=True,
                       cwd=ROOT, capture_output=True)
    torch_env = {**env, "EQUISEARCH_QUERY_ENCODER": "torch"}
    rows = []
    # The floor: a bare interpreter start on this machine, in this run.
    bare_s, _ = timed([sys.executable, "-c", "pass"], env, args.repeat)
    rows.append(("bare `python -c pass` (the floor)", f"{bare_s:.2f}", "-", "-"))
    help_s, _ = timed(cli + ["--help"], env, args.repeat)
    rows.append(("`equisearch --help`", f"{help_s:.2f}", "-", "<= 0.3"))
    stores = [(store, "starter corpus")]
    if args.big_store and Path(args.big_store).exists():
        stores.append((Path(args.big_store), Path(args.big_store).name))
    for path, label in stores:
        cmd = cli + ["--store", str(path), "search", QUERY, "--json"]
        onnx_s, _ = timed(cmd, env, args.repeat)
        torch_s, _ = timed(cmd, torch_env, max(2, args.repeat // 2))
        rows.append((f"`equisearch search` fresh process ({label})", f"{onnx_s:.2f}", f"{torch_s:.2f}", "<= 2.5"))
    cmd = cli + ["--store", str(store), "ask", QUERY, "--json"]
    onnx_s, _ = timed(cmd, env, args.repeat)
    torch_s, _ = timed(cmd, torch_env, max(2, args.repeat // 2))
    rows.append(("`equisearch ask` fresh process (starter corpus)", f"{onnx_s:.2f}", f"{torch_s:.2f}", "-"))
    ui = [sys.executable, "-c", UI_SNIPPET.format(app=str(ROOT / "ui" / "app.py"), q=QUERY)]
    ui_env = {**env, "EQUISEARCH_HOME": str(store)}
    ui_s, _ = timed(ui, ui_env, max(2, args.repeat // 2))
    ui_torch, _ = timed(ui, {**ui_env, "EQUISEARCH_QUERY_ENCODER": "torch"}, 2)
    rows.append(("UI first answer after start (AppTest, fresh process)", f"{ui_s:.2f}", f"{ui_torch:.2f}", "<= 5"))
    browser = ui_in_browser(store, env, max(2, args.repeat // 2))
    if browser is not None:
        rows.append(("UI first answer after start (`equisearch ui` launched -> answer painted in chromium)",
                     f"{browser:.2f}", "-", "<= 5"))
    lines = [machine_line(), "",
             f"Median wall time of fresh processes (Python start-up included); query: {QUERY!r}.", "",
             "| measure | seconds (ONNX query encoder, default) | seconds (torch query encoder) | target |",
             "|---|---|---|---|"] + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    text = "\n".join(lines)
    print(text)
    write_section(Path(args.out), "Cold start", text)


def ui_in_browser(store: Path, env: dict, repeat: int) -> float | None:
    """Median seconds from launching `equisearch ui` to the first answer painted in chromium.

    The browser is started first (a teacher's browser is already open);
    the clock starts when the CLI is launched and stops when the answer's
    source cards are painted and Streamlit is idle. None without chromium
    or Playwright.
    """
    import signal
    import urllib.request

    from bench.bench_ui import ARGS, CHROMIUM, browser_ask, free_port

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not os.path.exists(CHROMIUM):
        return None
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            port = free_port()
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "cli", "--store", str(store), "ui", "--port",
                                     str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                base = f"http://127.0.0.1:{port}"
                while True:  # poll as a browser tab reloading would, every 50 ms
                    try:
                        with urllib.request.urlopen(base + "/_stcore/health", timeout=2):
                            break
                    except OSError:
                        if time.perf_counter() - t0 > 120:
                            raise SystemExit("equisearch ui did not start in 120 s")
                        time.sleep(0.05)
                page.goto(base)
                page.get_by_label("Your question").wait_for(timeout=120_000)
                browser_ask(page, QUERY)
                times.append(time.perf_counter() - t0)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
                page.close()
        browser.close()
    return statistics.median(times)


if __name__ == "__main__":
    main()
