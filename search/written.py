"""Written answers: a language model the deployer runs writes, code checks every sentence.

Off by default (``writer_url`` empty): nothing is sent anywhere. When it is
set, :func:`write_answer` sends the question and the retrieved passages
(numbered, their text and titles, nothing else) to an OpenAI-compatible
``/chat/completions`` endpoint (llama.cpp's server, Ollama, vLLM, a hosted
service) and asks for a short answer whose every sentence names the passages
it rests on. The reply is not trusted:

* citations to a passage that was not given are removed;
* each sentence is checked against the passages it cites
  (:meth:`SupportCheck.check`): its numbers, names and most of its content
  words must be in them, a negation or a condition (only, unless, if) of
  theirs must be kept, and the sentence
  must say what one of their sentences says (cosine with the store's
  sentence model) and be judged relevant to them by the bundled
  cross-encoder (:mod:`search.rerank`) when it is present;
* a sentence that fails is left out (kept in ``Answer.unsupported`` with the
  reason) and never shown as the answer;
* when fewer than ``writer_min_sentences`` survive, or the endpoint is down,
  slow, rate-limited, or replies with something unusable (no JSON and no
  citations, another language), the extractive answer is returned with a
  one-line ``note`` saying why.

A question never waits longer than ``writer_timeout`` for the endpoint: the
request runs on a worker thread and the answer falls back when the deadline
passes (the thread's socket times out on its own).

The HTTP call is the standard library's: one JSON POST does not justify a
client dependency, and the stdlib gives exact control over the deadline.
"""
from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .answer import _stem, candidate_sentences
from .embedding import Embedder
from .lexical import STOPWORDS, query_terms
from .settings import Settings
from .text import words
from .types import Answer, AnswerSentence, Hit

log = logging.getLogger(__name__)

#: Characters of one passage given to the model (passages are ~100 words; a
#: long PDF passage is cut at a sentence end before this).
PASSAGE_CHARS = 900

_TASK = ("You answer a teacher's question from the numbered passages you are given, and from nothing else. "
         "Write two or three short sentences in English. Take each sentence from one passage, keeping that "
         "passage's own words, ")
SYSTEM_PROMPT = (
    _TASK + "and give the number of that passage. "
    'Reply with JSON only: an object whose "sentences" list holds one object per sentence, with the '
    'sentence as "text" and the numbers of its passages as "passages". '
    'If no passage answers the question, reply {"sentences": []}.'
)
#: The instruction when ``writer_json`` is off: plain sentences, each ending with its [n].
TEXT_PROMPT = (
    _TASK + "and end it with the number of that passage in square brackets, like [2]. "
    "If no passage answers the question, reply: No passage answers this."
)

#: A worked example sent before the question (small models follow an example
#: better than a description): made-up passages, and a reply that copies one
#: sentence of each passage it uses.
EXAMPLE_PASSAGES = (
    "[1] Attendance guidance: Schools should follow up every unexplained absence on the first day. "
    "Letters to parents are sent after the third day.\n\n"
    "[2] Breakfast club trial: The trial ran in 100 schools. A free breakfast club was linked to better "
    "attendance in the trial schools.\n\n"
    "[3] School meals: Menus change each term."
)
EXAMPLE_QUESTION = "How can schools improve attendance?"
EXAMPLE_SENTENCES = (("Schools should follow up every unexplained absence on the first day.", 1),
                     ("A free breakfast club was linked to better attendance in the trial schools.", 2))

#: The JSON the model is asked for; servers that take a schema with
#: ``response_format`` (llama.cpp) constrain their output to it.
REPLY_SCHEMA = {
    "type": "object",
    "properties": {
        "sentences": {
            "type": "array",
            "maxItems": 6,
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "passages": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4},
                },
                "required": ["text", "passages"],
            },
        }
    },
    "required": ["sentences"],
}

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_MARKERS = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_NEGATION = frozenset({"not", "no", "never", "none", "nor", "cannot", "without"})
#: Words that make a statement conditional. A sentence may not drop the
#: condition of the passage sentence it restates ("We offer places to
#: two-year-olds in exceptional circumstances" is not "Two-year-olds can get a
#: place"): bench/RESULTS.md's hand check found that slip.
_CONDITIONS = frozenset({"only", "unless", "except", "exceptional", "exceptionally", "provided", "if"})
#: Words that say whose something is or how binding it is. A sentence may use
#: one only where the passage sentence it restates does: "his next EduKIT" for
#: "our next EduKIT", "VSHs are responsible for" where the passage only
#: implies it, or "must" for "should" change what the source says while every
#: other test passes (bench/RESULTS.md's hand check found the first two).
_STANCE = frozenset({
    "i", "me", "my", "mine", "we", "us", "our", "ours", "you", "your", "yours", "he", "him", "his",
    "she", "her", "hers", "they", "them", "their", "theirs",
    "must", "should", "shall", "may", "might", "can", "could", "would", "will", "need", "needs",
    "required", "requires", "require", "requirement", "responsible", "responsibility", "duty", "duties",
    "statutory", "mandatory", "always",
})
# A sentence end in plain-text replies: after [n] markers, or . ! ? before a capital.
_TEXT_SENTENCE = re.compile(r"(?<=[.!?\]])\s+(?=[A-Z\"'“(])")


class WriterUnavailable(Exception):
    """The endpoint gave nothing usable; the message is the reader's one-line note."""


@dataclass(frozen=True)
class Claim:
    """One sentence of the model's reply and the passage numbers it cites."""

    text: str
    refs: tuple[int, ...]


@dataclass(frozen=True)
class Verdict:
    """The check of one claim: supported or not, and why not."""

    supported: bool
    reason: str = ""
    similarity: float = 0.0
    relevance: float | None = None


# -- the endpoint ---------------------------------------------------------
def numbered_passages(hits: Sequence[Hit]) -> str:
    """The passages as the model sees them: ``[n] title: text``, one block each."""
    blocks = []
    for n, hit in enumerate(hits, start=1):
        text = " ".join(hit.chunk.text.split())
        if len(text) > PASSAGE_CHARS:
            cut = max(text.rfind(". ", 0, PASSAGE_CHARS), text.rfind(" ", 0, PASSAGE_CHARS))
            text = text[: cut + 1].rstrip()
        blocks.append(f"[{n}] {hit.document.title}: {text}")
    return "\n\n".join(blocks)


def _example_reply(as_json: bool) -> str:
    if as_json:
        return json.dumps({"sentences": [{"text": t, "passages": [n]} for t, n in EXAMPLE_SENTENCES]})
    return " ".join(f"{t[:-1]} [{n}]." for t, n in EXAMPLE_SENTENCES)


def request_body(question: str, hits: Sequence[Hit], settings: Settings) -> dict:
    """The chat completion request: exactly what is sent (the README says so)."""
    body = {
        "model": settings.writer_model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT if settings.writer_json else TEXT_PROMPT},
            {"role": "user", "content": f"Passages:\n\n{EXAMPLE_PASSAGES}\n\nQuestion: {EXAMPLE_QUESTION}"},
            {"role": "assistant", "content": _example_reply(settings.writer_json)},
            {"role": "user", "content": f"Passages:\n\n{numbered_passages(hits)}\n\nQuestion: {question}"},
        ],
        "temperature": 0,
        "max_tokens": settings.writer_max_tokens,
    }
    if settings.writer_json:
        body["response_format"] = {"type": "json_object", "schema": REPLY_SCHEMA}
    return body


def _post(url: str, body: dict, headers: dict, timeout: float) -> str:
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read(2_000_000).decode("utf-8", errors="replace")


_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="equisearch-writer")


def call_endpoint(body: dict, settings: Settings) -> str:
    """The reply's message text; :class:`WriterUnavailable` with a one-line reason on any failure.

    Never takes longer than ``writer_timeout`` seconds.
    """
    url = settings.writer_url.rstrip("/")
    if not url.endswith("/chat/completions"):
        url += "/chat/completions"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    key = os.environ.get(settings.writer_api_key_env, "") if settings.writer_api_key_env else ""
    if key:
        headers["Authorization"] = f"Bearer {key}"
    timeout = max(0.1, float(settings.writer_timeout))
    future = _POOL.submit(_post, url, body, headers, timeout)
    try:
        raw = future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise WriterUnavailable(f"the model server did not reply within {timeout:g} s") from None
    except urllib.error.HTTPError as exc:
        if exc.code == 429:
            raise WriterUnavailable("the model server is busy (rate limited, HTTP 429)") from None
        raise WriterUnavailable(f"the model server answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise WriterUnavailable(f"the model server did not reply within {timeout:g} s") from None
        raise WriterUnavailable(f"the model server cannot be reached at {settings.writer_url} ({reason})") from None
    try:
        reply = json.loads(raw)
        content = reply["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise WriterUnavailable("the model server's reply was not a chat completion") from None
    if not isinstance(content, str) or not content.strip():
        raise WriterUnavailable("the model's reply was empty")
    return content


# -- reading the reply ----------------------------------------------------
def parse_reply(content: str) -> list[Claim]:
    """The claims of a reply: the JSON asked for, or plain text with [n] markers.

    Sentences without any citation come back with no refs (the check drops
    them); a reply that is neither JSON nor cited text gives no claims.
    """
    text = content.strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError:
        data = _complete_items(text)
    if isinstance(data, dict) and isinstance(data.get("sentences"), list):
        claims = []
        for item in data["sentences"]:
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                continue
            refs = item.get("passages") or []
            refs = refs if isinstance(refs, list) else [refs]
            given = tuple(r for r in refs if isinstance(r, int) and not isinstance(r, bool))
            # One claim per sentence: an item may hold several, and each is checked on its own.
            claims += _cited_sentences(item["text"], given)
        return claims
    if text.startswith("{") or re.match(r"\[\s*[{\"\]]", text):
        return []  # JSON that does not parse, or not in the shape asked for: nothing can be trusted
    claims = _cited_sentences(text)
    return claims if any(c.refs for c in claims) else []


def _cited_sentences(text: str, given: tuple[int, ...] = ()) -> list[Claim]:
    """``text`` cut into sentences, each citing ``given`` and its own [n] markers."""
    claims, pending = [], ()
    for part in _TEXT_SENTENCE.split(" ".join(text.split())):
        body, refs = _strip_markers(part)
        if body:
            claims.append(Claim(body, tuple(dict.fromkeys(given + pending + refs))))
            pending = ()
        else:
            pending = refs  # "[1] The sentence.": the marker opens the sentence it cites
    return claims


def _complete_items(text: str) -> dict | None:
    """The whole sentence objects of a reply cut off mid-JSON (``writer_max_tokens`` reached).

    Each one is still checked like any other; the cut-off one is lost.
    """
    m = re.match(r'\{\s*"sentences"\s*:\s*\[', text)
    if not m:
        return None
    decoder, items, pos = json.JSONDecoder(), [], m.end()
    while True:
        start = text.find("{", pos)
        if start < 0:
            break
        try:
            item, pos = decoder.raw_decode(text, start)
        except ValueError:
            break
        items.append(item)
    return {"sentences": items} if items else None


def _strip_markers(sentence: str) -> tuple[str, tuple[int, ...]]:
    """A sentence without its [n] markers, and the numbers they held."""
    refs = [int(n) for m in _MARKERS.finditer(sentence) for n in re.split(r"\s*[,;]\s*", m.group(1))]
    body = " ".join(_MARKERS.sub(" ", sentence).split())
    body = re.sub(r"\s+([.,;:!?])", r"\1", body).strip()
    return body, tuple(dict.fromkeys(refs))


def looks_english(content: str) -> bool:
    """False for a reply of some length with almost no English function words."""
    tokens = words(content.lower())
    if len(tokens) < 8:
        return True
    common = sum(t in STOPWORDS or t in _NEGATION for t in tokens)
    return common / len(tokens) >= 0.12


# -- checking each sentence ------------------------------------------------
def _names(sentence: str) -> set[str]:
    """Capitalised words after the first and acronyms: names the passage must use too."""
    out = set()
    for i, w in enumerate(re.findall(r"[A-Za-z][A-Za-z'’\-]*", sentence)):
        if w.isupper() and len(w) > 1:
            out.add(w.lower())
        elif i > 0 and w[0].isupper() and w.lower() not in STOPWORDS:
            out.add(w.lower())
    return out


def _negated(text: str) -> bool:
    return bool(set(words(text)) & _NEGATION) or "n't" in text


class SupportCheck:
    """Is a sentence supported by the passages it cites?

    ``embedder`` is the store's sentence model (cached, so passage sentences
    the extractive answer already encoded cost nothing); ``reranker`` the
    bundled cross-encoder or None.
    """

    def __init__(self, embedder: Embedder, settings: Settings, reranker=None):
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker

    def check(self, claim: Claim, hits: Sequence[Hit]) -> Verdict:
        cited = [hits[r - 1] for r in claim.refs]
        if not cited:
            return Verdict(False, "cites no passage it was given")
        # The model saw each passage as "title: text": a number or name from the title is given
        # too, but the sentence's other words must come from the text (a title's topic words made
        # sentences the passage never says look supported: bench/RESULTS.md's hand check).
        body = " ".join(" ".join(h.chunk.text.lower().split()) for h in cited)
        lower = " ".join(" ".join(h.document.title.lower().split()) for h in cited) + " " + body
        passage_words = set(words(lower))
        for num in _NUMBER.findall(claim.text):
            if num not in lower:
                return Verdict(False, f"the number {num} is not in the cited passage")
        missing_names = sorted(n for n in _names(claim.text) if n not in passage_words and n not in lower)
        if missing_names:
            return Verdict(False, f"{missing_names[0]!r} is not in the cited passage")
        if claim.text.rstrip().endswith("?"):
            return Verdict(False, "it is a question, not an answer")
        # "Title: Title." passes every lexical test and says nothing: a sentence
        # that is only the cited documents' titles is no answer.
        rest = claim.text.lower()
        for title in {h.document.title.lower() for h in cited if h.document.title}:
            rest = rest.replace(title, " ")
        if len(query_terms(rest)) < 2:
            return Verdict(False, "it only repeats the cited source's title")
        terms = [t for t in query_terms(claim.text) if not _NUMBER.fullmatch(t)]
        if not terms:
            return Verdict(False, "it has no content words")
        passage_stems = {_stem(w) for w in words(body)}
        share = sum(_stem(t) in passage_stems for t in terms) / len(terms)
        if share < self.settings.writer_min_term_share:
            return Verdict(False, f"only {share:.0%} of its words are in the cited passage")
        sentences = [s.text for s in candidate_sentences(cited)] or [h.chunk.text for h in cited]
        vecs = self.embedder.encode([claim.text] + sentences, batch_size=64)
        sims = vecs[1:] @ vecs[0]
        similarity = float(sims.max())
        if similarity < self.settings.writer_min_similarity:
            return Verdict(False, f"no sentence of the cited passage says this (similarity {similarity:.2f})",
                           similarity)
        # The passage sentence closest to it must agree on negation: "does
        # not need" against "needs" is the commonest way to invert a source.
        closest = sentences[int(sims.argmax())].lower()
        if _negated(claim.text.lower()) != _negated(closest):
            return Verdict(False, "it negates what the cited passage says, or drops its 'not'", similarity)
        # ... keep its condition words and add no word of whose or how binding.
        claim_words, closest_words = set(words(claim.text.lower())), set(words(closest))
        dropped = sorted((closest_words & _CONDITIONS) - claim_words)
        if dropped:
            return Verdict(False, f"it drops a condition the cited passage states ({dropped[0]!r})", similarity)
        added = sorted((claim_words & _STANCE) - closest_words)
        if added:
            return Verdict(False, f"it says {added[0]!r} where the cited passage does not", similarity)
        relevance = None
        if self.reranker is not None:
            relevance = float(np.max(self.reranker.probability(claim.text, [h.chunk.text for h in cited])))
            if relevance < self.settings.writer_min_relevance:
                return Verdict(False, f"the relevance model finds the cited passage off the point ({relevance:.2f})",
                               similarity, relevance)
        return Verdict(True, "", similarity, relevance)


# -- the use-case ----------------------------------------------------------
def write_answer(extractive: Answer, settings: Settings, check: SupportCheck) -> Answer:
    """A written answer built on ``extractive``'s passages, or ``extractive`` with a note.

    An abstention stays one: when the passages do not answer, nobody writes.
    """
    if extractive.abstained or not extractive.passages:
        return extractive
    hits = extractive.passages
    started = time.perf_counter()
    try:
        content = call_endpoint(request_body(extractive.question, hits, settings), settings)
        claims = parse_reply(content)
        if not claims:
            raise WriterUnavailable("the model's reply was not the JSON asked for" if content.lstrip().startswith(("{", "["))
                                    else "the model's reply had no sentence citing a passage")
        if not looks_english(" ".join(c.text for c in claims)):
            raise WriterUnavailable("the model replied in another language")
    except WriterUnavailable as exc:
        log.info("written answer not used: %s", exc)
        return replace(extractive, note=f"Written answer not available ({exc}); showing sentences from the sources.",
                       writer_seconds=round(time.perf_counter() - started, 3))
    kept: list[AnswerSentence] = []
    unsupported: list[tuple[str, str]] = []
    removed = 0
    for claim in claims:
        valid = tuple(r for r in claim.refs if 1 <= r <= len(hits))
        removed += len(claim.refs) - len(valid)
        verdict = check.check(Claim(claim.text, valid), hits)
        if verdict.supported and not any(s.text == claim.text for s in kept):
            kept.append(AnswerSentence(claim.text, valid[0], round(verdict.similarity, 4), refs=valid))
        elif not verdict.supported:
            unsupported.append((claim.text, verdict.reason))
    seconds = round(time.perf_counter() - started, 3)
    if len(kept) < max(1, settings.writer_min_sentences):
        return replace(
            extractive,
            note=(f"Written answer not used: {len(kept)} of its {len(claims)} sentences are supported by the "
                  "passages they cite; showing sentences from the sources."),
            unsupported=tuple(unsupported), removed_citations=removed, writer_seconds=seconds,
        )
    left_out = f" {len(unsupported)} unsupported sentence(s) left out." if unsupported else ""
    return replace(extractive, sentences=tuple(kept), written=True, unsupported=tuple(unsupported),
                   removed_citations=removed, writer_seconds=seconds,
                   note=(f"Written by {settings.writer_model or 'a language model'}; every sentence was checked "
                         f"against the passages it cites.{left_out}"))
