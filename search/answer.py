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
    """A crude suffix stripper, enough to match "pupils" with "pupil"."""
    for suffix in ("ing", "ies", "es", "s", "ed"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


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


def compose_answer(
    question: str,
    query_vec: np.ndarray,
    hits: Sequence[Hit],
    embedder: Embedder,
    settings: Settings,
    also_searched: tuple[str, ...] = (),
) -> Answer:
    """Choose up to ``settings.answer_sentences`` cited sentences, or abstain."""
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
    if best_cos < settings.abstain_threshold:
        return Answer(
            question, (), hits, True, best_cos, also_searched,
            reason=f"best sentence similarity {best_cos:.2f} < {settings.abstain_threshold:.2f}",
        )
    chosen: list[AnswerSentence] = []
    chosen_sh: list[set] = []
    floor = max(settings.abstain_threshold, best_cos - 0.25)
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
    return Answer(question, tuple(chosen), hits, False, best_cos, also_searched)
