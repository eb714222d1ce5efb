"""Concurrent use: readers during an ingest see the old or the new state and
never error; a second writer stops with a clear message; the store is never
written by two processes.

Tests taking ``seeded`` run on both backends (tests/backends.py). The write
lock's tests, the FAISS file's and the real-model search over a copied
SQLite store stay SQLite-only: PostgreSQL has no write lock, and its
writers and ingests at once are tests/test_pg_store.py's.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from cli.app import main
from ingest.pipeline import Ingestor
from search import doctor
from search.api import Engine
from search.settings import Settings
from search.store import Store
from search.vectors import INDEX_NAME

from .backends import env_with, open_at, settings_at
from .conftest import ROOT, SEED_DOCS, SEEDS, FakeEmbedder
from .test_crash import DRIVER, make_text

PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
#: test_crash's driver with its store opened through open_store: a directory or a database URL.
STORE_DRIVER = DRIVER.replace("from search.store import Store\n", "from search.store import Store, open_store\n", 1) \
    .replace("Ingestor(Store.open(home),", "Ingestor(open_store(home),", 1)
assert STORE_DRIVER.count("open_store") == 2, "test_crash.DRIVER changed: update STORE_DRIVER"


def make_folder(path, n, seed, paragraphs=6):
    rng = random.Random(seed)
    path.mkdir(parents=True)
    for i in range(n):
        (path / f"d{i:03d}.txt").write_text(make_text(rng, f"zr{seed}x{i}", paragraphs))
    return path


def start_driver(home, *paths, real=False):
    env = env_with(**({"DRIVER_REAL_MODEL": "1"} if real else {}))  # made now: with the test's EQUISEARCH_CACHE_DIR
    return subprocess.Popen([PY, "-c", STORE_DRIVER, str(ROOT), str(home), *map(str, paths)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "store"
    Ingestor(Store.open(home), Settings(home=str(home)), FakeEmbedder()).ingest_paths([SEEDS])
    return home


@pytest.fixture
def seeded(store_location):
    """:func:`home` on both backends: the seeds ingested at ``store_location``."""
    Ingestor(open_at(store_location), settings_at(store_location), FakeEmbedder()).ingest_paths([SEEDS])
    return store_location


def test_search_reads_one_snapshot_while_a_document_is_removed(seeded):
    """A remove committed between two reads of one search used to raise KeyError."""
    home = seeded
    engine = Engine(open_at(home), settings_at(home), FakeEmbedder())
    real = engine.store.documents_by_ids

    def remove_then_read(ids):
        ids = list(ids)
        other = open_at(home)  # another process's writer, in effect
        for doc_id in set(ids):
            other.remove_document(doc_id)
        other.close()
        return real(ids)

    engine.store.documents_by_ids = remove_then_read
    hits = engine.search("social mobility in schools", k=5).hits
    assert hits, "the search sees the state before the removal"
    for hit in hits:  # complete hits from the old state
        assert hit.document.title and hit.chunk.text
    engine.store.documents_by_ids = real
    assert open_at(home).info().documents < SEED_DOCS
    assert all(h.document.id in {d.id for d in engine.store.documents()}
               for h in engine.search("social mobility in schools", k=5).hits), "then the new state"


def test_readers_during_an_ingest_see_old_or_new_and_never_error(seeded, tmp_path):
    home = seeded
    folder = make_folder(tmp_path / "batch", 60, seed=1)
    # Opened before the ingest. The reranker is off: with a fake embedder it adds
    # nothing to what is checked here, and its cost per search left the loop
    # too few searches during the ingest (the CI dry run of 2026-12-04).
    engine = Engine(open_at(home), settings_at(home, reranker="off"), FakeEmbedder())
    before = engine.store.info().documents
    proc = start_driver(home, folder)
    seen, searches, cli_reads = [], 0, 0
    while proc.poll() is None or searches < 5:
        info = engine.store.info()
        seen.append(info.documents)
        for hit in engine.search("pupil premium attendance tutoring", k=8).hits:
            text = engine.store.document_text(hit.document.id)
            assert text[hit.chunk.char_start:hit.chunk.char_end] == hit.chunk.text
        searches += 1
        if searches % 10 == 0:  # the CLI's read commands too
            for cmd in ("stats", "sources"):
                r = subprocess.run([PY, "-m", "cli", "--store", str(home), cmd, "--json"], env=env_with(),
                                   capture_output=True, text=True, timeout=60)
                assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
                json.loads(r.stdout)
                cli_reads += 1
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert seen == sorted(seen), "document counts only grow during an ingest"
    assert seen[0] >= before and searches > 5
    final = engine.store.info().documents
    assert final == before + 60
    assert seen[0] < final, "reads ran while the ingest was committing"
    # The engine opened before the ingest notices the new generation by itself.
    hits = engine.search("zr1x59p0s0", k=3, mode="bm25").hits
    assert hits and hits[0].document.uri.endswith("d059.txt")
    assert engine.index.ntotal == engine.store.vector_count()
    assert doctor.diagnose(engine.store).healthy


def test_second_ingest_stops_with_a_clear_message(tmp_path):
    home = tmp_path / "store"  # empty, so the CLI needs no model before it asks for the lock
    new = make_folder(tmp_path / "new", 3, seed=2)
    holder = Store.open(home)
    holder.acquire_write_lock()
    try:
        r = subprocess.run([PY, "-m", "cli", "--store", str(home), "ingest", str(new)], env=ENV,
                           capture_output=True, text=True, timeout=120)
    finally:
        holder.release_write_lock()
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"Error: another equisearch process is writing to {home}: wait for it to finish and try again"]
    assert Store.open(home).info().documents == 0, "nothing of the refused ingest is stored"


def test_two_ingests_at_once_never_both_write(home, tmp_path):
    a = make_folder(tmp_path / "a", 40, seed=3)
    b = make_folder(tmp_path / "b", 40, seed=4)
    first, second = start_driver(home, a), start_driver(home, b)
    outs = [p.communicate(timeout=180) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    # Either they ran one after the other, or the later one stopped clearly.
    assert codes in ([0, 0], [0, 3]), outs
    for (out, err), p in zip(outs, (first, second)):
        assert "Traceback" not in err
        if p.returncode == 3:
            assert "another equisearch process is writing" in out
    store = Store.open(home)
    expected = SEED_DOCS + 40 + (40 if codes == [0, 0] else 0)
    assert store.info().documents == expected
    assert doctor.diagnose(store).healthy


def test_reader_that_cannot_save_the_index_still_searches(home, monkeypatch):
    (home / INDEX_NAME).unlink()

    def no_space(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("search.vectors.tempfile.mkstemp", no_space)
    engine = Engine(Store.open(home), Settings(home=str(home)), FakeEmbedder())
    assert engine.search("social mobility", k=3).hits
    assert not (home / INDEX_NAME).exists()


def test_cli_reads_while_a_write_transaction_is_open(seeded):
    """WAL (PostgreSQL: MVCC): a reader is never blocked by an open write transaction."""
    home = seeded
    writer = open_at(home)
    with writer.transaction() as conn:
        conn.execute("UPDATE documents SET title = 'renamed' WHERE id = (SELECT min(id) FROM documents)")
        t0 = time.monotonic()
        r = CliRunner().invoke(main, ["--store", str(home), "sources", "--json"])
        assert r.exit_code == 0 and time.monotonic() - t0 < 10
        assert "renamed" not in r.output, "readers see the last committed state"


@pytest.mark.slow
def test_cli_search_during_a_real_model_ingest(starter_store, tmp_path):
    """`equisearch search` (real model) while `equisearch`-style ingest writes the same store."""
    home = tmp_path / "store"
    shutil.copytree(starter_store, home)
    folder = make_folder(tmp_path / "batch", 12, seed=5, paragraphs=6)
    proc = start_driver(home, folder, real=True)
    results = []
    for _ in range(2):
        r = subprocess.run([PY, "-m", "cli", "--store", str(home), "search", "pupil premium", "--json"],
                           env=ENV, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        results.append(json.loads(r.stdout))
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    assert all(res["results"] for res in results)
    assert doctor.diagnose(Store.open(home)).healthy
