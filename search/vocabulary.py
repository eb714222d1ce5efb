"""UK-education vocabulary: expand queries from acronym to full form and back.

Teachers write "PLAC", documents write "previously looked-after children";
neither BM25 nor a small sentence encoder reliably bridges that. The
vocabulary (data, not code: ``search/data/vocabulary.json`` plus the user's
own file) lists each acronym with its full forms; a query that mentions either
side is searched for the other too, and the answer says so
("also searched: previously looked-after children").

Acronyms that are also ordinary words (SEND, MAT, LA, DT...) only count when
typed in capitals (``"case": "upper"``); ``"exact"`` needs the exact casing.
Full forms match case-insensitively, with hyphens and spaces treated alike.
``"one_way": true`` marks shorthand that only expands ("uni" -> "university").
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import EquisearchError

log = logging.getLogger(__name__)

BUILTIN = Path(__file__).resolve().parent / "data" / "vocabulary.json"
USER_FILE_NAME = "vocabulary.json"


@dataclass(frozen=True)
class Term:
    acronym: str
    forms: tuple[str, ...]
    related: tuple[str, ...] = ()
    case: str = "any"  # any | upper | exact
    #: Shorthand no source writes ("uni", "Y10", "kids"): it expands to its forms, but a
    #: query's "university" is not searched as "uni" too.
    one_way: bool = False


@dataclass(frozen=True)
class Expansion:
    """What a query was expanded with.

    ``synonyms`` go into both the keyword and the vector query; ``related``
    only into the keyword query (broader terms must not drag the vector).
    """

    synonyms: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    #: (slip, correction) pairs: query words the store lacks, read as the word one edit away.
    corrections: tuple[tuple[str, str], ...] = ()

    @property
    def shown(self) -> tuple[str, ...]:
        return tuple(f"{fix} (for {slip})" for slip, fix in self.corrections) + self.synonyms

    def __bool__(self) -> bool:
        return bool(self.synonyms or self.related or self.corrections)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[-‐‑–]", " ", text.lower()).split())


def _pattern(text: str, flags: int, plural: bool = False) -> re.Pattern:
    # Hyphen or space between words; word boundaries that also work for "PP+".
    parts = [re.escape(p) for p in re.split(r"[\s\-]+", text.strip()) if p]
    body = r"[\s\-]+".join(parts)
    # Teachers pluralise acronyms ("EHCPs", "PEPs", "SENCOs", "LAs"): a
    # lower-case s (or 's) after an acronym still names the same term.
    suffix = r"(?:'?s)?" if plural and not text.endswith("+") else ""
    return re.compile(rf"(?<![\w+]){body}{suffix}(?![\w+])", flags)


class Vocabulary:
    """A set of terms with compiled matchers."""

    def __init__(self, terms: list[Term]):
        self.terms = terms
        self._matchers: list[tuple[Term, list[re.Pattern], list[re.Pattern]]] = []
        for t in terms:
            if t.case == "exact":
                acr = [_pattern(t.acronym, 0, plural=True)]
            elif t.case == "upper":
                acr = [_pattern(t.acronym.upper(), 0, plural=True)]
            else:
                acr = [_pattern(t.acronym, re.IGNORECASE, plural=True)]
            forms = [] if t.one_way else [_pattern(f, re.IGNORECASE) for f in t.forms if len(f) > 5]
            self._matchers.append((t, acr, forms))

    @property
    def acronyms(self) -> frozenset[str]:
        """Every acronym of the vocabulary, lower case ("ehcp", "pp+", "cic")."""
        return frozenset(t.acronym.lower() for t in self.terms)

    @classmethod
    def load(cls, *paths: Path) -> "Vocabulary":
        """The built-in vocabulary plus any user files (later files add terms)."""
        terms: list[Term] = []
        for path in (BUILTIN, *paths):
            if path is None or not Path(path).is_file():
                continue
            terms.extend(_read_terms(Path(path)))
        return cls(terms)

    def spans(self, query: str) -> list[tuple[int, int]]:
        """Where the query names a vocabulary term (acronym or full form), longest matches first.

        A term is one unit: "EHC plan" is missing as a whole, never as "EHC".
        """
        return [(a, b) for a, b, _t, _acr in self._claimed(query)]

    def _claimed(self, query: str) -> list[tuple[int, int, Term, bool]]:
        found: list[tuple[int, int, Term, bool]] = []  # start, end, term, matched the acronym
        for term, acr, forms in self._matchers:
            for p in acr:
                found += [(m.start(), m.end(), term, True) for m in p.finditer(query)]
            for p in forms:
                found += [(m.start(), m.end(), term, False) for m in p.finditer(query)]
        found.sort(key=lambda f: (-(f[1] - f[0]), f[0]))
        claimed: list[tuple[int, int, Term, bool]] = []
        for start, end, term, is_acronym in found:
            if any(a <= start and end <= b for a, b, _t, _i in claimed):
                continue
            claimed.append((start, end, term, is_acronym))
        return claimed

    def expand(self, query: str) -> Expansion:
        """Synonyms (both directions) and related terms the query does not already contain.

        The longest matches win: "previously looked-after children" is one
        term (PLAC), not also "looked-after children" (LAC) inside it.
        """
        synonyms: dict[str, None] = {}
        lexical: dict[str, None] = {}
        qnorm = _norm(query)
        for _start, _end, term, is_acronym in self._claimed(query):
            if is_acronym:
                # The main full form is a synonym for both retrievers; other
                # spellings only help keyword matching.
                main, *others = term.forms or ("",)
                if main and _norm(main) not in qnorm:
                    synonyms.setdefault(main, None)
                for o in others:
                    lexical.setdefault(o, None)
            else:
                if _norm(term.acronym) not in qnorm:
                    synonyms.setdefault(term.acronym, None)
                for f in term.forms:
                    if _norm(f) not in qnorm:
                        lexical.setdefault(f, None)
            for r in term.related:
                lexical.setdefault(r, None)
        seen = {_norm(s) for s in synonyms} | {qnorm}
        related = []
        for r in lexical:
            key = _norm(r)
            if key not in seen and key not in qnorm:
                seen.add(key)
                related.append(r)
        return Expansion(tuple(synonyms), tuple(related))


def _read_terms(path: Path) -> list[Term]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for row in data["terms"]:
            out.append(
                Term(
                    acronym=str(row["acronym"]),
                    forms=tuple(str(f) for f in row.get("forms", ())),
                    related=tuple(str(r) for r in row.get("related", ())),
                    case=str(row.get("case", "any")),
                    one_way=bool(row.get("one_way", False)),
                )
            )
        return out
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EquisearchError(
            f"vocabulary file {path} is not valid ({exc}): it needs {{\"terms\": [{{\"acronym\": ..., \"forms\": [...]}}]}}"
        ) from exc


def load_vocabulary(*paths: str) -> Vocabulary:
    """The built-in vocabulary plus user files, re-read when a file changes."""
    key = []
    for p in paths:
        if p:
            try:
                key.append((p, Path(p).stat().st_mtime_ns))
            except OSError:
                key.append((p, None))
    return _load_cached(tuple(key))


@lru_cache(maxsize=8)
def _load_cached(key: tuple) -> Vocabulary:
    return Vocabulary.load(*(Path(p) for p, _mtime in key))


load_vocabulary.cache_clear = _load_cached.cache_clear  # type: ignore[attr-defined]
