"""The FAISS index is derived: rebuilt when missing or stale, follows writes."""
from __future__ import annotations

import numpy as np

from search.store import NewChunk, NewDocument, Store
from search.text import content_hash
from search.types import Filters
from search.vectors import VectorIndex


def _write(store, uri, vec, kind="article", replace_id=None):
    text = f"text of {uri}"
    return store.write_document(
        NewDocument(uri=uri, title=uri, text=text, content_hash=uri, text_hash=content_hash(text), kind=kind),
        [NewChunk(text, 0, len(text), content_hash(text))], vec.reshape(1, -1), model="m", dim=len(vec),
        chunking="c", replace_id=replace_id,
    )


def _unit(*xs):
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_follow_writes_and_rebuild_when_stale(tmp_path):
    store = Store.open(tmp_path)
    index = VectorIndex(store)
    r1 = _write(store, "/a", _unit(1, 0, 0))
    index.apply(r1, _unit(1, 0, 0).reshape(1, -1))
    r2 = _write(store, "/b", _unit(0, 1, 0))
    index.apply(r2, _unit(0, 1, 0).reshape(1, -1))
    index.save()
    assert index.search(_unit(0, 1, 0), 1)[0][0] == r2.added_ids[0]

    # Another process's view: loads the saved file (same generation).
    other = VectorIndex(Store.open(tmp_path))
    assert other.ntotal == 2

    # A write the file does not reflect (crash before save): readers rebuild.
    r3 = _write(store, "/c", _unit(0, 0, 1))
    fresh = VectorIndex(Store.open(tmp_path))
    assert fresh.search(_unit(0, 0, 1), 1)[0][0] == r3.added_ids[0]
    # ... and the already-open reader notices the new generation too.
    assert other.search(_unit(0, 0, 1), 1)[0][0] == r3.added_ids[0]


def test_missing_or_corrupt_file_is_rebuilt(tmp_path):
    store = Store.open(tmp_path)
    index = VectorIndex(store)
    r = _write(store, "/a", _unit(1, 1, 0))
    index.rebuild()
    (tmp_path / "vectors.faiss").write_bytes(b"garbage")
    again = VectorIndex(Store.open(tmp_path))
    assert again.search(_unit(1, 1, 0), 1)[0][0] == r.added_ids[0]
    (tmp_path / "vectors.faiss").unlink()
    assert VectorIndex(Store.open(tmp_path)).ntotal == 1


def test_replace_removes_old_vectors(tmp_path):
    store = Store.open(tmp_path)
    index = VectorIndex(store)
    r = _write(store, "/a", _unit(1, 0, 0))
    index.apply(r, _unit(1, 0, 0).reshape(1, -1))
    r2 = _write(store, "/a", _unit(0, 1, 0), replace_id=r.doc_id)
    index.apply(r2, _unit(0, 1, 0).reshape(1, -1))
    assert index.ntotal == 1
    assert index.search(_unit(1, 0, 0), 5)[0][0] == r2.added_ids[0]


def test_allowed_ids_filter_before_ranking(tmp_path):
    store = Store.open(tmp_path)
    index = VectorIndex(store)
    for i in range(20):
        _write(store, f"/{i}", _unit(1, 0.01 * i, 0), kind="report" if i % 5 == 0 else "article")
    allowed = store.chunk_ids_matching(Filters(kinds=("report",)))
    hits = index.search(_unit(1, 0, 0), 3, allowed)
    assert len(hits) == 3 and {h[0] for h in hits} <= set(allowed.tolist())
