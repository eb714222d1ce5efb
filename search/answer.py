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
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from . import intent
from .embedding import Embedder
from .hybrid import near_duplicate, shingles
from .lexical import STOPWORDS, query_terms
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

    Not a real stemmer on purpose: it only makes a word and its plural,
    possessive or -ing/-ed form compare equal. Kept over Snowball's English
    stemmer because that one also merges derivations (inclusion/inclusive,
    difference/different), so a question whose answer is not in the store
    looks covered: on the starter store it turned 4 correct abstentions
    (of 272 questions) into answers and changed no score on the starter
    sets. Retrieval, where merging helps recall, has FTS5's Porter stemmer.
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


#: Leading layout marks that are not part of a sentence: bullets, list
#: numbering ("1.", "(a)", "ii)") and a statutory paragraph number ("69 If
#: the pupil..."). Only these (and whitespace) may differ between an answer
#: sentence and the passage text it is copied from (:func:`verbatim_in`).
_LEADING_MARKS = re.compile(
    r"^(?:[•·▪●◦‣∙\-–*]\s*|\(?(?:\d{1,3}|[a-z]|[ivx]{1,5})[.)]\s+|\d{1,3}\s+(?=[A-Z]))+"
)


def display_text(raw: str) -> str:
    """A sentence as shown in an answer: layout marks at its start dropped, whitespace collapsed."""
    return " ".join(_LEADING_MARKS.sub("", raw.strip()).split())


def verbatim_in(sentence: str, passage: str) -> bool:
    """True when ``sentence`` is the passage's own words, up to whitespace.

    The check every answer sentence passes before it is shown: an answer
    never says anything its passage does not say word for word.
    """
    return bool(sentence) and " ".join(sentence.split()) in " ".join(passage.split())


@dataclass(frozen=True)
class Sentence:
    """A candidate answer sentence: passage ``ref`` (1-based), its span in the passage, the text shown."""

    ref: int
    start: int
    end: int
    text: str
    list_item: bool = False


@dataclass(frozen=True)
class Question:
    """A question as the answer reads it: its words taken once, with what the
    store and the vocabulary said about them.

    ``terms`` are its content words (:func:`search.lexical.query_terms`),
    ``stopwords`` the stopwords it uses; ``weights`` maps a word to its IDF in
    the store (absent: 1) and ``unseen_weight`` is the IDF of a word no
    passage contains (None: unseen words count as 1). ``also_searched`` is the
    expansion shown to the reader, ``alternatives`` every expansion searched
    (an acronym counts as found when a passage uses one of them), ``known``
    the vocabulary's acronyms in lower case (domain terms, never a missing
    name) and ``spans`` where the question names a vocabulary term
    (:meth:`search.vocabulary.Vocabulary.spans`).
    """

    text: str
    vector: np.ndarray | None = None
    asked: intent.Intent | None = None
    terms: tuple[str, ...] = ()
    stopwords: frozenset[str] = frozenset()
    weights: Mapping[str, float] = field(default_factory=dict)
    unseen_weight: float | None = None
    also_searched: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    known: frozenset[str] = frozenset()
    spans: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, text: str, words_of: Sequence[str] | None = None, **fields) -> "Question":
        """The question ``text``; ``words_of``: its tokens with stopwords
        (``query_terms(text, keep_stopwords=True)``) when the caller has them."""
        every = list(words_of) if words_of is not None else query_terms(text, keep_stopwords=True)
        terms = tuple(w for w in every if w not in STOPWORDS)
        return cls(text, terms=terms, stopwords=frozenset(every) - set(terms), **fields)


def candidate_sentences(hits: Sequence[Hit]) -> list[Sentence]:
    """Every usable sentence of the retrieved passages."""
    out = []
    for n, hit in enumerate(hits, start=1):
        text = hit.chunk.text
        for a, b in sentence_spans(text):
            raw = text[a:b]
            shown = display_text(raw)
            count = len(words(shown))
            if count < MIN_WORDS or count > MAX_WORDS:
                continue
            # Headings and list stubs without a verb-ish ending read badly
            # as an answer; require some sentence punctuation or length.
            list_item = shown != " ".join(raw.split())
            # Headings, list items without their lead-in ("Supporting pupil
            # transition (e.g. KS3-4)") and table cells read badly as an
            # answer: a short one must end like a sentence.
            if count < 15 and not re.search(r"[.!?][\"'”’)\]]*$", shown):
                continue
            # A footnote or reference entry ("[^2]: EUniWell Teacher Education
            # Team. (n.d.).") is a source's apparatus, not what it says.
            if re.match(r"\[\^?\w{1,4}\]:", shown):
                continue
            # A question in the source ("so what is the role of the teacher?")
            # restates the problem; it never answers it.
            if shown.rstrip("\"'”’)").endswith("?"):
                continue
            # A lead-in that only announces a list ("Approaches that are:")
            # says nothing by itself.
            if shown.endswith(":") and count < 12:
                continue
            out.append(Sentence(n, a, b, shown, list_item=list_item))
    return out


#: Number words (as matching keys) and their digits, both ways: a passage's "three" covers a question's "3".
_NUMBER_WORDS = {_stem(w): str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({d: w for w, d in list(_NUMBER_WORDS.items())})


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


def question_coverage(question: Question, hits: Sequence[Hit]) -> Coverage:
    """:class:`Coverage` of ``question`` by ``hits``.

    Each word is weighted by ``question.weights`` (``unseen_weight`` for a
    word no passage of the store contains); an acronym ("EHCPs", "CLA")
    counts as found when a passage uses one of ``question.alternatives``
    ("education, health and care plan"); a word of ``question.known`` is a
    domain term, never counted as a missing name; a missing word inside one
    of ``question.spans`` is reported as the whole term ("EHC plan", not
    "EHC").
    """
    weights, alternatives, known = question.weights, question.alternatives, question.known
    unseen_weight, terms, stop = question.unseen_weight, question.spans, question.stopwords
    seen: set[str] = set()
    blob_parts = []
    for h in hits:
        for text in (h.chunk.text, h.document.title):
            seen.update(_stem(w) for w in words(text))
            blob_parts.append(" ".join(_stem(w) for w in words(text)))
        if h.document.date[:4].isdigit():
            seen.add(h.document.date[:4])  # "Surrey's 2018 inspection": the report's date is in no sentence
    seen.update([_NUMBER_WORDS[w] for w in seen & _NUMBER_WORDS.keys()])  # "3" in the question, "three" in the passage
    blob = " " + " ".join(blob_parts) + " "
    alt_found = any(f" {' '.join(_stem(w) for w in words(a))} " in blob for a in alternatives if words(a))
    total = found = 0.0
    missing: list[str] = []
    matches = list(re.finditer(r"[^\W_]+(?:['’][^\W_]+)*", question.text))
    tokens = [m.group(0) for m in matches]
    for i, tok in enumerate(tokens):
        low = re.sub(r"['’]s$", "", tok.lower())
        if any(ch.isdigit() for ch in low):
            low = re.sub(r"(?<=\d)s$", "", low)  # "Year 10s", "the 1990s"
        parts = words(low)
        if not parts or low in stop or all(p in stop for p in parts) or (len(low) == 1 and low.isalpha()):
            continue  # a lone letter ("KCSIE q:") names nothing
        weight = max(weights.get(p, 1.0) for p in parts)
        covered = all(_stem(p) in seen for p in parts)
        acronym = (len(tok) >= 2 and tok[:2].isupper()) or low in known  # "PLAC", or shorthand: "uni"
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
            at = matches[i].start()
            span = next(((a, b) for a, b in terms if a <= at < b), None)
            missing.append(question.text[span[0]:span[1]] if span else tok)
    return Coverage(found / total if total else 1.0, tuple(dict.fromkeys(missing)))


#: Cues in a sentence that fit each kind of question (search/intent.py).
_CUES = {
    intent.DEFINITION: re.compile(
        r"\b(means?|meaning|(is|are) defined|defined (as|in)|refers? to|(are|is) (those )?(children|pupils|a child|"
        r"a pupil|young people|people|someone|anyone) (who|whom|that)|includes?|counts? as|for the purposes? of|"
        r"is (a|an|the) [\w-]+ (who|that|which))\b", re.I),
    intent.NEEDS_IMPROVE: re.compile(
        r"\b(not (yet |always |consistently |sufficiently |routinely )?(good|effective|robust|timely|consistent|"
        r"strong|sufficient|adequate|clear|well)|too (many|few|slow|long|often|variable|late)|inconsistent(ly)?|"
        r"weak(ness|nesses|er)?|poor(ly)?|inadequate|requires? improvement|needs? to|should (ensure|improve|"
        r"strengthen|develop)|must (ensure|improve)|lack(s|ing)?|insufficient(ly)?|delays?|delayed|gaps?|variable|"
        r"not all|does not|do not|did not|is not|are not|has not|have not|fail(s|ed)? to|limited|"
        r"areas? for (improvement|development))\b|^(ensure|improve|strengthen|develop|increase|reduce|review|"
        r"establish|address|make sure)\b", re.I),
    intent.STRENGTHS: re.compile(
        r"\b(good|strong(ly)?|effective(ly)?|well|robust|timely|improved|improving|outstanding|positive|"
        r"comprehensive|high[- ]quality|successful(ly)?|strength|benefit(s|ed)?|appropriate(ly)?)\b", re.I),
    intent.HOW_LONG: re.compile(
        r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty)\s+"
        r"(school |working |calendar |consecutive )?(days?|weeks?|months?|years?|hours?|terms?|sessions?)\b|"
        r"\bwithin\b|\b(annually|termly|each term|every term|once a year|twice a year|every \w+ months)\b", re.I),
    intent.WHEN: re.compile(
        r"\b(\d{1,2} (january|february|march|april|may|june|july|august|september|october|november|december)|"
        r"(january|february|march|april|may|june|july|august|september|october|november|december) \d{4}|"
        r"\d{4}|aged? \d+|by the (end|start)|before|after|within|when|as soon as|no later than)\b", re.I),
    intent.WHAT_WORKS: re.compile(
        r"\b(should|can|could|help(s|ful|ed)?|effective(ly)?|support(s|ing|ed)?|approach(es)?|strateg(y|ies)|"
        r"works? (well|best)|benefit|improv(e|es|ed|ing)|evidence|recommend(s|ed)?|promot(e|es|ing)|encourag\w*|"
        r"ensur(e|es|ing)|consider|use of|tailored|training)\b", re.I),
    intent.WHO: re.compile(r"\b(responsib\w+|role|must|should|is the|are the|lead|appoint\w*|designated)\b", re.I),
}
#: The opposite kind: a sentence praising a service does not answer "what
#: must it improve?", and a criticism does not answer "what is it good at?".
_OPPOSITE = {intent.NEEDS_IMPROVE: intent.STRENGTHS, intent.STRENGTHS: intent.NEEDS_IMPROVE}
#: How much a matching cue moves a sentence (cosines spread over ~0.3).
CUE_BONUS = 0.06
#: Kinds that must show their cue: a "how long" answer without a time in it is no answer.
_CUE_REQUIRED = (intent.HOW_LONG, intent.WHEN, intent.DEFINITION)
#: For "what works" questions, statutory guidance and research before
#: inspection findings, opinion, forums and event pages (added to the score).
KIND_PRIOR = {"guidance": 0.04, "report": 0.03, "inspection": 0.02, "article": 0.0, "transcript": 0.0,
              "other": 0.0, "forum": -0.03, "event": -0.05}


def _cue_score(kind: str, text: str) -> float:
    cue = _CUES.get(kind)
    score = CUE_BONUS if cue is not None and cue.search(text) else 0.0
    if kind in _CUE_REQUIRED and not score:
        score = -CUE_BONUS
    opposite = _CUES.get(_OPPOSITE.get(kind, ""))
    if opposite is not None and opposite.search(text) and not score:
        score = -CUE_BONUS
    return score


def compose_answer(question: Question, hits: Sequence[Hit], embedder: Embedder, settings: Settings) -> Answer:
    """Choose cited sentences shaped by the question's intent, or abstain.

    Confidence = best sentence cosine + ``coverage_weight`` x the weighted
    share of question words found - ``missing_term_penalty`` if a specific
    word (name, number, word unknown to the store) is found in no passage
    (:func:`question_coverage`); below ``abstain_threshold`` the answer
    abstains. Where a reranker read the passages, ``relevance_weight`` x its
    best probability is added and ``relevance_threshold`` is the bar. The question's vector scores each sentence by cosine.

    Then, by ``question.asked`` (:func:`search.intent.detect` of the
    question when not given):
    "what works", "needs to improve" and "strengths" questions get a list
    of up to ``answer_points`` distinct points, one a passage and from
    distinct sources first; other questions the best sentences, the one
    with the kind's cue (a definition's "means", a time for "how long")
    first. Every sentence is checked to be its passage's own words.
    """
    asked = question.asked or intent.detect(question.text)
    also_searched = question.also_searched
    hits = tuple(hits)
    cands = candidate_sentences(hits)
    if not cands:
        return Answer(question.text, (), hits, True, 0.0, also_searched, reason="no passage has a usable sentence",
                      intent=asked.kind)
    vecs = embedder.encode([c.text for c in cands], batch_size=64)
    cos = vecs @ np.asarray(question.vector, dtype=np.float32).reshape(-1)
    scores = hand_scores(question, asked, hits, cands, cos)
    order = np.argsort(-np.asarray(scores), kind="stable")
    best_cos = float(cos.max())
    cov = question_coverage(question, hits)
    not_found = f"; not found: {', '.join(cov.missing)}" if cov.missing else ""
    confidence = best_cos + settings.coverage_weight * cov.share - settings.missing_term_penalty * bool(cov.missing)
    threshold = settings.abstain_threshold
    why = f"best sentence {best_cos:.2f}, question words found {cov.share:.0%}{not_found}"
    relevance = [h.relevance for h in hits if h.relevance is not None]
    if relevance and settings.relevance_weight > 0:
        # The reranker read question and passages together: its probability
        # that the best passage answers adds to the word evidence (alone it
        # told answerable from unanswerable questions less well: AUC 0.69
        # against 0.83, bench/QUALITY.md "Second stage").
        confidence += settings.relevance_weight * max(relevance)
        threshold = settings.relevance_threshold
        why += f", best passage relevance {max(relevance):.2f}"
    if confidence < threshold:
        return Answer(
            question.text, (), hits, True, confidence, also_searched,
            reason=f"confidence {confidence:.2f} ({why}) < {threshold:.2f}",
            missing=cov.missing, intent=asked.kind,
        )
    limit = settings.answer_points if asked.wants_list else settings.answer_sentences
    chosen = _choose(cands, scores, order, cos, hits, limit, one_per_passage=asked.wants_list,
                     follow=not asked.wants_list and FOLLOW_BEST)
    return Answer(question.text, tuple(chosen), hits, False, confidence, also_searched, intent=asked.kind)


def hand_scores(question: Question, asked: intent.Intent, hits: Sequence[Hit], cands: Sequence[Sentence],
                cos: np.ndarray) -> list[float]:
    """The sentence score, one per candidate.

    Cosine decides; keyword overlap breaks near-ties toward sentences that
    use the question's own words; earlier passages (better rank) get an
    edge, the first passage most (``LEAD_WEIGHT``); the question's kind adds
    its cue. Hand-set: a linear model
    fitted on the training questions over these and 13 more features did not
    beat it leave-one-file-out (bench/QUALITY.md, "Answer sentence scorer").
    """
    q_stems = {_stem(t) for t in question.terms}
    scores = []
    for c, sim in zip(cands, cos):
        s_stems = {_stem(w) for w in query_terms(c.text)}
        overlap = len(q_stems & s_stems) / len(q_stems) if q_stems else 0.0
        score = (float(sim) + 0.15 * overlap - RANK_PENALTY * (c.ref - 1) + _cue_score(asked.kind, c.text)
                 + LEAD_WEIGHT * (1.0 / np.log2(1.0 + c.ref) - 1.0))
        if asked.wants_list:
            score += KIND_PRIOR.get(hits[c.ref - 1].document.kind, 0.0)
        scores.append(score)
    return scores


#: What each place down the passage ranking costs a sentence (cosines spread over ~0.3).
RANK_PENALTY = 0.01
#: And the log-shaped edge of the first passages (passage 2 -0.07, 5 -0.12):
#: with the reranker the first passage is more often the answer. On the
#: training questions, each scored by a reranker that never saw it, 0 / 0.2 /
#: 0.4 / 0.6 gave useful 0.737 / 0.746 / 0.746 / 0.712 and exact 0.590 /
#: 0.629 / 0.649 / 0.620 (bench/QUALITY.md "Second stage").
LEAD_WEIGHT = 0.2
#: The sentence after the best one is read with it (see :func:`_choose`).
FOLLOW_BEST = True


def _choose(cands, scores, order, cos, hits, limit: int, *, one_per_passage: bool,
            follow: bool = False) -> list[AnswerSentence]:
    """The best non-repeating sentences, verbatim-checked; for lists one a
    passage, distinct documents first (a second pass fills up from the rest).

    With ``follow``, the sentence that comes next in the best sentence's
    passage is taken second: the sentence closest to a question often
    restates it ("Proactive strategies are things teachers can do to prevent
    low-level disruption.") and the one after it answers ("Proactive
    strategies include clear routines and instructions ...")."""
    chosen: list[AnswerSentence] = []
    chosen_sh: list[set] = []
    used_refs: set[int] = set()
    used_docs: set[int] = set()
    floor = float(cos.max()) - 0.25
    passes = (True, False) if one_per_passage else (False,)
    for distinct_docs in passes:
        for i in order:
            c = cands[i]
            if cos[i] < floor and chosen:
                break
            if one_per_passage and c.ref in used_refs:
                continue
            doc = hits[c.ref - 1].document.id
            if distinct_docs and doc in used_docs:
                continue
            sh = shingles(c.text, 3)
            if any(near_duplicate(sh, other, 0.6) for other in chosen_sh):
                continue
            # Never assume: the sentence must be its passage's own words.
            if not verbatim_in(c.text, hits[c.ref - 1].chunk.text):
                continue
            chosen.append(AnswerSentence(c.text, c.ref, round(scores[i], 4), c.start, c.end))
            chosen_sh.append(sh)
            used_refs.add(c.ref)
            used_docs.add(doc)
            if len(chosen) >= limit:
                return chosen
            if follow and len(chosen) == 1:
                nxt = i + 1
                if nxt < len(cands) and cands[nxt].ref == c.ref and verbatim_in(cands[nxt].text, hits[c.ref - 1].chunk.text):
                    f = cands[nxt]
                    fsh = shingles(f.text, 3)
                    if not any(near_duplicate(fsh, other, 0.6) for other in chosen_sh):
                        chosen.append(AnswerSentence(f.text, f.ref, round(scores[nxt], 4), f.start, f.end))
                        chosen_sh.append(fsh)
                        limit += 1  # read with the best sentence: it does not take another one's place
    return chosen
