"""Keyword ranking in SQLite FTS5: BM25 over passages and their titles, term counts.

The FTS5 table ``chunks_fts`` indexes each passage's text and its document's
title (schema version 2) with Porter stemming; triggers keep it in step with
every write (schema.py). Callers give terms (words, or phrases as words
joined by spaces, from :func:`search.lexical.keyword_terms`); they are
quoted here, so raw user text never reaches FTS5's query syntax. Scores are
returned higher-is-better (FTS5's bm25() is lower-is-better).
"""
from __future__ import annotations

import json
import logging
import sqlite3
from typing import Iterable, Sequence

from ..lexical import match_expression, quote_term
from ..types import Filters

log = logging.getLogger(__name__)


class LexicalMixin:
    """FTS5 keyword search and counts (SQLite backend)."""

    def keyword_search(
        self, terms: Sequence[str], limit: int, filters: Filters | None = None, *, title_weight: float = 0.5
    ) -> list[tuple[int, float]]:
        """Passages holding any of ``terms``, (chunk id, BM25) best first; [] for no terms."""
        match = match_expression(terms)
        return self.fts_search(match, limit, filters, title_weight=title_weight) if match else []

    def keyword_scores(
        self,
        terms: Sequence[str],
        limit: int,
        ids: Sequence[int],
        filters: Filters | None = None,
        *,
        title_weight: float = 0.5,
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        """:meth:`keyword_search`'s top ``limit`` and the BM25 of the passages ``ids`` (see :meth:`fts_rank_and_score`)."""
        match = match_expression(terms)
        if not match:
            return [], {}
        return self.fts_rank_and_score(match, limit, ids, filters, title_weight=title_weight)

    def text_df(self, term: str) -> int:
        """Passages whose text (not title) holds ``term`` (stemmed as the index stems it); 0 when unmatchable."""
        try:
            return int(self.conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                                         (f"text : {quote_term(term)}",)).fetchone()[0])
        except sqlite3.Error:  # an unmatchable token: treat as unseen
            return 0


    def texts_mentioning(self, term: str, doc_ids: Iterable[int], limit: int = 20) -> list[str]:
        """Up to ``limit`` passage texts of these documents whose text (not title) holds ``term``."""
        ids = list(doc_ids)[:500]
        if not ids or not term:
            return []
        marks = ",".join("?" * len(ids))
        try:
            rows = self.conn.execute(
                f"SELECT c.text FROM chunks_fts f JOIN chunks c ON c.id = f.rowid WHERE chunks_fts MATCH ? "
                f"AND c.doc_id IN ({marks}) LIMIT ?", [f"text : {quote_term(term)}", *ids, limit]).fetchall()
        except sqlite3.OperationalError as exc:
            log.warning("FTS5 lookup of %r failed: %s", term, exc)
            return []
        return [r[0] for r in rows]


    def term_doc_counts(self, terms: Sequence[str]) -> dict[str, int]:
        """Passages containing each query term (after Porter stemming).

        Used to keep very common words out of large stores' keyword queries:
        FTS5 scores every row an OR query matches, so one word found in a
        tenth of a million passages costs more than the whole dense search.
        Terms are stemmed by FTS5 itself (a TEMP table with the same
        tokenizer) and looked up in an ``fts5vocab`` view, so nothing is
        written to the store.
        """
        terms = [t for t in dict.fromkeys(terms) if t]
        if not terms:
            return {}
        conn = self.conn
        if not getattr(self._local, "vocab_ready", False):
            conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_tokens USING fts5("
                         "text, tokenize='porter unicode61 remove_diacritics 2')")
            conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_tokens_v USING fts5vocab(temp, query_tokens, instance)")
            conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_v USING fts5vocab(main, chunks_fts, row)")
            self._local.vocab_ready = True
        conn.executemany("INSERT INTO temp.query_tokens(rowid, text) VALUES (?, ?)", list(enumerate(terms, start=1)))
        try:
            stems: dict[int, str] = {}
            for doc, term in conn.execute("SELECT doc, term FROM temp.query_tokens_v"):
                stems.setdefault(doc, term)
        finally:
            conn.execute("DELETE FROM temp.query_tokens")
        # One equality lookup per term: fts5vocab answers `term = ?` from the
        # index but scans the whole vocabulary for `term IN (...)`. Counting
        # walks the term's posting list (16 ms for a word in half of 100k
        # passages), so counts are cached per process: they only steer a cost
        # heuristic, and a count a few writes old is as good.
        cache = self.__dict__.setdefault("_df_cache", {})
        if len(cache) > 100_000:
            cache.clear()
        df = {}
        for stem in set(stems.values()):
            if stem not in cache:
                row = conn.execute("SELECT doc FROM temp.chunks_fts_v WHERE term = ?", (stem,)).fetchone()
                cache[stem] = row[0] if row else 0
            df[stem] = cache[stem]
        return {t: int(df.get(stems.get(i, ""), 0)) for i, t in enumerate(terms, start=1)}

    def fts_search(
        self, match: str, limit: int, filters: Filters | None = None, *, title_weight: float = 0.5
    ) -> list[tuple[int, float]]:
        """Run an already-escaped FTS5 MATCH expression; (chunk id, bm25) best first.

        ``match`` comes from :func:`search.lexical.match_expression` (or
        ``build_match``); raw user text must never reach this method. BM25 weighs a word found in
        the passage 1 and in its document's title ``title_weight``.
        """
        where, params = self.filter_sql(filters)
        join = "" if where == "1" else " JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.doc_id"
        sql = (
            f"SELECT f.rowid, bm25(chunks_fts, 1.0, ?) AS s FROM chunks_fts f{join}"
            f" WHERE chunks_fts MATCH ? AND {where} ORDER BY s LIMIT ?"
        )
        try:
            rows = self.conn.execute(sql, [float(title_weight), match, *params, limit]).fetchall()
        except sqlite3.OperationalError as exc:
            # Escaping should make this impossible; log and degrade to no
            # keyword hits rather than failing the whole search.
            log.warning("FTS5 query %r failed: %s", match, exc)
            return []
        return [(r[0], -r[1]) for r in rows]

    def fts_rank_and_score(
        self,
        match: str,
        limit: int,
        ids: Sequence[int],
        filters: Filters | None = None,
        *,
        title_weight: float = 0.5,
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        """:meth:`fts_search`'s top ``limit``, plus the BM25 of the passages ``ids``, in one statement.

        Hybrid search uses it to score the passages the vector index found
        but the keyword top-n did not include, so fusion compares every
        candidate on both scales. One FTS5 pass scores every matching row
        (it must, to rank them); the top and the asked-for ids are both read
        from that materialised result. Looking ids up in a second statement
        (``MATCH ? AND rowid IN (...)``) costs more than the ranking itself:
        FTS5's bm25() recounts each query word's passages for every id
        (8 ms a search on 3k SciFact passages, 6.6 ms at 1M chunks). Ids
        that match no query word are absent from the scores.
        """
        where, params = self.filter_sql(filters)
        join = "" if where == "1" else " JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.doc_id"
        sql = (
            f"WITH m AS (SELECT f.rowid AS id, bm25(chunks_fts, 1.0, ?) AS s FROM chunks_fts f{join}"
            f" WHERE chunks_fts MATCH ? AND {where})"
            " SELECT id, s, 1 FROM (SELECT id, s FROM m ORDER BY s LIMIT ?)"
            " UNION ALL SELECT id, s, 0 FROM m WHERE id IN (SELECT value FROM json_each(?))"
        )
        try:
            rows = self.conn.execute(
                sql, [float(title_weight), match, *params, limit, json.dumps([int(i) for i in ids])]
            ).fetchall()
        except sqlite3.OperationalError as exc:
            log.warning("FTS5 query %r failed: %s", match, exc)
            return [], {}
        top = sorted(((r[0], -r[1]) for r in rows if r[2]), key=lambda p: -p[1])
        return top, {r[0]: -r[1] for r in rows if not r[2]}

