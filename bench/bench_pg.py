"""PostgreSQL and SQLite side by side at 100k real passages (issue 16): bench/RESULTS.md.

    python bench/bench_pg.py [--n 100000] [--clients 1,4,16] [--seconds 20]
                             [--parts search,search-pre-encoded,recall,ingest] [--work /work/benchcache/pg]

- **build**: the Reuters scale set (bench/scale_data.py: 99,682 real passages
  of at most 40 words, encoded once by the real model and cached) as a
  SQLite store (bench/bench_scale.py's ``build_store``: FTS5, IVF index) and
  as a PostgreSQL database on a local embedded server (tests/pg_server.py,
  its durable defaults plus shared_buffers 1GB) loaded by
  ``search.store.postgres.bulk.bulk_load`` (COPY, HNSW built after), the same
  ids and vectors on both.
- **search**: ``Engine.search(q)`` (hybrid, default settings, query encoded by
  the ONNX encoder in each client) for Reuters titles, from 1, 4 and 16
  client processes at once, each with its own engine, for ``--seconds``
  after a warm-up: latency p50/p95 over every query of every client, and
  queries per second over the whole run. Each client is a process so that
  SQLite's readers are not serialised by one interpreter's lock; 16 clients
  on 2 cores measure queueing as much as the database. **search-pre-encoded**
  does the same with each client's queries encoded before the clock starts
  (as when the UI replicas, which encode, run on other machines than the
  database).
- **recall**: the PostgreSQL HNSW index's recall@10 against exact search over
  the same halfvec vectors (the database's own sequential scan), at
  ``hnsw.ef_search`` 40, 100 (the default) and 200, with the p50 of the
  vector query alone.
- **ingest**: ``equisearch ingest`` processes (1, 2 and 4 at once, the real
  model) on one fresh database, fed a folder of ../shared/data/edu_plac
  split among them with a quarter of the files given to every worker
  (overlapping inputs): passages per second of wall time, and the documents,
  passages and text hashes stored against one worker's run (nothing lost,
  nothing doubled), and doctor's verdict.

The machine's load average is printed with each table: 2 cores, so anything
above 2 means waiting.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
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

SHARED = next((p for p in (ROOT.parent / "shared", Path("/work/shared")) if p.is_dir()), ROOT.parent / "shared")
PG_SETTINGS = {"shared_buffers": "1GB", "max_connections": "200", "work_mem": "32MB",
               "maintenance_work_mem": "1GB", "effective_cache_size": "8GB"}


def log(*a) -> None:
    print(*a, flush=True)


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


# -- build -------------------------------------------------------------------
def build_postgres(url: str, n: int, data: dict, settings) -> dict:
    """The same passages, ids and vectors as bench_scale's SQLite store, bulk-loaded."""
    from bench.bench_scale import DOC_CHUNKS, MODEL
    from bench.scale_data import scaled_batches
    from search.store.base import NewChunk, NewDocument
    from search.store.postgres import PgStore
    from search.store.postgres.bulk import BulkChunk, BulkDocument, bulk_load
    from search.text import content_hash

    docs, chunks = [], []
    for start, texts, vecs in scaled_batches(data, n, batch=DOC_CHUNKS * 200):
        for j, text in enumerate(texts):
            i = start + j
            doc_id = i // DOC_CHUNKS + 1
            if i % DOC_CHUNKS == 0:
                docs.append(BulkDocument(doc_id, NewDocument(
                    uri=f"reuters:{doc_id}", title=f"Reuters passages {doc_id}", site="Reuters", kind="article",
                    text="", content_hash=str(doc_id), text_hash=str(doc_id))))
            chunks.append(BulkChunk(i + 1, doc_id, i % DOC_CHUNKS, NewChunk(text, 0, len(text), content_hash(text)),
                                    vecs[j].astype(np.float16).astype(np.float32)))
    pg = PgStore.open(url)
    t0 = time.perf_counter()
    out = bulk_load(pg, docs, chunks, model=MODEL, dim=384, chunking=settings.chunking)
    out["wall_seconds"] = round(time.perf_counter() - t0, 1)
    out["database_bytes"] = int(pg.scalar("SELECT pg_database_size(current_database())"))
    out["table_bytes"] = {t: int(pg.scalar(f"SELECT pg_total_relation_size('{t}')"))
                          for t in ("chunks", "postings", "documents")}
    pg.close()
    return out


# -- concurrent search ---------------------------------------------------------
class PreEncoded:
    """The ONNX encoder with every bench query encoded before the clock starts.

    As when the UI replicas (which encode queries) run on other machines than
    the database: what is left on the clock is the store's work and the
    engine's own.
    """

    def __init__(self, inner, queries):
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.known = dict(zip(queries, inner.encode(list(dict.fromkeys(queries)))))

    def encode(self, texts, **kw):
        if all(t in self.known for t in texts):
            return np.stack([self.known[t] for t in texts])
        return self.inner.encode(texts, **kw)


def _client(location: str, onnx: str, queries: list[str], seconds: float, start_at: float, out,
            pre_encoded: bool = False) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    from search.api import Engine
    from search.onnx import OnnxEmbedder
    from search.settings import Settings
    from search.store import open_store

    store = open_store(location, create=False)
    embedder = OnnxEmbedder(Path(onnx))
    if pre_encoded:
        embedder = PreEncoded(embedder, list(dict.fromkeys(queries)))
    engine = Engine(store, Settings(), embedder)
    for q in queries[:5]:
        engine.search(q)
    while time.time() < start_at:
        time.sleep(0.01)
    times, i, t_end = [], 0, start_at + seconds
    while time.time() < t_end:
        t = time.perf_counter()
        engine.search(queries[i % len(queries)])
        times.append((time.perf_counter() - t) * 1000)
        i += 1
    out.put(times)


def concurrent_search(location: str, onnx: Path, queries: list[str], clients: int, seconds: float,
                      pre_encoded: bool = False) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start_at = time.time() + 25 + 2 * clients  # time for every client to open its engine and warm up
    procs = []
    for c in range(clients):
        mine = queries[c::clients] if clients > 1 else queries
        procs.append(ctx.Process(target=_client, args=(location, str(onnx), mine * 3, seconds, start_at, q, pre_encoded)))
    for p in procs:
        p.start()
    results = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    times = [t for r in results for t in r]
    return {"clients": clients, "queries": len(times), "qps": round(len(times) / seconds, 1),
            "p50": round(percentile(times, 50), 1), "p95": round(percentile(times, 95), 1), "load": load()}


# -- HNSW recall -----------------------------------------------------------------
def hnsw_recall(url: str, qvecs: np.ndarray) -> list[dict]:
    from search.store.postgres import PgStore
    from search.store.postgres.bulk import vector_literal

    pg = PgStore.open(url)
    exact, tenth = [], []
    for v in qvecs:
        with pg.transaction() as conn:
            conn.execute("SET LOCAL enable_indexscan = off")
            conn.execute("SET LOCAL statement_timeout = 0")
            rows = conn.execute("SELECT id, vector <=> %(q)s::halfvec FROM chunks ORDER BY 2, id LIMIT 10",
                                {"q": vector_literal(v)}).fetchall()
        exact.append({r[0] for r in rows})
        tenth.append(rows[-1][1])
    from search.settings import Settings

    out = []
    for ef in (40, 100, 200):
        index = pg.vector_index(Settings(database_ef_search=ef))
        index.search(qvecs[0], 10)
        rec, tied, ms = [], [], []
        for v, e, d10 in zip(qvecs, exact, tenth):
            t = time.perf_counter()
            got = index.search(v, 10)
            ms.append((time.perf_counter() - t) * 1000)
            rec.append(len({i for i, _ in got} & e) / 10)
            # A passage as near as the exact 10th (a duplicate text's twin) is no miss.
            tied.append(sum(1 for i, sim in got if i in e or 1.0 - sim <= d10 + 1e-6) / 10)
        out.append({"ef_search": ef, "recall_at_10": round(float(np.mean(rec)), 4),
                    "recall_ties_at_10": round(float(np.mean(tied)), 4),
                    "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1)})
        log(f"  ef_search {ef}: recall@10 {out[-1]['recall_at_10']:.4f}, p50 {out[-1]['p50_ms']} ms")
    pg.close()
    return out


# -- concurrent ingest -------------------------------------------------------------
def ingest_workers(server, workers: int, files: list[Path], work: Path) -> dict:
    """``workers`` ingest processes at once on a fresh database; what ends up stored."""
    import psycopg

    from search.store.postgres import PgStore

    name = f"ingest{workers}_{int(time.time())}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = server.url(name)
    PgStore.open(url).close()  # migrate once, before the workers race
    shared = files[: max(1, len(files) // 4)]
    rest = files[len(shared):]
    lists = []
    for w in range(workers):
        mine = shared + rest[w::workers]
        folder = work / f"{name}-w{w}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for f in mine:
            (folder / f.name).symlink_to(f)
        lists.append(folder)
    env = dict(os.environ, EQUISEARCH_CACHE_DIR=str(work / f"{name}-cache"))
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "cli", "--store", url, "ingest", str(folder)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for folder in lists]
    outputs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t0
    codes = [p.returncode for p in procs]
    pg = PgStore.open(url)
    row = pg.one("SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks),"
                 " (SELECT count(DISTINCT text_hash) FROM documents), (SELECT count(*) FROM aliases),"
                 " (SELECT count(*) FROM (SELECT doc_id, ord FROM chunks GROUP BY 1, 2 HAVING count(*) > 1) x)")
    doctor = subprocess.run([sys.executable, "-m", "cli", "--store", url, "doctor"], env=env,
                            capture_output=True, text=True)
    pg.close()
    return {"workers": workers, "files": len(files), "wall_seconds": round(wall, 1), "exit_codes": codes,
            "documents": int(row[0]), "passages": int(row[1]), "distinct_texts": int(row[2]),
            "aliases": int(row[3]), "doubled_passages": int(row[4]),
            "passages_per_second": round(int(row[1]) / wall, 1), "doctor_exit": doctor.returncode,
            "errors": [line for out in outputs for line in out.splitlines() if "error" in line.lower()][:5],
            "load": load()}


# -- report ------------------------------------------------------------------------
def markdown(res: dict) -> str:
    from search.settings import Settings

    DEFAULT_EF = Settings().database_ef_search

    lines = [machine_line(), ""]
    b = res.get("build")
    if b:
        lines += [f"{b['n']:,} passages (the Reuters scale set: bench/scale_data.py), one store per backend,"
                  " the same ids and vectors.", "",
                  "| backend | load | index | size on disk |", "|---|---|---|---|",
                  f"| SQLite + FAISS | {b['sqlite']['sqlite_seconds']} s (rows, FTS5) |"
                  f" {b['sqlite']['index_seconds']} s ({b['sqlite']['kind']}) |"
                  f" {(b['sqlite']['db_bytes'] + b['sqlite']['faiss_bytes']) / 2**20:.0f} MiB |",
                  f"| PostgreSQL + pgvector | {b['pg']['seconds'] - b['pg']['hnsw_seconds']:.1f} s (COPY, tsvector,"
                  f" postings) | {b['pg']['hnsw_seconds']} s (HNSW) | {b['pg']['database_bytes'] / 2**20:.0f} MiB |", ""]
    for part, what in (("search", "query encoding included"),
                       ("search-pre-encoded", "queries encoded before the clock, as on separate UI machines")):
        s = res.get(part)
        if not s:
            continue
        lines += [f"Hybrid search (`Engine.search`, default settings, {what}) from concurrent client processes"
                  f" on this one 2-core machine, {res['seconds']:.0f} s each after a warm-up; latency over every query;"
                  " load average at the end of each run:", "",
                  "| backend | clients | queries | QPS | p50 ms | p95 ms | load average |", "|---|---|---|---|---|---|---|"]
        for backend in ("sqlite", "postgres"):
            for r in s.get(backend, []):
                lines.append(f"| {'SQLite' if backend == 'sqlite' else 'PostgreSQL'} | {r['clients']} | {r['queries']}"
                             f" | {r['qps']} | {r['p50']} | {r['p95']} | {r['load']} |")
        lines.append("")
    r = res.get("recall")
    if r:
        lines += [f"PostgreSQL HNSW (m 16, ef_construction 64, halfvec) against exact search over the same vectors,"
                  f" {res['recall_queries']} queries, k 10:", "",
                  "| hnsw.ef_search | recall@10 | recall@10, ties counted | vector query p50 ms | p95 ms |",
                  "|---|---|---|---|---|"]
        lines += [f"| {x['ef_search']}{' (default)' if x['ef_search'] == DEFAULT_EF else ''} | {x['recall_at_10']:.4f} |"
                  f" {x.get('recall_ties_at_10', '')} | {x['p50_ms']} | {x['p95_ms']} |" for x in r]
        lines += ["", "Ties counted: a passage exactly as near as the exact 10th (Reuters repeats texts) is no miss."]
        lines.append("")
    ing = res.get("ingest")
    if ing:
        lines += [f"`equisearch ingest` processes at once on one database, real model, {ing[0]['files']} files of"
                  " shared/data/edu_plac split among the workers with a quarter of them given to every worker:", "",
                  "| workers | wall s | passages/s | documents | passages | distinct texts | aliases |"
                  " doubled passages | exit codes | doctor | load average |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for x in ing:
            lines.append(f"| {x['workers']} | {x['wall_seconds']} | {x['passages_per_second']} | {x['documents']} |"
                         f" {x['passages']} | {x['distinct_texts']} | {x['aliases']} | {x['doubled_passages']} |"
                         f" {' '.join(map(str, x['exit_codes']))} | {'healthy' if x['doctor_exit'] == 0 else 'NOT healthy'}"
                         f" | {x['load']} |")
        lines += ["", "Every run stores each of the 16 documents once (documents = distinct texts, no passage twice, doctor"
                  " healthy). The passage counts differ by a few between runs because ingest drops short paragraphs"
                  " repeated across most of one folder's files read in the same window (site furniture,"
                  " ingest/windows.py): which files a worker reads together changes a report's text a little, and the"
                  " first worker to store a file wins (the others find its content hash). Wall time grows with workers"
                  " here: the overlapping quarter is extracted and encoded by every worker that reaches it before"
                  " another has stored it, and on 2 cores the model, not the database, is the limit (one ingest"
                  " already uses both cores).", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--parts", default="search,search-pre-encoded,recall,ingest", help="which parts to run (the stores are built for search and recall)")
    ap.add_argument("--work", default="/work/benchcache/pg")
    ap.add_argument("--json", default=None, help="results file (default: WORK/results.json)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results_path = Path(args.json or work / "results.json")
    res = json.loads(results_path.read_text()) if results_path.exists() else {}

    from bench.bench_scale import build_store, onnx_dir
    from bench.scale_data import prepare
    from search.settings import Settings
    from tests.pg_server import start_server

    settings = Settings()
    data = prepare()
    sqlite_dir = work / f"sqlite-{args.n}"
    onnx = onnx_dir(work)
    shutil.rmtree(work / "pgdata", ignore_errors=True)  # a fresh server and database every run
    server = start_server(work / "pgdata", settings=PG_SETTINGS)
    try:
        import psycopg

        url = server.url("reuters")
        if parts & {"search", "search-pre-encoded", "recall"}:
            log(f"building {args.n} passages on both backends, load {load()}")
            sq = build_store(sqlite_dir, args.n, data, settings, log=log)
            with psycopg.connect(server.url(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE reuters")
            pg = build_postgres(url, args.n, data, settings)
            log(f"  PostgreSQL: {pg}")
            res["build"] = {"n": args.n, "sqlite": sq, "pg": pg}
            results_path.write_text(json.dumps(res, indent=1))
        queries = data["queries"][: args.queries]
        res["seconds"] = args.seconds
        for part, pre in (("search", False), ("search-pre-encoded", True)):
            if part not in parts:
                continue
            res[part] = {}
            for backend, location in (("sqlite", str(sqlite_dir)), ("postgres", url)):
                res[part][backend] = []
                for c in [int(x) for x in args.clients.split(",")]:
                    r = concurrent_search(location, onnx, queries, c, args.seconds, pre_encoded=pre)
                    log(f"  {part} {backend} {c} clients: {r}")
                    res[part][backend].append(r)
            results_path.write_text(json.dumps(res, indent=1))
        if "recall" in parts:
            from search.onnx import OnnxEmbedder

            qv = OnnxEmbedder(onnx).encode(data["queries"][:200])
            res["recall_queries"] = len(qv)
            res["recall"] = hnsw_recall(url, qv)
            results_path.write_text(json.dumps(res, indent=1))
        if "ingest" in parts:
            files = sorted(p for p in (SHARED / "data" / "edu_plac").rglob("*")
                           if p.is_file() and p.suffix.lower() in {".pdf", ".html", ".htm", ".txt", ".md", ".rst"})
            res["ingest"] = []
            for w in (1, 2, 4):
                r = ingest_workers(server, w, files, work)
                log(f"  ingest {w} workers: {r}")
                res["ingest"].append(r)
    finally:
        server.stop()
    results_path.write_text(json.dumps(res, indent=1))
    write_section(Path(args.out), "PostgreSQL and SQLite side by side", markdown(res))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
