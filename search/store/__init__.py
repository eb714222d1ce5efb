"""The store layer: every byte of SQL, behind :class:`~search.store.base.StoreBackend`.

::

    from search.store import Store, Writer, open_store
    store = open_store("data")                 # the SQLite backend
    with Writer.open(store, settings) as w:    # lock, index kept current, saved on exit
        w.remove_document(doc_id)

Modules, one concept each:

- ``base.py``: the interface (:class:`StoreBackend`, :class:`VectorSearch`)
  and the write records (:class:`NewDocument`, :class:`NewChunk`,
  :class:`WriteResult`);
- ``sqlite.py``: :class:`Store`, the SQLite backend (connections, the file
  lock, transactions), composed of
- ``schema.py``: DDL, migrations, meta, builder record, compatibility check;
- ``documents.py``: documents, passages, aliases, vector blobs, filters;
- ``lexical.py``: FTS5 BM25 ranking and term counts;
- ``lists.py``: the reading-list tables and their queries;
- ``health.py``: what ``equisearch doctor`` measures, and its repair;
- ``writer.py``: :class:`Writer`.
"""
from __future__ import annotations

import os
from pathlib import Path

from .base import (
    DEFAULT_VECTOR_DTYPE,
    VECTOR_DTYPES,
    NewChunk,
    NewDocument,
    StoreBackend,
    VectorSearch,
    WriteResult,
    is_database_url,
)
from .lists import LISTS_SCHEMA
from .schema import DB_NAME, MIGRATIONS, SCHEMA_VERSION, mismatch
from .sqlite import Store
from .writer import Writer

__all__ = [
    "DB_NAME", "DEFAULT_VECTOR_DTYPE", "LISTS_SCHEMA", "MIGRATIONS", "SCHEMA_VERSION", "VECTOR_DTYPES",
    "NewChunk", "NewDocument", "Store", "StoreBackend", "VectorSearch", "WriteResult", "Writer", "mismatch",
    "describe_location", "is_database_url", "local_folder", "open_store",
]


def local_folder(location: str | os.PathLike) -> Path:
    """The local directory kept with a store: the SQLite store directory itself, or a
    database's cache folder (uploads, the exported query encoder) on this machine."""
    if is_database_url(location):
        from .postgres import local_folder as database_folder

        return database_folder(str(location))
    return Path(location).expanduser()


def describe_location(location: str | os.PathLike) -> str:
    """A store's location as shown to people: a database URL without its password."""
    if is_database_url(location):
        from .postgres.connection import redact

        return redact(str(location))
    return str(location)


def open_store(location: str | os.PathLike, *, create: bool = True, settings=None) -> StoreBackend:
    """The store at ``location``: a PostgreSQL database for a ``postgresql://`` URL, else a SQLite store directory.

    The one place a backend is chosen. ``settings`` (default: from the
    environment) gives a database's timeouts and pool size.
    """
    if is_database_url(location):
        from .postgres import PgStore  # psycopg loads only for a database URL

        return PgStore.open(str(location), create=create, settings=settings)
    return Store.open(location, create=create)
