"""Measuring retrieval and abstention on a question file.

File format (JSON lines, as ``shared/dev-eval/seeds.jsonl``)::

    {"id": "s01", "question": "...", "answers": ["substring", ...], "source": "..."}

A question is a hit when any of its ``answers`` occurs in one of the top-k
passage texts (case-insensitive, whitespace collapsed, typographic quotes
folded). Lines with empty ``answers`` are unanswerable: they count as correct
when ``ask`` abstains. Answerable lines are scored on their passages whether
or not ``ask`` abstains; abstaining on them is counted in ``abstain_wrong``.

Answer-level figures score what a reader of ``ask`` gets: ``useful`` when
the answer did not abstain and a passage that one of its sentences cites
holds an answer string; ``exact`` when the answer's sentences themselves do.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .api import Engine
from .errors import EquisearchError

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def match_text(text: str) -> str:
    """The form both passages and answer strings are compared in."""
    return " ".join(text.translate(_QUOTES).lower().split())


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def load_eval(path: str | Path) -> list[EvalItem]:
    """Read a question file; a malformed line raises with its line number."""
    items = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EquisearchError(f"cannot read {path}: {exc.strerror}") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(
                EvalItem(
                    id=str(row.get("id", n)),
                    question=str(row["question"]),
                    answers=tuple(str(a) for a in row.get("answers") or ()),
                    source=str(row.get("source", "")),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EquisearchError(
                f"{path}:{n}: not a question line ({exc}): each line needs a JSON object with 'question' and 'answers'"
            ) from exc
    if not items:
        raise EquisearchError(f"{path} has no questions")
    return items


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


def evaluate(engine: Engine, items: list[EvalItem], k: int = 5) -> dict:
    """Run every question; return the report with stable keys (see README)."""
    if items:
        engine.search(items[0].question, k=k)  # warm the model and index
    per_question = []
    latencies = []
    ask_latencies = []
    for item in items:
        t0 = time.perf_counter()
        result = engine.search(item.question, k=k)
        latencies.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        answer = engine.ask(item.question, k=k)
        ask_latencies.append((time.perf_counter() - t0) * 1000)
        rank = None
        useful = exact = False
        if item.answerable:
            wanted = [match_text(a) for a in item.answers]
            for i, hit in enumerate(result.hits, start=1):
                text = match_text(hit.chunk.text)
                if any(w in text for w in wanted):
                    rank = i
                    break
            if not answer.abstained:
                # What a reader gets: a cited passage holds the answer
                # (useful), or the answer's own sentences do (exact).
                cited = {s.ref for s in answer.sentences}
                useful = any(any(w in match_text(answer.passages[r - 1].chunk.text) for w in wanted)
                             for r in cited if 0 < r <= len(answer.passages))
                said = match_text(" ".join(s.text for s in answer.sentences))
                exact = any(w in said for w in wanted)
        hit_ok = rank is not None if item.answerable else answer.abstained
        per_question.append(
            {
                "id": item.id,
                "question": item.question,
                "answerable": item.answerable,
                "hit": hit_ok,
                "rank": rank,
                "abstained": answer.abstained,
                "useful": useful,
                "exact": exact,
                "intent": answer.intent,
                "confidence": round(answer.confidence, 4),
                "latency_ms": round(latencies[-1], 2),
                "top_titles": [h.citation.title for h in result.hits],
            }
        )
    answerable = [p for p in per_question if p["answerable"]]
    unanswerable = [p for p in per_question if not p["answerable"]]
    return {
        "n": len(items),
        "k": k,
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "recall_at_k": _share(p["hit"] for p in answerable),
        "mrr": round(sum(1 / p["rank"] for p in answerable if p["rank"]) / len(answerable), 4) if answerable else None,
        "useful": _share(p["useful"] for p in answerable),
        "exact": _share(p["exact"] for p in answerable),
        "abstain_correct": _share(p["abstained"] for p in unanswerable),
        "abstain_wrong": _share(p["abstained"] for p in answerable),
        "latency_ms": {"p50": round(_percentile(latencies, 50), 2), "p95": round(_percentile(latencies, 95), 2)},
        "ask_latency_ms": {"p50": round(_percentile(ask_latencies, 50), 2),
                           "p95": round(_percentile(ask_latencies, 95), 2)},
        "per_question": per_question,
    }


def _share(flags) -> float | None:
    flags = list(flags)
    return round(sum(bool(f) for f in flags) / len(flags), 4) if flags else None


def ndcg_at_k(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains and log2 discounts (trec_eval's ndcg_cut, as BEIR reports)."""
    import math

    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: list[str], relevant: dict[str, int], k: int = 100) -> float:
    """Share of the relevant documents found in the top k."""
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0
