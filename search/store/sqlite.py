"""The SQLite backend: one SQLite file for everything that is not derived.

Layout of a store directory::

    equisearch.db      documents, aliases, chunks, vectors, FTS5 index, meta, reading lists
    vectors.faiss      FAISS index keyed by chunk id (derived, rebuildable)
    vectors.json       which store generation the FAISS file was built from
    write.lock         held by the one process writing

Every write happens in one transaction (:meth:`Store.transaction`), and bumps
the ``generation`` counter in ``meta`` so readers and the FAISS file can tell
they are stale. The FTS5 table is an external-content index over ``chunks``
kept in step by triggers, so it can never disagree with the chunks after a
commit.

The store records the model, vector dimension and chunking that built it
(``meta``) and refuses writes from anything else (:class:`StoreMismatch`).

:class:`Store` is composed of one mixin per concept: schema.py (migrations,
meta, compatibility), documents.py (documents, passages, vectors, filters),
lexical.py (FTS5 ranking), lists.py (reading lists), health.py (doctor's
questions). Connections, transactions and SQL stay inside this package.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterator

from ..errors import StoreError, StoreLocked
from .base import DEFAULT_VECTOR_DTYPE
from .documents import DocumentsMixin
from .health import HealthMixin
from .lexical import LexicalMixin
from .lists import ListsMixin
from .schema import DB_NAME, SchemaMixin


class Store(SchemaMixin, DocumentsMixin, LexicalMixin, ListsMixin, HealthMixin):
    """A store directory: SQLite database plus the derived FAISS files.

    Open with :meth:`Store.open`. A ``Store`` may be shared between threads
    (Streamlit runs sessions on threads): SQLite connections are per thread.
    It implements :class:`~search.store.base.StoreBackend`; ``conn``,
    :meth:`transaction`, :meth:`snapshot`, :meth:`insert_chunks` and
    :meth:`fts_search` are this backend's own (tests and bench use them).
    """

    #: Which backend this is (doctor's checks differ by backend).
    backend = "sqlite"

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = Path(path)
        self.db_path = self.path / DB_NAME
        self.readonly = readonly
        self._local = threading.local()
        self._lock_fd: int | None = None
        #: dtype a store without vectors will use for its first write
        #: (Settings.vector_dtype; set by the ingest pipeline).
        self.new_vector_dtype = DEFAULT_VECTOR_DTYPE

    # -- opening ---------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, *, create: bool = True) -> "Store":
        """Open (and with ``create``, initialise) the store at ``path``.

        Raises :class:`StoreError` when the directory cannot be used or the
        database is not an equisearch store of a known schema version.
        """
        path = Path(path).expanduser()
        if not (path / DB_NAME).exists():
            if not create:
                raise StoreError(
                    f"no equisearch store at {path}: run `equisearch ingest PATH` first or pass --store"
                )
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create store directory {path}: {exc.strerror}") from exc
        store = cls(path)
        store._init_schema()
        return store

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.db_path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        # WAL lets searches read while an ingest writes; NORMAL sync is safe
        # with WAL (a crash loses at most the last transaction, never corrupts).
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Run several reads against one consistent state of the database.

        A search reads FAISS ids, FTS5 rows, passages and documents in separate
        statements; an ingest or ``remove`` committing between two of them
        would hand a passage whose document is gone. Inside a WAL read
        transaction every statement sees the database as of the first read
        (the old state or the new one, never half of each) while writers in
        other processes go on. Nested use joins the outer transaction.
        """
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def consistent_view(self) -> Iterator[None]:
        """The backend-neutral :meth:`snapshot`: reads inside see one committed state."""
        with self.snapshot():
            yield

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self.release_write_lock()

    # -- write lock ------------------------------------------------------
    def acquire_write_lock(self, wait: bool = False) -> bool:
        """Take the store's writer lock so two ingests never interleave.

        SQLite would serialise the transactions anyway, but two ingests would
        each keep their own FAISS index and overwrite each other's file.
        Returns False when this ``Store`` already held it (the caller then
        must not release it). Prefer :class:`~search.store.Writer`.
        """
        if self._lock_fd is not None:
            return False
        fd = os.open(self.path / "write.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise StoreLocked(
                f"another equisearch process is writing to {self.path}: wait for it to finish and try again"
            ) from exc
        self._lock_fd = fd
        return True

    def release_write_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- derived index ---------------------------------------------------
    def vector_index(self, settings=None):
        """This backend's vector index: the FAISS file derived from the stored vectors."""
        from ..vectors import VectorIndex  # faiss loads on first search, not here

        return VectorIndex(self, settings)

