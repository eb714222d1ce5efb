"""Which sentences answer: a learned scorer for the answer's sentences.

The answer (:func:`search.answer.compose_answer`) is a few sentences of the
top passages. Which ones used to be chosen by a hand-set sum: sentence
cosine + 0.15 x word overlap - 0.01 a place down the ranking + a cue bonus.
On the held-out sets that cited a passage holding the answer 0.1-0.2 less
often than the answer passage was in the top 5 (bench/QUALITY.md): the
sentence closest to the question in vector space is often a restatement of
it in a weaker passage, while the ranker's first passage holds the answer.

This scorer weighs the same kinds of evidence with fitted weights: the
sentence's cosine, the question's words it holds (IDF-weighted, acronyms
counted where spelled out, its rarest word, its phrases, a name or number it
lacks), the cue the question's kind wants, and where it sits: its passage's
place in the ranking and that passage's coverage. The weights are a JSON
file fitted by ``python -m ingest.answer_train`` on the training question
files (labels: the sentence holds an answer string; weaker, any sentence of
a passage that does). Same linear model and loss as the learned ranker
(:mod:`search.ltr`); ~1 ms for 100 sentences.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .answer import CUE_BONUS, KIND_PRIOR, Question, Sentence, _cue_score, _stem, hand_scores
from .lexical import STOPWORDS
from .ltr import NUMBER, QUANTITY_QUESTION, LearnedRanker, RankContext, _pairs, _Present, specific_words
from .text import words
from .types import Hit

#: The bundled weights (``python -m ingest.answer_train`` writes them).
BUNDLED = Path(__file__).resolve().parent / "data" / "answerer.json"
#: Bump when a feature changes meaning: weights of another format are refused.
SELECTOR_FORMAT = 1

SENTENCE_FEATURES = (
    "hand_set",          # the hand-set score (search.answer.hand_scores): fitting starts from its order
    "cosine",            # cosine of question and sentence
    "cosine_gap",        # that cosine minus the best among the candidate sentences
    "overlap",           # share of the question's content words in the sentence (unweighted)
    "coverage",          # IDF-weighted share of the question's words in the sentence
    "coverage_gap",      # that share minus the best among the candidate sentences
    "rarest",            # the question's rarest word is in the sentence
    "phrases",           # share of the question's adjacent word pairs adjacent in the sentence
    "specific_missing",  # a name or number of the question is in neither the sentence nor its document's title
    "cue",               # the sentence has the cue the question's kind wants (+1) or its opposite / lacks a required one (-1)
    "kind_prior",        # guidance and research before events, for list questions
    "quantity",          # a how-many question: the sentence has a number (+1) or none (-1)
    "passage_rank",      # 1 / log2(1 + the passage's place in the ranking)
    "passage_coverage",  # IDF-weighted share of the question's words in the sentence's passage or title
    "passage_cosine_gap",  # the passage's cosine minus the best passage's
    "first",             # the first usable sentence of its passage
    "list_item",         # it was a bullet or numbered item in the source
    "length",            # words, over 60 (capped at 1)
)


class SentenceScorer(LearnedRanker):
    """The linear model over :data:`SENTENCE_FEATURES` (``score(rows)``, higher: more likely the answer)."""

    FEATURES = SENTENCE_FEATURES
    FORMAT = SELECTOR_FORMAT
    TRAINED_BY = "python -m ingest.answer_train"

    def __init__(self, path: str | Path = BUNDLED):
        super().__init__(path)

    def scores(self, question: Question, hits: Sequence[Hit], cands: Sequence[Sentence],
               cos: np.ndarray) -> np.ndarray:
        """One score per candidate sentence."""
        return self.score(sentence_features(question, hits, cands, cos))


def sentence_features(question: Question, hits: Sequence[Hit], cands: Sequence[Sentence],
                      cos: np.ndarray) -> np.ndarray:
    """One row of :data:`SENTENCE_FEATURES` per candidate sentence (``cands`` of ``hits``; ``cos`` their cosines)."""
    x = np.zeros((len(cands), len(SENTENCE_FEATURES)), dtype=np.float32)
    if not len(cands):
        return x
    col = {name: i for i, name in enumerate(SENTENCE_FEATURES)}
    asked = question.asked
    kind, wants_list = (asked.kind, asked.wants_list) if asked is not None else ("factual", False)
    known = question.known
    acronyms = frozenset(t for t in question.terms if t in known or t.rstrip("s") in known)
    present = _Present(RankContext(terms=question.terms, acronyms=acronyms, alternatives=question.alternatives))
    weight: dict[str, float] = {}
    for t in question.terms:
        weight[_stem(t)] = max(weight.get(_stem(t), 0.0), question.weights.get(t, 1.0))
    total = sum(weight.values())
    rarest = max(weight, key=weight.get) if weight else None
    q_pairs = _pairs([_stem(t) for t in question.terms])
    specific = [_stem(w) for w in specific_words(question.text, known, STOPWORDS)]
    quantity = bool(QUANTITY_QUESTION.search(question.text))

    def share(stems: set[str]) -> float:
        return sum(w for s, w in weight.items() if s in stems) / total if total else 0.0

    title_stems, passage_cov = [], []
    for h in hits:
        title = {_stem(w) for w in words(h.document.title.lower())}
        title_stems.append(title)
        passage_cov.append(share(present({_stem(w) for w in words(h.chunk.text.lower())} | title)))
    dense = np.asarray([h.dense if h.dense is not None else np.nan for h in hits], dtype=np.float32)
    best_dense = float(np.nanmax(dense)) if np.isfinite(dense).any() else 0.0
    seen_refs: set[int] = set()
    for i, (c, sim) in enumerate(zip(cands, cos)):
        body = [_stem(w) for w in words(c.text.lower())]
        stems = present(set(body))
        x[i, col["cosine"]] = float(sim)
        x[i, col["overlap"]] = len(set(weight) & stems) / len(weight) if weight else 0.0
        x[i, col["coverage"]] = share(stems)
        x[i, col["rarest"]] = float(rarest is not None and rarest in stems)
        if q_pairs:
            x[i, col["phrases"]] = len(q_pairs & _pairs([s for s in body if s in weight])) / len(q_pairs)
        x[i, col["specific_missing"]] = float(any(s not in stems and s not in title_stems[c.ref - 1] for s in specific))
        x[i, col["cue"]] = _cue_score(kind, c.text) / CUE_BONUS
        if wants_list:
            x[i, col["kind_prior"]] = KIND_PRIOR.get(hits[c.ref - 1].document.kind, 0.0) / 0.05
        if quantity:
            x[i, col["quantity"]] = 1.0 if NUMBER.search(c.text) else -1.0
        x[i, col["passage_rank"]] = 1.0 / np.log2(1.0 + c.ref)
        x[i, col["passage_coverage"]] = passage_cov[c.ref - 1]
        d = dense[c.ref - 1]
        x[i, col["passage_cosine_gap"]] = float(d - best_dense) if np.isfinite(d) else -0.3
        x[i, col["first"]] = float(c.ref not in seen_refs)
        seen_refs.add(c.ref)
        x[i, col["list_item"]] = float(c.list_item)
        x[i, col["length"]] = min(len(body), 60) / 60.0
    x[:, col["hand_set"]] = hand_scores(question, asked, hits, cands, cos) if asked is not None else 0.0
    x[:, col["cosine_gap"]] = x[:, col["cosine"]] - x[:, col["cosine"]].max()
    x[:, col["coverage_gap"]] = x[:, col["coverage"]] - x[:, col["coverage"]].max()
    return x
