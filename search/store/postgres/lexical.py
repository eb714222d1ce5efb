"""Keyword ranking in PostgreSQL: BM25 computed in SQL from the postings table.

The ranking is the SQLite backend's (search/store/lexical.py: FTS5's
``bm25(chunks_fts, 1.0, title_weight)`` over the OR of the quoted terms),
rebuilt from term statistics; bench/RESULTS.md ("PostgreSQL and SQLite: SciFact and ArguAna",
bench/bench_pg_lexical.py) measures it against FTS5:

- each term is one FTS5 phrase: a word, or words joined by spaces (from
  :func:`search.lexical.keyword_terms`). It is normalised by the server with
  :func:`tsvector_sql` (the separators, parser and dictionaries that indexed
  the passages), so user text never reaches a tsquery parser and cannot be a
  syntax error;
- BM25 as FTS5 computes it (fts5_aux.c): k1 1.2, b 0.75,
  IDF ``ln((N - n + 0.5) / (n + 0.5))`` floored at 1e-6, a term's frequency
  ``tf_text + title_weight * tf_title``, the passage length ``len`` over the
  average length; N and the average come from :meth:`PgLexicalMixin._corpus_stats`
  (cached per store generation), ``n`` is counted exactly at query time;
- a term given twice, or two terms with one stem ("pupil", "pupils"), counts
  twice, as two FTS5 phrases do (query term frequency);
- a term of one lexeme is ranked from the postings table; a term of several
  (a phrase) matches where its lexemes stand at the same relative positions
  as in the term, inside the title or inside the text (never across them);
  its frequency is the number of such places and its ``n`` the passages
  holding one;
- filters restrict the ranked passages (before the limit), not N or ``n``,
  as FTS5's join does;
- scores are higher-is-better (FTS5's bm25() is lower-is-better).

Tokens are FTS5's (``porter unicode61 remove_diacritics 2``), made so by
:data:`TS_CONFIG` (schema migration 2) and :data:`SEPARATORS`: every
punctuation mark separates words ("looked-after" is "looked" "after",
"children’s" is "children" "s", "3.5" is "3" "5"), accents are folded by
``unaccent``, words stem by the original Porter algorithm, and no word is a
stop word ("the" is ranked; "cat in the hat" needs "in the" itself). BM25
lengths therefore count tokens as FTS5 does. What still differs: in a
database created with the C locale, capitals outside Latin letters (Greek,
Cyrillic) are not lowercased, and symbols outside :data:`SEPARATORS` that
FTS5 drops (emoji) stick to the word beside them.

The write path, shared with documents.py:

- a passage row is inserted with ``tsv`` and ``len`` computed by the server
  from :data:`CHUNK_TSV_SQL` / :data:`CHUNK_LEN_SQL` (placeholders
  ``%(title)s`` and ``%(text)s``);
- after inserting a document's passages, in the same transaction, the writer
  calls ``self._write_postings(conn, chunk_ids)``;
- after a title change, in the same transaction, ``self._retitle(conn, doc_id)``.

A posting is one (lexeme, passage) pair with its term frequency in the text
(weight D positions) and in the title (weight A positions) and the passage's
length, so BM25 needs no per-query pass over the passages' tsvectors.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from ...types import Filters

#: FTS5's bm25() constants (fts5_aux.c) and its IDF floor.
K1, B, IDF_FLOOR = 1.2, 0.75, 1e-6
#: Most document ids :meth:`PgLexicalMixin.texts_mentioning` looks in (as SQLite's).
_MENTION_DOCS = 500
#: Cached document frequencies kept before the cache is emptied.
_DF_CACHE_MAX = 100_000


#: The text search configuration passages and queries are indexed with
#: (schema.py, migration 2): PostgreSQL's default parser, then ``unaccent``,
#: then the original Porter stemmer without stop words, as FTS5's
#: ``porter unicode61 remove_diacritics 2`` tokenizer has none.
TS_CONFIG = "equisearch"

#: Characters made spaces before the parser sees the text: ASCII punctuation,
#: Latin-1 punctuation and signs, general punctuation (quotes, dashes,
#: apostrophes), arrows and box drawing, CJK and full-width punctuation.
#: unicode61 separates tokens at each of them, while PostgreSQL's parser keeps
#: "looked-after", "a@b.com", "3.5" or a URL whole beside its parts (one
#: position more, so phrases and lengths drift), and in a database with the C
#: locale reads any non-ASCII character, "’" included, as a letter.
SEPARATORS = (r"[\u0021-\u002f\u003a-\u0040\u005b-\u0060\u007b-\u007e\u00a0-\u00bf\u00d7\u00f7"
              r"\u2000-\u206f\u2190-\u2bff\u3000-\u303f\ufe30-\ufe4f\uff01-\uff0f\uff1a-\uff20]")


def _words_sql(expr: str) -> str:
    """An SQL expression: ``expr`` with every separator a space (see :data:`SEPARATORS`)."""
    return f"regexp_replace({expr}, '{SEPARATORS}', ' ', 'g')"


def tsvector_sql(expr: str) -> str:
    """An SQL expression: the tsvector of the text ``expr``, as passages and query terms are indexed."""
    return f"to_tsvector('{TS_CONFIG}', {_words_sql(expr)})"


def phrase_query_sql(expr: str) -> str:
    """An SQL expression: the tsquery matching the term ``expr`` as a phrase (index candidates)."""
    return f"phraseto_tsquery('{TS_CONFIG}', {_words_sql(expr)})"


def _tsv_sql(title: str, text: str) -> str:
    """A passage's tsvector from two SQL expressions: title (weight A), then text (weight D)."""
    return f"setweight({tsvector_sql(title)}, 'A') || setweight({tsvector_sql(text)}, 'D')"


def _len_sql(title: str, text: str) -> str:
    """BM25 length from two SQL expressions: the words of the title plus the words of the text.

    FTS5's length of a row counts every token of every column, the title's
    too. Every word is a lexeme here (no stop words), so the last position of
    a tsvector is its number of words: FTS5's count.
    """
    last = "(SELECT coalesce(max(p), 0)::integer FROM unnest({}) u, unnest(u.positions) p)"
    return f"({last.format(tsvector_sql(title))} + {last.format(tsvector_sql(text))})"


#: The passage's tsvector: title (weight A) and passage text (weight D), :data:`TS_CONFIG`.
CHUNK_TSV_SQL = _tsv_sql("%(title)s", "%(text)s")
#: BM25 passage length: the words of the title and of the text, stop words included (as FTS5 counts tokens).
CHUNK_LEN_SQL = _len_sql("%(title)s", "%(text)s")

def postings_sql(where: str) -> str:
    """The INSERT of the postings of the passages ``c`` for which the SQL condition ``where`` holds."""
    return ("INSERT INTO postings (lexeme, chunk_id, tf_text, tf_title, len)"
            " SELECT u.lexeme, c.id, (SELECT count(*) FROM unnest(u.weights) w WHERE w = 'D'),"
            " (SELECT count(*) FROM unnest(u.weights) w WHERE w = 'A'), c.len"
            f" FROM chunks c, unnest(c.tsv) u WHERE {where}")


_POSTINGS_SQL = postings_sql("c.id = ANY(%s)")

# -- reading ------------------------------------------------------------------
# Each term as the index saw its words: the lexemes in position order, their
# offsets from the first, and the term itself (phraseto_tsquery finds the
# candidates of a phrase through the GIN index). A term without lexemes (stop
# words, punctuation) has no row. ``i`` is the term's place in the list.
_TERMS_CTE = f"""
qt AS MATERIALIZED (
    SELECT s.i, s.term, array_agg(s.lexeme ORDER BY s.pos, s.lexeme) AS lex,
           array_agg(s.pos - s.first ORDER BY s.pos, s.lexeme) AS off
    FROM (SELECT q.i, q.term, u.lexeme, p.pos::integer AS pos,
                 min(p.pos::integer) OVER (PARTITION BY q.i) AS first
          FROM unnest(%(terms)s::text[]) WITH ORDINALITY AS q(term, i)
          CROSS JOIN LATERAL unnest({tsvector_sql('q.term')}) AS u
          CROSS JOIN LATERAL unnest(u.positions) AS p(pos)) s
    GROUP BY s.i, s.term
)"""

# The places in a tsvector where a term's lexemes all stand at their offsets,
# counted by weight (D: the text, A: the title). A place is a start position
# every slot of the term agrees on; a title position and a text position never
# share a weight, so a phrase cannot run from the title into the text.
_PLACES = """
LATERAL (
    SELECT count(*) FILTER (WHERE m.w = 'D')::float8 AS tf_text,
           count(*) FILTER (WHERE m.w = 'A')::float8 AS tf_title
    FROM (SELECT x.pos - o.off AS start, x.w
          FROM unnest({tsv}) AS u
          CROSS JOIN LATERAL unnest(u.positions, u.weights) AS x(pos, w)
          JOIN unnest({lex}, {off}) AS o(lexeme, off) ON o.lexeme = u.lexeme
          GROUP BY 1, 2
          HAVING count(*) = cardinality({lex})) m
) f"""

# BM25 of every passage matching any term, with FTS5's formula. Terms alike
# after normalisation form one group whose weight counts them (qtf). IDF uses
# the whole store (N, n); {filter} only narrows which passages are ranked.
_SCORED_CTES = """
WITH {terms},
qg AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY min(i)) AS k, lex, off, min(term) AS term, count(*)::float8 AS qtf
    FROM qt GROUP BY lex, off
),
w1 AS MATERIALIZED (
    SELECT g.lex[1] AS lexeme,
           g.qtf * greatest(ln((greatest(%(n)s::float8 - d.n, 0) + 0.5) / (d.n + 0.5)), {floor}) AS w
    FROM qg g
    CROSS JOIN LATERAL (SELECT count(*)::float8 AS n FROM postings p WHERE p.lexeme = g.lex[1]) d
    WHERE cardinality(g.lex) = 1 AND d.n > 0
),
pm AS MATERIALIZED (
    SELECT g.k, c.id AS chunk_id, c.len, f.tf_text, f.tf_title
    FROM qg g
    JOIN chunks c ON c.tsv @@ {phrase}
    CROSS JOIN {places}
    WHERE cardinality(g.lex) > 1 AND f.tf_text + f.tf_title > 0
),
wp AS MATERIALIZED (
    SELECT pm.k, max(g.qtf) * greatest(ln((greatest(%(n)s::float8 - count(*), 0) + 0.5) / (count(*) + 0.5)), {floor}) AS w
    FROM pm JOIN qg g USING (k) GROUP BY pm.k
),
hits AS (
    SELECT p.chunk_id, w1.w, p.tf_text + %(tw)s * p.tf_title AS tf, p.len
    FROM w1 JOIN postings p USING (lexeme)
    UNION ALL
    SELECT pm.chunk_id, wp.w, pm.tf_text + %(tw)s * pm.tf_title, pm.len
    FROM pm JOIN wp USING (k)
),
scored AS (
    SELECT h.chunk_id,
           sum(h.w * h.tf * {k1p1} / nullif(h.tf + {k1} * ({one_b} + {b} * h.len / %(avgdl)s::float8), 0)) AS score
    FROM hits h GROUP BY h.chunk_id
),
m AS MATERIALIZED (
    SELECT s.chunk_id, s.score FROM scored s{filter}
)"""

_ORDER = " ORDER BY score DESC, chunk_id LIMIT %(limit)s"
_SEARCH_SQL = "{ctes}\nSELECT chunk_id, score FROM m" + _ORDER
_RANK_AND_SCORE_SQL = (
    "{ctes}\nSELECT chunk_id, score, true FROM (SELECT chunk_id, score FROM m" + _ORDER + ") t"
    "\nUNION ALL SELECT chunk_id, score, false FROM m WHERE chunk_id IN (SELECT unnest(%(ids)s::bigint[]))"
)

# Passages holding each term anywhere (title or text); 0 for a term without lexemes.
_DOC_COUNTS_SQL = """
WITH {terms}
SELECT qt.i, CASE WHEN cardinality(qt.lex) = 1
                  THEN (SELECT count(*) FROM postings p WHERE p.lexeme = qt.lex[1])
                  ELSE (SELECT count(*) FROM chunks c CROSS JOIN {places}
                        WHERE c.tsv @@ {phrase} AND f.tf_text + f.tf_title > 0)
             END
FROM qt
"""

# Passages whose text (not title) holds the term.
_TEXT_DF_SQL = """
WITH {terms}
SELECT CASE WHEN cardinality(qt.lex) = 1
            THEN (SELECT count(*) FROM postings p WHERE p.lexeme = qt.lex[1] AND p.tf_text > 0)
            ELSE (SELECT count(*) FROM chunks c CROSS JOIN {places}
                  WHERE c.tsv @@ {phrase} AND f.tf_text > 0)
       END
FROM qt
"""

_MENTIONING_SQL = """
WITH {terms}
SELECT c.text FROM qt
JOIN chunks c ON c.doc_id = ANY(%(docs)s::bigint[]) AND c.tsv @@ {phrase}
CROSS JOIN {places}
WHERE f.tf_text > 0
ORDER BY c.id LIMIT %(limit)s
"""

_CHUNK_PLACES = _PLACES.format(tsv="c.tsv", lex="g.lex", off="g.off")
_TERM_PLACES = _PLACES.format(tsv="c.tsv", lex="qt.lex", off="qt.off")
# The index candidates of a query group (g) or term (qt): passages matching it as a phrase.
_CHUNK_PHRASE = phrase_query_sql("g.term")
_TERM_PHRASE = phrase_query_sql("qt.term")


def _scored_ctes(filter_sql: str) -> str:
    return _SCORED_CTES.format(
        terms=_TERMS_CTE, places=_CHUNK_PLACES, phrase=_CHUNK_PHRASE, filter=filter_sql, floor=repr(IDF_FLOOR),
        k1=repr(K1), b=repr(B), k1p1=repr(K1 + 1), one_b=repr(1 - B))


def clean_terms(terms: Iterable[str]) -> list[str]:
    """``terms`` as PostgreSQL can take them: strings without NUL or lone surrogates, empty ones dropped.

    Order and repeats are kept (a repeated term counts twice, as in FTS5).
    """
    out = []
    for term in terms:
        if not isinstance(term, str):
            continue
        term = term.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")
        if term.strip():
            out.append(term)
    return out


def _limit(limit: int) -> int | None:
    """SQLite's LIMIT: a negative limit means none (PostgreSQL's LIMIT NULL)."""
    limit = int(limit)
    return None if limit < 0 else limit


class PgLexicalMixin:
    """BM25 over the postings table (PostgreSQL backend)."""

    # -- ranking ---------------------------------------------------------
    def keyword_search(
        self, terms: Sequence[str], limit: int, filters: Filters | None = None, *, title_weight: float = 0.5
    ) -> list[tuple[int, float]]:
        """Passages holding any of ``terms``, (chunk id, BM25) best first; [] for no terms.

        BM25 weighs a term found in the passage 1 and in its document's title
        ``title_weight``. Ties go to the lower chunk id.
        """
        terms = clean_terms(terms)
        if not terms or limit == 0:
            return []
        where, params = self._lexical_filter(filters)
        sql = _SEARCH_SQL.format(ctes=_scored_ctes(where))
        rows = self.execute(sql, {**self._rank_params(terms, title_weight), **params, "limit": _limit(limit)})
        return [(int(r[0]), float(r[1])) for r in rows]

    def keyword_scores(
        self,
        terms: Sequence[str],
        limit: int,
        ids: Sequence[int],
        filters: Filters | None = None,
        *,
        title_weight: float = 0.5,
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        """:meth:`keyword_search`'s top ``limit`` and the BM25 of the passages ``ids``, in one statement.

        Every matching passage is scored once (it must be, to rank them); the
        top and the asked-for ids are both read from that result. Ids that
        match no term (or fall outside ``filters``) are absent from the scores.
        """
        terms = clean_terms(terms)
        if not terms:
            return [], {}
        where, params = self._lexical_filter(filters)
        sql = _RANK_AND_SCORE_SQL.format(ctes=_scored_ctes(where))
        rows = self.execute(sql, {**self._rank_params(terms, title_weight), **params, "limit": _limit(limit),
                                  "ids": [int(i) for i in ids]})
        top = [(int(r[0]), float(r[1])) for r in rows if r[2]]
        return top, {int(r[0]): float(r[1]) for r in rows if not r[2]}

    def _rank_params(self, terms: list[str], title_weight: float) -> dict:
        n, avgdl = self._corpus_stats()
        return {"terms": terms, "n": n, "avgdl": avgdl, "tw": float(title_weight)}

    def _corpus_stats(self) -> tuple[int, float]:
        """(passages, mean BM25 length), cached per store generation.

        Counting is linear in the store, so it runs once per generation rather
        than once per query; every passage write makes a new generation
        (schema.py's ``changes`` log), so nothing shared is updated per write.
        Inside a consistent view both the generation and the counts come from
        the view's snapshot.
        """
        generation = self.generation()
        cached = self._stats_cache
        if cached is not None and cached[0] == generation:
            return cached[1]
        row = self.one("SELECT coalesce((SELECT max(id) FROM changes), 0), count(*), coalesce(avg(len), 0)::float8"
                       " FROM chunks")
        stats = (int(row[1]), float(row[2]) if row[2] and row[2] > 0 else 1.0)
        self._stats_cache = (int(row[0]), stats)
        return stats

    def _lexical_filter(self, filters: Filters | None, alias: str = "d") -> tuple[str, dict]:
        """The ranked passages' restriction: a join of ``m``'s passages to their documents, and its parameters.

        The condition is documents.py's :meth:`_filter_where` (SQLite's
        ``filter_sql`` rules), with named placeholders as the ranking's own.
        """
        if filters is None or filters.is_empty():
            return "", {}
        where, params = self._filter_where(filters, alias, named=True)
        return (f" JOIN chunks fc ON fc.id = s.chunk_id JOIN documents {alias} ON {alias}.id = fc.doc_id"
                f" WHERE {where}"), params

    # -- counts ----------------------------------------------------------
    def term_doc_counts(self, terms: Sequence[str]) -> dict[str, int]:
        """Passages containing each term, in title or text (after stemming); 0 for a term without lexemes.

        Used to keep very common words out of large stores' keyword queries
        (a cost heuristic) and by spelling correction. A term of several
        lexemes is counted as the phrase keyword ranking matches. Counts are
        cached until the store's generation changes.
        """
        unique = list(dict.fromkeys(t for t in terms if isinstance(t, str) and t))
        if not unique:
            return {}
        generation = self.generation()
        cache = self.__dict__.get("_df_cache")
        if cache is None or cache[0] != generation or len(cache[1]) > _DF_CACHE_MAX:
            cache = (generation, {})
            self.__dict__["_df_cache"] = cache
        counts = cache[1]
        todo = [t for t in unique if t not in counts]
        if todo:
            cleaned = [clean_terms([t]) for t in todo]
            asked = [c[0] for c in cleaned if c]
            found = {}
            if asked:
                rows = self.execute(_DOC_COUNTS_SQL.format(terms=_TERMS_CTE, places=_TERM_PLACES, phrase=_TERM_PHRASE), {"terms": asked})
                found = {asked[int(i) - 1]: int(n) for i, n in rows}
            for t, c in zip(todo, cleaned):
                counts[t] = found.get(c[0], 0) if c else 0
        return {t: counts[t] for t in unique}

    def text_df(self, term: str) -> int:
        """Passages whose text (not title) holds ``term`` (stemmed as the index stems it); 0 when unmatchable."""
        terms = clean_terms([term]) if isinstance(term, str) else []
        if not terms:
            return 0
        return int(self.scalar(_TEXT_DF_SQL.format(terms=_TERMS_CTE, places=_TERM_PLACES, phrase=_TERM_PHRASE), {"terms": terms}, 0))

    def texts_mentioning(self, term: str, doc_ids: Iterable[int], limit: int = 20) -> list[str]:
        """Up to ``limit`` passage texts of these documents whose text (not title) holds ``term``."""
        ids = [int(i) for i in list(doc_ids)[:_MENTION_DOCS]]
        terms = clean_terms([term]) if isinstance(term, str) else []
        if not ids or not terms or limit == 0:
            return []
        rows = self.execute(_MENTIONING_SQL.format(terms=_TERMS_CTE, places=_TERM_PLACES, phrase=_TERM_PHRASE),
                            {"terms": terms, "docs": ids, "limit": _limit(limit)})
        return [r[0] for r in rows]

    # -- the write path ----------------------------------------------------
    def _write_postings(self, conn, chunk_ids: Sequence[int]) -> None:
        """Inside the caller's transaction: the postings of these freshly inserted passages."""
        if chunk_ids:
            conn.execute(_POSTINGS_SQL, (list(chunk_ids),))

    def _retitle(self, conn, doc_id: int) -> None:
        """Inside the caller's transaction: re-index a document's passages after its title changed.

        The title is part of each passage's tsvector and BM25 length, so both
        are recomputed and the postings rewritten.
        """
        conn.execute(
            f"UPDATE chunks c SET tsv = {_tsv_sql('d.title', 'c.text')}, len = {_len_sql('d.title', 'c.text')}"
            " FROM documents d WHERE d.id = c.doc_id AND c.doc_id = %s", (doc_id,))
        ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = %s", (doc_id,)).fetchall()]
        conn.execute("DELETE FROM postings WHERE chunk_id = ANY(%s)", (ids,))
        self._write_postings(conn, ids)
