"""The PostgreSQL backend's documents, passages, vectors, vector search and health, on a real server.

The same writes give the same records as the SQLite backend; ingest,
re-ingest, aliases, refresh and removal work on a ``postgresql://`` store;
a filtered vector search returns k whenever k passages pass; several
processes writing the same documents at once store each text once, lose
none and never half of one; a reader's consistent view never sees half a
replace; doctor finds injected faults and repair fixes the derived ones; a
rebuild to a model of another dimension works. Plumbing runs on the hashing
fake embedder; one end-to-end test uses the bundled model.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import search.store.documents as sqlite_documents
import search.store.postgres.documents as pg_documents
from ingest.fetch import FetchPolicy
from ingest.pipeline import rebuild_store
from ingest.sources import SourceRequest, add_sources
from search import doctor
from search.errors import StoreError, StoreMismatch
from search.maintenance import remove_sources
from search.settings import Settings
from search.store import NewChunk, NewDocument, Store, open_store
from search.store.postgres import vectors as pg_vectors
from search.store.postgres.documents import vector_literal
from search.types import Filters

from . import pg_workers
from .conftest import SEED_DOCS, SEEDS, FakeEmbedder

pytestmark = pytest.mark.postgres

MODEL, DIM, CHUNKING = "m", 16, "c"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module", autouse=True)
def _local_folders(tmp_path_factory):
    """A database store's local folder (PgStore.path) under the test's temporary directory, not ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EQUISEARCH_CACHE_DIR", str(tmp_path_factory.mktemp("pg-cache")))
        yield


@pytest.fixture
def pg(pg_database):
    store = open_store(pg_database, settings=Settings())
    yield store
    store.close()


def raw(url: str):
    """A connection of the test's own, to look at or break rows behind the store's back."""
    import psycopg  # where it is missing, the fixtures skip (or fail in CI) with the reason

    return psycopg.connect(url, autocommit=True)


# -- the same records as SQLite -------------------------------------------------------
_SPECS = [
    # uri, title, kind, site, date, tags
    ("/data/alpha.txt", "Alpha report on SEND", "report", "site-a", "2019-05-01", ("send", "ehcp")),
    ("https://b.example/page", "Beta guidance", "guidance", "site-b", "2020", ("send",)),
    ("/data/gamma.pdf", "Gamma", "article", "site-a", "2020-12-31", ()),
    ("/data/delta.txt", "Delta – “quoted” ünïcode", "report", "site-c", "2021-01-01", ("ehcp", "x y")),
    ("/data/epsilon.txt", "Epsilon", "other", "", "", ()),
]


def _records(i: int):
    uri, title, kind, site, date, tags = _SPECS[i]
    sentences = [f"Sentence {j} of document {i} about pupils, exclusions and attendance {j * i}." for j in range(7)]
    text = " ".join(sentences)
    chunks, start = [], 0
    for j in range(0, 7, 2):
        piece = " ".join(sentences[j:j + 3])
        begin = text.index(piece, start)
        chunks.append(NewChunk(piece, begin, begin + len(piece), _hash(piece + "#"), page_start=j + 1 if i % 2 else None,
                               page_end=j + 2 if i % 2 else None, t_start=1.5 * j if i == 4 else None,
                               t_end=1.5 * j + 1 if i == 4 else None, speaker="Ms Smith" if i == 4 else "",
                               section="Part 2" if j else ""))
        start = begin + 1
    vecs = np.random.default_rng(i).standard_normal((len(chunks), DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    doc = NewDocument(uri=uri, title=title, text=text, content_hash=_hash(text + "bytes"), text_hash=_hash(text),
                      site=site, kind=kind, date=date, author="A. Author" if i % 2 else "", url=uri if "://" in uri else "",
                      language="en", tags=tags, meta={"etag": f'"{i}"', "nested": {"list": [1, 2.5, None, True]}, "é": "ü"},
                      blocks=((0, len(text), 1, None, None, "", "Intro", False), (5, 9, None, 0.0, 2.5, "Sp", "", True)),
                      pipeline_version="5")
    return doc, chunks, vecs


def _fill(store) -> list[int]:
    ids = []
    for i in range(len(_SPECS)):
        doc, chunks, vecs = _records(i)
        res = store.write_document(doc, chunks, vecs, model=MODEL, dim=DIM, chunking=CHUNKING,
                                   aliases=(f"/alias/{i}.txt",) if i == 1 else ())
        ids.append(res.doc_id)
    return ids


def _reads(store, ids: list[int]) -> dict:
    """Everything the interface reads, as plain values to compare across backends."""
    chunk_ids = sorted(store.chunk_ids_of(ids).tolist())
    first = store.chunks_of(ids[0])
    filters = {
        "kind": Filters(kinds=("report",)),
        "kinds": Filters(kinds=("report", "guidance")),
        "site": Filters(sites=("site-a",)),
        "from 2020": Filters(date_from="2020"),
        "to 2020": Filters(date_to="2020"),
        "to 2020-06": Filters(date_to="2020-06"),
        "2020 only": Filters(date_from="2020", date_to="2020"),
        "tag": Filters(tags=("send",)),
        "two tags": Filters(tags=("send", "ehcp")),
        "tag with space": Filters(tags=("x y",)),
        "kind and site": Filters(kinds=("report",), sites=("site-c",)),
        "nothing": Filters(tags=("absent",)),
    }
    return {
        "documents": store.documents(),
        "by uri": [store.find_document(s[0]) for s in _SPECS],
        "by alias": store.find_document("/alias/1.txt"),
        "missing": store.find_document("/nope"),
        "source by id": store.find_source(str(ids[2])),
        "source by url": store.find_source("https://b.example/page"),
        "by text hash": store.find_by_text_hash(_records(3)[0].text_hash),
        "get": [store.get_document(i) for i in ids],
        "get missing": store.get_document(10_000),
        "by ids": store.documents_by_ids(ids[:3]),
        "texts": [store.document_text(i) for i in ids],
        "metas": [store.document_meta(i) for i in ids],
        "blocks": [store.document_blocks(i) for i in ids],
        "titles": sorted(store.titles()),
        "kinds": list(store.kind_counts().items()),
        "passages": store.passage_count(),
        "chunks_of": [store.chunks_of(i) for i in ids],
        "chunks_by_ids": store.chunks_by_ids(chunk_ids[::2]),
        "iter_chunks": list(store.iter_chunks()),
        "find_passage": store.find_passage(ids[0], first[1].text),
        "find_passage missing": store.find_passage(ids[0], "no such passage"),
        "chunk_ids_of": sorted(chunk_ids),
        "matching": {name: sorted(store.chunk_ids_matching(f).tolist()) for name, f in filters.items()},
        "text hashes": store.chunk_text_hashes(ids[1]),
        "doc_ids_of": store.doc_ids_of(chunk_ids),
        "vector count": store.vector_count(),
    }


def test_write_and_read_give_sqlite_s_records(pg, tmp_path, monkeypatch):
    for module in (sqlite_documents, pg_documents):
        monkeypatch.setattr(module, "now_iso", lambda: "2026-01-02T03:04:05+00:00")
    lite = Store.open(tmp_path / "lite")
    lite_ids, pg_ids = _fill(lite), _fill(pg)
    assert lite_ids == pg_ids  # fresh stores number documents and passages alike
    want, got = _reads(lite, lite_ids), _reads(pg, pg_ids)
    for key in want:
        assert got[key] == want[key], key
    assert got["matching"]["to 2020"] and got["matching"]["2020 only"] and not got["matching"]["nothing"]
    assert isinstance(got["documents"][0].tags, tuple) and isinstance(got["blocks"][0], list)
    # Vectors: the same float16 values, decoded to float32.
    ids = lite.chunk_ids_of(lite_ids).tolist()
    lv, pv = lite.vectors_by_ids(ids), pg.vectors_by_ids(ids)
    assert lv.keys() == pv.keys() and all(np.array_equal(lv[i], pv[i]) and pv[i].dtype == np.float32 for i in ids)
    lh, ph = lite.vectors_by_text_hash(lite_ids[2]), pg.vectors_by_text_hash(pg_ids[2])
    assert lh.keys() == ph.keys() and all(np.array_equal(lh[h], ph[h]) for h in lh)
    ld, pd = lite.document_vectors(lite_ids), pg.document_vectors(pg_ids)
    assert ld.keys() == pd.keys() and all(np.allclose(ld[d], pd[d], atol=1e-6) for d in ld)
    assert all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in pd.values())
    (lids, lvecs), (pids, pvecs) = [np.concatenate(p) for p in zip(*lite.iter_vectors(batch=4))], \
        [np.concatenate(p) for p in zip(*pg.iter_vectors(batch=4))]
    assert np.array_equal(lids, pids) and np.array_equal(lvecs, pvecs)
    info = pg.info()
    assert (info.model, info.dim, info.chunking, info.documents, info.chunks) == (MODEL, DIM, CHUNKING, 5, len(ids))
    assert pg.integrity()["vectors"] == lite.integrity()["vectors"] == len(ids)

    # Writes that change no passage: the same effects.
    for store, doc_ids in ((lite, lite_ids), (pg, pg_ids)):
        store.add_alias(doc_ids[0], "/alias/zero.txt")
        store.remove_alias("/alias/1.txt")
        store.update_metadata(doc_ids[2], title="Gamma renamed", tags=("new", "tags"), date="2022-02-02")
        store.record_extraction(doc_ids[3], "new-hash", "6", {"etag": "v2"})
        store.record_extraction(doc_ids[4], "other-hash", "6")
        store.remove_document(doc_ids[1])
    want, got = _reads(lite, lite_ids[:1] + lite_ids[2:]), _reads(pg, pg_ids[:1] + pg_ids[2:])
    for key in want:
        assert got[key] == want[key], key
    assert pg.find_document("/alias/zero.txt").id == pg_ids[0] and pg.get_document(pg_ids[1]) is None
    # The new title is in the renamed document's keyword rows (lexical.py's _retitle ran).
    assert pg.keyword_index_check() == ("ok", "")
    with raw(pg.url) as conn:
        assert conn.execute("SELECT count(*) FROM chunks WHERE doc_id = %s AND tsv @@ to_tsquery('equisearch', 'renamed')",
                            (pg_ids[2],)).fetchone()[0] == len(want["chunks_of"][1])
        assert conn.execute("SELECT count(*) FROM postings p JOIN chunks c ON c.id = p.chunk_id"
                            " WHERE c.doc_id = %s AND p.lexeme = 'renam' AND p.tf_title = 1",
                            (pg_ids[2],)).fetchone()[0] == len(want["chunks_of"][1])
    lite.close()


def test_filters_apply_sqlite_s_date_rule(pg):
    ids = _fill(pg)
    where, params = pg._filter_where(Filters(date_to="2020"))
    assert "%s" in where and params == [4, "2020"]
    named, values = pg._filter_where(Filters(kinds=("report",), tags=("send",)), "x", named=True)
    assert "%(f_0)s" in named and "x.kind" in named and values == {"f_0": ["report"], "f_1": ["send"]}
    assert pg._filter_where(None) == ("TRUE", []) and pg._filter_where(Filters()) == ("TRUE", [])
    by_doc = pg.doc_ids_of(pg.chunk_ids_matching(Filters(date_to="2020")).tolist())
    # "2020" as an upper bound includes all of 2020 (2020-12-31), not 2021; undated documents never match.
    assert set(by_doc.values()) == {ids[0], ids[1], ids[2]}


def test_nul_in_text_is_stored_with_offsets_intact(pg):
    text = "Before the NUL\x00after it, a sentence about attendance."
    doc = NewDocument(uri="/nul.txt", title="N\x00UL", text=text, content_hash="c", text_hash=_hash(text),
                      meta={"note": "a\x00b"})
    chunk = NewChunk(text[7:30], 7, 30, "h")
    res = pg.write_document(doc, [chunk], np.ones((1, DIM), dtype=np.float32), model=MODEL, dim=DIM, chunking=CHUNKING)
    stored = pg.document_text(res.doc_id)
    assert len(stored) == len(text) and "\x00" not in stored
    assert stored[7:30] == pg.chunks_of(res.doc_id)[0].text
    assert pg.misplaced_passages() == 0 and pg.document_meta(res.doc_id) == {"note": "a\ufffdb"}


def test_write_refuses_other_model_and_half_writes_nothing(pg):
    doc, chunks, vecs = _records(0)
    pg.write_document(doc, chunks, vecs, model=MODEL, dim=DIM, chunking=CHUNKING)
    other, ochunks, ovecs = _records(1)
    with pytest.raises(StoreMismatch, match="rebuild"):
        pg.write_document(other, ochunks, ovecs, model="another", dim=DIM, chunking=CHUNKING)
    with pytest.raises(ValueError, match="one vector per chunk"):
        pg.write_document(other, ochunks, ovecs[:-1], model=MODEL, dim=DIM, chunking=CHUNKING)
    # A failure inside the transaction (its last passage refused by the schema) leaves nothing of the document.
    broken = [*ochunks[:-1], NewChunk(ochunks[-1].text, 0, None, "h")]  # char_end NOT NULL
    with pytest.raises(StoreError, match="char_end"):
        pg.write_document(other, broken, ovecs, model=MODEL, dim=DIM, chunking=CHUNKING)
    assert pg.find_document(other.uri) is None and pg.info().documents == 1 and pg.passage_count() == len(chunks)


# -- ingest through the edges' use-case ------------------------------------------------
def _add(location, folder, embedder, **settings):
    s = Settings(home=str(location), **settings)
    return add_sources(str(location), s, SourceRequest(paths=(str(folder),)), policy=FetchPolicy(), embedder=embedder)


def _by_uri(store) -> dict:
    return {d.uri: (d.title, d.kind, d.site, d.date, d.tags, d.n_chunks, d.aliases, d.content_hash,
                    tuple((c.text, c.char_start, c.char_end, c.page_start, c.section) for c in store.chunks_of(d.id)))
            for d in store.documents()}


def test_ingest_reingest_alias_refresh_remove(pg_database, corpus_copy, tmp_path):
    """Each step on a PostgreSQL and a SQLite store: the same reports and the same documents and passages."""
    emb, lite_emb, lite_home = FakeEmbedder(), FakeEmbedder(), tmp_path / "lite"

    def both() -> tuple[dict, dict]:
        pg_report, lite_report = _add(pg_database, corpus_copy, emb), _add(lite_home, corpus_copy, lite_emb)
        assert not pg_report.failed, pg_report.failed
        assert pg_report.counts == lite_report.counts and pg_report.passages == lite_report.passages
        assert [(r.source, r.status, r.reason, r.chunks, r.title) for r in pg_report.results] == \
            [(r.source, r.status, r.reason, r.chunks, r.title) for r in lite_report.results]
        assert _by_uri(store) == _by_uri(lite)
        return pg_report.counts, lite_report.counts

    store = lite = None
    try:
        assert _add(pg_database, corpus_copy, emb).counts["added"] == SEED_DOCS
        assert _add(lite_home, corpus_copy, lite_emb).counts["added"] == SEED_DOCS
        store, lite = open_store(pg_database), Store.open(lite_home)
        assert _by_uri(store) == _by_uri(lite)
        q = FakeEmbedder().encode(["exclusion guidance for schools"])[0]
        lite_hits, pg_hits = lite.vector_index().search(q, 5), store.vector_index().search(q, 5)
        assert [i for i, _ in pg_hits] == [i for i, _ in lite_hits]  # 31 passages: HNSW finds the exact top 5
        assert np.allclose([s for _, s in pg_hits], [s for _, s in lite_hits], atol=2e-3)

        # Idempotent: nothing new is embedded.
        encoded = emb.encoded
        assert both()[0]["unchanged"] == SEED_DOCS and emb.encoded == encoded

        # The same text under another name is an alias, not a document.
        first = sorted(p for p in corpus_copy.iterdir() if p.suffix == ".txt")[0]
        twin = corpus_copy / "twin_copy.txt"
        shutil.copy(first, twin)
        assert both()[0]["duplicate"] == 1 and store.info().documents == SEED_DOCS
        assert store.find_document(str(twin.resolve())).uri == str(first.resolve())

        # A changed file replaces its passages in one write; the old ones are gone.
        doc = store.find_document(str(first.resolve()))
        old_ids = set(store.chunk_ids_of([doc.id]).tolist())
        first.write_text(first.read_text(encoding="utf-8") + "\n\nA new closing paragraph about attendance officers.\n",
                         encoding="utf-8")
        assert both()[0]["updated"] == 1
        new_ids = set(store.chunk_ids_of([doc.id]).tolist())
        assert new_ids and not new_ids & old_ids and store.chunks_by_ids(list(old_ids)) == {}
        assert "attendance officers" in store.document_text(doc.id)
        # The twin, read again now that its twin's text changed, is a document of its own.
        twin.write_text(twin.read_text(encoding="utf-8") + "\nAnd one more line.\n", encoding="utf-8")
        assert both()[0]["added"] == 1
        assert store.find_document(str(twin.resolve())).uri == str(twin.resolve())

        removed, missing = remove_sources(store, [str(first.resolve()), "/no/such/file"])
        assert [d.id for d in removed] == [doc.id] and missing == ["/no/such/file"]
        assert store.get_document(doc.id) is None and store.chunks_by_ids(list(new_ids)) == {}
        assert store.orphan_counts() == {"chunks": 0, "postings": 0, "aliases": 0}
        assert doctor.diagnose(store).healthy
    finally:
        for s in (store, lite):
            if s is not None:
                s.close()


# -- vector search ----------------------------------------------------------------------
@pytest.fixture
def random_store(pg):
    """2000 random unit vectors in 20 documents of 100 passages, with their float16 copies in numpy."""
    rng = np.random.default_rng(7)
    ids, vecs = [], []
    for d in range(20):
        text = " ".join(f"w{d}_{j}" for j in range(100))
        chunks, start = [], 0
        for j, word in enumerate(text.split()):
            chunks.append(NewChunk(word, start, start + len(word), _hash(word)))
            start += len(word) + 1
        v = rng.standard_normal((100, 32)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        res = pg.write_document(NewDocument(uri=f"/r/{d}", title=f"R{d}", text=text, content_hash=str(d),
                                            text_hash=_hash(text)), chunks, v, model=MODEL, dim=32, chunking=CHUNKING)
        ids += res.added_ids
        vecs.append(v.astype(np.float16).astype(np.float32))
    return pg, np.asarray(ids, dtype=np.int64), np.concatenate(vecs), rng


def _exact(ids, vecs, q, k, allowed=None):
    q16 = q.astype(np.float16).astype(np.float32)
    cos = vecs @ q16 / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(q16))
    keep = np.isin(ids, allowed) if allowed is not None else np.ones(len(ids), bool)
    order = np.argsort(-cos[keep], kind="stable")[:k]
    return ids[keep][order], cos[keep][order], dict(zip(ids.tolist(), cos.tolist()))


def test_filtered_search_returns_k_and_the_exact_top_k(random_store, monkeypatch):
    store, ids, vecs, rng = random_store
    index = store.vector_index()
    assert index.ntotal == 2000 and index.kind == "hnsw"
    for trial in range(5):
        q = rng.standard_normal(32).astype(np.float32)
        q /= np.linalg.norm(q)
        allowed = rng.choice(ids, 10, replace=False)
        got = index.search(q, 10, allowed)
        want, want_cos, _ = _exact(ids, vecs, q, 10, allowed)
        assert sorted(i for i, _ in got) == sorted(want.tolist())  # all ten, whatever their distance
        assert np.allclose([s for _, s in got], want_cos, atol=2e-3)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        # Fewer allowed than k: every one of them.
        assert sorted(i for i, _ in index.search(q, 10, allowed[:3])) == sorted(allowed[:3].tolist())
    assert index.search(q, 10, np.zeros(0, dtype=np.int64)) == [] and index.search(q, 0) == []

    # Unfiltered: HNSW, nearly the exact top 10, with true cosines, best first.
    recalls = []
    for trial in range(10):
        q = rng.standard_normal(32).astype(np.float32)
        q /= np.linalg.norm(q)
        got = index.search(q, 10)
        want, _, cos = _exact(ids, vecs, q, 10)
        assert len(got) == 10 and all(abs(cos[i] - s) < 2e-3 for i, s in got)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        recalls.append(len({i for i, _ in got} & set(want.tolist())) / 10)
    assert np.mean(recalls) >= 0.9
    # k above ef_search's floor: still k (iterative scan).
    assert len(index.search(q, 300)) == 300
    # Each connection starts with the scan settings, so an unfiltered search is one statement.
    assert store.scalar("SHOW hnsw.ef_search") == str(pg_vectors.session_ef_search(Settings()))
    assert store.scalar("SHOW hnsw.iterative_scan") == "relaxed_order"

    # Many allowed ids: the planner picks the primary key (exact) or HNSW. Here HNSW is made the
    # only choice (no primary-key lookup, no sequential scan), as on a large store.
    monkeypatch.setattr(pg_vectors, "EXACT_SCAN_MAX", 50)
    monkeypatch.setattr(pg_vectors, "_FILTERED_SQL", pg_vectors._FILTERED_SQL.replace("id = ANY", "(id + 0) = ANY"))

    def hnsw_only(*args):
        with store.transaction() as conn:
            conn.execute("SET LOCAL enable_seqscan = off")
            plan = "".join(r[0] for r in conn.execute(
                "EXPLAIN " + pg_vectors._FILTERED_SQL, {"q": vector_literal(q), "k": 20, "ids": ids.tolist()}))
            assert "chunks_vector" in plan
            return index.search(*args)  # joins this transaction: the same planner settings

    exact_scans = []
    real_exact = pg_vectors.PgVectorSearch._exact
    monkeypatch.setattr(pg_vectors.PgVectorSearch, "_exact",
                        lambda self, *a: exact_scans.append(a) or real_exact(self, *a))
    allowed = rng.choice(ids, 400, replace=False)
    got = hnsw_only(q, 20, allowed)
    _, _, cos = _exact(ids, vecs, q, 20, allowed)
    assert len(got) == 20 and set(i for i, _ in got) <= set(allowed.tolist()) and not exact_scans
    assert all(abs(cos[i] - s) < 2e-3 for i, s in got)
    # A scan that stops early (its tuple budget too small to reach the 60 passages farthest from
    # the query) is made up by the exact scan.
    monkeypatch.setattr(pg_vectors, "FILTERED_MAX_SCAN_TUPLES", 1)
    allowed = np.array(sorted(cos, key=cos.get)[:60], dtype=np.int64)
    got = hnsw_only(q, 20, allowed)
    want, _, _ = _exact(ids, vecs, q, 20, allowed)
    assert sorted(i for i, _ in got) == sorted(want.tolist()) and len(exact_scans) == 1

    # Inside a consistent view (REPEATABLE READ READ ONLY), the same answers.
    with store.consistent_view():
        assert index.search(q, 10) == index.search(q, 10) and len(index.search(q, 5, ids[:7])) == 5
    assert index.rebuild() == 2000


# -- many writers at once ------------------------------------------------------------------
def test_concurrent_writers_store_each_text_once(pg_database):
    n_docs = 40
    # Every text twice: its own uri and a copy's (an alias); each process writes an overlapping share.
    everything = [(n, c) for n in range(n_docs) for c in (0, 1)]
    shares = [everything, everything[20:] + everything[:20], [x for x in everything if x[0] % 2 == 0],
              [x for x in everything if x[0] >= 10]]
    open_store(pg_database, settings=Settings()).close()  # migrated once, before the race
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(len(shares))
        with ProcessPoolExecutor(len(shares), mp_context=ctx) as pool:
            futures = [pool.submit(pg_workers.write_corpus, pg_database, share, seed, barrier)
                       for seed, share in enumerate(shares)]
            results = [f.result(timeout=300) for f in futures]
    outcomes = Counter(o for r in results for _, o, _ in r)
    assert sum(outcomes.values()) == sum(map(len, shares))
    # Exactly one write stored each text; every other write of it found it (same uri, or an alias).
    assert outcomes[""] == n_docs, outcomes
    assert set(outcomes) <= {"", "unchanged", "duplicate"}
    store = open_store(pg_database, settings=Settings())
    try:
        docs = store.documents()
        assert len(docs) == n_docs and len({store.document_text(d.id) for d in docs}) == n_docs
        for n in range(n_docs):
            found = {store.find_document(pg_workers.corpus_doc(n, c)[0].uri) for c in (0, 1)}
            assert len(found) == 1 and None not in found  # both uris lead to the one document
            (doc,) = found
            assert doc.n_chunks == pg_workers.passages_of(n)
            assert [c.ord for c in store.chunks_of(doc.id)] == list(range(doc.n_chunks))
        assert store.passage_count() == sum(pg_workers.passages_of(n) for n in range(n_docs))
        report = doctor.diagnose(store)
        assert report.healthy, [c for c in report.checks if c.status != "ok"]
    finally:
        store.close()


def test_concurrent_ingests_of_one_folder_report_honestly(pg_database, corpus_copy):
    # Two names for one text: whichever process meets which first, one document, one alias.
    first = sorted(p for p in corpus_copy.iterdir() if p.suffix == ".txt")[0]
    shutil.copy(first, corpus_copy / "same_text_again.txt")
    open_store(pg_database, settings=Settings()).close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            counts = [f.result(timeout=300) for f in
                      [pool.submit(pg_workers.ingest_folder, pg_database, str(corpus_copy), barrier) for _ in range(2)]]
    assert sum(c["failed"] for c in counts) == 0, counts
    # Each text added by exactly one of them; everything else reported as what it is.
    assert sum(c["added"] for c in counts) == SEED_DOCS, counts
    assert sum(c["added"] + c["unchanged"] + c["duplicate"] for c in counts) == 2 * (SEED_DOCS + 1), counts
    store = open_store(pg_database, settings=Settings())
    try:
        assert store.info().documents == SEED_DOCS
        assert store.find_document(str((corpus_copy / "same_text_again.txt").resolve())) is not None
        assert doctor.diagnose(store).healthy
    finally:
        store.close()


def test_reader_never_sees_half_a_replace(pg_database):
    writer, reader = open_store(pg_database, settings=Settings()), open_store(pg_database, settings=Settings())

    def version(tag: str, n: int):
        pieces = [f"{tag} passage {i} " + " ".join(f"{tag}{i}w{j}" for j in range(15)) for i in range(n)]
        text = "\n".join(pieces)
        chunks, start = [], 0
        for p in pieces:
            chunks.append(NewChunk(p, start, start + len(p), _hash(p)))
            start += len(p) + 1
        doc = NewDocument(uri="/flip.txt", title=tag, text=text, content_hash=tag, text_hash=_hash(text))
        vecs = np.random.default_rng(n).standard_normal((n, DIM)).astype(np.float32)
        return doc, chunks, vecs / np.linalg.norm(vecs, axis=1, keepdims=True)

    versions = {"alpha": version("alpha", 3), "beta": version("beta", 7)}
    doc_id = writer.write_document(*versions["alpha"], model=MODEL, dim=DIM, chunking=CHUNKING).doc_id
    stop, seen, errors = threading.Event(), Counter(), []

    def tag_of(text: str) -> str:
        return text.split()[0]

    def read():
        try:
            while not stop.is_set():
                with reader.consistent_view():
                    text = reader.document_text(doc_id)
                    chunks = reader.chunks_of(doc_id)
                    n = reader.get_document(doc_id).n_chunks
                    hits = reader.vector_index().search(versions[tag_of(text)][2][0], 20)
                tags = {tag_of(c.text) for c in chunks}
                tag = tag_of(text)
                # HNSW is approximate (the passages it finds may be fewer), but it never returns
                # a passage of the other version: the index scan sees the same snapshot.
                if tags != {tag} or len(chunks) != n or n != len(versions[tag][1]) \
                        or {c.text for c in chunks} != {text[c.char_start:c.char_end] for c in chunks} \
                        or not hits or not {i for i, _ in hits} <= {c.id for c in chunks}:
                    errors.append((tag, tags, n, len(chunks)))
                seen[tag] += 1
        except Exception as exc:  # surfaced by the assertion below
            errors.append(repr(exc))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        deadline = time.monotonic() + 4
        flips = 0
        while time.monotonic() < deadline:
            tag = "beta" if flips % 2 == 0 else "alpha"
            res = writer.write_document(*versions[tag], model=MODEL, dim=DIM, chunking=CHUNKING, replace_id=doc_id)
            assert res.doc_id == doc_id and res.outcome == "" and len(res.added_ids) == len(versions[tag][1])
            flips += 1
    finally:
        stop.set()
        thread.join(30)
        writer.close()
        reader.close()
    assert not errors, errors[:3]
    assert seen["alpha"] and seen["beta"] and flips > 10  # the reader saw both versions, many replaces happened


def test_write_finds_what_another_writer_stored_meanwhile(pg):
    """The re-checks inside the write, one by one (the race tests hit them by chance)."""
    doc, chunks, vecs = _records(0)
    first = pg.write_document(doc, chunks, vecs, model=MODEL, dim=DIM, chunking=CHUNKING)
    assert first.outcome == ""
    # Same uri, same text: nothing written.
    again = pg.write_document(doc, chunks, vecs, model=MODEL, dim=DIM, chunking=CHUNKING, aliases=("/also.txt",))
    assert (again.outcome, again.doc_id, again.added_ids) == ("unchanged", first.doc_id, ())
    assert pg.find_document("/also.txt").id == first.doc_id and pg.passage_count() == len(chunks)
    # Same text, other uri: an alias of the document that holds it.
    moved = NewDocument(**{**doc.__dict__, "uri": "/elsewhere.txt"})
    dup = pg.write_document(moved, chunks, vecs, model=MODEL, dim=DIM, chunking=CHUNKING)
    assert (dup.outcome, dup.doc_id) == ("duplicate", first.doc_id)
    assert pg.find_document("/elsewhere.txt").id == first.doc_id and pg.info().documents == 1
    # Same uri, other text, no replace asked: replaced (a later run would have updated it).
    other, ochunks, ovecs = _records(1)
    changed = NewDocument(**{**other.__dict__, "uri": doc.uri})
    upd = pg.write_document(changed, ochunks, ovecs, model=MODEL, dim=DIM, chunking=CHUNKING)
    assert (upd.outcome, upd.doc_id, set(upd.removed_ids)) == ("updated", first.doc_id, set(first.added_ids))
    assert pg.document_text(first.doc_id) == other.text and pg.passage_count() == len(ochunks)
    # An alias whose location now holds other text becomes a document of its own.
    third, tchunks, tvecs = _records(2)
    own = pg.write_document(NewDocument(**{**third.__dict__, "uri": "/elsewhere.txt"}), tchunks, tvecs,
                            model=MODEL, dim=DIM, chunking=CHUNKING)
    assert own.outcome == "" and own.doc_id != first.doc_id and pg.find_document("/elsewhere.txt").id == own.doc_id
    # A replace whose new text another document holds: the replaced one gives way to it.
    gone = pg.write_document(NewDocument(**{**other.__dict__, "uri": "/elsewhere.txt"}), ochunks, ovecs,
                             model=MODEL, dim=DIM, chunking=CHUNKING, replace_id=own.doc_id)
    assert (gone.outcome, gone.doc_id, set(gone.removed_ids)) == ("duplicate", first.doc_id, set(own.added_ids))
    assert pg.get_document(own.doc_id) is None and pg.find_document("/elsewhere.txt").id == first.doc_id
    # A replace of a document removed meanwhile stores it anew.
    pg.remove_document(first.doc_id)
    back = pg.write_document(changed, ochunks, ovecs, model=MODEL, dim=DIM, chunking=CHUNKING, replace_id=first.doc_id)
    assert back.outcome == "added" and back.doc_id != first.doc_id and pg.find_document(doc.uri).id == back.doc_id
    assert doctor.diagnose(pg).healthy


# -- doctor, repair, rebuild -------------------------------------------------------------------
@pytest.fixture
def seeded(pg_database):
    report = _add(pg_database, SEEDS, FakeEmbedder())
    assert report.counts["added"] == SEED_DOCS
    store = open_store(pg_database, settings=Settings())
    yield store
    store.close()


def _status(report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_doctor_on_a_healthy_store(seeded):
    report = doctor.diagnose(seeded)
    assert _status(report) == dict.fromkeys(
        ("database", "builder", "vectors", "documents", "orphans", "offsets", "keyword index", "vector index"), "ok")
    assert report.store == seeded.display and "postgresql://" in report.store
    assert report.counts["documents"] == SEED_DOCS and report.counts["vectors"] == report.counts["chunks"]
    assert report.counts["generation"] == seeded.generation() > 0
    data = report.to_dict()
    assert json.loads(json.dumps(data))["healthy"] is True


def test_doctor_command_on_a_database_url(seeded):
    from click.testing import CliRunner

    from cli.app import main

    r = CliRunner().invoke(main, ["--store", seeded.url, "doctor", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["healthy"] is True and data["store"] == seeded.display
    assert [c["name"] for c in data["checks"]] == ["database", "builder", "vectors", "documents", "orphans",
                                                  "offsets", "keyword index", "vector index"]
    with raw(seeded.url) as conn:
        conn.execute("DELETE FROM postings WHERE ctid IN (SELECT ctid FROM postings LIMIT 3)")
    r = CliRunner().invoke(main, ["--store", seeded.url, "doctor"])
    assert r.exit_code == 1 and "PROBLEM  keyword index" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["--store", seeded.url, "doctor", "--repair"])
    assert r.exit_code == 0 and "repaired: re-indexed the keywords" in r.output, r.output


def test_doctor_finds_a_lost_posting_and_repair_restores_it(seeded):
    with raw(seeded.url) as conn:
        conn.execute("DELETE FROM postings WHERE ctid IN (SELECT ctid FROM postings LIMIT 1)")
        conn.execute("UPDATE chunks SET len = len + 1 WHERE id = (SELECT min(id) FROM chunks)")
    report = doctor.diagnose(seeded)
    assert _status(report)["keyword index"] == "problem" and not report.healthy
    bad = next(c for c in report.checks if c.name == "keyword index")
    assert "postings differ" in bad.problem and "length differ" in bad.problem and bad.repairable
    generation = seeded.generation()
    fixed = doctor.repair(seeded)
    assert fixed.healthy, fixed.problems
    assert any("re-indexed the keywords" in r for r in fixed.repaired)
    assert any("HNSW" in r for r in fixed.repaired) and seeded.generation() > generation


def test_doctor_finds_an_invalid_index_and_repair_rebuilds_it(seeded):
    with raw(seeded.url) as conn:
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'chunks_tsv'::regclass")
        conn.execute("DROP INDEX chunks_vector")
    report = doctor.diagnose(seeded)
    status = _status(report)
    assert status["database"] == "problem" and status["vector index"] == "problem"
    db = next(c for c in report.checks if c.name == "database")
    assert "chunks_tsv" in db.problem and "chunks_vector is missing" in db.problem and db.repairable
    fixed = doctor.repair(seeded)
    assert fixed.healthy, fixed.problems
    assert seeded.vector_index_state()["present"]


def test_doctor_finds_a_lost_vector_and_rebuild_restores_it(seeded):
    with raw(seeded.url) as conn:
        conn.execute("UPDATE chunks SET vector = NULL WHERE id = (SELECT max(id) FROM chunks)")
    report = doctor.diagnose(seeded)
    vectors = next(c for c in report.checks if c.name == "vectors")
    assert vectors.status == "problem" and "1 passage(s) without a vector" in vectors.problem
    assert not vectors.repairable
    # --repair does not re-embed: still a problem; rebuild does.
    assert not doctor.repair(seeded).healthy
    rebuild_store(seeded, Settings(home=seeded.url), FakeEmbedder())
    assert doctor.diagnose(seeded).healthy


def test_rebuild_to_a_model_of_another_dimension(seeded):
    before = {d.uri: d.n_chunks for d in seeded.documents()}
    report = rebuild_store(seeded, Settings(home=seeded.url), FakeEmbedder(dim=24))
    assert report.documents == SEED_DOCS and report.chunks == sum(before.values())
    info = seeded.info()
    assert (info.dim, info.chunks) == (24, report.chunks)
    assert seeded.vector_index_state() == {**seeded.vector_index_state(), "present": True, "valid": True, "dim": 24}
    assert {d.uri: d.n_chunks for d in seeded.documents()} == before
    q = FakeEmbedder(dim=24).encode(["attendance"])[0]
    hits = seeded.vector_index().search(q, 5)
    assert len(hits) == 5 and all(len(v) == 24 for v in seeded.vectors_by_ids([i for i, _ in hits]).values())
    assert doctor.diagnose(seeded).healthy
    # The store now refuses the old dimension.
    doc, chunks, vecs = _records(0)
    with pytest.raises(StoreMismatch):
        seeded.write_document(doc, chunks, vecs, model=report.model, dim=DIM, chunking=info.chunking)


def _recut(store, docs, emb) -> list:
    """(document id, its passages again, their vectors by ``emb``) for ``docs``, as a rebuild writes them."""
    out = []
    for d in docs:
        chunks = store.chunks_of(d.id)
        out.append((d.id, [NewChunk(c.text, c.char_start, c.char_end, _hash(c.text)) for c in chunks],
                    emb.encode([c.text for c in chunks])))
    return out


def test_rebuild_fails_whole_when_a_document_arrives_unlisted(seeded):
    emb = FakeEmbedder()
    work = _recut(seeded, seeded.documents()[:-1], emb)  # the last one "arrived after the listing"
    before = seeded.passage_count()
    with pytest.raises(StoreError, match="added while rebuilding"):
        seeded.replace_passages(iter(work), model=emb.name, dim=emb.dim, chunking=seeded.info().chunking)
    assert seeded.passage_count() == before and doctor.diagnose(seeded).healthy


def test_a_write_waits_for_a_rebuild_then_meets_the_new_model(seeded):
    """A rebuild holds the builder lock: a write with the old model cannot land among the new passages."""
    docs = seeded.documents()
    old_model, chunking = seeded.info().model, seeded.info().chunking
    emb = FakeEmbedder(dim=24)
    started, release = threading.Event(), threading.Event()
    outcome: dict = {}

    # Read before the rebuild: inside its transaction the old passages are already deleted.
    work = _recut(seeded, docs, emb)

    def passages():
        for i, item in enumerate(work):
            yield item
            if i == 0:
                started.set()
                release.wait(30)

    def write():
        other = open_store(seeded.url, settings=Settings())
        doc, chunks, vecs = pg_workers.corpus_doc(1)
        try:
            other.write_document(doc, chunks, vecs[:, :pg_workers.DIM], model=old_model, dim=pg_workers.DIM,
                                 chunking=chunking)
            outcome["result"] = "written"
        except StoreMismatch as exc:
            outcome["result"] = str(exc)
        finally:
            other.close()

    rebuild = threading.Thread(target=lambda: seeded.replace_passages(passages(), model=emb.name, dim=emb.dim,
                                                                       chunking=chunking))
    rebuild.start()
    assert started.wait(30)
    writer = threading.Thread(target=write)
    writer.start()
    writer.join(1.5)
    assert writer.is_alive() and not outcome  # waiting on the rebuild's lock
    release.set()
    rebuild.join(60)
    writer.join(30)
    assert "rebuild" in outcome["result"] and seeded.info().model == emb.name
    assert seeded.info().documents == SEED_DOCS and doctor.diagnose(seeded).healthy


# -- end to end with the bundled model -------------------------------------------------------
@pytest.fixture(scope="module")
def engine(pg_server, real_embedder, _local_folders):
    """The seed corpus ingested into a database of its own with the bundled model (once for the module)."""
    from search.api import Engine

    name = f"t_engine_{int(time.time() * 1000) % 10**9}"
    with raw(pg_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.rsplit("/", 1)[0] + f"/{name}"
    # torch encodes the queries (the test passes the loaded model): no ONNX export.
    settings = Settings(home=url, correct_spelling=False, reranker="off", query_encoder="torch")
    try:
        report = add_sources(url, settings, SourceRequest(paths=(str(SEEDS),)), policy=FetchPolicy(),
                             embedder=real_embedder)
        assert report.counts["added"] == SEED_DOCS
        engine = Engine.open(url, settings, embedder=real_embedder)
        yield engine
        engine.store.close()
    finally:
        with raw(pg_server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_engine_dense_search_on_postgresql(engine):
    result = engine.search("inclusion in multi-academy trusts", mode="dense")
    assert result.hits and all(h.document.title and h.dense is not None for h in result.hits)
    assert any("trust" in (h.document.title + h.chunk.text).lower() for h in result.hits[:3])
    kind = sorted({h.document.kind for h in result.hits})[0]
    filtered = engine.search("inclusion", mode="dense", filters=Filters(kinds=(kind,)))
    assert filtered.hits and {h.document.kind for h in filtered.hits} == {kind}
    # The same passages as exact cosine over every stored vector (31 passages: HNSW is exact here).
    q = engine.encode_query("inclusion in multi-academy trusts")
    ids, vecs = next(engine.store.iter_vectors())
    best = ids[np.argsort(-(vecs @ q.astype(np.float16).astype(np.float32)))[:5]].tolist()
    assert [i for i, _ in engine.index.search(q, 5)] == best


@pytest.mark.slow
def test_engine_hybrid_search_and_ask_on_postgresql(engine):
    from search.store.postgres import PgStore

    if not hasattr(PgStore, "keyword_scores"):
        pytest.skip("hybrid search and ask need keyword ranking (postgres/lexical.py), not in this branch")
    hybrid = engine.search("inclusion in multi-academy trusts")
    assert hybrid.hits and any(h.lexical_rank for h in hybrid.hits)
    answer = engine.ask("How can trusts make schools inclusive?")
    assert answer.passages and (answer.sentences or answer.abstained)
