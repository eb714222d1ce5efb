"""Schema and migrations, the meta table, the builder record and the compatibility check.

The schema version lives in ``PRAGMA user_version`` (and meta
``schema_version``); opening a store at an older version runs the scripts of
:data:`MIGRATIONS` for every later version in one transaction. The meta
table records the model, dimension and chunking that built the store and
the ``generation`` counter every passage write bumps.
"""
from __future__ import annotations

import logging
import sqlite3

from ..errors import StoreError, StoreMismatch
from ..types import StoreInfo
from .base import VECTOR_DTYPES
from .lists import LISTS_OWNERS_SCHEMA, LISTS_SCHEMA

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5
DB_NAME = "equisearch.db"

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    id           INTEGER PRIMARY KEY,
    uri          TEXT NOT NULL UNIQUE,
    title        TEXT NOT NULL DEFAULT '',
    site         TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL DEFAULT 'other',
    date         TEXT NOT NULL DEFAULT '',
    author       TEXT NOT NULL DEFAULT '',
    url          TEXT NOT NULL DEFAULT '',
    language     TEXT NOT NULL DEFAULT '',
    tags         TEXT NOT NULL DEFAULT '[]',
    meta         TEXT NOT NULL DEFAULT '{}',
    content_hash TEXT NOT NULL,
    text_hash    TEXT NOT NULL,
    text         TEXT NOT NULL,
    blocks       TEXT NOT NULL DEFAULT '[]',
    added_at     TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_text_hash ON documents(text_hash);
CREATE TABLE IF NOT EXISTS aliases (
    uri    TEXT PRIMARY KEY,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS chunks (
    id         INTEGER PRIMARY KEY,
    doc_id     INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord        INTEGER NOT NULL,
    text       TEXT NOT NULL,
    char_start INTEGER NOT NULL,
    char_end   INTEGER NOT NULL,
    page_start INTEGER,
    page_end   INTEGER,
    t_start    REAL,
    t_end      REAL,
    speaker    TEXT NOT NULL DEFAULT '',
    section    TEXT NOT NULL DEFAULT '',
    text_hash  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ord);
CREATE TABLE IF NOT EXISTS vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    vec      BLOB NOT NULL
);
-- Porter stemming over unicode61: "pupils" matches "pupil", "excluded"
-- matches "exclusion"'s stem "exclus"; diacritics folded for names.
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, content='chunks', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_au AFTER UPDATE OF text ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
END;
"""

# Version 2: the keyword index also holds each passage's document title, as a
# second column ranked with a lower weight (``Settings.title_weight``). Place
# names, programme names and report types live in titles ("Area SEND
# inspection of Bexley"), rarely in every passage; without the title a
# question about "EHCPs in Bexley" cannot tell Bexley's passages from 27 other
# inspections'. The FTS table reads its content through a view, so FTS5's
# 'rebuild' and 'integrity-check' still work; triggers keep it in step with
# chunk writes and title changes. A document is deleted only after its chunks
# (BEFORE DELETE trigger), so the chunk trigger can still read the old title
# that FTS5 needs to remove a row.
_SCHEMA_V2 = """
DROP TRIGGER IF EXISTS chunks_ai;
DROP TRIGGER IF EXISTS chunks_ad;
DROP TRIGGER IF EXISTS chunks_au;
DROP TABLE IF EXISTS chunks_fts;
CREATE VIEW IF NOT EXISTS chunks_fts_content AS
    SELECT c.id AS id, c.text AS text, coalesce(d.title, '') AS title
    FROM chunks c LEFT JOIN documents d ON d.id = c.doc_id;
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, title, content='chunks_fts_content', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, title)
    VALUES (new.id, new.text, coalesce((SELECT title FROM documents WHERE id = new.doc_id), ''));
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, title)
    VALUES ('delete', old.id, old.text, coalesce((SELECT title FROM documents WHERE id = old.doc_id), ''));
END;
CREATE TRIGGER chunks_au AFTER UPDATE OF text ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, title)
    VALUES ('delete', old.id, old.text, coalesce((SELECT title FROM documents WHERE id = old.doc_id), ''));
    INSERT INTO chunks_fts(rowid, text, title)
    VALUES (new.id, new.text, coalesce((SELECT title FROM documents WHERE id = new.doc_id), ''));
END;
CREATE TRIGGER documents_title_au AFTER UPDATE OF title ON documents BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, title)
        SELECT 'delete', id, text, old.title FROM chunks WHERE doc_id = old.id;
    INSERT INTO chunks_fts(rowid, text, title)
        SELECT id, text, new.title FROM chunks WHERE doc_id = new.id;
END;
CREATE TRIGGER documents_bd BEFORE DELETE ON documents BEGIN
    DELETE FROM chunks WHERE doc_id = old.id;
END;
INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');
"""

# Schema version 4: each document records the version of the ingest
# pipeline (extraction, cleaning, chunking) that made its text. Re-ingesting
# a file whose bytes did not change then still re-reads it when a newer
# pipeline would store cleaner text, and says so. Documents stored before
# the column existed get '' (an older pipeline than any).
_PIPELINE_VERSION_SCHEMA = """
ALTER TABLE documents ADD COLUMN pipeline_version TEXT NOT NULL DEFAULT '';
"""

#: Schema scripts by the version they bring a store to; a store at version
#: N runs the scripts for N+1.. in one transaction when opened. Versions 3
#: and 5 are the reading lists' tables (search/store/lists.py).
MIGRATIONS = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: LISTS_SCHEMA, 4: _PIPELINE_VERSION_SCHEMA, 5: LISTS_OWNERS_SCHEMA}


def mismatch(path, info: StoreInfo, model: str | None, dim: int | None, chunking: str | None) -> str:
    """Why a store built as ``info`` cannot take ``model``/``dim``/``chunking`` ('' when it can).

    The one compatibility rule, for every edge: an empty store (no model
    recorded) takes anything, and an argument left None is not compared (a
    reader asks only about the model it was told to use; an ingest that has
    not loaded its model yet, not about the dimension).
    """
    if not info.model:
        return ""
    problems = []
    if model is not None and info.model != model:
        problems.append(f"model {info.model!r} (asked for {model!r})")
    if dim is not None and info.dim and info.dim != dim:
        problems.append(f"dimension {info.dim} (model gives {dim})")
    if chunking is not None and info.chunking and info.chunking != chunking:
        problems.append(f"chunking {info.chunking} (settings say {chunking})")
    if not problems:
        return ""
    return (
        f"store {path} was built with " + ", ".join(problems)
        + ": run `equisearch rebuild` to re-embed it with the current settings,"
        " or use the store's settings (--model / EQUISEARCH_MODEL)"
    )


class SchemaMixin:
    """Opening-time migration, meta, generation and the builder record (SQLite backend)."""

    def _init_schema(self) -> None:
        try:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.db_path} is not a readable SQLite database ({exc}): move it aside and re-ingest"
            ) from exc
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.db_path} has schema version {version}, newer than this equisearch "
                f"({SCHEMA_VERSION}): upgrade equisearch"
            )
        if version == SCHEMA_VERSION:
            return
        # executescript() commits anything pending first, so the whole
        # migration is one explicit transaction inside the script itself; a
        # failure part-way rolls back to the old version, untouched.
        steps = "".join(MIGRATIONS[v] for v in range(version + 1, SCHEMA_VERSION + 1))
        try:
            self.conn.executescript(
                "BEGIN IMMEDIATE;"
                + steps
                + "INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0');"
                + "INSERT INTO meta(key, value) VALUES ('schema_version', "
                + f"'{SCHEMA_VERSION}') ON CONFLICT(key) DO UPDATE SET value = excluded.value;"
                + f"PRAGMA user_version={SCHEMA_VERSION};"
                + "COMMIT;"
            )
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise StoreError(
                f"could not upgrade {self.db_path} from schema {version} to {SCHEMA_VERSION} ({exc}): "
                "is another equisearch process using it? Try again when it has finished"
            ) from exc
        if version:
            log.info("upgraded %s from schema %d to %d", self.db_path, version, SCHEMA_VERSION)

    # -- meta ------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def vector_dtype(self) -> str:
        """How this store's vector blobs are encoded: ``float16`` or ``float32``.

        Recorded in ``meta`` with the first vectors written; a store that has
        vectors but no record predates the key and holds float32.
        """
        recorded = self.get_meta("vector_dtype")
        if recorded in VECTOR_DTYPES:
            return recorded
        has_vectors = self.conn.execute("SELECT 1 FROM vectors LIMIT 1").fetchone() is not None
        return "float32" if has_vectors else self.new_vector_dtype

    def generation(self) -> int:
        """Counter bumped by every write: readers compare it to what they loaded."""
        return int(self.get_meta("generation", "0"))

    def info(self) -> StoreInfo:
        c = self.conn
        return StoreInfo(
            schema_version=int(self.get_meta("schema_version", "0")),
            model=self.get_meta("model", "") or "",
            dim=int(self.get_meta("dim", "0") or 0),
            chunking=self.get_meta("chunking", "") or "",
            documents=c.execute("SELECT count(*) FROM documents").fetchone()[0],
            chunks=c.execute("SELECT count(*) FROM chunks").fetchone()[0],
            generation=self.generation(),
        )

    def check_compatible(self, model: str | None = None, dim: int | None = None, chunking: str | None = None) -> None:
        """Raise :class:`StoreMismatch` unless the store was built this way (see :func:`mismatch`).

        Writes check all three inside their transaction; ``Engine.open``
        checks the model a reader asked for, ``Ingestor.check_store`` the
        model and chunking before any parsing.
        """
        problem = mismatch(self.path, self.info(), model, dim, chunking)
        if problem:
            raise StoreMismatch(problem)

    def record_builder(self, conn: sqlite3.Connection, model: str, dim: int, chunking: str) -> None:
        """Inside a transaction: record what built the store and bump the generation."""
        self._record_builder(conn, model, dim, chunking)
        self._bump_generation(conn)

    def _record_builder(self, conn: sqlite3.Connection, model: str, dim: int, chunking: str) -> None:
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [("model", model), ("dim", str(dim)), ("chunking", chunking)],
        )

    def _bump_generation(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
