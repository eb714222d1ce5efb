"""BEIR SciFact and ArguAna through `equisearch eval-beir` with this release's defaults: bench/QUALITY.md.

Both are public sets nobody here tuned on since the fusion weights were chosen
on SciFact train (2026-11); ArguAna was never used for a choice. Scores follow
BEIR's evaluator: the query's own document (ArguAna's queries are arguments of
its corpus) is left out of its ranking; the figure counting it is shown too.

    python bench/bench_beir.py [--only scifact|arguana]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, write_section  # noqa: E402

SHARED = ROOT.parent / "shared"
SETS = {
    "scifact": (SHARED / "data" / "beir" / "scifact", "all-MiniLM-L6-v2 0.645, BM25 0.665-0.687, txtai hybrid (same model) 0.713, bge-base hybrid 0.742"),
    "arguana": (SHARED / "external" / "beir" / "arguana", "all-MiniLM-L6-v2 0.502 (each document embedded whole), BM25 0.397 (Anserini), bge-small 0.603"),
}
MODES = ("hybrid", "dense", "bm25")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(SETS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "QUALITY.md"))
    args = ap.parse_args()
    from ingest.beir import run_beir
    from search.settings import Settings

    s = Settings()
    rows = []
    for name, (folder, published) in SETS.items():
        if args.only and name != args.only:
            continue
        if not folder.is_dir():
            sys.exit(f"needs {folder} (../shared beside the checkout)")
        report = run_beir(folder, MODES, settings=s)
        print(name, report["modes"], flush=True)
        for mode, r in report["modes"].items():
            rows.append((name, report["documents"], report["queries"], mode, r["ndcg_at_10"],
                         r["ndcg_at_10_counting_own"] if r["own_document_ranked"] else "-",
                         r["recall_at_100"], r["latency_ms_p50"], report["ingest_seconds"], published))
    body = [machine_line(), "",
            f"Defaults: chunking `{s.chunking}`, fusion {s.fusion} (dense {s.dense_weight} / lexical "
            f"{s.lexical_weight}), title_weight {s.title_weight}, document_weight {s.document_weight}, "
            f"named_document_boost {s.named_document_boost}, correct_spelling {s.correct_spelling}; eval-beir ranks a "
            "document by its best passage, one passage a document, vocabulary expansion off. "
            "`python bench/bench_beir.py` reproduces it.", "",
            "| set | documents | queries | mode | nDCG@10 | nDCG@10 counting the query's own document | recall@100 | p50 ms (k=100) | ingest s | published |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    body += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    write_section(Path(args.out), "BEIR SciFact and ArguAna (eval-beir, this release's defaults)", "\n".join(body))


if __name__ == "__main__":
    main()
