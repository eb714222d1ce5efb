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

from .base import (
    DEFAULT_VECTOR_DTYPE,
    VECTOR_DTYPES,
    NewChunk,
    NewDocument,
    StoreBackend,
    VectorSearch,
    WriteResult,
)
from .lists import LISTS_SCHEMA
from .schema import DB_NAME, MIGRATIONS, SCHEMA_VERSION, mismatch
from .sqlite import Store
from .writer import Writer

__all__ = [
    "DB_NAME", "DEFAULT_VECTOR_DTYPE", "LISTS_SCHEMA", "MIGRATIONS", "SCHEMA_VERSION", "VECTOR_DTYPES",
    "NewChunk", "NewDocument", "Store", "StoreBackend", "VectorSearch", "WriteResult", "Writer", "mismatch",
    "open_store",
]


def open_store(location: str | os.PathLike, *, create: bool = True) -> StoreBackend:
    """The store at ``location``: today always a SQLite store directory.

    The one place a backend is chosen, so a second backend (a database URL)
    is added here and nowhere else.
    """
    return Store.open(location, create=create)
