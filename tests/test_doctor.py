"""`equisearch doctor`: every kind of damage is found, derived damage is repaired
without re-embedding, and the exit code says healthy or not.

Tests taking ``seeded`` or ``store_location`` run on both backends
(tests/backends.py); the damage tests break a SQLite store's file, FTS5
index or FAISS file directly and stay SQLite-only.
"""
from __future__ import annotations

import json
import os
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

import ingest.pipeline
import search.api
from cli.app import main
from ingest.pipeline import Ingestor
from search import doctor
from search.errors import StoreError, StoreLocked
from search.settings import Settings
from search.store import Store
from search.vectors import INDEX_NAME, SIDECAR_NAME, VectorIndex

from .backends import open_at, settings_at
from .conftest import SEED_DOCS, SEEDS, FakeEmbedder


@pytest.fixture
def home(tmp_path):
    """The starter corpus ingested with the fake embedder (plumbing only)."""
    home = tmp_path / "store"
    store = Store.open(home)
    report = Ingestor(store, Settings(home=str(home)), FakeEmbedder()).ingest_paths([SEEDS])
    assert report.counts["added"] == SEED_DOCS
    store.close()
    return home


@pytest.fixture
def seeded(store_location):
    """:func:`home` on both backends: the seeds ingested with the fake embedder at ``store_location``."""
    store = open_at(store_location)
    report = Ingestor(store, settings_at(store_location), FakeEmbedder()).ingest_paths([SEEDS])
    assert report.counts["added"] == SEED_DOCS
    store.close()
    return store_location


def raw(home) -> sqlite3.Connection:
    """A connection that bypasses the store's rules (foreign keys off) to break things."""
    conn = sqlite3.connect(home / "equisearch.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def run_doctor(home, *args):
    r = CliRunner().invoke(main, ["--store", str(home), "doctor", *args])
    assert "Traceback" not in r.output
    return r


def status(report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_fresh_ingest_is_healthy_with_json_keys(seeded, backend):
    home = seeded
    r = run_doctor(home, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert set(data) == {"store", "healthy", "counts", "checks", "repaired"}
    assert data["healthy"] is True
    names = {c["name"] for c in data["checks"]}
    if backend == "postgres":  # no file, FTS5 or FAISS: the database, its postings and its HNSW index instead
        assert {"documents", "chunks", "vectors", "postings", "generation"} <= set(data["counts"])
        assert names == {"database", "builder", "vectors", "documents", "orphans", "offsets", "keyword index",
                         "vector index"}
    else:
        assert {"documents", "chunks", "vectors", "fts_rows", "generation"} <= set(data["counts"])
        assert names == {"sqlite", "builder", "vectors", "documents", "orphans", "offsets", "fts", "faiss", "temp_files"}
    for c in data["checks"]:
        assert set(c) == {"name", "status", "ok", "detail", "problem", "fix", "repairable"}
        assert c["status"] == "ok", c
    text = run_doctor(home)
    assert text.exit_code == 0 and text.output.strip().endswith("healthy")


def test_empty_store_is_healthy(store_location):
    open_at(store_location).close()
    assert run_doctor(store_location).exit_code == 0


def test_missing_store_is_one_line_error(store_location, backend):
    r = run_doctor(store_location)  # nothing ingested there
    # A database URL needs --store on the command line, so its hint names it.
    hint = "equisearch --store URL ingest" if backend == "postgres" else "equisearch ingest"
    assert r.exit_code == 1 and hint in r.output and len(r.output.strip().splitlines()) == 1


def test_fts_drift_found_and_rebuilt(home):
    conn = raw(home)
    cid, text = conn.execute("SELECT id, text FROM chunks ORDER BY id LIMIT 1").fetchone()
    conn.execute("INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', ?, ?)", (cid, text))
    conn.close()
    r = run_doctor(home)
    assert r.exit_code == 1 and "PROBLEM  fts" in r.output and "--repair" in r.output
    r = run_doctor(home, "--repair")
    assert r.exit_code == 0, r.output
    assert "rebuilt the FTS5 keyword index" in r.output
    store = Store.open(home)
    from search.lexical import build_match

    assert cid in [c for c, _ in store.fts_search(build_match(text), 1000)], "the passage is findable again"
    assert doctor.diagnose(store).healthy


def test_fts_content_mismatch_found_by_fts5_integrity_check(home):
    # Same number of rows, but the index no longer matches the text: only
    # FTS5's own integrity-check can see this.
    conn = raw(home)
    conn.execute("DROP TRIGGER chunks_au")
    conn.execute("UPDATE chunks SET text = 'zebra quagga okapi' WHERE id = (SELECT min(id) FROM chunks)")
    conn.execute("""CREATE TRIGGER chunks_au AFTER UPDATE OF text ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
    END""")
    conn.close()
    report = doctor.diagnose(Store.open(home))
    assert status(report)["fts"] == "problem"
    assert "integrity-check" in next(c.problem for c in report.checks if c.name == "fts")


def test_orphans_found_and_deleted(home):
    conn = raw(home)
    doc_id = conn.execute("SELECT min(id) FROM documents").fetchone()[0]
    conn.execute("INSERT INTO aliases(uri, doc_id) VALUES ('/gone/alias.txt', 424242)")
    conn.execute("INSERT INTO vectors(chunk_id, vec) VALUES (999999, ?)", (np.zeros(64, np.float32).tobytes(),))
    # FKs off and the store's delete trigger bypassed: its passages stay behind.
    trigger = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'documents_bd'").fetchone()[0]
    conn.execute("DROP TRIGGER documents_bd")
    conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
    conn.execute(trigger)
    conn.close()
    store = Store.open(home)
    report = doctor.diagnose(store)
    orphans = next(c for c in report.checks if c.name == "orphans")
    assert orphans.status == "problem" and orphans.repairable
    assert "1 vectors" in orphans.problem and "aliases" in orphans.problem and "chunks" in orphans.problem
    fixed = doctor.repair(store)
    assert fixed.healthy, fixed.checks
    assert any("orphan" in r for r in fixed.repaired)
    assert store.conn.execute("SELECT count(*) FROM chunks WHERE doc_id = ?", (doc_id,)).fetchone()[0] == 0
    # Readers' FAISS indexes notice that passages went away.
    assert fixed.counts["generation"] > report.counts["generation"]


def test_faiss_with_wrong_ids_is_a_problem_and_rebuilt(home):
    store = Store.open(home)
    index = VectorIndex(store)
    index.ensure_current()
    ids = np.fromiter((r[0] for r in store.conn.execute("SELECT chunk_id FROM vectors")), dtype=np.int64)
    # Same count, same generation, wrong ids: searches would trust this file.
    import faiss

    bad = faiss.IndexIDMap2(faiss.IndexFlatIP(64))
    bad.add_with_ids(np.eye(64, dtype=np.float32)[np.arange(len(ids)) % 64], ids + 100000)
    index._index = bad
    index.save()
    report = doctor.diagnose(store)
    assert status(report)["faiss"] == "problem"
    r = run_doctor(home, "--repair", "--json")
    assert r.exit_code == 0, r.output
    assert any("FAISS" in x for x in json.loads(r.output)["repaired"])
    assert status(doctor.diagnose(Store.open(home)))["faiss"] == "ok"


def test_stale_faiss_and_temp_files_are_warnings_then_repaired(home):
    store = Store.open(home)
    (home / SIDECAR_NAME).write_text(json.dumps({"generation": 0, "count": 0, "dim": 64}))
    (home / ".vectors.abc123.tmp").write_bytes(b"half a file")
    report = doctor.diagnose(store)
    assert report.healthy, "a stale index is rebuilt by the next search: not a problem"
    assert status(report)["faiss"] == "warning" and status(report)["temp_files"] == "warning"
    fixed = doctor.repair(store)
    assert status(fixed)["faiss"] == "ok" and status(fixed)["temp_files"] == "ok"
    assert not (home / ".vectors.abc123.tmp").exists()


def test_missing_faiss_file_is_a_warning(home):
    (home / INDEX_NAME).unlink()
    r = run_doctor(home)
    assert r.exit_code == 0 and "WARNING  faiss" in r.output


def test_unrepairable_damage_names_rebuild(home):
    conn = raw(home)
    ids = [r[0] for r in conn.execute("SELECT chunk_id FROM vectors ORDER BY chunk_id LIMIT 2")]
    conn.execute("UPDATE vectors SET vec = ? WHERE chunk_id = ?", (b"\0" * 12, ids[0]))
    conn.execute("DELETE FROM vectors WHERE chunk_id = ?", (ids[1],))
    conn.close()
    r = run_doctor(home, "--repair")
    assert r.exit_code == 1
    assert "1 passage(s) without a vector" in r.output and "1 vector(s) of the wrong size" in r.output
    assert "equisearch rebuild" in r.output


def test_half_stored_document_and_missing_model(home):
    conn = raw(home)
    doc_id = conn.execute("SELECT min(id) FROM documents").fetchone()[0]
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
    conn.execute("DELETE FROM meta WHERE key = 'model'")
    conn.close()
    report = doctor.diagnose(Store.open(home))
    st = status(report)
    assert st["documents"] == "problem" and st["builder"] == "problem" and not report.healthy


def test_offsets_that_do_not_map_back(home):
    conn = raw(home)
    conn.execute("UPDATE chunks SET char_start = char_start + 1 WHERE id = (SELECT min(id) FROM chunks)")
    conn.close()
    assert status(doctor.diagnose(Store.open(home)))["offsets"] == "problem"


def test_vector_dtype_meta_sets_the_expected_blob_size(home):
    conn = raw(home)
    stored = conn.execute("SELECT value FROM meta WHERE key = 'vector_dtype'").fetchone()
    stored, other = (stored[0], "float32") if stored and stored[0] == "float16" else ("float32", "float16")
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_dtype', ?)", (other,))
    conn.close()
    # Blobs of one width in a store that records the other: every blob is the wrong size.
    assert status(doctor.diagnose(Store.open(home)))["vectors"] == "problem"
    conn = raw(home)
    for cid, blob in conn.execute("SELECT chunk_id, vec FROM vectors").fetchall():
        conn.execute("UPDATE vectors SET vec = ? WHERE chunk_id = ?",
                     (np.frombuffer(blob, stored).astype(other).tobytes(), cid))
    conn.close()
    assert status(doctor.diagnose(Store.open(home)))["vectors"] == "ok"


def test_corrupt_database_pages_are_reported_and_repair_refuses(home):
    store = Store.open(home)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    db = home / "equisearch.db"
    page = 4096
    n_pages = db.stat().st_size // page
    assert n_pages > 8
    with open(db, "r+b") as fh:  # scribble over the middle pages, keep the header page
        for p in range(2, n_pages - 1, 2):
            fh.seek(p * page + 100)
            fh.write(os.urandom(600))
    r = run_doctor(home, "--json")
    assert r.exit_code == 1
    if r.output.startswith("{"):
        data = json.loads(r.output)
        assert not data["healthy"]
        assert any(c["status"] == "problem" for c in data["checks"])
    else:  # the database would not even open: a one-line error
        assert r.output.startswith("Error:") and len(r.output.strip().splitlines()) == 1
    r = run_doctor(home, "--repair")
    assert r.exit_code == 1 and "Traceback" not in r.output
    if r.output.startswith("Error:"):
        assert len(r.output.strip().splitlines()) == 1


def test_repair_never_loads_a_model(seeded, backend, monkeypatch):
    home = seeded

    def boom(*a, **k):
        raise AssertionError("doctor --repair must not load a model")

    monkeypatch.setattr(ingest.pipeline, "load_embedder", boom)
    monkeypatch.setattr(search.api, "load_embedder", boom)
    monkeypatch.setattr("search.embedding.load_embedder", boom)
    if backend == "sqlite":  # a FAISS file to rebuild (PostgreSQL's vector index is the database's)
        (home / INDEX_NAME).unlink()
    assert run_doctor(home, "--repair").exit_code == 0


def test_repair_while_an_ingest_writes_stops_clearly(seeded, backend):
    home = seeded
    holder = open_at(home)
    holder.acquire_write_lock()
    try:
        if backend == "postgres":  # no write lock: repair runs beside a writer, one transaction of its own
            assert doctor.repair(open_at(home)).healthy
            assert run_doctor(home, "--repair").exit_code == 0
        else:
            with pytest.raises(StoreLocked):
                doctor.repair(Store.open(home))
            r = run_doctor(home, "--repair")
            assert r.exit_code == 1 and "another equisearch process is writing" in r.output
        # Checking alone is fine while a writer works.
        assert run_doctor(home).exit_code == 0
    finally:
        holder.release_write_lock()


def test_repair_refuses_a_damaged_database_with_store_error(seeded, backend, monkeypatch):
    if backend == "postgres":  # the database check is PostgreSQL's own (tables read, indexes valid)
        monkeypatch.setattr(doctor, "_check_database",
                            lambda conn: doctor.Check("database", doctor.PROBLEM, "x", "page 7 damaged", "restore"))
    else:
        monkeypatch.setattr(doctor, "_check_sqlite",
                            lambda conn: doctor.Check("sqlite", doctor.PROBLEM, "x", "page 7 damaged", "restore"))
    with pytest.raises(StoreError, match="restore a backup"):
        doctor.repair(open_at(seeded))


def test_ivf_index_ids_are_read_from_its_inverted_lists(home):
    """Large stores may use an IVF index (no id_map): doctor still compares its ids."""
    import faiss

    store = Store.open(home)
    ids, vecs = next(store.iter_vectors())
    quantizer = faiss.IndexFlatIP(vecs.shape[1])
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, vecs.shape[1], 4, faiss.ScalarQuantizer.QT_fp16,
                                        faiss.METRIC_INNER_PRODUCT)
    ivf.train(np.vstack([vecs] * 8))
    ivf.add_with_ids(vecs, ids)
    index = VectorIndex(store)
    index.ensure_current()
    index._index = ivf
    index.save()
    assert status(doctor.diagnose(store))["faiss"] == "ok"
    ivf.remove_ids(faiss.IDSelectorBatch(ids[:1]))
    ivf.add_with_ids(vecs[:1], ids[:1] + 100000)
    index._index = ivf
    index.save()
    assert status(doctor.diagnose(store))["faiss"] == "problem"
