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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Coverage:
    """How much of the question the retrieved passages speak about.

    ``share``: the question's content words found in the passages or their
    titles, each weighted by its rarity in the store (IDF), so "melatonin"
    counts for more than "pupils". ``missing``: *specific* words not found at
    all: names (a capitalised word after the first: "Kent", "UCAS"), numbers
    and years ("2026"), and words the store has never seen. A question about
    Kent answered from Surrey's report is the typical confident wrong answer;
    a missing specific word is the best evidence a bi-encoder has of it.
    """

    share: float
    missing: tuple[str, ...] = ()


def question_coverage(
    question: str,
    hits: Sequence[Hit],
    weights: dict[str, float] | None = None,
    alternatives: Sequence[str] = (),
    unseen_weight: float | None = None,
    known: frozenset[str] = frozenset(),
) -> Coverage:
    """:class:`Coverage` of ``question`` by ``hits``.

    ``weights`` maps lower-case words to their IDF in the store (absent: 1);
    ``unseen_weight`` is the IDF of a word found in no passage of the store.
    ``alternatives`` are the vocabulary expansions searched for the question:
    an acronym ("EHCPs", "CLA") counts as found when a passage uses one of
    them ("education, health and care plan"). ``known`` holds the
    vocabulary's acronyms (lower case): domain terms, never counted as a
    missing name.
    """
    weights = weights or {}
    seen: set[str] = set()
    blob_parts = []
    for h in hits:
        for text in (h.chunk.text, h.document.title):
            seen.update(_stem(w) for w in words(text))
            blob_parts.append(" ".join(_stem(w) for w in words(text)))
    blob = " " + " ".join(blob_parts) + " "
    alt_found = any(f" {' '.join(_stem(w) for w in words(a))} " in blob for a in alternatives if words(a))
    stop = set(query_terms(question, keep_stopwords=True)) - set(query_terms(question))
    total = found = 0.0
    missing: list[str] = []
    tokens = re.findall(r"[^\W_]+(?:['’][^\W_]+)*", question)
    for i, tok in enumerate(tokens):
        low = re.sub(r"['’]s$", "", tok.lower())
        if any(ch.isdigit() for ch in low):
            low = re.sub(r"(?<=\d)s$", "", low)  # "Year 10s", "the 1990s"
        parts = words(low)
        if not parts or low in stop or all(p in stop for p in parts):
            continue
        weight = max(weights.get(p, 1.0) for p in parts)
        covered = all(_stem(p) in seen for p in parts)
        acronym = len(tok) >= 2 and tok[:2].isupper()
        if not covered and acronym and alt_found:
            covered = True
        total += weight
        if covered:
            found += weight
            continue
        if low in known or low.rstrip("s") in known:
            continue
        specific = (
            (i > 0 and tok[0].isupper())
            or any(ch.isdigit() for ch in tok)
            or (unseen_weight is not None and weight >= unseen_weight - 1e-6)
        )
        if specific:
            missing.append(tok)
    return Coverage(found / total if total else 1.0, tuple(dict.fromkeys(missing)))


def compose_answer(
    question: str,
    query_vec: np.ndarray,
    hits: Sequence[Hit],
    embedder: Embedder,
    settings: Settings,
    also_searched: tuple[str, ...] = (),
    term_weights: dict[str, float] | None = None,
    alternatives: Sequence[str] = (),
    unseen_weight: float | None = None,
    known: frozenset[str] = frozenset(),
) -> Answer:
    """Choose up to ``settings.answer_sentences`` cited sentences, or abstain.

    Confidence = best sentence cosine + ``coverage_weight`` x the weighted
    share of question words found - ``missing_term_penalty`` if a specific
    word (name, number, word unknown to the store) is found in no passage
    (:func:`question_coverage`); below ``abstain_threshold`` the answer
    abstains. ``term_weights``, ``alternatives``, ``unseen_weight`` and ``known`` are
    passed to :func:`question_coverage`.
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
    cov = question_coverage(question, hits, term_weights, alternatives, unseen_weight, known)
    confidence = best_cos + settings.coverage_weight * cov.share - settings.missing_term_penalty * bool(cov.missing)
    if confidence < settings.abstain_threshold:
        not_found = f"; not found: {', '.join(cov.missing)}" if cov.missing else ""
        return Answer(
            question, (), hits, True, confidence, also_searched,
            reason=f"confidence {confidence:.2f} (best sentence {best_cos:.2f}, question words found "
                   f"{cov.share:.0%}{not_found}) < {settings.abstain_threshold:.2f}",
            missing=cov.missing,
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
