"""Bulk loading a PostgreSQL store (search/store/postgres/bulk.py): ids kept, all or nothing."""
from __future__ import annotations

import numpy as np
import pytest

from search.errors import StoreError
from search.store import NewChunk, NewDocument
from search.store.postgres import PgStore
from search.store.postgres.bulk import BulkChunk, BulkDocument, bulk_load, vector_literal
from search.text import content_hash

postgres = pytest.mark.postgres


def _records(n_docs=3, per_doc=2, dim=4, first_doc=10, first_chunk=100, seed=1):
    rng = np.random.default_rng(seed)
    docs, chunks = [], []
    for i in range(n_docs):
        texts = [f"Passage {j} of document {i} about attendance and exclusions." for j in range(per_doc)]
        text = "\n\n".join(texts)
        doc = NewDocument(uri=f"bulk:{i}", title=f"Report {i}", text=text, content_hash=content_hash(text),
                          text_hash=content_hash(text), kind="report", tags=("a", "b"), meta={"n": i},
                          blocks=((0, len(text), 1, None, None, "", "", False),))
        docs.append(BulkDocument(first_doc + i, doc, "2024-01-01T00:00:00"))
        for j, t in enumerate(texts):
            v = rng.standard_normal(dim).astype(np.float32)
            chunks.append(BulkChunk(first_chunk + i * per_doc + j, first_doc + i, j,
                                    NewChunk(text=t, char_start=0, char_end=len(t), text_hash=content_hash(t), page_start=1),
                                    (v / np.linalg.norm(v)).astype(np.float16)))
    return docs, chunks


@postgres
def test_bulk_load_keeps_ids_vectors_and_indexes(pg_database):
    pg = PgStore.open(pg_database)
    try:
        docs, chunks = _records()
        generation = pg.generation()
        out = bulk_load(pg, docs, chunks, model="m", dim=4, chunking="c", aliases=[("alias:0", 10)])
        assert (out["documents"], out["chunks"]) == (3, 6) and out["postings"] > 0
        assert pg.generation() == generation + 1
        assert out["vacuumed"]
        assert [r[0] for r in pg.execute("SELECT id FROM chunks ORDER BY id")] == [c.id for c in chunks]
        assert pg.execute("SELECT tags, meta, added_at FROM documents WHERE id = 10") == [(["a", "b"], {"n": 0},
                                                                                          "2024-01-01T00:00:00")]
        assert pg.scalar("SELECT doc_id FROM aliases WHERE uri = 'alias:0'") == 10
        # halfvec holds the float16 values exactly.
        stored = pg.scalar("SELECT vector::text FROM chunks WHERE id = %s", (chunks[0].id,))
        assert np.array_equal(np.array(stored.strip("[]").split(","), dtype=np.float16), chunks[0].vector)
        sent = np.array(vector_literal(chunks[0].vector).strip("[]").split(","), dtype=np.float16)
        assert np.array_equal(sent, chunks[0].vector)
        assert "hnsw" in pg.scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_vector'")
        assert {r[0] for r in pg.execute("SELECT key FROM meta")} >= {"model", "dim", "chunking"}
        # Every passage has its postings; the sequences continue past the loaded ids.
        assert pg.scalar("SELECT count(*) FROM chunks c WHERE NOT EXISTS"
                         " (SELECT 1 FROM postings p WHERE p.chunk_id = c.id)") == 0
        with pg.transaction() as conn:
            new_doc = conn.execute("INSERT INTO documents (uri, content_hash, text_hash, text, added_at, updated_at)"
                                   " VALUES ('n', 'h', 'h', 't', '', '') RETURNING id").fetchone()[0]
        assert new_doc == 13
        assert pg.keyword_search(["attendance"], 10) and len(pg.keyword_search(["attendance"], 10)) == 6
    finally:
        pg.close()


@postgres
def test_a_failed_bulk_load_leaves_the_store_unchanged(pg_database):
    pg = PgStore.open(pg_database)
    try:
        docs, chunks = _records()
        orphan = BulkChunk(999, 77, 0, chunks[0].chunk, chunks[0].vector)  # document 77 is not loaded
        with pytest.raises(StoreError, match="belong to no document"):
            bulk_load(pg, docs, chunks + [orphan], model="m", dim=4, chunking="c")
        wrong = BulkChunk(998, 10, 5, chunks[0].chunk, np.zeros(3, dtype=np.float16))
        with pytest.raises(StoreError, match="3 components"):
            bulk_load(pg, docs, chunks + [wrong], model="m", dim=4, chunking="c")
        assert pg.scalar("SELECT count(*) FROM documents") == pg.scalar("SELECT count(*) FROM postings") == 0
        bulk_load(pg, docs, chunks, model="m", dim=4, chunking="c")
        with pytest.raises(StoreError):  # the same uris again
            bulk_load(pg, docs, _records(first_doc=20, first_chunk=200)[1], model="m", dim=4, chunking="c")
        assert pg.scalar("SELECT count(*) FROM chunks") == len(chunks)
    finally:
        pg.close()


@postgres
def test_bulk_load_without_vectors(pg_database):
    """A keyword-only load (benchmarks): passages without vectors are ranked all the same."""
    pg = PgStore.open(pg_database)
    try:
        docs, chunks = _records()
        chunks = [BulkChunk(c.id, c.doc_id, c.ord, c.chunk) for c in chunks]
        bulk_load(pg, docs, chunks, model="m", dim=4, chunking="c")
        assert pg.scalar("SELECT count(*) FROM chunks WHERE vector IS NULL") == len(chunks)
        assert len(pg.keyword_search(["exclusions"], 10)) == len(chunks)
    finally:
        pg.close()


@postgres
def test_a_bulk_load_leaves_postings_ready_for_index_only_scans():
    """VACUUM after the load: the visibility map covers every page of postings, so keyword
    ranking reads a lexeme's postings from the index alone (ANALYZE alone leaves the map empty,
    and every posting costs a heap page until the autovacuum comes: 11 ms a search instead of 3
    at 100k passages, bench/RESULTS.md). Its own server: the session's commits asynchronously,
    and VACUUM cannot mark pages whose inserting commit is not yet flushed."""
    from tests.pg_server import PgUnavailable, _unavailable, start_server

    try:
        server = start_server(settings={"fsync": "off", "shared_buffers": "32MB"})
    except PgUnavailable as exc:
        _unavailable(str(exc))
    try:
        pg = PgStore.open(server.url())
        try:
            docs, chunks = _records(n_docs=40, per_doc=5)
            assert bulk_load(pg, docs, chunks, model="m", dim=4, chunking="c")["vacuumed"]
            pages, visible = pg.one("SELECT relpages, relallvisible FROM pg_class WHERE relname = 'postings'")
            assert pages > 0 and visible == pages, (pages, visible)
        finally:
            pg.close()
    finally:
        server.stop()
