"""Keyword queries: user text reduced to quoted word tokens.

Raw user input is never handed to FTS5: ``pupil-premium`` would parse as a
column filter, an unbalanced ``"`` or ``NEAR(`` as a syntax error. Every query
is reduced to its word tokens, each one quoted as an FTS5 string, and joined
with ``OR`` so BM25 ranks passages by how many (and how rare) of the words
they contain. Very common English words are dropped: they add cost and no
ranking signal. Retrieval hands the store terms (:func:`keyword_terms`); the
BM25 ranking is the store's (search/store/lexical.py).
"""
from __future__ import annotations

from typing import Sequence

from .text import words

# A short list: only words that carry no topic. "not", "no" and numbers stay.
STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does doing for from had has have
    having how i if in into is it its itself me my of on or our ours so than that the their theirs
    them then there these they this those to too was we were what when where which while who whom
    why will with would you your yours about should shall may might must any some such very just
    also own same other get gets got gave give given make made take took one able like way ways say says
    said mean means much many thing things there's it's don't supposed
    won't can't isn't aren't doesn't didn't wouldn't shouldn't couldn't i'm i've i'd you're they're we're
    it'll they'll we'll you'll i'll wont dont cant isnt arent doesnt didnt wouldnt shouldnt couldnt""".split()
)


def query_terms(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Distinct lower-cased word tokens of ``text`` in order, stopwords dropped."""
    seen: dict[str, None] = {}
    for w in words(text.lower()):
        if not keep_stopwords and w in STOPWORDS:
            continue
        seen.setdefault(w, None)
    return list(seen)


def quote_term(term: str) -> str:
    """An FTS5 string literal: wrap in double quotes, double inner quotes."""
    return '"' + term.replace('"', '""') + '"'


def keyword_terms(text: str | Sequence[str], extra_phrases: Sequence[str] = ()) -> list[str]:
    """What a keyword query for ``text`` looks for: its words, then each phrase.

    ``text`` is free text, or words a caller has already taken from it
    (:func:`query_terms`). ``extra_phrases`` (vocabulary expansions such as
    "previously looked after children") come as one term each, their tokens
    joined by spaces, so they score as phrases. Empty when nothing is left.
    """
    if isinstance(text, str):
        # A query made only of stopwords ("what is it?") still deserves an
        # attempt rather than nothing.
        terms = query_terms(text) or query_terms(text, keep_stopwords=True)
    else:
        terms = list(text)
    for phrase in extra_phrases:
        tokens = words(phrase.lower())
        if tokens:
            terms.append(" ".join(tokens))
    return terms


def match_expression(terms) -> str:
    """An FTS5 MATCH expression for ``terms``: each quoted, joined with ``OR``; ``""`` for none."""
    return " OR ".join(quote_term(t) for t in terms)


def build_match(text: str, extra_phrases: tuple[str, ...] = ()) -> str:
    """A safe FTS5 MATCH expression for free text, or ``""`` if nothing is left."""
    return match_expression(keyword_terms(text, extra_phrases))
