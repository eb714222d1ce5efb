"""The store: round trip, keyword index kept in step, refusal to mix models.

Tests taking ``store_location`` run on both backends (tests/backends.py);
the others are about SQLite's own file, migrations and FTS5.
"""
from __future__ import annotations

import io
import re
import sqlite3
import tokenize
from pathlib import Path

import numpy as np
import pytest

from search.errors import StoreError, StoreMismatch
from search.store import NewChunk, NewDocument, Store
from search.text import content_hash
from search.types import Filters

from .backends import open_at


def _doc(uri="/tmp/a.txt", text="Pupil premium funding helps disadvantaged pupils.", **kw):
    return NewDocument(uri=uri, title=kw.pop("title", "A"), text=text, content_hash=content_hash(text),
                       text_hash=content_hash(text), **kw)


def _chunks(text):
    return [NewChunk(text=text, char_start=0, char_end=len(text), text_hash=content_hash(text), page_start=3, page_end=4)]


def _vec(dim=4, seed=0):
    v = np.random.default_rng(seed).normal(size=(1, dim)).astype(np.float32)
    return v / np.linalg.norm(v)


def test_round_trip_keeps_provenance(store_location):
    store = open_at(store_location)
    text = "Pupil premium funding helps disadvantaged pupils."
    res = store.write_document(_doc(text=text, site="DfE", kind="guidance", date="2024-01-02", tags=("pp",)),
                               _chunks(text), _vec(), model="m", dim=4, chunking="c")
    store.close()

    again = open_at(store_location, create=False)
    doc = again.get_document(res.doc_id)
    assert (doc.title, doc.site, doc.kind, doc.date, doc.tags, doc.n_chunks) == ("A", "DfE", "guidance", "2024-01-02", ("pp",), 1)
    chunk = again.chunks_of(res.doc_id)[0]
    assert chunk.text == again.document_text(res.doc_id)[chunk.char_start:chunk.char_end]
    assert (chunk.page_start, chunk.page_end) == (3, 4)
    ids, vecs = next(again.iter_vectors())
    assert list(ids) == list(res.added_ids)
    assert np.allclose(vecs[0], _vec()[0], atol=1e-3)  # stored as float16
    info = again.info()
    assert (info.model, info.dim, info.chunking, info.documents, info.chunks) == ("m", 4, "c", 1, 1)


def test_keyword_index_follows_writes_and_deletes(store_location, backend):
    store = open_at(store_location)
    text = "Looked-after children and virtual school heads."
    res = store.write_document(_doc(text=text), _chunks(text), _vec(), model="m", dim=4, chunking="c")
    # Porter stemming: "child" finds "children"? No - porter leaves "children";
    # but plural -s is stripped: "heads" matches "head".
    assert [cid for cid, _ in store.keyword_search(["head"], 5)] == list(res.added_ids)
    text2 = "Something else entirely about attendance."
    store.write_document(_doc(text=text2), _chunks(text2), _vec(seed=1), model="m", dim=4, chunking="c",
                         replace_id=res.doc_id)
    assert store.keyword_search(["head"], 5) == []
    assert len(store.keyword_search(["attendance"], 5)) == 1
    store.remove_document(res.doc_id)
    assert store.keyword_search(["attendance"], 5) == []
    keyword_rows = "postings" if backend == "postgres" else "fts_rows"  # PostgreSQL's keyword rows are postings
    assert store.integrity() == {"documents": 0, "chunks": 0, "vectors": 0, keyword_rows: 0}


def test_refuses_other_model_dimension_or_chunking(store_location):
    store = open_at(store_location)
    text = "abc def"
    store.write_document(_doc(text=text), _chunks(text), _vec(), model="m", dim=4, chunking="c")
    for model, dim, chunking in (("other", 4, "c"), ("m", 8, "c"), ("m", 4, "other")):
        with pytest.raises(StoreMismatch, match="equisearch rebuild"):
            store.write_document(_doc(uri="/b", text="x y"), _chunks("x y"), _vec(dim=dim), model=model, dim=dim,
                                 chunking=chunking)
    assert store.info().documents == 1  # nothing of the refused writes stored


def test_failed_write_leaves_previous_version(store_location):
    store = open_at(store_location)
    text = "first version"
    res = store.write_document(_doc(text=text), _chunks(text), _vec(), model="m", dim=4, chunking="c")
    with pytest.raises(ValueError):
        store.write_document(_doc(text="second"), _chunks("second"), np.zeros((2, 4), np.float32), model="m",
                             dim=4, chunking="c", replace_id=res.doc_id)
    assert store.chunks_of(res.doc_id)[0].text == "first version"


def test_generation_bumps_on_every_write(store_location):
    store = open_at(store_location)
    g0 = store.generation()
    res = store.write_document(_doc(), _chunks("a b"), _vec(), model="m", dim=4, chunking="c")
    g1 = store.generation()
    store.remove_document(res.doc_id)
    assert g0 < g1 < store.generation()


def test_aliases_find_the_same_document(store_location):
    store = open_at(store_location)
    res = store.write_document(_doc(uri="https://a.example/x"), _chunks("a b"), _vec(), model="m", dim=4,
                               chunking="c", aliases=("https://a.example/x?utm=1",))
    store.add_alias(res.doc_id, "https://mirror.example/x")
    assert store.find_document("https://mirror.example/x").id == res.doc_id
    assert store.find_document("https://a.example/x?utm=1").aliases == ("https://a.example/x?utm=1", "https://mirror.example/x")


def test_filters_select_before_ranking(store_location):
    store = open_at(store_location)
    for i, (kind, site, date) in enumerate((("guidance", "DfE", "2020-05-01"), ("forum", "TES", "2017-09-29"),
                                            ("report", "Ofsted", "2023-02-01"))):
        store.write_document(_doc(uri=f"/{i}", text=f"text {i}", kind=kind, site=site, date=date, tags=(kind,)),
                             _chunks(f"text {i}"), _vec(seed=i), model="m", dim=4, chunking="c")
    def n(f):
        return len(store.chunk_ids_matching(f))
    assert n(Filters(kinds=("guidance", "report"))) == 2
    assert n(Filters(sites=("TES",))) == 1
    assert n(Filters(date_from="2020")) == 2
    assert n(Filters(date_to="2020")) == 2
    assert n(Filters(tags=("forum",))) == 1
    assert len(store.keyword_search(["text"], 10, Filters(kinds=("forum",)))) == 1


def test_not_a_database_is_a_clear_error(tmp_path):
    (tmp_path / "equisearch.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        Store.open(tmp_path)


def test_newer_schema_is_refused(tmp_path):
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "equisearch.db")
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StoreError, match="upgrade equisearch"):
        Store.open(tmp_path)


def test_missing_store_without_create(store_location, backend):
    # A database URL needs --store on the command line, so its hint names it.
    hint = "equisearch --store URL ingest" if backend == "postgres" else "equisearch ingest"
    with pytest.raises(StoreError, match=hint):
        open_at(store_location, create=False)


def _fts_consistent(store) -> None:
    # FTS5's own check compares the index with the content (the view over
    # chunks + titles); it raises "database disk image is malformed" if not.
    store.conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")


def _keyword_index_consistent(store, backend) -> None:
    if backend == "postgres":  # no FTS5: the backend's own check of its keyword index
        assert store.keyword_index_check()[0] == "ok"
    else:
        _fts_consistent(store)


def test_titles_are_searchable_and_follow_changes(store_location, backend):
    store = open_at(store_location)
    text = "The quality of plans is highly variable."
    res = store.write_document(_doc(text=text, title="Area SEND inspection of Bexley"), _chunks(text), _vec(),
                               model="m", dim=4, chunking="c")
    assert [c for c, _ in store.keyword_search(["bexley"], 5)] == list(res.added_ids)
    # Text words outrank title words at the default weights.
    other = "Bexley and its schools."
    store.write_document(_doc(uri="/tmp/b.txt", text=other, title="Elsewhere"), _chunks(other), _vec(seed=2),
                         model="m", dim=4, chunking="c")
    assert store.keyword_search(["bexley"], 5)[0][0] != res.added_ids[0]
    assert store.keyword_search(["bexley"], 5, title_weight=0.0)[-1][1] == 0.0
    store.update_metadata(res.doc_id, title="Area SEND inspection of Dorset")
    assert len(store.keyword_search(["bexley"], 5)) == 1 and store.keyword_search(["dorset"], 5)
    _keyword_index_consistent(store, backend)
    store.remove_document(res.doc_id)
    assert store.keyword_search(["dorset"], 5) == []
    _keyword_index_consistent(store, backend)
    # Deleting a document row directly (cascade) still keeps the index right.
    doc_b = store.find_document("/tmp/b.txt")
    mark = "%s" if backend == "postgres" else "?"  # psycopg's placeholder
    with store.transaction() as conn:
        conn.execute(f"DELETE FROM documents WHERE id = {mark}", (doc_b.id,))
    assert store.keyword_search(["bexley"], 5) == []
    _keyword_index_consistent(store, backend)


def test_schema_1_store_is_upgraded_in_place(tmp_path):
    from search.store import MIGRATIONS, SCHEMA_VERSION

    conn = sqlite3.connect(tmp_path / "equisearch.db", isolation_level=None)
    conn.executescript("BEGIN;" + MIGRATIONS[1] + "INSERT INTO meta VALUES ('schema_version', '1'), ('generation', '3');"
                       "PRAGMA user_version=1; COMMIT;")
    conn.execute("INSERT INTO documents(uri, title, content_hash, text_hash, text, added_at, updated_at)"
                 " VALUES ('/a', 'Hillingdon virtual school', 'h', 'h', 'Personal education plans matter.', 'x', 'x')")
    conn.execute("INSERT INTO chunks(doc_id, ord, text, char_start, char_end, text_hash)"
                 " VALUES (1, 0, 'Personal education plans matter.', 0, 32, 'h')")
    conn.close()

    store = Store.open(tmp_path, create=False)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION) and store.generation() == 3
    assert store.fts_search('"hillingdon"', 5) and store.fts_search('"plans"', 5)
    _fts_consistent(store)


def test_new_stores_keep_float16_vectors_and_record_it(store_location, backend):
    store = open_at(store_location)
    v = _vec(dim=384, seed=3)
    res = store.write_document(_doc(), _chunks(_doc().text), v, model="m", dim=384, chunking="c")
    assert store.get_meta("vector_dtype") == "float16"
    if backend == "sqlite":  # PostgreSQL keeps a halfvec column, not blobs
        blob = store.conn.execute("SELECT vec FROM vectors").fetchone()[0]
        assert len(blob) == 384 * 2  # half the bytes of float32
    assert store.wrong_size_vectors(384 * 2) == 0  # what doctor asks: two bytes a component
    ids, vecs = next(open_at(store_location).iter_vectors())
    assert vecs.dtype == np.float32 and float(vecs[0] @ v[0]) > 0.9999
    again = open_at(store_location)
    assert np.allclose(again.vectors_by_ids(list(res.added_ids))[res.added_ids[0]], v[0], atol=1e-3)
    assert np.allclose(next(iter(again.vectors_by_text_hash(res.doc_id).values())), v[0], atol=1e-3)


def test_float32_store_from_before_vector_dtype_stays_readable(tmp_path):
    # A store written before the vector_dtype key existed: float32 blobs, no record.
    store = Store.open(tmp_path)
    store.new_vector_dtype = "float32"
    v = _vec(dim=8, seed=4)
    store.write_document(_doc(), _chunks(_doc().text), v, model="m", dim=8, chunking="c")
    with store.transaction() as conn:
        conn.execute("DELETE FROM meta WHERE key = 'vector_dtype'")
    old = Store.open(tmp_path)  # default for new stores is float16 ...
    assert old.vector_dtype() == "float32"  # ... but vectors already there decide
    ids, vecs = next(old.iter_vectors())
    assert np.array_equal(vecs[0], v[0])
    # Later writes keep the store's encoding, and record it.
    v2 = _vec(dim=8, seed=5)
    text = "Another passage about looked-after children."
    old.write_document(_doc(uri="/tmp/b.txt", text=text), _chunks(text), v2, model="m", dim=8, chunking="c")
    assert old.get_meta("vector_dtype") == "float32"
    ids, vecs = next(Store.open(tmp_path).iter_vectors())
    assert np.array_equal(vecs[1], v2[0])


def test_schema_3_store_gains_pipeline_versions(tmp_path):
    """Migration 4 adds documents.pipeline_version; documents already stored
    get '' (older than any pipeline), so the next ingest re-reads them."""
    from search.store import MIGRATIONS, SCHEMA_VERSION

    conn = sqlite3.connect(tmp_path / "equisearch.db", isolation_level=None)
    conn.executescript("BEGIN;" + MIGRATIONS[1] + MIGRATIONS[2] + MIGRATIONS[3]
                       + "INSERT INTO meta VALUES ('schema_version', '3'), ('generation', '7');"
                       "PRAGMA user_version=3; COMMIT;")
    conn.execute("INSERT INTO documents(uri, title, content_hash, text_hash, text, blocks, added_at, updated_at)"
                 " VALUES ('/a.pdf', 'Admissions code', 'h', 'h', 'Admission authorities may request a copy.',"
                 " '[[0, 41, 3, null, null, \"\", \"\", false]]', 'x', 'x')")
    conn.execute("INSERT INTO chunks(doc_id, ord, text, char_start, char_end, page_start, page_end, text_hash)"
                 " VALUES (1, 0, 'Admission authorities may request a copy.', 0, 41, 3, 3, 'h')")
    conn.close()

    store = Store.open(tmp_path, create=False)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    doc = store.find_document("/a.pdf")
    assert (doc.title, doc.pipeline_version, doc.content_hash) == ("Admissions code", "", "h")
    assert store.generation() == 7 and store.fts_search('"admission"', 5)
    _fts_consistent(store)
    # Old 8-field block rows still load.
    from ingest.segments import rows_to_blocks

    (block,) = rows_to_blocks(store.document_text(doc.id), store.document_blocks(doc.id))
    assert (block.segment.page, block.segment.kind, block.segment.label) == (3, "", "")
    store.record_extraction(doc.id, "h2", "4")
    assert store.find_document("/a.pdf").pipeline_version == "4" and store.generation() == 7


# -- the store layer's boundary ----------------------------------------------------
#: (file, what) pairs allowed to break the rule below, each with its reason.
#: bench/ and tests/ are not checked: they build and break stores on purpose.
SQL_EXCEPTIONS: dict[tuple[str, str], str] = {}

_CODE_RULES = {
    "sqlite3": re.compile(r"\bsqlite3\b"),
    "execute": re.compile(r"\.execute(many|script)?\s*\("),
    "conn": re.compile(r"\.conn\b"),
    "transaction": re.compile(r"\.(transaction|snapshot)\s*\("),
}
_SQL_STRING = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|BEGIN|COMMIT|ROLLBACK|WITH)\b")


def _findings(path: Path) -> set[str]:
    """Which rules ``path`` breaks: code outside strings and comments, SQL at the start of a string."""
    found, code = set(), []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if tok.type == tokenize.STRING:
            body = re.sub(r"^[a-zA-Z]*('''|\"\"\"|'|\")", "", tok.string)
            if _SQL_STRING.match(body):
                found.add("sql")
        elif tok.type != tokenize.COMMENT:
            code.append(tok.string)
    text = " ".join(code).replace(" . ", ".").replace(" (", "(")
    found |= {name for name, rule in _CODE_RULES.items() if rule.search(text)}
    return found


def test_no_sql_outside_the_store_package():
    """Connections, transactions and SQL live in search/store/ only (issue 15), so
    a second backend implements search.store.base.StoreBackend and nothing else."""
    root = Path(__file__).resolve().parent.parent
    store_pkg = root / "search" / "store"
    broken = {}
    for top in ("search", "ingest", "cli", "ui"):
        for path in sorted((root / top).rglob("*.py")):
            if store_pkg in path.parents:
                continue
            rel = str(path.relative_to(root))
            bad = {what for what in _findings(path) if (rel, what) not in SQL_EXCEPTIONS}
            if bad:
                broken[rel] = sorted(bad)
    assert not broken, f"SQL outside search/store/ (add a store method that says what it means): {broken}"


def test_the_boundary_check_sees_sql():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "x.py"
        sample.write_text('rows = store.conn.execute("SELECT 1")\n# store.transaction() in a comment\n'
                          'doc = "Say SELECT in prose"\n')
        assert _findings(sample) == {"conn", "execute", "sql"}
