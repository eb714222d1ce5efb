"""The learned ranker: a second stage over what the first stage already knows.

The first stage fuses two scores (cosine, BM25) into one. A passage that
holds the answer is usually among the fused top 30 but often below the top
5 (bench/QUALITY.md, "Learned ranker"). What separates it is mostly visible
in question and passage together: does the passage contain the question's
rarest word, its phrases ("designated teacher", not "designated" here and
"teacher" there), the place it names, a time when the question asks "how
long"? This module turns each candidate into a few such features and scores
them with a linear model trained by ``python -m ingest.ranker_train`` on
question files with known answers (the model is a JSON file of weights: no
pickle, nothing to download; the features of 30 passages take ~15 ms).

Kept as a linear model over hand-named features rather than a cross-encoder:
with no cross-encoder weights obtainable offline, the one trained in the
project (search/data/reranker) lost to the first stage it was meant to
improve (bench/QUALITY.md, "Reranking"), while these features carry the
signals the failures showed; every weight can be read and explained.

:func:`features` is the one place features are computed: training and
search call it alike, so they cannot drift apart.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import intent
from .answer import KIND_PRIOR, _CUES, _OPPOSITE, _stem, candidate_sentences
from .errors import ModelError
from .text import words

#: The bundled weights (``python -m ingest.ranker_train`` writes them).
BUNDLED = Path(__file__).resolve().parent / "data" / "ranker.json"
#: Bump when a feature changes meaning: weights of another format are refused.
RANKER_FORMAT = 2

FEATURES = (
    "fused",            # the first stage's fused score, min-max over the candidates
    "inv_rank",         # 1 / log2(1 + fused rank)
    "dense",            # cosine of question and passage
    "dense_gap",        # that cosine minus the best cosine among the candidates
    "bm25",             # BM25 over the best BM25 among the candidates
    "coverage",         # IDF-weighted share of the question's words in the passage
    "title_coverage",   # ... in the passage or its document's title
    "rarest",           # the question's rarest word is in the passage or title
    "phrases",          # share of the question's adjacent word pairs adjacent in the passage
    "specific_missing", # a name or number of the question is in neither passage nor title
    "cue",              # the passage has the cue the question's kind wants (+1), its opposite (-1)
    "kind_prior",       # guidance and research before events, for "what works" questions
    "named",            # the passage is from a document the question names
    "sentences",        # usable answer sentences in the passage (0..1)
    "sentence_coverage",  # the best single sentence's IDF-weighted share of the question's words
    "sentence_coverage_gap",  # that share minus the best among the candidates
    "quantity",         # the question asks how many / what share: the passage has a number (+1) or none (-1)
)

#: A question that wants a number ("how many pupils have SEND?", "what share of ...").
QUANTITY_QUESTION = re.compile(
    r"\b(how (many|much|big|large|common)|what (share|proportion|percentage|per ?cent|number|fraction|"
    r"rate|amount)|percentage of|proportion of|number of)\b", re.I)
#: A passage that states one.
NUMBER = re.compile(r"\d|\b(million|thousand|hundred|half|third|quarter|per ?cent|twice|double)\b", re.I)


@dataclass(frozen=True)
class RankContext:
    """What the features need to know of the question and the first stage.

    ``acronyms``: its words the vocabulary knows as acronyms ("send",
    "plac"), counted as present in a text holding one of ``alternatives``
    (the expansions searched: "special educational needs and disabilities");
    ``quantity``: it asks for a number (:data:`QUANTITY_QUESTION`);
    ``terms``: the question's content words in order; ``weights``: their IDF
    in the store; ``specific``: the question's names and numbers (lower
    case); ``kind``/``wants_list``: its intent (:mod:`search.intent`);
    ``bm25``: each candidate's BM25 (absent: 0); ``named``: chunk ids of the
    documents the question names.
    """

    terms: tuple[str, ...]
    weights: Mapping[str, float] = field(default_factory=dict)
    specific: tuple[str, ...] = ()
    kind: str = intent.FACTUAL
    wants_list: bool = False
    quantity: bool = False
    acronyms: frozenset[str] = frozenset()
    alternatives: tuple[str, ...] = ()
    bm25: Mapping[int, float] = field(default_factory=dict)
    named: frozenset[int] = frozenset()


def specific_words(question: str, known: frozenset[str] = frozenset(), stop: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The question's names and numbers: capitalised words after the first, and any word with a digit.

    ``known`` (the vocabulary's acronyms) and ``stop`` are left out: "PLAC"
    is a domain term the passage may spell out, not a name it must contain.
    """
    out = []
    toks = re.findall(r"[^\W_]+(?:['’][^\W_]+)*", question)
    for i, tok in enumerate(toks):
        low = re.sub(r"['’]s$", "", tok.lower())
        if low in stop or low in known or low.rstrip("s") in known:
            continue
        if (i > 0 and tok[0].isupper()) or any(ch.isdigit() for ch in tok):
            out.append(low)
    return tuple(dict.fromkeys(out))


class _Present:
    """The stems a text holds, with the question's acronyms added when it spells one out."""

    def __init__(self, ctx: RankContext):
        self.acronyms = {_stem(a) for a in ctx.acronyms}
        forms = [tuple(_stem(w) for w in words(a.lower())) for a in ctx.alternatives]
        self.forms = [f for f in forms if f]

    def __call__(self, stems: set[str]) -> set[str]:
        if self.acronyms and any(all(w in stems for w in form) for form in self.forms):
            return stems | self.acronyms
        return stems


def _pairs(stems: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(stems, stems[1:]))


def features(ctx: RankContext, candidates: Sequence, texts: Sequence[str], titles: Sequence[str],
             kinds: Sequence[str]) -> np.ndarray:
    """One row of :data:`FEATURES` per candidate (best fused first).

    ``candidates``: :class:`search.hybrid.Candidate` (``chunk_id``, ``score``,
    ``dense``); ``texts``/``titles``/``kinds``: each one's passage text,
    document title and document kind.
    """
    n = len(candidates)
    x = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if not n:
        return x
    fused = np.asarray([c.score for c in candidates], dtype=np.float32)
    dense = np.asarray([c.dense if c.dense is not None else np.nan for c in candidates], dtype=np.float32)
    floor = np.nanmin(dense) if np.isfinite(dense).any() else 0.0
    dense = np.where(np.isfinite(dense), dense, floor)
    bm25 = np.asarray([ctx.bm25.get(c.chunk_id, 0.0) for c in candidates], dtype=np.float32)
    span = float(fused.max() - fused.min())
    x[:, 0] = (fused - fused.min()) / span if span > 0 else 1.0
    x[:, 1] = 1.0 / np.log2(2.0 + np.arange(n))
    x[:, 2] = dense
    x[:, 3] = dense - dense.max()
    x[:, 4] = bm25 / bm25.max() if bm25.max() > 0 else 0.0
    q_stems = [_stem(t) for t in ctx.terms]
    weight = {s: ctx.weights.get(t, 1.0) for t, s in zip(ctx.terms, q_stems)}
    total = sum(weight.values())
    rarest = max(weight, key=weight.get) if weight else None
    q_pairs = _pairs(q_stems)
    specific = [_stem(w) for w in ctx.specific]
    present = _Present(ctx)
    cue = _CUES.get(ctx.kind)
    opposite = _CUES.get(_OPPOSITE.get(ctx.kind, ""))
    for i, (c, text, title, kind) in enumerate(zip(candidates, texts, titles, kinds)):
        body = [_stem(w) for w in words(text.lower())]
        body_set = present(set(body))
        both = present(body_set | {_stem(w) for w in words(title.lower())})
        if total:
            x[i, 5] = sum(w for s, w in weight.items() if s in body_set) / total
            x[i, 6] = sum(w for s, w in weight.items() if s in both) / total
        x[i, 7] = float(rarest is not None and rarest in both)
        if q_pairs:
            content = [s for s in body if s in weight]
            x[i, 8] = len(q_pairs & _pairs(content)) / len(q_pairs)
        x[i, 9] = float(any(s not in both for s in specific))
        if cue is not None and cue.search(text):
            x[i, 10] = 1.0
        elif opposite is not None and opposite.search(text):
            x[i, 10] = -1.0
        if ctx.wants_list:
            x[i, 11] = KIND_PRIOR.get(kind, 0.0) / 0.05
        x[i, 12] = float(c.chunk_id in ctx.named)
        if ctx.quantity:
            x[i, FEATURES.index("quantity")] = 1.0 if NUMBER.search(text) else -1.0
    return x


def all_features(ctx: RankContext, candidates, texts, titles, kinds) -> np.ndarray:
    """:func:`features` with the sentence columns filled: how many sentences
    an answer could use (capped at 5, over 5) and how much of the question
    the best of them covers on its own (the answer is one sentence, not a
    passage that mentions each word once somewhere)."""
    from types import SimpleNamespace

    x = features(ctx, candidates, texts, titles, kinds)
    if not len(x):
        return x
    weight: dict[str, float] = {}
    for t in ctx.terms:
        weight[_stem(t)] = max(weight.get(_stem(t), 0.0), ctx.weights.get(t, 1.0))
    total = sum(weight.values())
    count, best = FEATURES.index("sentences"), FEATURES.index("sentence_coverage")
    present = _Present(ctx)
    for i, text in enumerate(texts):
        sents = candidate_sentences([SimpleNamespace(chunk=SimpleNamespace(text=text))])
        x[i, count] = min(len(sents), 5) / 5.0
        if total:
            for sent in sents:
                stems = present({_stem(w) for w in words(sent.text.lower())})
                x[i, best] = max(x[i, best], sum(w for st, w in weight.items() if st in stems) / total)
    x[:, best + 1] = x[:, best] - x[:, best].max()
    return x


class LearnedRanker:
    """A linear model over :data:`FEATURES`, read from a JSON file.

    The file holds ``format``, ``features`` (names, in order; must equal
    :data:`FEATURES`), ``mean``/``scale`` (standardisation) and ``weights``,
    plus how it was trained (``trained``), which the README and
    bench/QUALITY.md quote.
    """

    def __init__(self, path: str | Path = BUNDLED):
        self.path = Path(path)
        try:
            info = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"no usable ranker in {self.path}: {exc}") from exc
        if info.get("format") != RANKER_FORMAT or tuple(info.get("features", ())) != FEATURES:
            raise ModelError(f"{self.path}: ranker of another format or feature set: retrain it with "
                             "python -m ingest.ranker_train")
        self.info = info
        self.mean = np.asarray(info["mean"], dtype=np.float32)
        self.scale = np.asarray(info["scale"], dtype=np.float32)
        self.weights = np.asarray(info["weights"], dtype=np.float32)
        if not (len(self.mean) == len(self.scale) == len(self.weights) == len(FEATURES)):
            raise ModelError(f"{self.path}: weights do not match the {len(FEATURES)} features")
        self.name = str(info.get("name", self.path.stem))
        #: Queries longer than any training question keep the first stage's
        #: order: the weights were fitted on questions of up to 24 words, and
        #: on ArguAna (whole arguments as queries, 100+ words) they lost
        #: nDCG@10 0.5253 -> 0.4814 (bench/QUALITY.md "Learned ranker on BEIR").
        self.max_query_words = int(info.get("max_query_words") or 0)

    def applies_to(self, query: str) -> bool:
        """Whether ``query`` is like the questions the weights were fitted on (not longer)."""
        return not self.max_query_words or len(words(query)) <= self.max_query_words

    def score(self, x: np.ndarray) -> np.ndarray:
        """One score per row of ``x`` (higher: more likely to hold the answer)."""
        return ((x - self.mean) / self.scale) @ self.weights


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of each feature column (scale 1 where a column is constant)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale > 1e-6, scale, 1.0)


def fit_listwise(groups: Sequence[tuple[np.ndarray, np.ndarray]], *, l2: float = 1.0,
                 mean: np.ndarray | None = None, scale: np.ndarray | None = None) -> dict:
    """Fit linear weights by listwise softmax cross-entropy (ListNet, top one).

    ``groups``: per question, the candidates' feature rows and their labels
    (1: the passage holds an answer). Questions without a positive add
    nothing to a listwise loss and are skipped. Returns mean, scale, weights.
    """
    from scipy.optimize import minimize

    usable = [(x, y) for x, y in groups if len(x) and y.sum() > 0]
    if not usable:
        raise ValueError("no question has a passage holding its answer among the candidates")
    if mean is None or scale is None:
        mean, scale = standardise(np.concatenate([x for x, _ in usable]))
    zs = [((x - mean) / scale).astype(np.float64) for x, _ in usable]
    ts = [y / y.sum() for _, y in usable]

    def loss(w):
        total, grad = l2 * float(w @ w) / 2, l2 * w
        for z, t in zip(zs, ts):
            s = z @ w
            s = s - s.max()
            p = np.exp(s) / np.exp(s).sum()
            total += -float(t @ np.log(p + 1e-12)) / len(zs)
            grad = grad + z.T @ (p - t) / len(zs)
        return total, grad

    w0 = np.zeros(zs[0].shape[1])
    w0[0] = 1.0  # start from the first stage's order
    res = minimize(loss, w0, jac=True, method="L-BFGS-B")
    return {"mean": [float(v) for v in mean], "scale": [float(v) for v in scale],
            "weights": [round(float(v), 6) for v in res.x]}


def order(scores: np.ndarray) -> list[int]:
    """Indices best first; ties keep the first stage's order."""
    return [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")]
