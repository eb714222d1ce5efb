"""What ``equisearch doctor`` asks the SQLite database, and its repair of derived rows.

:mod:`search.doctor` judges the answers (ok, warning, problem, the fix to
run); these methods only measure. A database error while measuring is
raised as :class:`~search.errors.StoreDamaged`, which doctor reports as the
finding of that check.
"""
from __future__ import annotations

import sqlite3

import numpy as np

from .damage import reports_damage


class HealthMixin:
    """Consistency questions and the repair of derived rows (SQLite backend)."""

    @reports_damage
    def database_check(self) -> tuple[str, list[str]] | None:
        """SQLite's own page checks: None when sound, else (the check that failed, its rows).

        ``PRAGMA quick_check`` first, then the slower ``integrity_check``.
        """
        for pragma in ("quick_check", "integrity_check"):
            rows = [str(r[0]) for r in self.conn.execute(f"PRAGMA {pragma}").fetchall()]
            if rows != ["ok"]:
                return f"PRAGMA {pragma}", rows
        return None

    @reports_damage
    def meta_values(self) -> dict[str, str]:
        """Every meta key and value (model, dim, chunking, generation, vector_dtype...)."""
        return {k: v for k, v in self.conn.execute("SELECT key, value FROM meta")}

    @reports_damage
    def missing_vectors(self) -> int:
        """Passages without a stored vector."""
        return _count(self.conn, "SELECT count(*) FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id "
                                 "WHERE v.chunk_id IS NULL")

    @reports_damage
    def wrong_size_vectors(self, nbytes: int) -> int:
        """Stored vectors whose blob is not ``nbytes`` long."""
        return _count(self.conn, "SELECT count(*) FROM vectors WHERE length(vec) != ?", (nbytes,))

    @reports_damage
    def documents_without_passages(self, examples: int = 4) -> tuple[int, list[str]]:
        """(how many documents have no passage, the URIs of the first ``examples``)."""
        uris = [r[0] for r in self.conn.execute(
            "SELECT d.uri FROM documents d WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.doc_id = d.id) "
            "ORDER BY d.id LIMIT ?", (examples,))]
        if not uris:
            return 0, []
        n = _count(self.conn, "SELECT count(*) FROM documents d WHERE NOT EXISTS "
                              "(SELECT 1 FROM chunks c WHERE c.doc_id = d.id)")
        return n, uris

    @reports_damage
    def orphan_counts(self) -> dict[str, int]:
        """Passages, vectors and aliases pointing at nothing."""
        return _orphan_counts(self.conn)

    @reports_damage
    def misplaced_passages(self) -> int:
        """Passages that are not the slice of their document text their offsets claim."""
        # SQLite's substr counts characters, as Python's slices do.
        return _count(self.conn, "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id "
                                 "WHERE c.char_start < 0 OR c.char_end < c.char_start "
                                 "OR substr(d.text, c.char_start + 1, c.char_end - c.char_start) != c.text")

    def keyword_index_check(self) -> tuple[str, str]:
        """FTS5's own integrity-check against the passages: ("ok" | "not run" | "failed", detail).

        "not run" when the database cannot be written (read-only, locked):
        the check writes to the FTS table's control column.
        """
        try:
            # rank=1: also compare the index with the external content table.
            self.conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "read-only" in str(exc) or "locked" in str(exc):
                return "not run", str(exc)
            return "failed", str(exc)
        except sqlite3.DatabaseError as exc:
            return "failed", str(exc)
        return "ok", ""

    @reports_damage
    def vector_ids(self) -> np.ndarray:
        """The chunk ids that have a stored vector."""
        return np.fromiter((r[0] for r in self.conn.execute("SELECT chunk_id FROM vectors")), dtype=np.int64)

    def repair_derived(self) -> dict[str, int]:
        """Delete orphan aliases, passages and vectors and rebuild the FTS5 index, in one transaction.

        Returns the orphans deleted by kind. When any were, the generation
        is bumped so readers' vector indexes notice. Nothing is re-embedded.
        Call through :meth:`search.store.Writer.repair_derived` (the write lock).
        """
        with self.transaction() as conn:
            orphans = _orphan_counts(conn)
            conn.execute("DELETE FROM aliases WHERE doc_id NOT IN (SELECT id FROM documents)")
            conn.execute("DELETE FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)")
            conn.execute("DELETE FROM vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)")
            conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
            if any(orphans.values()):
                self._bump_generation(conn)
        return orphans


def _count(conn: sqlite3.Connection, sql: str, params=()) -> int:
    return int(conn.execute(sql, params).fetchone()[0])


def _orphan_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        "chunks": _count(conn, "SELECT count(*) FROM chunks c WHERE NOT EXISTS "
                               "(SELECT 1 FROM documents d WHERE d.id = c.doc_id)"),
        "vectors": _count(conn, "SELECT count(*) FROM vectors v WHERE NOT EXISTS "
                                "(SELECT 1 FROM chunks c WHERE c.id = v.chunk_id)"),
        "aliases": _count(conn, "SELECT count(*) FROM aliases a WHERE NOT EXISTS "
                                "(SELECT 1 FROM documents d WHERE d.id = a.doc_id)"),
    }
