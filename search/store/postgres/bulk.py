"""Bulk loading a PostgreSQL store: many documents and passages in one transaction, ids kept.

For copying a built store in (a migration from SQLite, benchmarks, tests):
documents and aliases by COPY, passages by COPY into a staging table and one
``INSERT ... SELECT`` that computes each passage's tsvector and BM25 length
with the same expressions as a normal write (lexical.py's :data:`CHUNK_TSV_SQL`
contract, here over columns), then every passage's postings in one statement.
Vectors travel as halfvec text literals. When the store had no passages, the
HNSW index is dropped for the load and built afterwards (a build is several
times faster than inserting into the graph), with the definition schema.py
gave it.

Ids are the caller's (the source store's), so passage ids survive the copy;
the identity sequences are moved past them. One generation is recorded for
the whole load. Nothing is checked for duplicates beyond the table
constraints: a load that breaks one fails as a whole and leaves the store as
it was.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Iterable

from ...errors import StoreError
from ...types import now_iso
from ..base import NewChunk, NewDocument
from .lexical import _len_sql, _tsv_sql, postings_sql

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BulkDocument:
    """A document to load under its own id (timestamps: now when empty)."""

    id: int
    doc: NewDocument
    added_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class BulkChunk:
    """A passage to load under its own id: its document, its place, and its vector (or None)."""

    id: int
    doc_id: int
    ord: int
    chunk: NewChunk
    #: A 1-d array of the store's dimension, or None for a passage without one yet.
    vector: object = None


_DOC_COLUMNS = ("id", "uri", "title", "site", "kind", "date", "author", "url", "language", "tags", "meta",
                "content_hash", "text_hash", "text", "blocks", "pipeline_version", "added_at", "updated_at")
_STAGE_COLUMNS = ("id", "doc_id", "ord", "text", "char_start", "char_end", "page_start", "page_end",
                  "t_start", "t_end", "speaker", "section", "text_hash", "vector")

_STAGE_SQL = ("CREATE TEMP TABLE bulk_chunks (id bigint, doc_id bigint, ord integer, text text, char_start integer,"
              " char_end integer, page_start integer, page_end integer, t_start double precision,"
              " t_end double precision, speaker text, section text, text_hash text, vector text) ON COMMIT DROP")

_INSERT_CHUNKS_SQL = (
    "INSERT INTO chunks (id, doc_id, ord, text, char_start, char_end, page_start, page_end, t_start, t_end,"
    " speaker, section, text_hash, vector, tsv, len)"
    " SELECT s.id, s.doc_id, s.ord, s.text, s.char_start, s.char_end, s.page_start, s.page_end, s.t_start, s.t_end,"
    f" s.speaker, s.section, s.text_hash, s.vector::halfvec, {_tsv_sql('d.title', 's.text')},"
    f" {_len_sql('d.title', 's.text')}"
    " FROM bulk_chunks s JOIN documents d ON d.id = s.doc_id"
)

_POSTINGS_SQL = postings_sql("c.id IN (SELECT id FROM bulk_chunks)")


def vector_literal(vector) -> str:
    """A halfvec text literal; 5 significant digits give every float16 value back exactly."""
    return "[" + ",".join("%.5g" % x for x in vector.tolist()) + "]"


def _json(value, default) -> str:
    return value if isinstance(value, str) else json.dumps(default if value is None else value)


def bulk_load(store, documents: Iterable[BulkDocument], chunks: Iterable[BulkChunk], *, model: str, dim: int,
              chunking: str, aliases: Iterable[tuple[str, int]] = ()) -> dict:
    """Load ``documents``, their ``aliases`` (uri, doc id) and ``chunks`` into ``store`` in one transaction.

    Returns counts and seconds: {"documents", "chunks", "postings", "seconds", "hnsw_seconds"}.
    Raises :class:`StoreError` (the store unchanged) when a row breaks a
    constraint (a uri or text hash already there, a passage of an unknown
    document) or a vector has the wrong dimension.
    """
    t0 = time.perf_counter()
    now = now_iso()
    out = {"documents": 0, "chunks": 0, "postings": 0, "hnsw_seconds": 0.0}
    with store.transaction() as conn:
        # One statement indexes every passage: the searches' statement timeout is not for it.
        conn.execute("SET LOCAL statement_timeout = 0")
        store._ensure_dimension(conn, int(dim))
        rebuild_index = None
        if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM chunks)").fetchone()[0]:
            row = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
                               " AND indexname = 'chunks_vector'").fetchone()
            if row:
                rebuild_index = row[0]
                conn.execute("DROP INDEX chunks_vector")
        with conn.cursor().copy(f"COPY documents ({', '.join(_DOC_COLUMNS)}) FROM STDIN") as cp:
            for b in documents:
                d = b.doc
                cp.write_row((b.id, d.uri, d.title, d.site, d.kind, d.date, d.author, d.url, d.language,
                              list(d.tags), _json(d.meta, {}), d.content_hash, d.text_hash, d.text,
                              _json([list(x) for x in d.blocks], []), d.pipeline_version,
                              b.added_at or now, b.updated_at or b.added_at or now))
                out["documents"] += 1
        alias_rows = list(aliases)
        if alias_rows:
            with conn.cursor().copy("COPY aliases (uri, doc_id) FROM STDIN") as cp:
                for uri, doc_id in alias_rows:
                    cp.write_row((uri, int(doc_id)))
        conn.execute(_STAGE_SQL)
        with conn.cursor().copy(f"COPY bulk_chunks ({', '.join(_STAGE_COLUMNS)}) FROM STDIN") as cp:
            for b in chunks:
                c = b.chunk
                if b.vector is not None and len(b.vector) != dim:
                    raise StoreError(f"passage {b.id}: a vector of {len(b.vector)} components, the store's have {dim}")
                cp.write_row((b.id, b.doc_id, b.ord, c.text, c.char_start, c.char_end, c.page_start, c.page_end,
                              c.t_start, c.t_end, c.speaker, c.section, c.text_hash,
                              None if b.vector is None else vector_literal(b.vector)))
                out["chunks"] += 1
        staged = conn.execute("SELECT count(*) FROM bulk_chunks").fetchone()[0]
        inserted = conn.execute(_INSERT_CHUNKS_SQL).rowcount
        if inserted != staged:
            raise StoreError(f"{staged - inserted} passages belong to no document of the store: nothing was loaded")
        out["postings"] = conn.execute(_POSTINGS_SQL).rowcount
        for table in ("documents", "chunks"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                         f" greatest((SELECT max(id) FROM {table}), 1))")
        store.record_builder(conn, model, int(dim), chunking)
        if rebuild_index:
            t1 = time.perf_counter()
            conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
            conn.execute(rebuild_index)
            out["hnsw_seconds"] = round(time.perf_counter() - t1, 2)
    # VACUUM, not only ANALYZE: it sets the visibility map, without which keyword ranking's
    # index-only scans of postings read a heap page per posting until the autovacuum gets
    # there (100k Reuters passages: the BM25 statement took 11 ms a search right after a load,
    # 3 ms once vacuumed; bench/RESULTS.md). Outside any transaction, as VACUUM must be.
    try:
        with store.connection() as conn:
            conn.execute("SET statement_timeout = 0")
            try:
                conn.execute("VACUUM (ANALYZE) documents, chunks, postings")
            finally:
                conn.execute("RESET statement_timeout")
        out["vacuumed"] = True
    except StoreError as exc:  # a login that may load but not vacuum: the autovacuum will
        log.info("no VACUUM after the bulk load: %s", exc)
        out["vacuumed"] = False
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out
