"""A/B of two versions of the search code on one PostgreSQL database (bench/RESULTS.md).

    python bench/bench_pg_ab.py OLD_REF [--rounds 2] [--seconds 15]

Loads the 100k Reuters passages (bench/scale_data.py) into a fresh embedded
server once, checks out OLD_REF into a temporary git worktree, then runs
bench_pg's pre-encoded hybrid search from 1 and 16 client processes with the
old and the current code in turn, ``--rounds`` times, so that both meet the
same machine: on this 2-core machine speed drifts within an hour, and only
alternation separates a code change from the drift. Prints one JSON line per
run; the results of a run are pasted into RESULTS.md with the command.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENT = ("import json, pathlib, sys; sys.path.insert(0, '.'); from bench.bench_pg import concurrent_search;"
          " a = json.load(open(sys.argv[1])); print(json.dumps(concurrent_search(a['url'], pathlib.Path(a['onnx']),"
          " a['queries'], int(sys.argv[2]), float(sys.argv[3]), pre_encoded=True)))")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old_ref")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--work", default="/work/benchcache/pg-ab")
    args = ap.parse_args()
    import psycopg

    from bench.bench_pg import PG_SETTINGS, build_postgres
    from bench.bench_scale import onnx_dir
    from bench.scale_data import prepare
    from search.settings import Settings
    from tests.pg_server import start_server

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "pgdata", ignore_errors=True)
    data = prepare()
    onnx = onnx_dir(work)
    old = Path(tempfile.mkdtemp(prefix="equisearch-old-")) / "tree"
    subprocess.run(["git", "worktree", "add", "-f", str(old), args.old_ref], cwd=ROOT, check=True,
                   capture_output=True)
    server = start_server(work / "pgdata", settings=PG_SETTINGS)
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE reuters")
        url = server.url("reuters")
        print(json.dumps({"build": build_postgres(url, 100_000, data, Settings())}), flush=True)
        spec = work / "queries.json"
        spec.write_text(json.dumps({"url": url, "onnx": str(onnx), "queries": data["queries"][:200]}))
        for rnd in range(args.rounds):
            for name, tree in (("old", old), ("new", ROOT)):
                for clients in (1, 16):
                    out = subprocess.run([sys.executable, "-c", CLIENT, str(spec), str(clients), str(args.seconds)],
                                         cwd=tree, capture_output=True, text=True)
                    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-300:]
                    print(json.dumps({"round": rnd, "code": name, "result": line}), flush=True)
    finally:
        server.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)


if __name__ == "__main__":
    main()
