"""PostgreSQL keyword ranking against the SQLite backend's, on the same passages (issue 16).

For BEIR SciFact and ArguAna: a SQLite store as ``equisearch eval-beir``
builds it (one document ``beir:<id>`` per abstract), copied into PostgreSQL
with ``search.store.postgres.bulk.bulk_load`` (ids kept), then every test
query's keyword terms (``search.lexical.keyword_terms``, as the engine makes
them without vocabulary expansion) ranked by both backends'
``keyword_search`` (top 400, ``Settings.title_weight``). nDCG@10 is scored as
eval-beir scores it: a document ranked by its best passage, the query's own
document left out. Latency is per call, the statement and its round trip,
on the loaded machine.

    python bench/bench_pg_lexical.py [--dataset scifact|arguana ...] [--store NAME=DIR]
                                     [--real] [--engine] [--queries N] [--json OUT] [--write]

Keyword ranking needs no vectors: without ``--store``, a keyword-only SQLite
store is built (the same chunking as eval-beir, a constant stand-in for the
model; minutes, not the 8+ of encoding) under /work/benchcache/pg-lexical and
reused. ``--store scifact=DIR`` uses a built eval-beir store instead (its
vectors are loaded too, so the bulk load and HNSW build are timed).
``--real`` builds (once, cached) the stores with the real model instead, as
eval-beir does, so that ``--engine`` also compares hybrid and dense search.
``--phrases`` ranks each query's words with every
adjacent pair of them as a phrase term on both backends. ``--engine`` also runs the whole ``Engine.search``
(spelling, named documents, keyword ranking, hits; bm25, and hybrid and
dense on stores with real vectors) on both backends, as eval-beir scores it. ``--write`` puts the tables into
bench/RESULTS.md ("PostgreSQL and SQLite: SciFact and ArguAna").
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, percentile  # noqa: E402

# ../shared beside the checkout (a worktree elsewhere: the main one's).
SHARED = next((p for p in (ROOT.parent / "shared", Path("/work/shared")) if p.is_dir()), ROOT.parent / "shared")
DATASETS = {"scifact": SHARED / "data" / "beir" / "scifact", "arguana": SHARED / "external" / "beir" / "arguana"}
CACHE = Path("/work/benchcache/pg-lexical")
LIMIT = 400  # eval-beir's lexical_candidates
PHRASE_QUERIES = 300  # --phrases: the first 300 (all of SciFact; ArguAna's queries bring ~100 phrases each)

STORE_LEN = "the store's: title + text words"


class ConstantEmbedder:
    """A stand-in model for keyword-only stores: every passage gets the same unit vector."""

    name = "keyword-only-constant"
    dim = 8

    def encode(self, texts, *, batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        out[:, 0] = 1.0
        return out


def real_store(name: str) -> Path:
    """The dataset's SQLite store as eval-beir builds it with the real model (built once, cached)."""
    home = CACHE / f"{name}-real"
    if (home / "equisearch.db").exists():
        return home
    from ingest.beir import build_store, load_beir
    from ingest.pipeline import _ingest_embedder
    from search.settings import Settings

    home.mkdir(parents=True, exist_ok=True)
    settings = Settings().with_(per_doc_limit=1, expand_queries=0)
    print(f"building {name} with the real model in {home}", flush=True)
    t = time.perf_counter()
    build_store(load_beir(DATASETS[name]), home, settings, _ingest_embedder(settings)).close()
    print(f"  built in {time.perf_counter() - t:.0f} s", flush=True)
    return home


def sqlite_store(name: str, given: str | None) -> Path:
    """A SQLite store of the dataset: ``given``, else the cached keyword-only one (built if missing)."""
    if given:
        return Path(given)
    home = CACHE / f"{name}-store"
    if (home / "equisearch.db").exists():
        return home
    from ingest.beir import build_store, load_beir
    from search.settings import Settings

    home.mkdir(parents=True, exist_ok=True)
    print(f"building a keyword-only SQLite store of {name} in {home}", flush=True)
    t = time.perf_counter()
    settings = Settings().with_(per_doc_limit=1, expand_queries=0, query_encoder="torch")
    build_store(load_beir(DATASETS[name]), home, settings, ConstantEmbedder()).close()
    print(f"  built in {time.perf_counter() - t:.0f} s", flush=True)
    return home


def read_sqlite(db: Path, with_vectors: bool):
    """BulkDocument and BulkChunk records of a SQLite store, ids kept."""
    from search.store.base import NewChunk, NewDocument
    from search.store.postgres.bulk import BulkChunk, BulkDocument

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM meta")}
    docs = []
    for r in conn.execute("SELECT * FROM documents ORDER BY id"):
        doc = NewDocument(uri=r["uri"], title=r["title"], text=r["text"], content_hash=r["content_hash"],
                          text_hash=r["text_hash"], site=r["site"], kind=r["kind"], date=r["date"], author=r["author"],
                          url=r["url"], language=r["language"], tags=tuple(json.loads(r["tags"] or "[]")),
                          meta=json.loads(r["meta"] or "{}"), blocks=tuple(tuple(b) for b in json.loads(r["blocks"] or "[]")),
                          pipeline_version=r["pipeline_version"])
        docs.append(BulkDocument(r["id"], doc, r["added_at"], r["updated_at"]))
    dtype = np.float16 if meta.get("vector_dtype", "float32") == "float16" else np.float32
    vectors = {}
    if with_vectors:
        vectors = {cid: np.frombuffer(blob, dtype=dtype) for cid, blob in conn.execute("SELECT chunk_id, vec FROM vectors")}
    chunks = []
    for r in conn.execute("SELECT * FROM chunks ORDER BY id"):
        ch = NewChunk(text=r["text"], char_start=r["char_start"], char_end=r["char_end"], text_hash=r["text_hash"],
                      page_start=r["page_start"], page_end=r["page_end"], t_start=r["t_start"], t_end=r["t_end"],
                      speaker=r["speaker"] or "", section=r["section"] or "")
        chunks.append(BulkChunk(r["id"], r["doc_id"], r["ord"], ch, vectors.get(r["id"])))
    aliases = [(r[0], r[1]) for r in conn.execute("SELECT uri, doc_id FROM aliases")]
    conn.close()
    return meta, docs, chunks, aliases


def ndcg(rankings, uri_of_chunk, data, qids) -> float:
    """eval-beir's scoring: a document ranked by its best passage, the query's own id left out."""
    from search.evaluate import ndcg_at_k

    scores = []
    for q, ranked in zip(qids, rankings):
        docs = list(dict.fromkeys(uri_of_chunk[c].removeprefix("beir:") for c in ranked))
        if q in docs:
            docs.remove(q)
        scores.append(ndcg_at_k(docs[:100], data.qrels[q], 10))
    return round(statistics.fmean(scores), 4)


def summary(times: list[float]) -> dict:
    return {"p50_ms": round(percentile(times, 50), 2), "p95_ms": round(percentile(times, 95), 2),
            "mean_ms": round(statistics.fmean(times), 2)}


def timed(fn, queries):
    out, times = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        times.append(1000 * (time.perf_counter() - t))
    return out, summary(times)


def overlap_at_10(a, b) -> float:
    """Mean share of the top 10 passages both rankings hold."""
    return round(statistics.fmean(len(set(x[:10]) & set(y[:10])) / max(1, min(10, len(x), len(y)))
                                  for x, y in zip(a, b)), 4)


def run_dataset(name: str, given: str | None, server, args) -> dict:
    from ingest.beir import load_beir
    from search.lexical import keyword_terms
    from search.settings import Settings
    from search.store import open_store
    from search.store.postgres import PgStore
    from search.store.postgres.bulk import bulk_load

    home = sqlite_store(name, given)
    data = load_beir(DATASETS[name])
    qids = [q for q in data.qrels if q in data.queries]
    if args.queries:
        qids = qids[: args.queries]
    tw = Settings().title_weight if args.title_weight is None else args.title_weight
    meta, docs, chunks, aliases = read_sqlite(home / "equisearch.db", with_vectors=bool(given))
    uri_of_doc = {d.id: d.doc.uri for d in docs}
    uri_of_chunk = {c.id: uri_of_doc[c.doc_id] for c in chunks}
    out = {"dataset": name, "store": str(home), "documents": len(docs), "passages": len(chunks), "queries": len(qids),
           "chunking": meta.get("chunking"), "title_weight": tw, "limit": LIMIT}
    print(name, {k: v for k, v in out.items() if k != "store"}, flush=True)

    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS bench_{name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE bench_{name}")
    pg = PgStore.open(server.url(f"bench_{name}"))
    dim = int(meta.get("dim") or 8)
    out["load"] = bulk_load(pg, docs, chunks, model=meta.get("model", ""), dim=dim, chunking=meta.get("chunking", ""),
                            aliases=aliases)
    pg.execute("VACUUM ANALYZE")
    out["load"]["sizes_mb"] = {t: round(pg.scalar("SELECT pg_total_relation_size(%s)", (t,)) / 2**20, 1)
                               for t in ("chunks", "postings", "chunks_tsv")}
    print("  load", out["load"], flush=True)
    del docs, chunks

    terms = [keyword_terms(data.queries[q]) for q in qids]
    sq = open_store(home, create=False)
    # keyword_scores as hybrid search calls it: the top and the scores of 400 other passages.
    rng = random.Random(5)
    all_ids = list(uri_of_chunk)
    id_sets = [rng.sample(all_ids, min(400, len(all_ids))) for _ in terms]
    # The two backends take turns query by query, so the machine's load
    # (shared, and it varies by the minute) weighs on both alike.
    calls = {
        "sqlite keyword_search (FTS5 bm25)": lambda t, ids: [c for c, _ in sq.keyword_search(t, LIMIT, title_weight=tw)],
        f"postgres keyword_search, len = {STORE_LEN}":
            lambda t, ids: [c for c, _ in pg.keyword_search(t, LIMIT, title_weight=tw)],
        "sqlite keyword_scores (+400 ids)": lambda t, ids: sq.keyword_scores(t, LIMIT, ids, title_weight=tw),
        "postgres keyword_scores (+400 ids)": lambda t, ids: pg.keyword_scores(t, LIMIT, ids, title_weight=tw),
    }
    got, times = {k: [] for k in calls}, {k: [] for k in calls}
    for t, ids in zip(terms, id_sets):
        for label, fn in calls.items():
            t0 = time.perf_counter()
            got[label].append(fn(t, ids))
            times[label].append(1000 * (time.perf_counter() - t0))
    sq.close()
    rows = {label: summary(ms) for label, ms in times.items()}
    ranked_sqlite = got["sqlite keyword_search (FTS5 bm25)"]
    ranked_pg = got[f"postgres keyword_search, len = {STORE_LEN}"]
    rows["sqlite keyword_search (FTS5 bm25)"]["ndcg_at_10"] = ndcg(ranked_sqlite, uri_of_chunk, data, qids)
    rows[f"postgres keyword_search, len = {STORE_LEN}"].update(
        ndcg_at_10=ndcg(ranked_pg, uri_of_chunk, data, qids), top10_overlap_with_sqlite=overlap_at_10(ranked_pg, ranked_sqlite))
    t = time.perf_counter()
    for _ in range(20):
        pg._stats_cache = None
        pg._corpus_stats()
    out["stats_query_ms"] = round(1000 * (time.perf_counter() - t) / 20, 2)

    if args.phrases:
        rows.update(phrase_rows(home, pg, terms[:PHRASE_QUERIES], uri_of_chunk, data, qids[:PHRASE_QUERIES], tw))
    if args.engine:
        rows.update(engine_rows(home, pg, data, qids, real=bool(given)))
    pg.close()
    out["rows"] = rows
    for k, v in rows.items():
        print(f"  {k}: {v}", flush=True)
    return out


def phrase_rows(home: Path, pg, terms, uri_of_chunk, data, qids, tw: float) -> dict:
    """Phrases on real text: each query's words plus every adjacent pair of them as a phrase term.

    (BEIR queries bring no phrases of their own; the engine adds them from
    vocabulary expansions.) The two backends take turns query by query.
    """
    from search.store import open_store

    sq = open_store(home, create=False)
    with_pairs = [t + [f"{a} {b}" for a, b in zip(t, t[1:])] for t in terms]
    calls = {"sqlite keyword_search, words + adjacent pairs as phrases":
             lambda t: [c for c, _ in sq.keyword_search(t, LIMIT, title_weight=tw)],
             "postgres keyword_search, words + adjacent pairs as phrases":
             lambda t: [c for c, _ in pg.keyword_search(t, LIMIT, title_weight=tw)]}
    got, times = {k: [] for k in calls}, {k: [] for k in calls}
    for t in with_pairs:
        for label, fn in calls.items():
            t0 = time.perf_counter()
            got[label].append(fn(t))
            times[label].append(1000 * (time.perf_counter() - t0))
    sq.close()
    (s_label, s_ranked), (p_label, p_ranked) = got.items()
    return {s_label: {**summary(times[s_label]), "ndcg_at_10": ndcg(s_ranked, uri_of_chunk, data, qids)},
            p_label: {**summary(times[p_label]), "ndcg_at_10": ndcg(p_ranked, uri_of_chunk, data, qids),
                      "top10_overlap_with_sqlite": overlap_at_10(p_ranked, s_ranked)}}


def engine_rows(home: Path, pg, data, qids, real: bool) -> dict:
    """The whole search (spelling, named documents, keywords, vectors, hits) on both backends, as eval-beir runs it.

    bm25 always; hybrid and dense too when the store has the real model's
    vectors (one query encoder for both engines). The two engines take turns
    query by query.
    """
    from search.api import Engine
    from search.settings import Settings
    from search.store import open_store

    settings = Settings().with_(per_doc_limit=1, dense_candidates=400, lexical_candidates=400, expand_queries=0)
    sq = open_store(home, create=False)
    embedder = None
    if real:
        from search.embedding import load_embedder

        embedder = load_embedder(settings.model)
    rows = {}
    for mode in ("bm25", "hybrid", "dense") if real else ("bm25",):
        engines = {f"sqlite engine {mode} (eval-beir's search)": Engine(sq, settings, embedder=embedder),
                   f"postgres engine {mode} (eval-beir's search)": Engine(pg, settings, embedder=embedder)}
        ranked = {k: [] for k in engines}
        times = {k: [] for k in engines}
        for q in qids:
            for label, engine in engines.items():
                t0 = time.perf_counter()
                hits = engine.search(data.queries[q], k=101, mode=mode).hits
                times[label].append(1000 * (time.perf_counter() - t0))
                ranked[label].append([h.document.uri.removeprefix("beir:") for h in hits])
        labels = list(engines)
        for label in labels:
            rows[label] = {**summary(times[label]), "ndcg_at_10": ndcg_docs(ranked[label], data, qids)}
        rows[labels[1]]["top10_overlap_with_sqlite"] = overlap_at_10(ranked[labels[1]], ranked[labels[0]])
        print(f"  {mode}: sqlite {rows[labels[0]]['ndcg_at_10']}, postgres {rows[labels[1]]['ndcg_at_10']}", flush=True)
    sq.close()
    return rows


def ndcg_docs(rankings, data, qids) -> float:
    """nDCG@10 of document rankings, the query's own document left out (eval-beir)."""
    from search.evaluate import ndcg_at_k

    scores = []
    for q, ranked in zip(qids, rankings):
        docs = [d for d in dict.fromkeys(ranked) if d != q]
        scores.append(ndcg_at_k(docs[:100], data.qrels[q], 10))
    return round(statistics.fmean(scores), 4)


def markdown(results: list[dict]) -> str:
    lines = [machine_line(), "",
             "| dataset | ranking | nDCG@10 | top-10 overlap with SQLite | p50 ms | p95 ms |", "|---|---|---|---|---|---|"]
    for r in results:
        for label, row in r["rows"].items():
            lines.append(f"| {r['dataset']} | {label} | {row.get('ndcg_at_10', '')} | {row.get('top10_overlap_with_sqlite', '')}"
                         f" | {row['p50_ms']} | {row['p95_ms']} |")
    lines.append("")
    for r in results:
        ld = r["load"]
        lines.append(f"- {r['dataset']}: {r['documents']} documents, {r['passages']} passages, {r['queries']} queries;"
                     f" bulk load {ld['seconds']} s ({ld['postings']} postings, HNSW {ld['hnsw_seconds']} s),"
                     f" sizes {ld['sizes_mb']} MB; statistics query {r.get('stats_query_ms')} ms.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", action="append", choices=sorted(DATASETS))
    ap.add_argument("--store", action="append", default=[], help="NAME=DIR: a built eval-beir SQLite store")
    ap.add_argument("--queries", type=int, default=0, help="first N test queries only")
    ap.add_argument("--title-weight", type=float, default=None)
    ap.add_argument("--phrases", action="store_true",
                    help=f"also rank each query's words with its adjacent pairs as phrases (first {PHRASE_QUERIES} queries)")
    ap.add_argument("--engine", action="store_true",
                    help="also run the whole engine search on both (bm25; hybrid and dense with --real or --store)")
    ap.add_argument("--real", action="store_true", help="use (build once) stores with the real model's vectors")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--write", action="store_true", help="write the table into bench/RESULTS.md")
    args = ap.parse_args()
    stores = dict(s.split("=", 1) for s in args.store)

    from tests.pg_server import start_server

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # end through `finally`: the server stops
    server = start_server(settings={"shared_buffers": "256MB", "max_connections": "20"})
    results = []
    try:
        for name in args.dataset or ["scifact", "arguana"]:
            given = stores.get(name) or (str(real_store(name)) if args.real else None)
            results.append(run_dataset(name, given, server, args))
    finally:
        server.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    print(markdown(results))
    if args.write:
        from bench.common import write_section

        write_section(ROOT / "bench" / "RESULTS.md", "PostgreSQL and SQLite: SciFact and ArguAna", markdown(results))


if __name__ == "__main__":
    main()
