"""Typing slips in queries: "premuim", "previosly", "attendence", "exclusoin".

A query word the store has never seen cannot match anything by keyword, and
a small sentence encoder reads it as noise. Such a word is replaced by the
word one edit away (insert, delete, substitute, swap two letters: Damerau-
Levenshtein distance 1, computed by rapidfuzz) that the store does contain,
the most frequent one when several do. Candidates come from the model's own
word list (the WordPiece vocabulary: ~20k common English words) plus the
education vocabulary's words, so a correction is always a real word.

Only one edit, only words of five letters or more, and only words the store
lacks: a name or term that is in the store is never touched, and a longer
slip ("safgaurdnig") is left alone rather than guessed.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

MIN_LENGTH = 5
_WORD = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=4)
def _candidates(vocab_file: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    words: set[str] = set()
    path = Path(vocab_file) if vocab_file else None
    if path is not None and path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            w = line.strip()
            if len(w) >= MIN_LENGTH - 1 and w.isalpha() and w.islower():
                words.add(w)
    for phrase in extra:
        words.update(w.lower() for w in _WORD.findall(phrase) if len(w) >= MIN_LENGTH - 1)
    return tuple(sorted(words))


def model_word_list(model_path: str | Path | None) -> str:
    """The WordPiece ``vocab.txt`` of a local model folder, or "" when there is none."""
    if not model_path:
        return ""
    p = Path(model_path) / "vocab.txt"
    return str(p) if p.is_file() else ""


def corrections(
    query: str,
    store_counts: Callable[[list[str]], dict[str, int]],
    vocab_file: str,
    extra_words: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """(slip, correction) pairs for the query's words the store has never seen.

    ``store_counts`` maps words to the number of passages holding them
    (``Store.term_doc_counts``).
    """
    from rapidfuzz import process
    from rapidfuzz.distance import DamerauLevenshtein

    words = list(dict.fromkeys(w for w in _WORD.findall(query) if len(w) >= MIN_LENGTH and not w.isupper()))
    if not words:
        return []
    counts = store_counts([w.lower() for w in words])
    unseen = [w for w in words if counts.get(w.lower(), 0) == 0]
    if not unseen:
        return []
    pool = _candidates(vocab_file, tuple(extra_words))
    if not pool:
        return []
    options = {w: [c for c, _, _ in process.extract(w.lower(), pool, scorer=DamerauLevenshtein.distance,
                                                    score_cutoff=1, limit=8)] for w in unseen}
    known = store_counts(sorted({c for cs in options.values() for c in cs}))
    out = []
    for w, cs in options.items():
        held = [c for c in cs if known.get(c, 0) > 0]
        if held:
            out.append((w, max(held, key=lambda c: (known[c], c))))
    return out


def apply(query: str, fixes: list[tuple[str, str]]) -> str:
    """The query with each slip replaced (whole words, first letter's case kept)."""
    for slip, fix in fixes:
        repl = fix[0].upper() + fix[1:] if slip[0].isupper() else fix
        query = re.sub(rf"\b{re.escape(slip)}\b", repl, query)
    return query
