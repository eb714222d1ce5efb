"""The Writer: one lock holder per store, the vector index kept current and
saved on exit, the lock released even when a write fails.

Tests taking ``store_location`` run on both backends (tests/backends.py).
PostgreSQL has no write lock (every document is its own transaction) and no
index file (the HNSW index is the database's): there those tests check that
writers are not refused and that a new reader sees the writes.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from search.errors import StoreLocked, StoreMismatch
from search.store import NewChunk, NewDocument, Store, Writer
from search.text import content_hash
from search.vectors import INDEX_NAME, SIDECAR_NAME, VectorIndex

from .backends import open_at


def _doc(uri: str) -> tuple[NewDocument, list[NewChunk]]:
    text = f"Passage about {uri}."
    return (NewDocument(uri=uri, title=uri, text=text, content_hash=uri, text_hash=content_hash(text)),
            [NewChunk(text, 0, len(text), content_hash(text))])


def _vec(*xs) -> np.ndarray:
    v = np.asarray([xs], dtype=np.float32)
    return v / np.linalg.norm(v)


def _write(w: Writer, uri: str, vec: np.ndarray, model: str = "m"):
    doc, chunks = _doc(uri)
    return w.write_document(doc, chunks, vec, model=model, dim=vec.shape[1], chunking="c")


def _sidecar(store) -> dict:
    return json.loads((store.path / SIDECAR_NAME).read_text())


def test_writes_follow_the_index_and_are_saved_on_exit(store_location, backend):
    store = open_at(store_location)
    with Writer.open(store) as w:
        a = _write(w, "/a", _vec(1, 0, 0))
        b = _write(w, "/b", _vec(0, 1, 0))
        assert w.index.search(_vec(0, 1, 0)[0], 1)[0][0] == b.added_ids[0]
    if backend == "sqlite":  # the FAISS file's sidecar (PostgreSQL keeps no index file)
        assert _sidecar(store) == {"generation": store.generation(), "count": 2, "dim": 3}
    # Another process trusts the saved file: no rebuild needed.
    reader = open_at(store_location).vector_index()
    reader.ensure_current()
    assert reader.ntotal == 2
    with Writer.open(store) as w:
        w.remove_document(a.doc_id)
    assert open_at(store_location).vector_index().search(_vec(1, 0, 0)[0], 5) == \
        [(b.added_ids[0], pytest.approx(0.0, abs=1e-6))]
    if backend == "sqlite":
        assert _sidecar(store)["count"] == 1


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(store_location, backend):
    first = open_at(store_location)
    with Writer.open(first) as w1:
        if backend == "postgres":  # no write lock: a second writer writes at once, beside the first
            with Writer.open(open_at(store_location)) as w2:
                _write(w2, "/b", _vec(0, 1))
            _write(w1, "/c", _vec(1, 1))
        else:
            with pytest.raises(StoreLocked, match="another equisearch process is writing"):
                Writer.open(open_at(store_location))
    # Released on exit: the next writer gets in.
    with Writer.open(open_at(store_location)) as w:
        _write(w, "/a", _vec(1, 0))
    if backend == "postgres":
        assert first.info().documents == 3


def test_a_failed_write_still_saves_the_index_and_releases_the_lock(store_location, backend):
    store = open_at(store_location)
    with pytest.raises(StoreMismatch):
        with Writer.open(store) as w:
            kept = _write(w, "/a", _vec(1, 0, 0))
            _write(w, "/b", _vec(0, 1, 0), model="another-model")  # refused by the store
    assert store.info().documents == 1
    # What was written before the error is in the saved index ...
    if backend == "sqlite":  # (PostgreSQL: the database's own index, checked by the search below)
        side = _sidecar(store)
        assert side == {"generation": store.generation(), "count": 1, "dim": 3}
    # ... and the lock is free for the next writer (another process's store too).
    with Writer.open(open_at(store_location)) as w:
        assert w.index.search(_vec(1, 0, 0)[0], 1)[0][0] == kept.added_ids[0]


def test_an_error_outside_the_store_releases_the_lock_too(store_location, backend):
    store = open_at(store_location)
    with pytest.raises(RuntimeError):
        with Writer.open(store) as w:
            a = _write(w, "/a", _vec(1, 0))
            raise RuntimeError("the model crashed")
    Writer.open(open_at(store_location)).close()
    if backend == "postgres":  # no index file: the committed write is what a new reader finds
        assert open_at(store_location).vector_index().search(_vec(1, 0)[0], 1)[0][0] == a.added_ids[0]
    else:
        assert VectorIndex(Store.open(store_location))._load_file(store.generation()), \
            "the index file vouches for the write"


def test_saving_fails_and_the_lock_is_released_anyway(store_location, backend, monkeypatch):
    store = open_at(store_location)
    w = Writer.open(store)
    _write(w, "/a", _vec(1, 0))
    _write(w, "/b", _vec(0, 1))  # followed in memory, saved only on exit

    def no_space(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(w.index, "save", no_space)
    with pytest.raises(OSError):
        w.close()
    Writer.open(open_at(store_location)).close()  # not locked
    # The file never vouched for the last write: a reader rebuilds from the stored vectors.
    if backend == "sqlite":  # (PostgreSQL keeps no file that could lag)
        assert _sidecar(store)["generation"] < store.generation()
    assert open_at(store_location).vector_index().ntotal == 2


def test_an_index_behind_the_store_is_brought_up_to_date_before_the_first_write(tmp_path):
    store = Store.open(tmp_path)
    with Writer.open(store) as w:
        _write(w, "/a", _vec(1, 0))
    (tmp_path / INDEX_NAME).unlink()  # lost, or left behind by a crash
    index = VectorIndex(store)
    with Writer.open(store, index=index) as w:
        assert index.kind == "none", "nothing loaded until something is written"
        b = _write(w, "/b", _vec(0, 1))
        assert index.ntotal == 2 and index.search(_vec(0, 1)[0], 1)[0][0] == b.added_ids[0]
    assert _sidecar(store)["count"] == 2


def test_a_writer_that_writes_nothing_touches_no_index_file(tmp_path):
    store = Store.open(tmp_path)
    with Writer.open(store) as w:
        _write(w, "/a", _vec(1, 0))
    before = (tmp_path / INDEX_NAME).stat().st_mtime_ns
    with Writer.open(store):
        pass
    assert (tmp_path / INDEX_NAME).stat().st_mtime_ns == before


def test_a_writer_inside_a_writer_leaves_the_lock_to_the_outer_one(store_location, backend):
    store = open_at(store_location)
    with Writer.open(store) as outer:
        with Writer.open(store, index=outer.index) as inner:
            _write(inner, "/a", _vec(1, 0))
        assert store.acquire_write_lock() is False, "the inner writer left the lock to the outer one"
        if backend == "sqlite":  # (PostgreSQL has no lock another store could be refused)
            with pytest.raises(StoreLocked):
                Writer.open(Store.open(store_location))  # still held by the outer writer
        _write(outer, "/b", _vec(0, 1))
    Writer.open(open_at(store_location)).close()
    assert store.info().documents == 2


def test_rebuild_index_and_replace_passages(store_location, backend):
    store = open_at(store_location)
    with Writer.open(store) as w:
        a = _write(w, "/a", _vec(1, 0))
    with Writer.open(store) as w:
        assert w.rebuild_index() == 1
        text = store.document_text(a.doc_id)
        halves = [NewChunk(text[:8], 0, 8, "h1"), NewChunk(text[8:], 8, len(text), "h2")]
        n = w.replace_passages([(a.doc_id, halves, np.vstack([_vec(1, 0, 0), _vec(0, 0, 1)]))],
                               model="m2", dim=3, chunking="c2")
    assert n == 2
    assert (store.info().model, store.info().dim, store.info().chunking) == ("m2", 3, "c2")
    assert [c.text for c in store.chunks_of(a.doc_id)] == [text[:8], text[8:]]
    if backend == "sqlite":
        assert _sidecar(store) == {"generation": store.generation(), "count": 2, "dim": 3}
    assert open_at(store_location).vector_index().search(_vec(0, 0, 1)[0], 1)[0][0] == \
        store.chunks_of(a.doc_id)[1].id
