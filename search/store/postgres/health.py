"""What ``equisearch doctor`` asks a PostgreSQL store, and its repair of derived rows.

:mod:`search.doctor` judges the answers; these methods only measure. The
database keeps its own pages and foreign keys, so what can go wrong here is
narrower than in a SQLite file: an index left invalid (a failed build), a
passage whose tsvector, BM25 length or postings no longer match its title
and text (a write outside equisearch, a bug), a passage without its vector.
A database error while measuring is raised as
:class:`~search.errors.StoreDamaged`, which doctor reports as that check's
finding; a database that cannot be reached stays
:class:`~search.store.postgres.connection.DatabaseUnavailable`.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from ...errors import StoreDamaged, StoreError
from .connection import DatabaseUnavailable, QueryTimeout
from .lexical import CHUNK_LEN_SQL, CHUNK_TSV_SQL
from .schema import _MIGRATION_LOCK, CORPUS_TABLES, LIST_TABLES

#: The HNSW index over the passages' vectors (schema.py makes it).
VECTOR_INDEX = "chunks_vector"


def _of_row(expression: str) -> str:
    """One of lexical.py's write-path expressions over a passage's row and its document's."""
    return expression.replace("%(title)s", "d.title").replace("%(text)s", "c.text")


#: A passage's tsvector and length as the write path computes them.
_TSV_OF_ROW = _of_row(CHUNK_TSV_SQL)
_LEN_OF_ROW = _of_row(CHUNK_LEN_SQL)

#: Passages whose postings are not one row per lexeme of their tsvector with
#: that lexeme's counts and the passage's length: the postings the write path
#: would make (lexical.py), full-joined with those stored (one hash join).
_BAD_POSTINGS = """
SELECT DISTINCT coalesce(e.chunk_id, p.chunk_id) AS id
FROM (SELECT c.id AS chunk_id, u.lexeme, c.len,
             (SELECT count(*) FROM unnest(u.weights) w WHERE w = 'D') AS tf_text,
             (SELECT count(*) FROM unnest(u.weights) w WHERE w = 'A') AS tf_title
      FROM chunks c, unnest(c.tsv) u) e
FULL JOIN postings p ON p.chunk_id = e.chunk_id AND p.lexeme = e.lexeme
WHERE e.chunk_id IS NULL OR p.chunk_id IS NULL OR p.len <> e.len OR p.tf_text <> e.tf_text
   OR p.tf_title <> e.tf_title
"""
#: Passages whose tsvector or length differ from what their title and text give.
_STALE_TSV = f"""
SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id
WHERE c.tsv <> {_TSV_OF_ROW} OR c.len <> {_LEN_OF_ROW}
"""


def reports_damage(func):
    """Raise a database error inside ``func`` as :class:`StoreDamaged` ("PostgreSQL error: ...").

    An unreachable database or a cancelled statement is not damage: those
    errors go on as they are.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (DatabaseUnavailable, QueryTimeout, StoreDamaged):
            raise
        except StoreError as exc:
            raise StoreDamaged(f"PostgreSQL error: {exc}") from exc

    return wrapper


class PgHealthMixin:
    """Consistency questions and the repair of derived rows (PostgreSQL backend)."""

    @contextlib.contextmanager
    def _full_pass(self):
        """A connection for statements that read every row: no statement timeout.

        The timeout keeps a search from hanging a page; a health check or a
        repair reads the whole store and may take longer. Joins the caller's
        transaction or consistent view (the setting then lasts until it ends),
        else runs in one of its own.
        """
        with self.transaction() as conn:
            conn.execute("SET LOCAL statement_timeout = 0")
            yield conn

    def _count(self, sql: str, params=None) -> int:
        with self._full_pass() as conn:
            return int(conn.execute(sql, params).fetchone()[0] or 0)

    @reports_damage
    def database_check(self) -> tuple[str, list[str]] | None:
        """None when sound, else (what failed, its findings).

        ``tables``: a table that cannot be read (every one is scanned to its
        end); ``indexes``: an index of the store that is not valid or not
        ready (a build that failed, e.g. out of memory for HNSW), or the
        vector index missing while passages have vectors.
        """
        bad = []
        for table in (*CORPUS_TABLES, *LIST_TABLES):
            try:
                self._count(f"SELECT count(*) FROM {table}")
            except (DatabaseUnavailable, QueryTimeout):
                raise
            except StoreError as exc:
                bad.append(f"{table}: {exc}")
        if bad:
            return "tables", bad
        rows = self.execute(
            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
            " JOIN pg_namespace n ON n.oid = t.relnamespace"
            " WHERE n.nspname = current_schema() AND t.relname = ANY(%s) AND NOT (i.indisvalid AND i.indisready)"
            " ORDER BY 1", (list((*CORPUS_TABLES, *LIST_TABLES)),))
        found = [f"index {r[0]} is not valid" for r in rows]
        if not self._has_vector_index() and self.scalar(
                "SELECT EXISTS (SELECT 1 FROM chunks WHERE vector IS NOT NULL)", default=False):
            found.append(f"index {VECTOR_INDEX} is missing")
        return ("indexes", found) if found else None

    def _has_vector_index(self) -> bool:
        return bool(self.scalar("SELECT to_regclass(%s) IS NOT NULL", (VECTOR_INDEX,), False))

    @reports_damage
    def meta_values(self) -> dict[str, str]:
        """Every meta key and value (schema_version, model, dim, chunking, vector_dtype)."""
        return {k: v for k, v in self.execute("SELECT key, value FROM meta")}

    @reports_damage
    def missing_vectors(self) -> int:
        """Passages without a stored vector."""
        return self._count("SELECT count(*) FROM chunks WHERE vector IS NULL")

    @reports_damage
    def wrong_size_vectors(self, nbytes: int) -> int:
        """Stored vectors that are not ``nbytes`` long as float16 (halfvec), i.e. not ``nbytes / 2`` dimensions."""
        return self._count("SELECT count(*) FROM chunks WHERE vector IS NOT NULL AND vector_dims(vector) <> %s",
                           (int(nbytes) // 2,))

    @reports_damage
    def documents_without_passages(self, examples: int = 4) -> tuple[int, list[str]]:
        """(how many documents have no passage, the URIs of the first ``examples``)."""
        where = "FROM documents d WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.doc_id = d.id)"
        uris = [r[0] for r in self.execute(f"SELECT d.uri {where} ORDER BY d.id LIMIT %s", (examples,))]
        if not uris:
            return 0, []
        return self._count(f"SELECT count(*) {where}"), uris

    @reports_damage
    def orphan_counts(self) -> dict[str, int]:
        """Passages, postings and aliases pointing at nothing (the foreign keys forbid them; 0 unless one was dropped)."""
        with self._full_pass() as conn:
            return _orphan_counts(conn)

    @reports_damage
    def misplaced_passages(self) -> int:
        """Passages that are not the slice of their document text their offsets claim."""
        # substr counts characters, as Python's slices do; CASE keeps a
        # negative length (damage) from raising instead of counting.
        return self._count(
            "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id"
            " WHERE CASE WHEN c.char_start < 0 OR c.char_end < c.char_start THEN TRUE"
            " ELSE substr(d.text, c.char_start + 1, c.char_end - c.char_start) <> c.text END")

    def keyword_index_check(self) -> tuple[str, str]:
        """Postings and tsvectors against the passages: ("ok" | "failed", detail).

        Every passage's tsvector and BM25 length must be what its title and
        text give, and its postings one row per lexeme with that lexeme's
        counts. Reads every passage (a full pass, as SQLite's integrity check).
        """
        try:
            bad = self._count(f"SELECT count(*) FROM ({_BAD_POSTINGS}) b")
            stale = self._count(f"SELECT count(*) FROM ({_STALE_TSV}) s")
        except (DatabaseUnavailable, QueryTimeout):
            raise
        except StoreError as exc:
            return "failed", str(exc)
        problems = []
        if stale:
            problems.append(f"{stale} passage(s) whose tsvector or length differ from their title and text")
        if bad:
            problems.append(f"{bad} passage(s) whose postings differ from their tsvector")
        return ("failed", "; ".join(problems)) if problems else ("ok", "")

    @reports_damage
    def vector_ids(self) -> np.ndarray:
        """The chunk ids that have a stored vector."""
        rows = self.execute("SELECT id FROM chunks WHERE vector IS NOT NULL ORDER BY id")
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vector_index_state(self) -> dict:
        """What doctor shows of the HNSW index: present, valid, its dimension and size."""
        row = self.one(
            "SELECT i.indisvalid AND i.indisready, pg_relation_size(i.indexrelid) FROM pg_index i"
            " WHERE i.indexrelid = to_regclass(%s)", (VECTOR_INDEX,))
        dim = self.scalar("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'chunks'::regclass"
                          " AND attname = 'vector'", default=-1)
        return {"present": row is not None, "valid": bool(row and row[0]), "bytes": int(row[1]) if row else 0,
                "dim": int(dim) if dim and dim > 0 else 0}

    def repair_derived(self) -> dict[str, int]:
        """Re-derive what is derived, in one transaction; returns what was fixed, by kind.

        Orphan aliases, passages and postings are deleted; passages whose
        tsvector or length are stale get them again; passages whose postings
        disagree get theirs rewritten; invalid indexes are rebuilt (REINDEX).
        Bumps the generation when anything changed. Nothing is re-embedded.
        A valid HNSW index is rebuilt by the vector index's ``rebuild``
        (:meth:`reindex_vectors`), which doctor runs next.
        """
        with self._full_pass() as conn:
            orphans = _orphan_counts(conn)
            conn.execute("DELETE FROM aliases a WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = a.doc_id)")
            conn.execute("DELETE FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = c.doc_id)")
            conn.execute("DELETE FROM postings p WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = p.chunk_id)")
            stale = [r[0] for r in conn.execute(_STALE_TSV).fetchall()]
            if stale:
                conn.execute(f"UPDATE chunks c SET tsv = {_TSV_OF_ROW}, len = {_LEN_OF_ROW} FROM documents d"
                             " WHERE d.id = c.doc_id AND c.id = ANY(%s)", (stale,))
            redo = sorted(set(stale) | {r[0] for r in conn.execute(_BAD_POSTINGS).fetchall()})
            if redo:
                conn.execute("DELETE FROM postings WHERE chunk_id = ANY(%s)", (redo,))
                self._write_postings(conn, redo)
            invalid = [r[0] for r in conn.execute(
                "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
                " WHERE t.relname = ANY(%s) AND t.relnamespace = current_schema()::regnamespace"
                " AND NOT (i.indisvalid AND i.indisready)", (list((*CORPUS_TABLES, *LIST_TABLES)),)).fetchall()]
            for name in invalid:
                conn.execute(f"REINDEX INDEX {name}")
            changed = any(orphans.values()) or bool(redo)
            if changed:
                self._bump_generation(conn)
        return {**orphans, "keyword rows": len(redo), "indexes": len(invalid)}

    def reindex_vectors(self) -> None:
        """Rebuild the HNSW index from the stored vectors, or make it when it is missing.

        ``REINDEX ... CONCURRENTLY`` outside a transaction (searches and
        writes go on meanwhile); inside one, a plain ``REINDEX``. Nothing to
        do before the vector column has a dimension (no vectors yet).
        """
        dim = self.scalar("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'chunks'::regclass"
                          " AND attname = 'vector'", default=-1)
        if not dim or dim <= 0:
            return
        if getattr(self._local, "conn", None) is not None:  # inside a transaction: no CONCURRENTLY there
            with self._full_pass() as conn:
                self._make_vector_index(conn, concurrently=False)
            return
        with self.connection() as conn, self._errors():
            # A session setting on this pooled connection, reset before it goes back.
            conn.execute("SET statement_timeout = 0")
            try:
                self._make_vector_index(conn, concurrently=True)
            finally:
                if not conn.closed:
                    conn.execute("RESET statement_timeout")

    def _make_vector_index(self, conn, *, concurrently: bool) -> None:
        how = "CONCURRENTLY " if concurrently else ""
        # A concurrent rebuild that was interrupted leaves its invalid copy behind.
        conn.execute(f"DROP INDEX {how}IF EXISTS {VECTOR_INDEX}_ccnew")
        if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VECTOR_INDEX,)).fetchone()[0]:
            conn.execute(f"REINDEX INDEX {how}{VECTOR_INDEX}")
            return
        # Missing: made again, under schema.py's lock around a change of the vector column.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK + 1,))
            dim = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'chunks'::regclass"
                               " AND attname = 'vector'").fetchone()[0]
            if dim > 0:
                conn.execute(f"CREATE INDEX IF NOT EXISTS {VECTOR_INDEX} ON chunks USING hnsw"
                             " (vector halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)")


def _orphan_counts(conn) -> dict[str, int]:
    queries = {
        "chunks": "SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = c.doc_id)",
        "postings": "SELECT count(*) FROM postings p WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = p.chunk_id)",
        "aliases": "SELECT count(*) FROM aliases a WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = a.doc_id)",
    }
    return {k: int(conn.execute(sql).fetchone()[0]) for k, sql in queries.items()}
