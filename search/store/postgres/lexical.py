"""Keyword ranking in PostgreSQL: BM25 computed in SQL from the postings table.

(Ranking methods being written.) The write path, shared with documents.py:

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

from typing import Sequence

#: The passage's tsvector: title (weight A) and passage text (weight D), english configuration.
CHUNK_TSV_SQL = ("setweight(to_tsvector('english', %(title)s), 'A')"
                 " || setweight(to_tsvector('english', %(text)s), 'D')")
#: BM25 passage length: the positions of the text's lexemes (stop words are not lexemes).
CHUNK_LEN_SQL = ("(SELECT coalesce(sum(array_length(u.positions, 1)), 0)::integer"
                 " FROM unnest(to_tsvector('english', %(text)s)) u)")

_POSTINGS_SQL = """
INSERT INTO postings (lexeme, chunk_id, tf_text, tf_title, len)
SELECT u.lexeme, c.id,
       (SELECT count(*) FROM unnest(u.weights) w WHERE w = 'D'),
       (SELECT count(*) FROM unnest(u.weights) w WHERE w = 'A'),
       c.len
FROM chunks c, unnest(c.tsv) u
WHERE c.id = ANY(%s)
"""


class PgLexicalMixin:
    """BM25 over the postings table (PostgreSQL backend)."""

    def _write_postings(self, conn, chunk_ids: Sequence[int]) -> None:
        """Inside the caller's transaction: the postings of these freshly inserted passages."""
        if chunk_ids:
            conn.execute(_POSTINGS_SQL, (list(chunk_ids),))

    def _retitle(self, conn, doc_id: int) -> None:
        """Inside the caller's transaction: re-index a document's passages after its title changed."""
        conn.execute(
            "UPDATE chunks c SET tsv = setweight(to_tsvector('english', d.title), 'A')"
            " || setweight(to_tsvector('english', c.text), 'D')"
            " FROM documents d WHERE d.id = c.doc_id AND c.doc_id = %s", (doc_id,))
        ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = %s", (doc_id,)).fetchall()]
        conn.execute("DELETE FROM postings WHERE chunk_id = ANY(%s)", (ids,))
        self._write_postings(conn, ids)
