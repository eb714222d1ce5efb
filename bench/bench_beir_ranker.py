"""BEIR nDCG@10 with the second stages on and off, over one store: bench/QUALITY.md "Learned ranker on BEIR".

Usage: python bench/bench_beir_ranker.py scifact|arguana [...]

Builds the BEIR store once as `equisearch eval-beir` does (one passage a
document, candidate depth 400, no vocabulary expansion) and scores the
hybrid search with the learned ranker off, on, and on with the reranker
(`ranker`, `reranker`) on the same store;
nDCG@10 and recall@100 without the query's own document (BEIR's convention).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, write_section  # noqa: E402

SETS = {"scifact": ROOT.parent / "shared" / "data" / "beir" / "scifact",
        "arguana": ROOT.parent / "shared" / "external" / "beir" / "arguana"}
SECTION = "Learned ranker on BEIR"


def measure(name: str) -> list[tuple]:
    from ingest.beir import build_store, load_beir
    from search.api import Engine
    from search.evaluate import ndcg_at_k, recall_at_k
    from search.settings import Settings

    data = load_beir(SETS[name], "test")
    base = Settings().with_(per_doc_limit=1, dense_candidates=400, lexical_candidates=400, expand_queries=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(data, Path(tmp), base, None, None)
        for ranker, reranker in (("off", "off"), ("bundled", "off"), ("bundled", "bundled")):
            engine = Engine(store, base.with_(ranker=ranker, reranker=reranker), None)
            ndcg, recall, times = [], [], []
            for q in [q for q in data.qrels if q in data.queries]:
                t0 = time.perf_counter()
                hits = engine.search(data.queries[q], k=101).hits
                times.append((time.perf_counter() - t0) * 1000)
                ranked = list(dict.fromkeys(h.document.uri.removeprefix("beir:") for h in hits))
                if q in ranked:
                    ranked.remove(q)
                ndcg.append(ndcg_at_k(ranked[:100], data.qrels[q], 10))
                recall.append(recall_at_k(ranked[:100], data.qrels[q], 100))
            times.sort()
            rows.append((name, len(data.corpus), len(ndcg), f"{ranker} / {reranker}", round(sum(ndcg) / len(ndcg), 4),
                         round(sum(recall) / len(recall), 4), round(times[len(times) // 2], 1)))
            print(rows[-1], flush=True)
        store.close()
    return rows


def _previous_rows(names: list[str]) -> tuple[list[str], list[str]]:
    """Rows of sets not measured now, from the section as it stands, and a note of when they were measured."""
    path = ROOT / "bench" / "QUALITY.md"
    text = path.read_text() if path.exists() else ""
    start = text.find(f"## {SECTION}\n")
    if start < 0:
        return [], []
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else None]
    when = next((ln for ln in section.splitlines() if ln.startswith("Measured")), "")
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and ln.split(" | ")[0][2:] not in names
            and not ln.startswith("| set |")]
    # A note of earlier rows stands only while such rows are kept.
    notes = [ln for ln in section.splitlines() if ln.startswith("Rows of ")] if rows else []
    if rows and when:
        sets = sorted({ln.split(" | ")[0][2:] for ln in rows})
        notes = [f"Rows of {', '.join(sets)}: {when[0].lower() + when[1:]}"]
    return rows, notes


def main() -> None:
    names = sys.argv[1:] or ["scifact"]
    lines = ["| " + " | ".join(str(c) for c in r) + " |" for name in names for r in measure(name)]
    # A run of one set keeps the other sets' rows (and when they were measured).
    kept, notes = _previous_rows(names)
    head = "| set | documents | queries | ranker / reranker | nDCG@10 | recall@100 | search p50 ms (k=101) |\n|---|---|---|---|---|---|---|"
    body = "\n".join([machine_line(), "", __doc__.strip().splitlines()[0], "", head, *kept, *lines, "", *notes])
    write_section(ROOT / "bench" / "QUALITY.md", SECTION, body)


if __name__ == "__main__":
    main()
