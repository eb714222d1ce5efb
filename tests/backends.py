"""Both store backends for the contract suites (issue 16): ``store_location``.

A test that asks for :func:`store_location` runs once per backend:

- ``test_x[sqlite]``: a store directory under ``tmp_path`` (not created yet,
  as a fresh ``--store DIR`` is not);
- ``test_x[postgres]``: its own empty database on the session's embedded
  server (:func:`tests.pg_server.pg_database`), marked ``postgres``: skipped
  with the reason where the server cannot start, failing with
  ``EQUISEARCH_REQUIRE_POSTGRES=1``. The database's local folder (the
  store's ``path``) is a temporary directory of the test's too.

Tests open the location as every edge does, through
:func:`search.store.open_store` (:func:`open_at`), with settings naming it
(:func:`settings_at`: ``Settings.location`` is the URL or the directory).
Where the backends legitimately differ (PostgreSQL has no write lock, no
FAISS file, its own doctor checks), a test asks :func:`backend` and says why.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

SQLITE, POSTGRES = "sqlite", "postgres"
BACKENDS = [SQLITE, pytest.param(POSTGRES, marks=pytest.mark.postgres)]
#: Stores :func:`open_at` opened during the current test: closed at its end,
#: before its database is dropped (a pool would otherwise reconnect to nothing).
_opened: list = []


def backend_of(location) -> str:
    """``"postgres"`` for a database URL, else ``"sqlite"``."""
    from search.store import is_database_url

    return POSTGRES if is_database_url(location) else SQLITE


def settings_at(location, **fields):
    """Settings whose store is ``location`` (a directory or a database URL)."""
    from search.settings import Settings

    return Settings(home=str(location), **fields)


def open_at(location, *, create: bool = True, settings=None):
    """The store at ``location``, opened through ``open_store`` as the edges open it."""
    from search.store import open_store

    store = open_store(location, create=create, settings=settings or settings_at(location))
    _opened.append(store)
    return store


def env_with(**extra) -> dict:
    """This process's environment (with the test's EQUISEARCH_CACHE_DIR) for a child process."""
    from .conftest import ROOT

    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


@pytest.fixture(params=BACKENDS)
def store_location(request, tmp_path, tmp_path_factory, monkeypatch):
    """Where a test's store lives: a directory (sqlite) or a fresh database URL (postgres)."""
    if request.param == SQLITE:
        location = tmp_path / "store"
    else:
        # The database's local folder (query encoder, vocabulary, uploads) is the
        # test's, beside tmp_path (tests ingest folders of tmp_path whole).
        monkeypatch.setenv("EQUISEARCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        location = request.getfixturevalue("pg_database")
    yield location
    while _opened:
        _opened.pop().close()


@pytest.fixture
def backend(store_location) -> str:
    """The backend ``store_location`` is for: ``"sqlite"`` or ``"postgres"``."""
    return backend_of(store_location)


@pytest.fixture
def other_location(store_location, tmp_path, request):
    """A factory of further empty locations of the same backend (a second store beside the first)."""
    made: list[str] = []
    server = request.getfixturevalue("pg_server") if backend_of(store_location) == POSTGRES else None

    def new(name: str = "other") -> str | Path:
        if server is None:
            return tmp_path / name
        import psycopg

        db = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        made.append(db)
        return server.rsplit("/", 1)[0] + f"/{db}"

    yield new
    if made:
        import psycopg

        with psycopg.connect(server, autocommit=True) as conn:
            for db in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
