"""Where one search's time and CPU go, PostgreSQL and SQLite, at 100k real passages (bench/RESULTS.md).

    python bench/bench_pg_profile.py [--n 100000] [--queries 300] [--work /work/benchcache/pg]

bench_pg.py measures throughput with 16 client processes on the same 2 cores
as the database: there the figure is set by CPU per search, not by waiting.
This script measures that CPU directly, with one client and queries encoded
before the clock (as on UI machines apart from the database):

- the stores: bench_pg.py's (the Reuters scale set, the same ids and vectors
  on both backends; reused when bench_pg.py has built them under ``--work``);
- per search: wall time (p50, mean), the client process's CPU
  (``time.process_time``: the engine's Python, psycopg or SQLite/FAISS), and
  on PostgreSQL the server's CPU (every ``postgres`` process's user + system
  time, read with psutil before and after);
- on PostgreSQL, each statement's time as the client sees it (round trip
  included), by kind, per search.

``2 cores / (client + server CPU per search)`` is the most searches a second
the machine can give when clients and database share it, which is what the
16-client run of bench_pg.py approaches.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pg import PG_SETTINGS, PreEncoded, build_postgres, load, log  # noqa: E402
from bench.common import machine_line, write_section  # noqa: E402

SECTION = "PostgreSQL and SQLite: where one search's CPU goes"

#: Statement kinds, by a piece of their SQL (first match wins).
KINDS = (
    ("UNION ALL SELECT chunk_id, score, false", "keyword ranking (BM25 in SQL) with the vector hits' scores"),
    ("SELECT qt.i,", "term document counts (cached per store generation)"),
    ("<=>", "vector search (HNSW)"),
    ("BEGIN ISOLATION LEVEL", "snapshot begin"),
    ("COMMIT", "snapshot end"),
    ("FROM changes", "store generation"),
    ("FROM meta", "store settings"),
    ("FROM documents", "documents of the hits"),
    ("SELECT id, doc_id, ord", "passages of the hits"),
    ("set_config", "per-search settings"),
)


def kind(sql: str) -> str:
    return next((name for piece, name in KINDS if piece in sql), " ".join(sql.split())[:60])


def postgres_cpu(datadir: Path) -> float:
    """CPU seconds (user + system) of the server on ``datadir``: its postmaster and every child process."""
    import psutil

    main = next(p for p in psutil.process_iter(["name", "cmdline"])
                if p.info["name"] == "postgres" and str(datadir) in (p.info["cmdline"] or []))
    total = 0.0
    for p in [main, *main.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass  # a backend that ended meanwhile
    return total


def profile(location: str, onnx: Path, queries: list[str], datadir: Path | None = None) -> dict:
    """One client's search figures on ``location``; ``datadir``: the PostgreSQL server's (None: SQLite)."""
    pg = datadir is not None
    os.environ["OMP_NUM_THREADS"] = "1"
    from search.api import Engine
    from search.onnx import OnnxEmbedder
    from search.settings import Settings
    from search.store import open_store

    store = open_store(location, create=False)
    stats: dict[str, list[float]] = collections.defaultdict(list)
    if pg:
        cls = type(store)
        depth = [0]  # scalar() calls one() calls execute(): time the outermost only
        for name in ("execute", "one", "scalar"):
            orig = getattr(cls, name)

            def timed(self, sql, params=None, *a, _orig=orig, **kw):
                depth[0] += 1
                t = time.perf_counter()
                try:
                    return _orig(self, sql, params, *a, **kw)
                finally:
                    depth[0] -= 1
                    if not depth[0]:
                        stats[kind(sql)].append((time.perf_counter() - t) * 1000)

            setattr(cls, name, timed)
        # The snapshot's BEGIN and COMMIT go through the connection itself.
        import psycopg

        orig_conn_execute = psycopg.Connection.execute

        def conn_execute(self, query, params=None, *a, **kw):
            text = query if isinstance(query, str) else str(query)
            if text.startswith(("BEGIN", "COMMIT")):
                t = time.perf_counter()
                try:
                    return orig_conn_execute(self, query, params, *a, **kw)
                finally:
                    stats[kind(text)].append((time.perf_counter() - t) * 1000)
            return orig_conn_execute(self, query, params, *a, **kw)

        psycopg.Connection.execute = conn_execute
    engine = Engine(store, Settings(), PreEncoded(OnnxEmbedder(onnx), list(dict.fromkeys(queries))))
    for q in queries[:20]:
        engine.search(q)
    for q in queries:  # every query once, so the term counts are cached as in a long-running UI
        engine.search(q)
    stats.clear()
    wall = []
    cpu0, srv0 = time.process_time(), postgres_cpu(datadir) if pg else 0.0
    for q in queries:
        t = time.perf_counter()
        engine.search(q)
        wall.append((time.perf_counter() - t) * 1000)
    cpu1, srv1 = time.process_time(), postgres_cpu(datadir) if pg else 0.0
    n = len(queries)
    out = {"searches": n, "p50": round(statistics.median(wall), 2), "mean": round(statistics.fmean(wall), 2),
           "client_cpu_ms": round((cpu1 - cpu0) * 1000 / n, 2),
           "server_cpu_ms": round((srv1 - srv0) * 1000 / n, 2) if pg else None, "load": load()}
    out["cpu_ms"] = round(out["client_cpu_ms"] + (out["server_cpu_ms"] or 0), 2)
    out["ceiling_qps"] = round(2000 / out["cpu_ms"], 0) if out["cpu_ms"] else None
    out["statements"] = {k: {"per_search": round(len(v) / n, 2), "ms_per_search": round(sum(v) / n, 2),
                             "p50": round(statistics.median(v), 3)}
                         for k, v in sorted(stats.items(), key=lambda kv: -sum(kv[1]))}
    store.close()
    return out


def markdown(res: dict) -> str:
    lines = [machine_line(), "",
             f"`python bench/bench_pg_profile.py`: {res['n']} Reuters passages (bench_pg.py's stores), one client, "
             f"{res['queries']} Reuters titles encoded before the clock, each searched once after a warm pass "
             "(hybrid, default settings). CPU is per search: the client process (engine, driver, and on SQLite "
             "the database itself) and the PostgreSQL server's processes. The ceiling is 2 cores divided by the "
             "CPU of one search: the most searches a second when clients and database share this machine.", "",
             "| backend | wall p50 ms | wall mean ms | client CPU ms | server CPU ms | CPU ms a search | ceiling searches/s | load |",
             "|---|---|---|---|---|---|---|---|"]
    labels = {"sqlite": "SQLite + FAISS", "postgres": "PostgreSQL + pgvector",
              "before_vacuum": "PostgreSQL, loaded without VACUUM (the code before 2026-12-03)"}
    for name in ("sqlite", "postgres", "before_vacuum"):
        r = res.get(name)
        if r:
            lines.append(f"| {labels[name]} | {r['p50']} | {r['mean']} | {r['client_cpu_ms']} | "
                         f"{'-' if r['server_cpu_ms'] is None else r['server_cpu_ms']} | {r['cpu_ms']} | "
                         f"{r['ceiling_qps']:.0f} | {r['load']} |")
    pg = res.get("postgres")
    if pg:
        lines += ["", "PostgreSQL statements, as the client times them (round trip included), per search:", "",
                  "| statement | per search | ms per search | p50 ms |", "|---|---|---|---|"]
        before = (res.get("before_vacuum") or {}).get("statements", {})
        if before:
            lines[-2:] = ["| statement | per search | ms per search | p50 ms | ms per search without VACUUM |",
                          "|---|---|---|---|---|"]
        for k, v in pg["statements"].items():
            extra = f" {before[k]['ms_per_search']} |" if k in before else (" - |" if before else "")
            lines.append(f"| {k} | {v['per_search']} | {v['ms_per_search']} | {v['p50']} |{extra}")
    if res.get("notes"):
        lines += ["", res["notes"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--work", default="/work/benchcache/pg")
    ap.add_argument("--notes", default="", help="a paragraph written under the tables")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument("--json", default=str(ROOT / "bench" / "pg_profile.json"), help="results file")
    ap.add_argument("--from-json", action="store_true", help="rewrite the section from --json (with --notes)")
    args = ap.parse_args()
    if args.from_json:
        res = json.loads(Path(args.json).read_text())
        res["notes"] = args.notes or res.get("notes", "")
        Path(args.json).write_text(json.dumps(res, indent=1))
        write_section(Path(args.out), SECTION, markdown(res))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    import shutil

    import psycopg

    from bench.bench_scale import build_store, onnx_dir
    from bench.scale_data import prepare
    from search.settings import Settings
    from tests.pg_server import start_server

    settings = Settings()
    data = prepare()
    queries = data["queries"][: args.queries]
    onnx = onnx_dir(work)
    sqlite_dir = work / f"sqlite-{args.n}"
    if not (sqlite_dir / "store.db").exists():
        log(f"building the SQLite store ({args.n} passages), load {load()}")
        build_store(sqlite_dir, args.n, data, settings, log=log)
    # The row measured on the code before the bulk load vacuumed, and the notes explaining it, stay.
    earlier = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    res = {"n": args.n, "queries": len(queries), "notes": args.notes or earlier.get("notes", "")}
    if "before_vacuum" in earlier:
        res["before_vacuum"] = earlier["before_vacuum"]
    res["sqlite"] = profile(str(sqlite_dir), onnx, queries)
    log(f"sqlite: {res['sqlite']}")
    shutil.rmtree(work / "pgdata-profile", ignore_errors=True)
    server = start_server(work / "pgdata-profile", settings=PG_SETTINGS)
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE reuters")
        log(f"building the PostgreSQL database, load {load()}")
        build_postgres(server.url("reuters"), args.n, data, settings)
        res["postgres"] = profile(server.url("reuters"), onnx, queries, server.datadir)
        log(f"postgres: {res['postgres']}")
    finally:
        server.stop()
    Path(args.json).write_text(json.dumps(res, indent=1))
    write_section(Path(args.out), SECTION, markdown(res))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
