"""First-stage candidates for the reranker benchmark, cached as JSON.

Usage: python bench/rerank_candidates.py [--cache DIR] [--only scifact,arguana,dev]

Builds (once) a store per evaluation set with the real ingest pipeline and
default settings, runs the current hybrid search for every question and keeps
its top ``DEPTH`` passages with their first-stage scores and relevance
labels. bench/bench_rerank.py then reranks these lists: every method sees the
same candidates, and the slow part (ingest) is not repeated per method.

* ``scifact``: BEIR SciFact test (300 queries), one passage per document
  (``per_doc_limit=1`` as ``equisearch eval-beir``); label = qrels gain.
* ``arguana``: BEIR ArguAna test (1406 queries), the same; its queries are
  whole arguments and each query is itself a corpus document (BEIR's
  evaluation drops that document; ``own_id`` records it so both ways can be
  scored).
* ``dev``: corpus/ + shared/data/edu_plac with default settings (top_k
  passages, ``per_doc_limit`` 3), questions of shared/dev-eval/plac.jsonl and
  seeds.jsonl; label 1 when the passage contains an answer substring (as
  search/evaluate.py decides a hit).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
if not SHARED.exists():  # a worktree outside the main checkout
    SHARED = Path("/work/shared")

DEPTH = 50
DEFAULT_CACHE = Path(os.environ.get("EQUISEARCH_RERANK_CACHE", "/tmp/equisearch-rerank"))
SETS = {
    "scifact": SHARED / "data" / "beir" / "scifact",
    "arguana": SHARED / "external" / "beir" / "arguana",
}
DEV_FILES = {"plac": SHARED / "dev-eval" / "plac.jsonl", "seeds": SHARED / "dev-eval" / "seeds.jsonl"}


def _hit_row(h) -> dict:
    return {"chunk": h.chunk.id, "doc": h.document.uri.removeprefix("beir:"), "title": h.document.title,
            "text": h.chunk.text, "fused": h.score, "dense": h.dense, "dense_rank": h.dense_rank,
            "lexical_rank": h.lexical_rank}


def beir_candidates(name: str, cache: Path) -> Path:
    from ingest.beir import build_store, load_beir
    from search.api import Engine
    from search.settings import Settings
    from search.store import Store

    out = cache / f"{name}.json"
    if out.exists():
        return out
    data = load_beir(SETS[name], "test")
    settings = Settings().with_(per_doc_limit=1, dense_candidates=400, lexical_candidates=400, expand_queries=0)
    home = cache / f"{name}-store"
    t0 = time.perf_counter()
    if (home / "done").exists():
        store = Store.open(home)
    else:
        store = build_store(data, home, settings)
        (home / "done").write_text("ok")
    ingest_s = time.perf_counter() - t0
    engine = Engine(store, settings)
    rows = []
    for qid in [q for q in data.qrels if q in data.queries]:
        hits = engine.search(data.queries[qid], k=DEPTH).hits
        cands, seen = [], set()
        for h in hits:
            row = _hit_row(h)
            if row["doc"] in seen:
                continue
            seen.add(row["doc"])
            row["gain"] = data.qrels[qid].get(row["doc"], 0)
            cands.append(row)
        rows.append({"id": qid, "query": data.queries[qid], "qrels": data.qrels[qid], "own_id": qid,
                     "candidates": cands})
    store.close()
    out.write_text(json.dumps({"set": name, "documents": len(data.corpus), "ingest_seconds": round(ingest_s, 1),
                               "depth": DEPTH, "queries": rows}))
    return out


def dev_candidates(cache: Path) -> Path:
    from ingest.pipeline import Ingestor
    from search.api import Engine
    from search.evaluate import load_eval, match_text
    from search.settings import Settings
    from search.store import Store

    out = cache / "dev.json"
    if out.exists():
        return out
    settings = Settings()
    home = cache / "dev-store"
    store = Store.open(home)
    if not (home / "done").exists():
        Ingestor(store, settings).ingest_paths([ROOT / "corpus", SHARED / "data" / "edu_plac"])
        (home / "done").write_text("ok")
    engine = Engine(store, settings)
    rows = []
    for fname, path in DEV_FILES.items():
        for item in load_eval(path):
            if not item.answerable:
                rows.append({"id": item.id, "file": fname, "query": item.question, "answers": [],
                             "candidates": [_hit_row(h) for h in engine.search(item.question, k=DEPTH).hits]})
                continue
            wanted = [match_text(a) for a in item.answers]
            cands = []
            for h in engine.search(item.question, k=DEPTH).hits:
                row = _hit_row(h)
                row["gain"] = int(any(w in match_text(h.chunk.text) for w in wanted))
                cands.append(row)
            rows.append({"id": item.id, "file": fname, "query": item.question, "answers": list(item.answers),
                         "candidates": cands})
    n = store.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    store.close()
    out.write_text(json.dumps({"set": "dev", "passages": n, "depth": DEPTH, "queries": rows}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=str(DEFAULT_CACHE))
    ap.add_argument("--only", default="dev,scifact,arguana")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    for name in args.only.split(","):
        t0 = time.perf_counter()
        path = dev_candidates(cache) if name == "dev" else beir_candidates(name, cache)
        print(f"{name}: {path} ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
