"""Cold start: `equisearch --help`, a search from a fresh process, the UI's first answer.

Usage: python bench/bench_cold.py [--store DIR] [--big-store DIR] [--repeat 5] [--out bench/RESULTS.md]

Each figure is the median wall time of ``--repeat`` fresh processes (Python
start-up included), measured with the query encoder as shipped (ONNX, from
the store's query-encoder/ folder) and, for comparison in the same run, with
``EQUISEARCH_QUERY_ENCODER=torch`` (sentence-transformers). The default
store is the starter corpus ingested into /work/benchcache/cold-store;
``--big-store`` adds a row for a large store (e.g. the 100k-chunk Reuters
store of bench_scale.py). The UI figure runs ui/app.py through Streamlit's
AppTest in a fresh process (script run + engine load + first ask; no browser
paint). Rewrites the "Cold start" section of RESULTS.md.
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
assert any("[1]" in m.value for m in at.markdown) or at.warning
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
    cli = [sys.executable, "-m", "ingest.cli"]
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
    lines = [machine_line(), "",
             f"Median wall time of fresh processes (Python start-up included); query: {QUERY!r}.", "",
             "| measure | seconds (ONNX query encoder, default) | seconds (torch query encoder) | target |",
             "|---|---|---|---|"] + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    text = "\n".join(lines)
    print(text)
    write_section(Path(args.out), "Cold start", text)


if __name__ == "__main__":
    main()
