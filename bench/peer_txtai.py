"""txtai side of bench_peer.py; runs inside the benchmark venv, never the project's.

Usage (bench_peer.py calls it): /work/bench-venv/bin/python bench/peer_txtai.py IN.json OUT.json

IN: {"model": folder, "hybrid": bool, "docs": [[id, text], ...], "queries": [[qid, text], ...]}
OUT: {"index_seconds", "latency_ms": [...], "ranked": {qid: [doc ids]}, "versions": {...}}
"""
import json
import sys
import time
from importlib.metadata import version as _version


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    job = json.load(open(src))
    from txtai import Embeddings

    emb = Embeddings(path=job["model"], content=True, hybrid=job["hybrid"])
    t0 = time.perf_counter()
    emb.index([(d, text, None) for d, text in job["docs"]])
    index_s = time.perf_counter() - t0
    emb.search(job["queries"][0][1], 10)
    lat, ranked = [], {}
    for qid, text in job["queries"]:
        t = time.perf_counter()
        res = emb.search(text, 100)
        lat.append((time.perf_counter() - t) * 1000)
        ranked[qid] = [r["id"] for r in res]
    import torch

    json.dump({"index_seconds": index_s, "latency_ms": lat, "ranked": ranked,
               "versions": {"txtai": _version("txtai"), "torch": torch.__version__}}, open(dst, "w"))


if __name__ == "__main__":
    main()
