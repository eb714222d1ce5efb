"""remove_sources and rebuild_index: the use-cases both edges call.

Every test runs on both backends (``home`` below is ``store_location`` with
the seeds ingested, tests/backends.py). PostgreSQL has no write lock and no
FAISS file: there removal is not refused, and the database's own vector
index is what a new reader searches.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.app import main
from ingest.pipeline import Ingestor
from search.errors import StoreError, StoreLocked
from search.lists import ReadingLists
from search.maintenance import rebuild_index, remove_sources
from search.store import Store
from search.vectors import INDEX_NAME, VectorIndex
from ui.actions import remove_source

from .backends import open_at, settings_at
from .conftest import SEED_DOCS, SEEDS, FakeEmbedder


@pytest.fixture
def home(store_location):
    home = store_location
    store = open_at(home)
    assert Ingestor(store, settings_at(home), FakeEmbedder()).ingest_paths([SEEDS]).counts["added"] == SEED_DOCS
    store.close()
    return home


def test_remove_sources_by_id_and_uri_and_reports_what_named_nothing(home, backend):
    store = open_at(home)
    first, second = store.documents()[:2]
    lists = ReadingLists(store)
    lists.create("Keep")
    lists.add_source("Keep", first.id)
    removed, missing = remove_sources(store, [str(first.id), "no-such-thing", second.uri, str(first.id)])
    assert [d.id for d in removed] == [first.id, second.id]
    assert missing == ["no-such-thing", str(first.id)], "a ref already removed names nothing"
    assert store.info().documents == SEED_DOCS - 2
    # The saved index no longer holds their passages; a fresh reader trusts it.
    if backend == "postgres":  # no index file: the database's index is the reader's
        assert open_at(home).vector_index().ntotal == store.vector_count()
    else:
        reader = VectorIndex(Store.open(home))
        assert reader._load_file(store.generation()) and reader.ntotal == store.vector_count()
    assert [i.status for i in lists.items("Keep")] == ["removed"], "the list keeps its citation"


def test_remove_sources_waits_for_no_one(home, backend):
    holder = open_at(home)
    holder.acquire_write_lock()
    try:
        if backend == "postgres":  # no write lock: the removal is one transaction beside the writer
            first = open_at(home).documents()[0]
            assert [d.id for d in remove_sources(open_at(home), [first.id])[0]] == [first.id]
        else:
            with pytest.raises(StoreLocked):
                remove_sources(Store.open(home), ["1"])
    finally:
        holder.release_write_lock()
    assert open_at(home).info().documents == (SEED_DOCS - 1 if backend == "postgres" else SEED_DOCS)


def test_the_cli_and_the_ui_remove_through_it(home):
    doc_cli, doc_ui = open_at(home).documents()[:2]
    r = CliRunner().invoke(main, ["--store", str(home), "remove", str(doc_cli.id), "gone.txt"])
    assert r.exit_code == 1
    assert r.stdout.splitlines() == [f"removed {doc_cli.id}: {doc_cli.title}"]
    assert "not found: gone.txt (see `equisearch sources` for ids)" in r.stderr
    assert remove_source(home, doc_ui.id) == doc_ui.title
    with pytest.raises(StoreError, match="no longer in the store"):
        remove_source(home, doc_ui.id)
    assert open_at(home).info().documents == SEED_DOCS - 2


def test_rebuild_index_writes_the_file_from_stored_vectors(home, backend):
    if backend == "sqlite":  # (PostgreSQL: no file; rebuild has nothing to write and counts the vectors)
        (home / INDEX_NAME).unlink()
    store = open_at(home)
    assert rebuild_index(store) == store.vector_count()
    if backend == "sqlite":
        assert VectorIndex(Store.open(home))._load_file(store.generation())
