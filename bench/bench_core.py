"""First Core figures: ingest throughput on shared/data/edu, search and ask latency.

Usage: python bench/bench_core.py [--edu DIR] [--out bench/RESULTS.md]

Ingests the folder into a fresh temporary store with the default model,
then times warm in-process search and ask calls over the dev questions plus
the project's own questions. Prints a table and rewrites the "Core" section of
bench/RESULTS.md (date, machine, versions included). Figures only: no target
is asserted here.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, percentile, write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edu", default=str(ROOT.parent / "shared" / "data" / "edu"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    args = ap.parse_args()
    edu = Path(args.edu)
    if not edu.exists():
        sys.exit(f"{edu} not found: pass --edu DIR (the shared/data/edu folder)")

    from ingest.pipeline import Ingestor
    from search.api import Engine
    from ingest.pipeline import _ingest_embedder
    from search.evaluate import load_eval
    from search.settings import Settings
    from search.store import Store

    # The shipped defaults: bf16 passages where the CPU has it, ONNX queries.
    embedder = _ingest_embedder(Settings())
    t0 = time.perf_counter()
    embedder.encode(["warm up"])
    load_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=tmp)
        store = Store.open(tmp)
        t0 = time.perf_counter()
        report = Ingestor(store, settings, embedder).ingest_paths([edu, ROOT / "corpus"])
        ingest_s = time.perf_counter() - t0
        passages = report.passages
        failed = [(Path(r.source).name, r.reason) for r in report.failed]

        engine = Engine(store, settings)  # queries through the exported ONNX encoder
        questions = [i.question for i in load_eval(ROOT / "tests" / "data" / "starter_questions.jsonl")]
        dev = ROOT.parent / "shared" / "dev-eval" / "seeds.jsonl"
        if dev.exists():
            questions += [i.question for i in load_eval(dev)]
        engine.search(questions[0])
        search_ms, ask_ms = [], []
        for q in questions * 3:
            t = time.perf_counter()
            engine.search(q)
            search_ms.append((time.perf_counter() - t) * 1000)
        for q in questions:
            t = time.perf_counter()
            engine.ask(q)
            ask_ms.append((time.perf_counter() - t) * 1000)
        info = store.info()

    rows = [
        ("model load + first encode (s)", f"{load_s:.1f}"),
        ("passage encoder / query encoder", f"{'bf16' if getattr(embedder, 'bf16', False) else 'fp32'} torch / "
                                            f"{type(engine.embedder).__name__}"),
        ("sources ingested / failed", f"{report.counts['added']} / {len(failed)}"),
        ("passages", f"{passages}"),
        ("ingest wall time (s)", f"{ingest_s:.1f}"),
        ("ingest passages/s (parse+clean+chunk+embed+store)", f"{passages / ingest_s:.1f}"),
        ("search p50 / p95 (ms, warm, hybrid, %d chunks)" % info.chunks,
         f"{percentile(search_ms, 50):.1f} / {percentile(search_ms, 95):.1f}"),
        ("ask p50 / p95 (ms, warm)", f"{percentile(ask_ms, 50):.1f} / {percentile(ask_ms, 95):.1f}"),
    ]
    body = ["| measure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    if failed:
        body += ["", "Failed sources:"] + [f"- `{n}`: {r}" for n, r in failed]
    text = "\n".join([machine_line(), "", f"Data: `{edu.relative_to(ROOT.parent) if edu.is_relative_to(ROOT.parent) else edu}` + `corpus/` ({len(questions)} questions timed).", ""] + body)
    print(text)
    write_section(Path(args.out), "Core", text)


if __name__ == "__main__":
    main()
