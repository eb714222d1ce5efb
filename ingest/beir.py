"""BEIR-format evaluation: ingest a corpus into a temporary store, rank, score.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``),
``queries.jsonl`` (``_id``, ``text``) and ``qrels/<split>.tsv`` (query-id,
corpus-id, score, with a header line). Documents go through the same chunker
and embedder as everything else (title as its own first paragraph, no
page-furniture cleaning: these are clean abstracts); a document's rank is the
rank of its best passage (one passage per document in the results).

Scores are the standard ones: nDCG@10 (linear gains, log2 discount) and
recall@100, averaged over the queries that have judgements. As in BEIR's own
evaluator (``EvaluateRetrieval.evaluate(..., ignore_identical_ids=True)``, also
MTEB's), a document whose id is the query's id is left out of the ranking: in
ArguAna every query is itself an argument of the corpus, and ranking it first
is not a retrieval success or failure. Published figures (all-MiniLM-L6-v2
0.502 on ArguAna) are counted that way; ``ignore_identical_ids=False`` scores
the raw ranking.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from search.api import Engine
from search.embedding import Embedder
from search.errors import EquisearchError
from search.evaluate import ndcg_at_k, recall_at_k
from search.settings import Settings
from search.store import StoreBackend, open_store
from search.text import content_hash

from .pipeline import Ingestor
from .segments import Extracted, Segment

log = logging.getLogger(__name__)


@dataclass
class BeirData:
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    skipped_lines: list[str] = field(default_factory=list)


def _jsonl(path: Path, skipped: list[str]):
    # errors="replace": a line of broken UTF-8 then fails to parse as JSON
    # and is skipped like any other broken line, instead of ending the run.
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or "_id" not in row:
                    raise ValueError("no _id")
                yield row
            except ValueError as exc:
                skipped.append(f"{path.name}:{n}: {exc}")


def load_beir(folder: str | Path, split: str = "test") -> BeirData:
    """Read a BEIR folder; broken lines are skipped and reported, not fatal."""
    folder = Path(folder)
    paths = {name: folder / name for name in ("corpus.jsonl", "queries.jsonl")}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for path in (*paths.values(), qrels_path):
        if not path.is_file():
            raise EquisearchError(f"{path} not found: a BEIR folder needs corpus.jsonl, queries.jsonl and qrels/{split}.tsv")
    skipped: list[str] = []
    corpus = {str(r["_id"]): (str(r.get("title") or ""), str(r.get("text") or "")) for r in _jsonl(paths["corpus.jsonl"], skipped)}
    queries = {str(r["_id"]): str(r.get("text") or "") for r in _jsonl(paths["queries.jsonl"], skipped)}
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(qrels_path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        parts = line.split("\t")
        if n == 1 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        if len(parts) < 3 or not parts[2].strip().lstrip("-").isdigit():
            if line.strip():
                skipped.append(f"{qrels_path.name}:{n}: not query-id<TAB>corpus-id<TAB>score")
            continue
        qrels.setdefault(parts[0].strip(), {})[parts[1].strip()] = int(parts[2])
    return BeirData(corpus, queries, qrels, skipped)


def subset(data: BeirData, max_queries: int, extra_docs: int, seed: int = 13) -> BeirData:
    """A smaller, fixed evaluation: the first ``max_queries`` judged queries, all
    their relevant documents, plus ``extra_docs`` other documents as distractors
    (deterministic, for a CI quality floor)."""
    import random

    qids = [q for q in sorted(data.qrels, key=lambda x: (len(x), x)) if q in data.queries][:max_queries]
    keep = {d for q in qids for d in data.qrels[q] if d in data.corpus}
    others = sorted(set(data.corpus) - keep)
    random.Random(seed).shuffle(others)
    keep |= set(others[:extra_docs])
    return BeirData({d: data.corpus[d] for d in data.corpus if d in keep}, {q: data.queries[q] for q in qids},
                    {q: data.qrels[q] for q in qids}, data.skipped_lines)


def build_store(data: BeirData, home: Path, settings: Settings, embedder: Embedder | None = None,
                progress: Callable[[int, int], None] | None = None) -> StoreBackend:
    """Ingest the corpus into a store at ``home`` (batched embedding)."""
    store = open_store(home)
    ingestor = Ingestor(store, settings, embedder)
    ingestor.check_store()
    with ingestor.writing():
        total = len(data.corpus)
        for i, (doc_id, (title, text)) in enumerate(data.corpus.items(), start=1):
            segments = [Segment(title)] if title else []
            segments.append(Segment(text or title or doc_id))
            ex = Extracted(segments, {"title": title or doc_id, "kind": "other"})
            result = ingestor.queue(f"beir:{doc_id}", content_hash(f"{title}\n{text}"), ex, clean_text=False, tag=doc_id)
            if result is None and ingestor._pending_chunks() >= ingestor.batch_chunks:
                ingestor.flush()
            if progress and i % 200 == 0:
                progress(i, total)
        ingestor.flush()
    return store


def run_beir(
    folder: str | Path,
    modes: tuple[str, ...] = ("hybrid",),
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    split: str = "test",
    max_queries: int | None = None,
    extra_docs: int = 0,
    store_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    ignore_identical_ids: bool = True,
) -> dict:
    """Score each mode; returns {"dataset", "documents", "queries", "modes": {mode: {...}}}."""
    data = load_beir(folder, split)
    if max_queries:
        data = subset(data, max_queries, extra_docs)
    settings = (settings or Settings()).with_(
        # One passage per document, and deep enough candidate lists that 100
        # distinct documents survive.
        per_doc_limit=1, dense_candidates=400, lexical_candidates=400, expand_queries=0,
    )
    with tempfile.TemporaryDirectory(dir=store_dir) as tmp:
        t0 = time.perf_counter()
        store = build_store(data, Path(tmp), settings, embedder, progress)
        ingest_s = time.perf_counter() - t0
        engine = Engine(store, settings, embedder)
        out = {"dataset": str(folder), "split": split, "documents": len(data.corpus), "queries": 0,
               "ingest_seconds": round(ingest_s, 1), "skipped_lines": data.skipped_lines[:20],
               "ignore_identical_ids": ignore_identical_ids, "modes": {}}
        qids = [q for q in data.qrels if q in data.queries]
        out["queries"] = len(qids)
        for mode in modes:
            ndcgs, recalls, times, own, raw_ndcgs = [], [], [], 0, []
            for q in qids:
                t = time.perf_counter()
                hits = engine.search(data.queries[q], k=101, mode=mode).hits
                times.append((time.perf_counter() - t) * 1000)
                # Fill-up passages may repeat a document: rank each document once.
                ranked = list(dict.fromkeys(h.document.uri.removeprefix("beir:") for h in hits))
                raw_ndcgs.append(ndcg_at_k(ranked, data.qrels[q], 10))
                if ignore_identical_ids and q in ranked:
                    ranked.remove(q)
                    own += 1
                ranked = ranked[:100]
                ndcgs.append(ndcg_at_k(ranked, data.qrels[q], 10))
                recalls.append(recall_at_k(ranked, data.qrels[q], 100))
            times.sort()
            out["modes"][mode] = {
                "ndcg_at_10": round(sum(ndcgs) / len(ndcgs), 4) if ndcgs else 0.0,
                "recall_at_100": round(sum(recalls) / len(recalls), 4) if recalls else 0.0,
                "latency_ms_p50": round(times[len(times) // 2], 2) if times else 0.0,
                "own_document_ranked": own,
                # The same rankings scored with the query's own document left in.
                "ndcg_at_10_counting_own": round(sum(raw_ndcgs) / len(raw_ndcgs), 4) if raw_ndcgs else 0.0,
            }
        store.close()
    return out
