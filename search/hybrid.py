"""Fusing dense and keyword rankings into one result list.

Scores from FAISS (cosine) and FTS5 (BM25) live on different scales. Two
fusions are offered: reciprocal rank fusion (each list contributes
``weight / (rrf_k + rank)``) and a convex combination of per-query min-max
normalised scores; ``Settings.fusion`` picks one (bench/QUALITY.md). After fusion, passages that repeat one another
are collapsed and one document may place at most ``per_doc_limit`` passages,
so a long report cannot fill the page.
"""
from __future__ import annotations

from dataclasses import dataclass

from .text import normalize, words


@dataclass
class Candidate:
    chunk_id: int
    score: float = 0.0
    dense: float | None = None
    dense_rank: int | None = None
    lexical_rank: int | None = None
    #: The reranker's probability that the passage answers the query (None: not reranked).
    relevance: float | None = None


def reciprocal_rank_fusion(
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    *,
    rrf_k: int = 60,
    dense_weight: float = 1.0,
    lexical_weight: float = 1.0,
) -> list[Candidate]:
    """Fuse two best-first lists of (chunk id, score); best first."""
    by_id: dict[int, Candidate] = {}
    for rank, (cid, score) in enumerate(dense, start=1):
        c = by_id.setdefault(cid, Candidate(cid))
        c.dense, c.dense_rank = score, rank
        c.score += dense_weight / (rrf_k + rank)
    for rank, (cid, _score) in enumerate(lexical, start=1):
        c = by_id.setdefault(cid, Candidate(cid))
        c.lexical_rank = rank
        c.score += lexical_weight / (rrf_k + rank)
    # Ties (same fused score) go to the better dense rank, then lower id, so
    # results are deterministic.
    return sorted(by_id.values(), key=lambda c: (-c.score, c.dense_rank or 10**9, c.chunk_id))


def convex_fusion(
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    *,
    dense_weight: float = 1.0,
    lexical_weight: float = 1.0,
) -> list[Candidate]:
    """Fuse by a weighted sum of min-max normalised scores; best first.

    Unlike rank fusion this keeps *how much* better a passage is: a passage
    found only by the vector index but very close to the question is not
    buried under passages that are mediocre in both lists (Bruch et al.,
    "An Analysis of Fusion Functions for Hybrid Retrieval", 2023). A passage
    missing from one list scores 0 for it (it was below that list's cut).
    """
    def norm(pairs):
        if not pairs:
            return {}
        scores = [s for _, s in pairs]
        lo, hi = min(scores), max(scores)
        span = hi - lo
        return {cid: ((s - lo) / span if span > 0 else 1.0) for cid, s in pairs}

    nd, nl = norm(dense), norm(lexical)
    by_id: dict[int, Candidate] = {}
    for rank, (cid, score) in enumerate(dense, start=1):
        c = by_id.setdefault(cid, Candidate(cid))
        c.dense, c.dense_rank = score, rank
    for rank, (cid, _score) in enumerate(lexical, start=1):
        by_id.setdefault(cid, Candidate(cid)).lexical_rank = rank
    for cid, c in by_id.items():
        c.score = dense_weight * nd.get(cid, 0.0) + lexical_weight * nl.get(cid, 0.0)
    return sorted(by_id.values(), key=lambda c: (-c.score, c.dense_rank or 10**9, c.chunk_id))


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    toks = words(normalize(text))
    if len(toks) < n:
        return {tuple(toks)} if toks else set()
    # zip over n shifted views: the same n-tuples as slicing, ~3x faster.
    return set(zip(*(toks[i:] for i in range(n))))


def near_duplicate(a: set, b: set, threshold: float = 0.8) -> bool:
    """True when the smaller shingle set is mostly inside the larger one."""
    if not a or not b:
        return False
    return len(a & b) / min(len(a), len(b)) >= threshold


def diversify(
    ordered: list[Candidate],
    doc_of: dict[int, int],
    text_of: dict[int, str],
    *,
    k: int,
    per_doc_limit: int,
) -> list[Candidate]:
    """Take the best ``k`` while limiting passages per document and dropping near duplicates.

    If the limits leave fewer than ``k`` (a corpus of one document), the
    per-document limit is relaxed rather than returning a short list;
    duplicates are never let back in.
    """
    chosen: list[Candidate] = []
    held_back: list[Candidate] = []
    seen_shingles: list[set] = []
    per_doc: dict[int, int] = {}
    for cand in ordered:
        sh = shingles(text_of.get(cand.chunk_id, ""))
        if any(near_duplicate(sh, other) for other in seen_shingles):
            continue
        doc = doc_of.get(cand.chunk_id)
        if per_doc_limit > 0 and per_doc.get(doc, 0) >= per_doc_limit:
            held_back.append(cand)
            seen_shingles.append(sh)
            continue
        chosen.append(cand)
        seen_shingles.append(sh)
        per_doc[doc] = per_doc.get(doc, 0) + 1
        if len(chosen) >= k:
            return chosen
    for cand in held_back:
        if len(chosen) >= k:
            break
        chosen.append(cand)
    chosen.sort(key=lambda c: -c.score)
    return chosen
