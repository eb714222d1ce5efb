"""txtai side of bench_peer.py; runs inside the benchmark venv, never the project's.

Usage (bench_peer.py calls it): /work/bench-venv/bin/python bench/peer_txtai.py IN.json OUT.json

IN: {"model": folder, "hybrid": bool, "docs": [[id, text], ...], "queries": [[qid, text], ...], "k": int,
     "rounds": int}
OUT: {"load_seconds", "index_seconds", "rounds_ms": [[...], ...], "ranked": {qid: [doc ids]}, "versions": {...}}
"""
import json
import sys
import time
from importlib.metadata import version as _version


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    job = json.load(open(src))
    from txtai import Embeddings

    t0 = time.perf_counter()
    emb = Embeddings(path=job["model"], content=True, hybrid=job["hybrid"])
    # The constructor loads the model; make sure it has (a first encode)
    # so index() is timed without it, like equisearch's ingest.
    emb.batchtransform(["warm up"])
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb.index([(d, text, None) for d, text in job["docs"]])
    index_s = time.perf_counter() - t0
    k = job.get("k", 10)
    emb.search(job["queries"][0][1], k)
    rounds, ranked = [], {}
    for r in range(job.get("rounds", 1)):
        lat = []
        for qid, text in job["queries"]:
            t = time.perf_counter()
            res = emb.search(text, k)
            lat.append((time.perf_counter() - t) * 1000)
            ranked[qid] = [r["id"] for r in res]
        rounds.append(lat)
    import torch

    json.dump({"load_seconds": load_s, "index_seconds": index_s, "rounds_ms": rounds, "ranked": ranked,
               "versions": {"txtai": _version("txtai"), "torch": torch.__version__}}, open(dst, "w"))


if __name__ == "__main__":
    main()
