"""(being written) Keyword ranking in PostgreSQL: BM25 computed in SQL from the postings table.

Contract with documents.py (the write path):

- a passage row is inserted with ``tsv`` and ``len`` computed by the server
  from :data:`CHUNK_TSV_SQL` / :data:`CHUNK_LEN_SQL` (placeholders
  ``%(title)s`` and ``%(text)s``);
- after inserting a document's passages, in the same transaction, the writer
  calls ``self._write_postings(conn, chunk_ids)``;
- after a title change, in the same transaction, ``self._retitle(conn, doc_id)``.
"""
from __future__ import annotations

#: The passage's tsvector: title (weight A) and passage text (weight D), english configuration.
CHUNK_TSV_SQL = ("setweight(to_tsvector('english', %(title)s), 'A')"
                 " || setweight(to_tsvector('english', %(text)s), 'D')")
#: BM25 document length: lexeme positions of the passage text.
CHUNK_LEN_SQL = "coalesce(array_length(tsvector_to_array(to_tsvector('english', %(text)s)), 1), 0)"


class PgLexicalMixin:
    def _write_postings(self, conn, chunk_ids) -> None:
        raise NotImplementedError

    def _retitle(self, conn, doc_id: int) -> None:
        raise NotImplementedError
