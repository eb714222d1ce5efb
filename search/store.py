"""The on-disk store: one SQLite file for everything that is not derived.

Layout of a store directory::

    equisearch.db      documents, aliases, chunks, vectors, FTS5 index, meta
    vectors.faiss      FAISS index keyed by chunk id (derived, rebuildable)
    vectors.json       which store generation the FAISS file was built from
    write.lock         held by the one process writing

Every write happens in one transaction (``with conn:``), and bumps the
``generation`` counter in ``meta`` so readers and the FAISS file can tell they
are stale. The FTS5 table is an external-content index over ``chunks`` kept in
step by triggers, so it can never disagree with the chunks after a commit.

The store records the model, vector dimension and chunking that built it
(``meta``) and refuses writes from anything else (:class:`StoreMismatch`).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .errors import StoreError, StoreLocked, StoreMismatch
from .lexical import quote_term
from .types import Chunk, Document, Filters, StoreInfo, now_iso

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
DB_NAME = "equisearch.db"

#: How a new store keeps its vectors (meta ``vector_dtype``). float16 halves
#: the database and the rankings do not change (bench/RESULTS.md); stores
#: written before this key existed hold float32 blobs and keep them.
VECTOR_DTYPES = ("float16", "float32")
DEFAULT_VECTOR_DTYPE = "float16"

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

#: Schema scripts by the version they bring a store to; a store at version
#: N runs the scripts for N+1.. in one transaction when opened.
# Schema version 3: reading lists (search/lists.py). An older store gains
# these tables on open (all IF NOT EXISTS, in the migration transaction).
# Items keep a snapshot of their citation and passage text, so a list survives
# its source being re-ingested or removed: re-chunking deletes the old chunk
# rows, which sets chunk_id (and on removal doc_id) to NULL, never the item.
_LISTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS reading_lists (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reading_list_items (
    id         INTEGER PRIMARY KEY,
    list_id    INTEGER NOT NULL REFERENCES reading_lists(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    item_type  TEXT NOT NULL CHECK (item_type IN ('passage', 'source')),
    doc_id     INTEGER REFERENCES documents(id) ON DELETE SET NULL,
    chunk_id   INTEGER REFERENCES chunks(id) ON DELETE SET NULL,
    uri        TEXT NOT NULL,
    title      TEXT NOT NULL DEFAULT '',
    site       TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL DEFAULT 'other',
    date       TEXT NOT NULL DEFAULT '',
    author     TEXT NOT NULL DEFAULT '',
    url        TEXT NOT NULL DEFAULT '',
    link       TEXT NOT NULL DEFAULT '',
    location   TEXT NOT NULL DEFAULT '',
    page_start INTEGER,
    page_end   INTEGER,
    t_start    REAL,
    t_end      REAL,
    text       TEXT NOT NULL DEFAULT '',
    words      INTEGER NOT NULL DEFAULT 0,
    note       TEXT NOT NULL DEFAULT '',
    added_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reading_list_items_list ON reading_list_items(list_id, position);
CREATE INDEX IF NOT EXISTS reading_list_items_doc ON reading_list_items(doc_id);
CREATE INDEX IF NOT EXISTS reading_list_items_chunk ON reading_list_items(chunk_id);
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
#: N runs the scripts for N+1.. in one transaction when opened.
MIGRATIONS = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _LISTS_SCHEMA, 4: _PIPELINE_VERSION_SCHEMA}




@dataclass(frozen=True)
class NewDocument:
    """A document ready to be written: metadata plus its cleaned text."""

    uri: str
    title: str
    text: str
    content_hash: str
    text_hash: str
    site: str = ""
    kind: str = "other"
    date: str = ""
    author: str = ""
    url: str = ""
    language: str = ""
    tags: tuple[str, ...] = ()
    meta: dict | None = None
    #: Provenance of the text, so passages can be re-cut without the source:
    #: [start, end, page, t_start, t_end, speaker, section, transcript(, kind,
    #: label)] rows.
    blocks: tuple[tuple, ...] = ()
    #: The ingest pipeline version that made ``text`` (ingest's PIPELINE_VERSION).
    pipeline_version: str = ""


@dataclass(frozen=True)
class NewChunk:
    """A passage ready to be written (its id comes from SQLite)."""

    text: str
    char_start: int
    char_end: int
    text_hash: str
    page_start: int | None = None
    page_end: int | None = None
    t_start: float | None = None
    t_end: float | None = None
    speaker: str = ""
    section: str = ""


@dataclass(frozen=True)
class WriteResult:
    """What one document write did, so the FAISS index can follow it."""

    doc_id: int
    added_ids: tuple[int, ...]
    removed_ids: tuple[int, ...]


_DOC_COLUMNS = (
    "d.id, d.uri, d.title, d.site, d.kind, d.date, d.author, d.url, d.language, d.tags, "
    "d.content_hash, d.added_at, d.updated_at, d.pipeline_version"
)


def _row_to_document(row: sqlite3.Row, n_chunks: int = 0, aliases: Sequence[str] = ()) -> Document:
    return Document(
        id=row["id"],
        uri=row["uri"],
        title=row["title"],
        site=row["site"],
        kind=row["kind"],
        date=row["date"],
        author=row["author"],
        url=row["url"],
        language=row["language"],
        tags=tuple(json.loads(row["tags"] or "[]")),
        content_hash=row["content_hash"],
        pipeline_version=row["pipeline_version"],
        added_at=row["added_at"],
        updated_at=row["updated_at"],
        n_chunks=n_chunks,
        aliases=tuple(aliases),
    )


def _row_to_chunk(row: sqlite3.Row) -> Chunk:
    return Chunk(
        id=row["id"],
        doc_id=row["doc_id"],
        ord=row["ord"],
        text=row["text"],
        char_start=row["char_start"],
        char_end=row["char_end"],
        page_start=row["page_start"],
        page_end=row["page_end"],
        t_start=row["t_start"],
        t_end=row["t_end"],
        speaker=row["speaker"],
        section=row["section"],
    )


class Store:
    """A store directory: SQLite database plus the derived FAISS files.

    Open with :meth:`Store.open`. A ``Store`` may be shared between threads
    (Streamlit runs sessions on threads): SQLite connections are per thread.
    """

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = Path(path)
        self.db_path = self.path / DB_NAME
        self.readonly = readonly
        self._local = threading.local()
        self._lock_fd: int | None = None
        #: dtype a store without vectors will use for its first write
        #: (Settings.vector_dtype; set by the ingest pipeline).
        self.new_vector_dtype = DEFAULT_VECTOR_DTYPE

    # -- opening ---------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, *, create: bool = True) -> "Store":
        """Open (and with ``create``, initialise) the store at ``path``.

        Raises :class:`StoreError` when the directory cannot be used or the
        database is not an equisearch store of a known schema version.
        """
        path = Path(path).expanduser()
        if not (path / DB_NAME).exists():
            if not create:
                raise StoreError(
                    f"no equisearch store at {path}: run `equisearch ingest PATH` first or pass --store"
                )
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create store directory {path}: {exc.strerror}") from exc
        store = cls(path)
        store._init_schema()
        return store

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.db_path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        # WAL lets searches read while an ingest writes; NORMAL sync is safe
        # with WAL (a crash loses at most the last transaction, never corrupts).
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Run several reads against one consistent state of the database.

        A search reads FAISS ids, FTS5 rows, passages and documents in separate
        statements; an ingest or ``remove`` committing between two of them
        would hand a passage whose document is gone. Inside a WAL read
        transaction every statement sees the database as of the first read
        (the old state or the new one, never half of each) while writers in
        other processes go on. Nested use joins the outer transaction.
        """
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

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

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self.release_write_lock()

    # -- write lock ------------------------------------------------------
    def acquire_write_lock(self, wait: bool = False) -> None:
        """Take the store's writer lock so two ingests never interleave.

        SQLite would serialise the transactions anyway, but two ingests would
        each keep their own FAISS index and overwrite each other's file.
        """
        if self._lock_fd is not None:
            return
        fd = os.open(self.path / "write.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise StoreLocked(
                f"another equisearch process is writing to {self.path}: wait for it to finish and try again"
            ) from exc
        self._lock_fd = fd

    def release_write_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

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

    def _decode(self, blob: bytes, dtype: str) -> np.ndarray:
        return np.frombuffer(blob, dtype=np.float16 if dtype == "float16" else np.float32).astype(np.float32)

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

    def check_compatible(self, model: str, dim: int, chunking: str) -> None:
        """Raise :class:`StoreMismatch` unless the store was built this way.

        An empty store (no model recorded) is compatible with anything.
        """
        info = self.info()
        if not info.model:
            return
        problems = []
        if info.model != model:
            problems.append(f"model {info.model!r} (asked for {model!r})")
        if info.dim and info.dim != dim:
            problems.append(f"dimension {info.dim} (model gives {dim})")
        if info.chunking and info.chunking != chunking:
            problems.append(f"chunking {info.chunking} (settings say {chunking})")
        if problems:
            raise StoreMismatch(
                f"store {self.path} was built with " + ", ".join(problems)
                + ": run `equisearch rebuild` to re-embed it with the current settings,"
                " or use the store's settings (--model / EQUISEARCH_MODEL)"
            )

    def _record_builder(self, conn: sqlite3.Connection, model: str, dim: int, chunking: str) -> None:
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [("model", model), ("dim", str(dim)), ("chunking", chunking)],
        )

    def _bump_generation(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    # -- documents -------------------------------------------------------
    def find_document(self, uri: str) -> Document | None:
        """The document stored for ``uri`` (its canonical uri or an alias)."""
        row = self.conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.uri = ? "
            f"UNION ALL SELECT {_DOC_COLUMNS} FROM documents d JOIN aliases a ON a.doc_id = d.id WHERE a.uri = ? "
            "LIMIT 1",
            (uri, uri),
        ).fetchone()
        return self._complete_document(row) if row else None

    def find_source(self, ref: str | int) -> Document | None:
        """The document a user means by ``ref``: its id, URI (or an alias), its
        public URL, or a local path as typed (relative to the working directory)."""
        ref = str(ref).strip()
        doc = self.get_document(int(ref)) if ref.isdigit() else None
        if doc is None:
            doc = self.find_document(ref)
        if doc is None and ref.startswith(("http://", "https://")):
            # A file ingested from disk whose manifest gives its public URL.
            row = self.conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.url = ? ORDER BY d.id LIMIT 1",
                                    (ref,)).fetchone()
            doc = self._complete_document(row) if row else None
        elif doc is None and ref:
            doc = self.find_document(str(Path(ref).expanduser().resolve()))
        return doc

    def find_by_text_hash(self, text_hash: str) -> Document | None:
        row = self.conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.text_hash = ? LIMIT 1", (text_hash,)
        ).fetchone()
        return self._complete_document(row) if row else None

    def _complete_document(self, row: sqlite3.Row) -> Document:
        n = self.conn.execute("SELECT count(*) FROM chunks WHERE doc_id = ?", (row["id"],)).fetchone()[0]
        aliases = [r[0] for r in self.conn.execute("SELECT uri FROM aliases WHERE doc_id = ? ORDER BY uri", (row["id"],))]
        return _row_to_document(row, n, aliases)

    def get_document(self, doc_id: int) -> Document | None:
        row = self.conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.id = ?", (doc_id,)).fetchone()
        return self._complete_document(row) if row else None

    def document_text(self, doc_id: int) -> str:
        row = self.conn.execute("SELECT text FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return row[0] if row else ""

    def document_meta(self, doc_id: int) -> dict:
        """The free-form metadata of a document (ETag, Last-Modified, source notes...)."""
        row = self.conn.execute("SELECT meta FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return json.loads(row[0]) if row else {}

    def document_blocks(self, doc_id: int) -> list[list]:
        """The stored provenance rows of a document (see :attr:`NewDocument.blocks`)."""
        row = self.conn.execute("SELECT blocks FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return json.loads(row[0]) if row else []

    def documents(self) -> list[Document]:
        """All documents with chunk counts, newest first."""
        rows = self.conn.execute(
            f"SELECT {_DOC_COLUMNS}, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) AS n "
            "FROM documents d ORDER BY d.added_at DESC, d.id DESC"
        ).fetchall()
        alias_map: dict[int, list[str]] = {}
        for uri, doc_id in self.conn.execute("SELECT uri, doc_id FROM aliases ORDER BY uri"):
            alias_map.setdefault(doc_id, []).append(uri)
        return [_row_to_document(r, r["n"], alias_map.get(r["id"], ())) for r in rows]

    def passage_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def kind_counts(self) -> dict[str, int]:
        """Documents of each kind."""
        return dict(self.conn.execute("SELECT kind, count(*) FROM documents GROUP BY kind ORDER BY kind").fetchall())

    def text_df(self, term: str) -> int:
        """Passages whose text (not title) holds ``term`` (stemmed as the index stems it); 0 when unmatchable."""
        try:
            return int(self.conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                                         (f"text : {quote_term(term)}",)).fetchone()[0])
        except sqlite3.Error:  # an unmatchable token: treat as unseen
            return 0

    def titles(self) -> list[tuple[int, str]]:
        """(document id, title) of every document: cheap, no chunk counts."""
        return [(r[0], r[1] or "") for r in self.conn.execute("SELECT id, title FROM documents")]

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

    def chunk_counts(self, doc_ids: Iterable[int]) -> dict[int, int]:
        """Passages of each document."""
        out: dict[int, int] = {}
        for part in _batches(list(doc_ids), 500):
            marks = ",".join("?" * len(part))
            out.update(self.conn.execute(
                f"SELECT doc_id, count(*) FROM chunks WHERE doc_id IN ({marks}) GROUP BY doc_id", part).fetchall())
        return out

    def chunk_ids_of(self, doc_ids: Iterable[int]) -> np.ndarray:
        ids = list(doc_ids)
        out: list[int] = []
        for part in _batches(ids, 500):
            marks = ",".join("?" * len(part))
            out += [r[0] for r in self.conn.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", part)]
        return np.asarray(out, dtype=np.int64)

    def documents_by_ids(self, ids: Iterable[int]) -> dict[int, Document]:
        ids = list(set(ids))
        if not ids:
            return {}
        out = {}
        for part in _batches(ids, 500):
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.id IN ({marks})", part):
                out[row["id"]] = _row_to_document(row)
        return out

    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, Chunk]:
        out: dict[int, Chunk] = {}
        for part in _batches(list(ids), 500):
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(f"SELECT * FROM chunks WHERE id IN ({marks})", part):
                out[row["id"]] = _row_to_chunk(row)
        return out

    def chunks_of(self, doc_id: int) -> list[Chunk]:
        rows = self.conn.execute("SELECT * FROM chunks WHERE doc_id = ? ORDER BY ord", (doc_id,))
        return [_row_to_chunk(r) for r in rows]

    def chunk_text_hashes(self, doc_id: int) -> dict[int, str]:
        """Chunk id -> the hash its vector was made from, for one document."""
        return dict(self.conn.execute("SELECT id, text_hash FROM chunks WHERE doc_id = ?", (doc_id,)).fetchall())

    def vectors_by_text_hash(self, doc_id: int) -> dict[str, np.ndarray]:
        """Vectors of a document's chunks keyed by chunk text hash (for reuse)."""
        rows = self.conn.execute(
            "SELECT c.text_hash, v.vec FROM chunks c JOIN vectors v ON v.chunk_id = c.id WHERE c.doc_id = ?",
            (doc_id,),
        )
        dtype = self.vector_dtype()
        return {h: self._decode(b, dtype) for h, b in rows}

    def vectors_by_ids(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Stored vectors (float32) of these chunk ids."""
        dtype = self.vector_dtype()
        out: dict[int, np.ndarray] = {}
        for part in _batches(list(ids), 500):
            marks = ",".join("?" * len(part))
            for cid, blob in self.conn.execute(f"SELECT chunk_id, vec FROM vectors WHERE chunk_id IN ({marks})", part):
                out[cid] = self._decode(blob, dtype)
        return out

    def doc_ids_of(self, chunk_ids: Sequence[int]) -> dict[int, int]:
        """Chunk id -> its document id."""
        out: dict[int, int] = {}
        for part in _batches(list(chunk_ids), 500):
            marks = ",".join("?" * len(part))
            out.update(self.conn.execute(f"SELECT id, doc_id FROM chunks WHERE id IN ({marks})", part).fetchall())
        return out

    def document_vectors(self, doc_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Each document's passage vectors averaged and normalised (its topic as one vector)."""
        dtype = self.vector_dtype()
        sums: dict[int, np.ndarray] = {}
        for part in _batches(list(doc_ids), 200):
            marks = ",".join("?" * len(part))
            for doc_id, blob in self.conn.execute(
                    f"SELECT c.doc_id, v.vec FROM chunks c JOIN vectors v ON v.chunk_id = c.id "
                    f"WHERE c.doc_id IN ({marks})", part):
                vec = self._decode(blob, dtype)
                if doc_id in sums:
                    sums[doc_id] += vec
                else:
                    sums[doc_id] = vec.copy()
        out = {}
        for doc_id, v in sums.items():
            n = float(np.linalg.norm(v))
            out[doc_id] = v / n if n else v
        return out

    def write_document(
        self,
        doc: NewDocument,
        chunks: Sequence[NewChunk],
        vectors: np.ndarray,
        *,
        model: str,
        dim: int,
        chunking: str,
        replace_id: int | None = None,
        aliases: Sequence[str] = (),
    ) -> WriteResult:
        """Insert ``doc`` (or replace document ``replace_id``) in one transaction.

        The chunks, their vectors and FTS rows are written together; if
        anything fails nothing of this document is stored and the previous
        version (if any) is left as it was.
        """
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if vectors.ndim != 2 or (len(vectors) and vectors.shape[1] != dim):
            raise ValueError(f"vectors must be (n, {dim})")
        now = now_iso()
        with self.transaction() as conn:
            # Re-check inside the write transaction: another writer may have
            # recorded a model since we last looked.
            self.check_compatible(model, dim, chunking)
            removed: list[int] = []
            if replace_id is not None:
                removed = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (replace_id,))]
                conn.execute("DELETE FROM chunks WHERE doc_id = ?", (replace_id,))
                conn.execute(
                    "UPDATE documents SET uri=?, title=?, site=?, kind=?, date=?, author=?, url=?, language=?,"
                    " tags=?, meta=?, content_hash=?, text_hash=?, text=?, blocks=?, pipeline_version=?, updated_at=?"
                    " WHERE id=?",
                    (
                        doc.uri, doc.title, doc.site, doc.kind, doc.date, doc.author, doc.url, doc.language,
                        json.dumps(list(doc.tags)), json.dumps(doc.meta or {}), doc.content_hash,
                        doc.text_hash, doc.text, json.dumps([list(b) for b in doc.blocks]), doc.pipeline_version,
                        now, replace_id,
                    ),
                )
                doc_id = replace_id
            else:
                cur = conn.execute(
                    "INSERT INTO documents(uri, title, site, kind, date, author, url, language, tags, meta,"
                    " content_hash, text_hash, text, blocks, pipeline_version, added_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        doc.uri, doc.title, doc.site, doc.kind, doc.date, doc.author, doc.url, doc.language,
                        json.dumps(list(doc.tags)), json.dumps(doc.meta or {}), doc.content_hash,
                        doc.text_hash, doc.text, json.dumps([list(b) for b in doc.blocks]), doc.pipeline_version,
                        now, now,
                    ),
                )
                doc_id = cur.lastrowid
            for alias in aliases:
                if alias != doc.uri:
                    conn.execute(
                        "INSERT INTO aliases(uri, doc_id) VALUES (?, ?) ON CONFLICT(uri) DO UPDATE SET doc_id = excluded.doc_id",
                        (alias, doc_id),
                    )
            added = self.insert_chunks(conn, doc_id, chunks, vectors)
            self._record_builder(conn, model, dim, chunking)
            self._bump_generation(conn)
        return WriteResult(doc_id, tuple(added), tuple(removed))

    def insert_chunks(
        self, conn: sqlite3.Connection, doc_id: int, chunks: Sequence[NewChunk], vectors: np.ndarray
    ) -> list[int]:
        """Insert passages and their vectors inside the caller's transaction.

        Vectors are encoded in the store's :meth:`vector_dtype`, recorded in
        ``meta`` by the first write; all rows of one document go in with one
        ``executemany`` per table.
        """
        dtype = self.vector_dtype()
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('vector_dtype', ?)", (dtype,))
        vecs = np.ascontiguousarray(vectors, dtype=np.float16 if dtype == "float16" else np.float32)
        added = []
        for i, ch in enumerate(chunks):
            cur = conn.execute(
                "INSERT INTO chunks(doc_id, ord, text, char_start, char_end, page_start, page_end,"
                " t_start, t_end, speaker, section, text_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    doc_id, i, ch.text, ch.char_start, ch.char_end, ch.page_start, ch.page_end,
                    ch.t_start, ch.t_end, ch.speaker, ch.section, ch.text_hash,
                ),
            )
            added.append(cur.lastrowid)
        conn.executemany("INSERT INTO vectors(chunk_id, vec) VALUES (?, ?)",
                         [(cid, vecs[i].tobytes()) for i, cid in enumerate(added)])
        return added

    def record_builder(self, conn: sqlite3.Connection, model: str, dim: int, chunking: str) -> None:
        """Inside a transaction: record what built the store and bump the generation."""
        self._record_builder(conn, model, dim, chunking)
        self._bump_generation(conn)

    def add_alias(self, doc_id: int, uri: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO aliases(uri, doc_id) VALUES (?, ?) ON CONFLICT(uri) DO UPDATE SET doc_id = excluded.doc_id",
                (uri, doc_id),
            )

    def remove_alias(self, uri: str) -> None:
        """Forget that ``uri`` is another location of some document."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM aliases WHERE uri = ?", (uri,))

    def update_metadata(self, doc_id: int, **fields) -> None:
        """Change descriptive fields (title, site, kind, date, ...) without re-embedding."""
        allowed = {"title", "site", "kind", "date", "author", "url", "language", "tags", "content_hash"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        if not fields:
            return
        if "tags" in fields:
            fields["tags"] = json.dumps(list(fields["tags"]))
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE documents SET {sets}, updated_at = ? WHERE id = ?", (*fields.values(), now_iso(), doc_id)
            )
            self._bump_generation(conn)

    def record_extraction(self, doc_id: int, content_hash: str, pipeline_version: str,
                          meta: dict | None = None) -> None:
        """Record that a document's source was read again and gave the same passages.

        Re-ingesting with a newer pipeline re-reads every source; when the
        text, blocks and passages come out the same, only the new content
        hash and pipeline version (and the free-form ``meta``, e.g. a new
        ETag) are written: the passages keep their ids, so reading-list
        items and the vector index stay as they are, and readers see no new
        generation.
        """
        with self.transaction() as conn:
            if meta is None:
                conn.execute("UPDATE documents SET content_hash = ?, pipeline_version = ? WHERE id = ?",
                             (content_hash, pipeline_version, doc_id))
            else:
                conn.execute("UPDATE documents SET content_hash = ?, pipeline_version = ?, meta = ? WHERE id = ?",
                             (content_hash, pipeline_version, json.dumps(meta), doc_id))

    def remove_document(self, doc_id: int) -> WriteResult:
        """Delete a document with its chunks, vectors, FTS rows and aliases."""
        with self.transaction() as conn:
            removed = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))]
            conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            conn.execute("DELETE FROM aliases WHERE doc_id = ?", (doc_id,))
            conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            self._bump_generation(conn)
        return WriteResult(doc_id, (), tuple(removed))

    # -- vectors ---------------------------------------------------------
    def iter_vectors(self, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, vectors) in batches, in chunk id order."""
        dim = int(self.get_meta("dim", "0") or 0)
        dtype = np.float16 if self.vector_dtype() == "float16" else np.float32
        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT chunk_id, vec FROM vectors WHERE chunk_id > ? ORDER BY chunk_id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=dtype).reshape(len(rows), dim)
            vecs = np.ascontiguousarray(vecs, dtype=np.float32)
            last = int(ids[-1])
            yield ids, vecs

    def vector_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM vectors").fetchone()[0]

    # -- filters ---------------------------------------------------------
    def filter_sql(self, filters: Filters | None, alias: str = "d") -> tuple[str, list]:
        """A SQL condition over ``documents`` (as ``alias``) and its parameters."""
        if filters is None or filters.is_empty():
            return "1", []
        parts, params = [], []
        if filters.kinds:
            parts.append(f"{alias}.kind IN ({','.join('?' * len(filters.kinds))})")
            params += list(filters.kinds)
        if filters.sites:
            parts.append(f"{alias}.site IN ({','.join('?' * len(filters.sites))})")
            params += list(filters.sites)
        if filters.date_from:
            parts.append(f"{alias}.date != '' AND {alias}.date >= ?")
            params.append(filters.date_from)
        if filters.date_to:
            # "2020" as an upper bound includes all of 2020.
            parts.append(f"{alias}.date != '' AND substr({alias}.date, 1, ?) <= ?")
            params += [len(filters.date_to), filters.date_to]
        for tag in filters.tags:
            parts.append(f"EXISTS (SELECT 1 FROM json_each({alias}.tags) WHERE json_each.value = ?)")
            params.append(tag)
        return " AND ".join(parts), params

    def chunk_ids_matching(self, filters: Filters) -> np.ndarray:
        where, params = self.filter_sql(filters)
        rows = self.conn.execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params
        ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    # -- keyword search --------------------------------------------------
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

        Callers build ``match`` with :func:`search.lexical.build_match`; raw
        user text must never reach this method. BM25 weighs a word found in
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

    def integrity(self) -> dict:
        """Counts a health check compares (used by stats and doctor)."""
        c = self.conn
        return {
            "documents": c.execute("SELECT count(*) FROM documents").fetchone()[0],
            "chunks": c.execute("SELECT count(*) FROM chunks").fetchone()[0],
            "vectors": c.execute("SELECT count(*) FROM vectors").fetchone()[0],
            "fts_rows": c.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()[0],
        }


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
