"""Extractive answers: the passages' own sentences, each cited, or abstention.

No language model writes anything. The answer is the few sentences from the
retrieved passages that are most similar to the question (cosine similarity of
sentence embeddings, nudged by keyword overlap), without repeats, each
followed by the number of a passage that contains it verbatim. That
containment is checked in code before a sentence is used.

When even the best sentence is not similar enough to the question
(``abstain_threshold``), the answer says the sources do not answer it and
still lists the closest passages.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from .embedding import Embedder
from .hybrid import near_duplicate, shingles
from .lexical import query_terms
from .settings import Settings
from .text import sentence_spans, words
from .types import Answer, AnswerSentence, Hit

# Sentences shorter than this carry no answer ("Video", "Share This Page").
MIN_WORDS = 5
# Longer "sentences" are usually run-on lists from PDFs; cut them out.
MAX_WORDS = 90


def _stem(w: str) -> str:
    """A light matching key: "pupils"/"pupil", "keynotes"/"keynote",
    "studies"/"study", "children's"/"children" all meet.

    Not a real stemmer (no dependency for one); it only has to make a word
    and its plural or possessive compare equal.
    """
    w = w.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif w.endswith(("sses", "xes", "zes", "ches", "shes")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    return w[:-1] if len(w) > 3 and w.endswith("e") else w


def candidate_sentences(hits: Sequence[Hit]) -> list[tuple[int, str]]:
    """(1-based passage number, sentence) for every usable sentence."""
    out = []
    for n, hit in enumerate(hits, start=1):
        text = hit.chunk.text
        for a, b in sentence_spans(text):
            sent = text[a:b]
            count = len(words(sent))
            if count < MIN_WORDS or count > MAX_WORDS:
                continue
            # Headings and list stubs without a verb-ish ending read badly
            # as an answer; require some sentence punctuation or length.
            if not re.search(r"[.!?:;)]$", sent) and count < 12:
                continue
            # A question in the source ("so what is the role of the teacher?")
            # restates the problem; it never answers it.
            if sent.rstrip("\"'”’)").endswith("?"):
                continue
            out.append((n, sent))
    return out


def term_coverage(question: str, hits: Sequence[Hit], weights: dict[str, float] | None = None) -> float:
    """Share of the question's content words (weighted by rarity) found in the passages.

    A question whose rare words ("melatonin", "UCAS", "salary") appear in no
    retrieved passage or its title is usually one the sources do not answer,
    however similar the passages sound. ``weights`` maps each term to its IDF
    in the store; missing terms weigh 1.
    """
    terms = query_terms(question)
    if not terms:
        return 1.0
    seen: set[str] = set()
    for h in hits:
        seen.update(_stem(w) for w in words(h.chunk.text))
        seen.update(_stem(w) for w in words(h.document.title))
    weights = weights or {}
    total = sum(weights.get(t, 1.0) for t in terms)
    found = sum(weights.get(t, 1.0) for t in terms if _stem(t) in seen)
    return found / total if total else 1.0


def compose_answer(
    question: str,
    query_vec: np.ndarray,
    hits: Sequence[Hit],
    embedder: Embedder,
    settings: Settings,
    also_searched: tuple[str, ...] = (),
    term_weights: dict[str, float] | None = None,
) -> Answer:
    """Choose up to ``settings.answer_sentences`` cited sentences, or abstain.

    Confidence = best sentence cosine + ``coverage_weight`` x term coverage
    (:func:`term_coverage`); below ``abstain_threshold`` the answer abstains.
    """
    hits = tuple(hits)
    cands = candidate_sentences(hits)
    if not cands:
        return Answer(question, (), hits, True, 0.0, also_searched, reason="no passage has a usable sentence")
    vecs = embedder.encode([s for _, s in cands], batch_size=64)
    cos = vecs @ np.asarray(query_vec, dtype=np.float32).reshape(-1)
    q_stems = {_stem(t) for t in query_terms(question)}
    scores = []
    for (n, sent), c in zip(cands, cos):
        s_stems = {_stem(w) for w in query_terms(sent)}
        overlap = len(q_stems & s_stems) / len(q_stems) if q_stems else 0.0
        # Cosine decides; keyword overlap breaks near-ties toward sentences
        # that use the question's own words; earlier passages (better fused
        # rank) get a slight edge.
        scores.append(float(c) + 0.15 * overlap - 0.01 * (n - 1))
    order = np.argsort(-np.asarray(scores), kind="stable")
    best_cos = float(cos.max())
    coverage = term_coverage(question, hits, term_weights)
    confidence = best_cos + settings.coverage_weight * coverage
    if confidence < settings.abstain_threshold:
        return Answer(
            question, (), hits, True, confidence, also_searched,
            reason=f"confidence {confidence:.2f} (best sentence {best_cos:.2f}, question words found "
                   f"{coverage:.0%}) < {settings.abstain_threshold:.2f}",
        )
    chosen: list[AnswerSentence] = []
    chosen_sh: list[set] = []
    floor = best_cos - 0.25
    for i in order:
        n, sent = cands[i]
        if cos[i] < floor and chosen:
            break
        sh = shingles(sent, 3)
        if any(near_duplicate(sh, other, 0.6) for other in chosen_sh):
            continue
        # Never assume: the sentence must be in the passage it cites.
        if sent not in hits[n - 1].chunk.text:
            continue
        chosen.append(AnswerSentence(sent, n, round(scores[i], 4)))
        chosen_sh.append(sh)
        if len(chosen) >= settings.answer_sentences:
            break
    return Answer(question, tuple(chosen), hits, False, confidence, also_searched)
