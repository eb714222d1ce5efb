"""Search at scale: hybrid search / ask latency, ANN recall, adds, memory at 100k and 1M chunks.

Usage: python bench/bench_scale.py [--sizes 100000,1000000] [--real 0] [--queries 100]
                                   [--work /work/benchcache/scale] [--out bench/RESULTS.md]

Stores are built from real Reuters passages (all ~100k of them, encoded
once) with the reuse scheme of bench/scale_data.py beyond that (1M: texts
reused, vectors perturbed copies of real ones):
SQLite + FTS5 written in bulk through ``Store.insert_chunks``, then the
vector index built by ``VectorIndex.rebuild`` (IVF above ``ann_threshold``).
Built stores are kept under ``--work`` (outside the repo) and reused.
Every latency is warm and in process, query encoding (ONNX) included, over
real queries (Reuters titles). Rewrites the "Scale" section of RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, percentile, write_section  # noqa: E402

MODEL = "all-MiniLM-L6-v2"
DOC_CHUNKS = 100  # chunks per synthetic document


def _ms(f, *a, **kw):
    t = time.perf_counter()
    out = f(*a, **kw)
    return (time.perf_counter() - t) * 1000, out


def onnx_dir(work: Path) -> Path:
    """The exported query encoder, made once and copied into each store."""
    from search.onnx import ONNX_DIR, export_onnx

    src = work / "encoder"
    if not (src / ONNX_DIR / "model.onnx").exists():
        src.mkdir(parents=True, exist_ok=True)
        export_onnx(MODEL, src)
    return src / ONNX_DIR


def build_store(path: Path, n: int, data: dict, settings, log=print) -> dict:
    """Write n chunks (reuse scheme) into a fresh store and build its index."""
    from search.onnx import ONNX_DIR
    from search.store import Store
    from search.types import now_iso
    from search.text import content_hash
    from search.vectors import VectorIndex

    if path.exists():
        shutil.rmtree(path)
    store = Store.open(path)
    store.new_vector_dtype = settings.vector_dtype
    t0 = time.perf_counter()
    conn = store.conn
    now = now_iso()
    dtype_name = store.vector_dtype()  # decided before the first vector is written
    dtype = np.float16 if dtype_name == "float16" else np.float32
    from bench.scale_data import scaled_batches

    # Bulk rows with explicit ids (what Store.insert_chunks writes, minus
    # its per-row round trips); FTS5 is filled by the store's own triggers.
    for start, texts, vecs in scaled_batches(data, n, batch=DOC_CHUNKS * 200):
        with store.transaction() as c:
            docs, chunks, blobs = [], [], []
            for j, text in enumerate(texts):
                cid = start + j + 1
                doc_id = (start + j) // DOC_CHUNKS + 1
                if (start + j) % DOC_CHUNKS == 0:
                    docs.append((doc_id, f"reuters:{doc_id}", f"Reuters passages {doc_id}", "Reuters", "article",
                                 str(doc_id), str(doc_id), "", now, now))
                chunks.append((cid, doc_id, (start + j) % DOC_CHUNKS, text, 0, len(text), content_hash(text)))
                blobs.append((cid, vecs[j].astype(dtype).tobytes()))
            c.executemany("INSERT INTO documents(id, uri, title, site, kind, content_hash, text_hash, text, added_at,"
                          " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)", docs)
            c.executemany("INSERT INTO chunks(id, doc_id, ord, text, char_start, char_end, text_hash)"
                          " VALUES (?,?,?,?,?,?,?)", chunks)
            c.executemany("INSERT INTO vectors(chunk_id, vec) VALUES (?, ?)", blobs)
            c.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('vector_dtype', ?)", (dtype_name,))
        if start and start % 200_000 == 0:
            log(f"    {start} rows, {time.perf_counter() - t0:.0f} s")
    sqlite_s = time.perf_counter() - t0
    with store.transaction() as c:
        store.record_builder(c, MODEL, 384, settings.chunking)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    t0 = time.perf_counter()
    index = VectorIndex(store, settings)
    index.rebuild()
    index_s = time.perf_counter() - t0
    shutil.copytree(onnx_dir(path.parent), path / ONNX_DIR)
    info = {"n": n, "sqlite_seconds": round(sqlite_s, 1), "index_seconds": round(index_s, 1), "kind": index.kind,
            "db_bytes": (path / "equisearch.db").stat().st_size, "faiss_bytes": (path / "vectors.faiss").stat().st_size}
    (path / "bench-build.json").write_text(json.dumps(info))
    log(f"  built {n}: SQLite+FTS5 {sqlite_s:.0f} s, index ({index.kind}) {index_s:.0f} s")
    store.close()
    return info


def measure(path: Path, data: dict, settings, n_queries: int, log=print) -> dict:
    """Latencies, recall and an incremental add on one built store."""
    import faiss

    from search.api import Engine
    from search.onnx import OnnxEmbedder
    from search.lexical import build_match
    from search.store import NewChunk, NewDocument, Store, Writer
    from search.text import content_hash

    store = Store.open(path, create=False)
    emb = OnnxEmbedder(path / "query-encoder")
    engine = Engine(store, settings, emb)
    queries = data["queries"][:n_queries]
    engine.search(queries[0])
    engine.ask(queries[1])
    out = {"n": store.vector_count(), "kind": engine.index.kind}
    def affordable(q: str) -> str:  # the keyword query hybrid search runs for q
        return build_match(" ".join(engine._affordable_terms(engine._prepare(q, encode=False))))

    enc, dense, fts, fts_full, total = [], [], [], [], []
    qvecs = []
    for q in queries:
        ms, v = _ms(emb.encode, [q])
        enc.append(ms)
        qvecs.append(v[0])
        ms, _ = _ms(engine.index.search, v[0], settings.dense_candidates)
        dense.append(ms)
        ms, _ = _ms(store.fts_search, affordable(q), settings.lexical_candidates)
        fts.append(ms)
        ms, _ = _ms(store.fts_search, build_match(q), settings.lexical_candidates)
        fts_full.append(ms)
    for q in queries:
        ms, _ = _ms(engine.search, q)
        total.append(ms)
    asks = [_ms(engine.ask, q)[0] for q in queries[: max(20, n_queries // 2)]]
    out.update({
        "search_p50": percentile(total, 50), "search_p95": percentile(total, 95),
        "ask_p50": percentile(asks, 50), "ask_p95": percentile(asks, 95),
        "encode_p50": percentile(enc, 50), "dense_p50": percentile(dense, 50), "dense_p95": percentile(dense, 95),
        "fts_p50": percentile(fts, 50), "fts_p95": percentile(fts, 95),
        "fts_full_p50": percentile(fts_full, 50), "fts_full_p95": percentile(fts_full, 95),
    })
    # What leaving common words out of the keyword query changes: overlap of
    # the keyword top-10 with the full query's.
    over = []
    for q in queries:
        a = [i for i, _ in store.fts_search(build_match(q), 10)]
        b = [i for i, _ in store.fts_search(affordable(q), 10)]
        if a:
            over.append(len(set(a) & set(b)) / len(a))
    out["fts_overlap"] = float(np.mean(over)) if over else 1.0
    # ... and what it changes in what the user sees: the hybrid top-10 with
    # the budget against the hybrid top-10 with every query word.
    import search.api as api

    def top10() -> list[list[int]]:
        return [[h.chunk.id for h in engine.search(q, k=10).hits] for q in queries]

    saved, api.LEXICAL_BUDGET_FROM = api.LEXICAL_BUDGET_FROM, 10**12
    try:
        full = top10()
    finally:
        api.LEXICAL_BUDGET_FROM = saved
    # The budget's trade-off, to justify the default: hybrid top-10 overlap
    # with the all-words query against search latency (the default's row is
    # the table's hybrid overlap).
    out["budget"] = api.LEXICAL_ROW_BUDGET
    out["budget_sweep"] = []
    try:
        for budget in sorted({2_000, 5_000, 10_000, 20_000, out["budget"]}):
            api.LEXICAL_ROW_BUDGET = budget
            ov = float(np.mean([len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(top10(), full)]))
            ms = [_ms(engine.search, q)[0] for q in queries]
            out["budget_sweep"].append((budget, ov, percentile(ms, 50), percentile(ms, 95)))
            if budget == out["budget"]:
                out["hybrid_overlap"] = ov
    finally:
        api.LEXICAL_ROW_BUDGET = out["budget"]
    # Exact search over the same (float32) vectors: the recall reference and
    # what a flat index would cost at this size.
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(384))
    for ids, vecs in store.iter_vectors():
        flat.add_with_ids(vecs, ids)
    faiss.omp_set_num_threads(1)
    # Recall over every prepared query (300), not only the timed ones: a
    # hundred queries move recall@10 by +-0.01 between query sets.
    rqvecs = qvecs + list(emb.encode(data["queries"][len(queries):]))
    out["recall_queries"] = len(rqvecs)
    exact_ms, recall = [], []
    for v in rqvecs:
        ms, (s, ids) = _ms(flat.search, v.reshape(1, -1), 10)
        exact_ms.append(ms)
        got = {i for i, _ in engine.index.search(v, 10)}
        recall.append(len(got & set(ids[0].tolist())) / 10)
    out["flat_p50"] = percentile(exact_ms, 50)
    out["recall_at_10"] = float(np.mean(recall))
    # The recall / speed trade-off of nprobe, to justify the default.
    out["sweep"] = []
    if engine.index.kind == "ivf":
        default = engine.index.nprobe
        out["nprobe"] = engine.index.nprobe_for(engine.index._index)
        exact_ids = [set(flat.search(v.reshape(1, -1), 10)[1][0].tolist()) for v in rqvecs]
        for nprobe in sorted({64, 128, 256, 512, 1024, out["nprobe"]}):
            engine.index.nprobe = nprobe
            ms = [_ms(engine.index.search, v, 10)[0] for v in rqvecs]
            rec = np.mean([len({i for i, _ in engine.index.search(v, 10)} & e) / 10 for v, e in zip(rqvecs, exact_ids)])
            out["sweep"].append((nprobe, float(rec), percentile(ms, 50)))
        engine.index.nprobe = default
    del flat
    # An incremental add: one new 100-passage document, written and indexed
    # the way ingest does it (no rebuild).
    texts = data["texts"][:DOC_CHUNKS]
    vecs = data["vecs"][:DOC_CHUNKS]
    with Writer.open(store, settings, index=engine.index) as w:
        engine.index.ensure_current()
        before = engine.index._index
        t0 = time.perf_counter()
        res = w.write_document(
            NewDocument(uri=f"bench:add:{time.time()}", title="added", text="x", content_hash="a", text_hash=str(time.time())),
            [NewChunk(t, 0, len(t), content_hash(t)) for t in texts], vecs, model=MODEL, dim=384,
            chunking=settings.chunking)
        out["add_doc_ms"] = (time.perf_counter() - t0) * 1000
        out["add_rebuilt"] = engine.index._index is not before
        w.remove_document(res.doc_id)
    log(f"  {out['n']}: search p50 {out['search_p50']:.1f} ms (encode {out['encode_p50']:.1f}, dense "
        f"{out['dense_p50']:.1f}, fts {out['fts_p50']:.1f}), ask p50 {out['ask_p50']:.1f}, recall@10 "
        f"{out['recall_at_10']:.3f}, flat {out['flat_p50']:.1f} ms, add {out['add_doc_ms']:.0f} ms")
    store.close()
    return out


def rss_child(path: str, n_queries: int) -> None:
    """In a fresh process: open the store, search, report RSS and its parts (JSON)."""
    from bench.scale_data import prepare
    from search.api import Engine
    from search.onnx import OnnxEmbedder
    from search.settings import Settings

    queries = json.loads((Path(path) / "bench-queries.json").read_text())
    settings = Settings(home=path)
    engine = Engine.open(path, settings)
    engine._embedder = OnnxEmbedder(Path(path) / "query-encoder")
    for q in queries[:n_queries]:
        engine.search(q)
    status = Path("/proc/self/status").read_text()
    rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) * 1024
    idx = engine.index._index
    vec_bytes = (Path(path) / "vectors.faiss").stat().st_size  # codes + ids + centroids, as loaded
    model_bytes = (Path(path) / "query-encoder" / "model.onnx").stat().st_size
    page = engine.store.conn.execute("PRAGMA page_size").fetchone()[0]
    cache = engine.store.conn.execute("PRAGMA cache_size").fetchone()[0]
    cache_bytes = -cache * 1024 if cache < 0 else cache * page
    print(json.dumps({"rss": rss, "vectors": vec_bytes, "model": model_bytes, "sqlite_cache": cache_bytes,
                      "ntotal": int(idx.ntotal)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--real", type=int, default=0, help="real passages to encode (0: all ~100k)")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--work", default="/work/benchcache/scale")
    ap.add_argument("--rebuild", action="store_true", help="Rebuild stores even if present.")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.queries)
        return

    from bench.scale_data import SIGMA, prepare
    from search.settings import Settings

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = prepare(args.real)
    settings = Settings()
    rows, builds, rss = [], [], None
    # The real vectors alone: recall of an IVF index trained on them (no
    # synthetic clouds), nlist as the store would choose at 100k.
    real_recall = ivf_recall_on_real(data, settings)
    for n in [int(s) for s in args.sizes.split(",") if s]:
        path = work / f"reuters-{n}"
        if args.rebuild or not (path / "bench-build.json").exists():
            print(f"building {n}-chunk store in {path} ...")
            builds.append(build_store(path, n, data, settings))
        else:
            builds.append(json.loads((path / "bench-build.json").read_text()))
        (path / "bench-queries.json").write_text(json.dumps(data["queries"]))
        rows.append(measure(path, data, settings, args.queries))
        if n == max(int(s) for s in args.sizes.split(",")):
            out = subprocess.run([sys.executable, __file__, "--rss-child", str(path), "--queries", "20"],
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            try:
                rss = json.loads(out.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                print(out.stderr[-2000:])

    lines = [machine_line(), "",
             f"Data: {len(data['texts']):,} real Reuters-21578 passages (of {data['n_passages']:,} from "
             f"{data['n_articles']:,} articles; 40-word windows) encoded by the real model (bf16={data['bf16']}). "
             f"Stores of up to {len(data['texts']):,} chunks are real passages and vectors; larger ones repeat them "
             f"(texts verbatim, vectors + N(0, {SIGMA}) noise, re-normalised: see bench/scale_data.py), so "
             f"**the 1M figures rest on ~10 noisy copies of each real passage**. Queries: {args.queries} real Reuters "
             f"titles, encoded by the ONNX query encoder inside the timed call. Warm, in process, one thread of queries.",
             "",
             "| chunks | index | search p50 / p95 (ms) | ask p50 (ms) | encode p50 | dense p50 / p95 | FTS5 p50 / p95 (budgeted) | FTS5 p50 / p95 (all words) | keyword / hybrid top-10 overlap (budget vs all words) | exact flat p50 | recall@10 vs exact (queries) | add 100-passage doc (ms, rebuilt?) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['kind']} | {r['search_p50']:.1f} / {r['search_p95']:.1f} | {r['ask_p50']:.1f} | "
            f"{r['encode_p50']:.1f} | {r['dense_p50']:.1f} / {r['dense_p95']:.1f} | {r['fts_p50']:.1f} / {r['fts_p95']:.1f} | "
            f"{r['fts_full_p50']:.1f} / {r['fts_full_p95']:.1f} | {r['fts_overlap']:.3f} / {r['hybrid_overlap']:.3f} | "
            f"{r['flat_p50']:.1f} | {r['recall_at_10']:.3f} ({r['recall_queries']}) | {r['add_doc_ms']:.0f} ({'yes' if r['add_rebuilt'] else 'no'}) |")
    for r in rows:
        if r.get("budget_sweep"):
            lines += ["", f"Keyword row budget trade-off at {r['n']:,} chunks (hybrid top-10 overlap with the all-words "
                      "query; search p50 / p95): " + "; ".join(
                          f"{b:,}{' (default)' if b == r['budget'] else ''}: {ov:.3f}, {p50:.1f} / {p95:.1f} ms"
                          for b, ov, p50, p95 in r["budget_sweep"]) + "."]
        if r["sweep"]:
            lines += ["", f"IVF nprobe trade-off at {r['n']:,} chunks (dense top-10 only): " + "; ".join(
                f"nprobe {p}{' (default)' if p == r['nprobe'] else ''}: recall {rec:.3f}, {ms:.2f} ms"
                for p, rec, ms in r["sweep"]) + "."]
    lines += ["", f"IVF recall@10 on the {len(data['texts'])} real vectors alone (no synthetic copies; nlist "
              f"{real_recall['nlist']}, nprobe {real_recall['nprobe']}, {real_recall['queries']} real title queries): "
              f"**{real_recall['recall']:.3f}**.", ""]
    lines += ["| chunks | SQLite+FTS5 build (s) | index build (s) | database size (MB) | index file (MB) |",
              "|---|---|---|---|---|"]
    for b in builds:
        lines.append(f"| {b['n']:,} | {b['sqlite_seconds']} | {b['index_seconds']} | {b['db_bytes'] / 1e6:.0f} | "
                     f"{b['faiss_bytes'] / 1e6:.0f} |")
    if rss:
        parts = rss["vectors"] + rss["model"] + rss["sqlite_cache"]
        lines += ["", f"Memory at {rss['ntotal']:,} chunks (fresh process, store opened, 20 searches): RSS "
                  f"{rss['rss'] / 2**20:.0f} MiB against vectors (index file) {rss['vectors'] / 2**20:.0f} + model "
                  f"{rss['model'] / 2**20:.0f} + SQLite cache {rss['sqlite_cache'] / 2**20:.0f} MiB = "
                  f"{parts / 2**20:.0f} MiB: **{rss['rss'] / parts:.2f}x**."]
    text = "\n".join(lines)
    print(text)
    write_section(Path(args.out), "Scale", text)


def ivf_recall_on_real(data: dict, settings) -> dict:
    import faiss

    from search.onnx import OnnxEmbedder
    from search.vectors import auto_nprobe, ivf_lists

    vecs = np.ascontiguousarray(data["vecs"], dtype=np.float32)
    dim = vecs.shape[1]
    nlist = ivf_lists(len(vecs))  # as the store would choose for this many vectors
    ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_fp16,
                                        faiss.METRIC_INNER_PRODUCT)
    ivf.train(vecs)
    ivf.add(vecs)
    ivf.nprobe = settings.ann_nprobe or auto_nprobe(nlist)
    flat = faiss.IndexFlatIP(dim)
    flat.add(vecs)
    emb = OnnxEmbedder(onnx_dir(Path("/work/benchcache/scale")))
    q = emb.encode(data["queries"][:200])
    _, a = ivf.search(q, 10)
    _, b = flat.search(q, 10)
    rec = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a.tolist(), b.tolist())])
    return {"recall": float(rec), "nlist": nlist, "nprobe": ivf.nprobe, "queries": len(q)}


if __name__ == "__main__":
    main()
