"""Run every benchmark and rewrite bench/RESULTS.md (`make bench`).

Usage: python bench/run_all.py [--skip NAME ...] [--quick]

Sections, in order (each script can also be run alone; see its docstring):

  core       bench_core.py       ingest of shared/data/edu + corpus, search/ask latency (~5 min)
  cold       bench_cold.py       --help, fresh-process search/ask, UI first answer (~2 min)
  ingest     bench_ingest.py     end-to-end ingest vs raw model, fp32 and bf16 (~5 min)
  precision  bench_precision.py  SciFact nDCG@10: bf16 ingest, float16 storage (~10 min)
  scale      bench_scale.py      100k and 1M chunks: latency, recall, adds, RSS (~20 min first
                                 time: encodes all ~100k Reuters passages (~13 min) and builds
                                 the stores under /work/benchcache; later runs re-use them)
  peer       bench_peer.py       txtai side by side on SciFact (needs the benchmark venv, see
                                 bench_peer.py; skipped with a note when absent) (~10 min)
  extraction bench_extraction.py Article Extraction Benchmark P/R/F1 next to bare trafilatura,
                                 odd-encoding snippets (~1 min; needs ../shared/external)

``--quick`` skips 1M chunks and the peer. Data comes from ../shared/data
(edu, beir/scifact, scale/reuters21578); caches and built stores live under
/work/benchcache (override with EQUISEARCH_BENCHCACHE), never in the repo.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = {
    "core": ["bench/bench_core.py"],
    "cold": ["bench/bench_cold.py", "--big-store", "/work/benchcache/scale/reuters-100000"],
    "ingest": ["bench/bench_ingest.py"],
    "precision": ["bench/bench_precision.py"],
    "scale": ["bench/bench_scale.py"],
    "peer": ["bench/bench_peer.py"],
    "extraction": ["bench/bench_extraction.py"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", nargs="*", default=[], choices=list(STEPS))
    ap.add_argument("--only", nargs="*", default=[], choices=list(STEPS))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    failed = []
    # scale before cold so the 100k store exists for the cold-start row.
    order = ["core", "ingest", "precision", "scale", "cold", "peer", "extraction"]
    for name in order:
        if name in args.skip or (args.only and name not in args.only):
            continue
        cmd = [sys.executable, *STEPS[name]]
        if args.quick and name == "scale":
            cmd += ["--sizes", "100000"]
        if args.quick and name == "peer":
            continue
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        if subprocess.run(cmd, cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
        print(f"== {name} took {time.perf_counter() - t0:.0f} s", flush=True)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
