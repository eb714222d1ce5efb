"""The PostgreSQL backend: pgvector for vectors, BM25 in SQL for keywords, roles in the database.

Chosen by a database URL (``--store postgresql://...`` or
``EQUISEARCH_DATABASE_URL``); see :func:`search.store.open_store`. One
database holds everything (nothing derived lives beside it: the HNSW index is
the database's), so many processes may read and write at once:

- no global write lock: every document is one transaction, and uniqueness
  by uri and by text hash is the database's (see documents.py);
- readers see the old or the new version of a document, never a mix
  (:meth:`consistent_view` is one REPEATABLE READ snapshot);
- a login that is only a member of ``equisearch_reader`` cannot change the
  corpus, whatever the application asks (schema.py's GRANTs).

:class:`PgStore` is composed like the SQLite ``Store``: one mixin per
concept (connection.py, schema.py, documents.py, lexical.py, lists.py,
health.py); vectors.py is its :class:`~search.store.base.VectorSearch`.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlsplit

from ...errors import StoreError
from ..base import DEFAULT_VECTOR_DTYPE
from .connection import ConnectionMixin, is_database_url, redact
from .documents import PgDocumentsMixin
from .health import PgHealthMixin
from .lexical import PgLexicalMixin
from .lists import PgListsMixin
from .schema import PG_SCHEMA_VERSION, SchemaMixin
from .vectors import session_ef_search

__all__ = ["PgStore", "is_database_url", "redact", "PG_SCHEMA_VERSION"]


def local_folder(url: str) -> Path:
    """The local directory kept for a database (the exported query encoder, a vocabulary file).

    Everything in it is derived or optional: ``$EQUISEARCH_CACHE_DIR`` (default
    ``$XDG_CACHE_HOME/equisearch``) / ``postgres`` / host-port-database.
    """
    parts = urlsplit(url)
    base = os.environ.get("EQUISEARCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "equisearch")
    name = f"{parts.hostname or 'local'}-{parts.port or 5432}-{(parts.path or '/').strip('/') or 'postgres'}"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    digest = hashlib.sha256(redact(url).encode()).hexdigest()[:8]
    return Path(base) / "postgres" / f"{safe}-{digest}"


class PgStore(ConnectionMixin, SchemaMixin, PgDocumentsMixin, PgLexicalMixin, PgListsMixin, PgHealthMixin):
    """A PostgreSQL database holding one equisearch store.

    Open with :meth:`PgStore.open`. Safe to share between threads (each
    statement borrows a pooled connection; transactions and consistent views
    pin one to the thread).
    """

    backend = "postgresql"

    def __init__(self, url: str, *, statement_timeout_s: float | None = None, connect_timeout_s: float = 10.0,
                 pool_size: int = 8, ef_search: int = 0):
        self.url = url.strip()
        self.display = redact(self.url)
        self.statement_timeout_s = statement_timeout_s or None
        self.connect_timeout_s = connect_timeout_s
        self.pool_size = pool_size
        #: hnsw.ef_search every connection starts with (0: pgvector's default; see vectors.py).
        self.ef_search = int(ef_search or 0)
        self.path = local_folder(self.url)
        self.new_vector_dtype = DEFAULT_VECTOR_DTYPE
        #: True when this login may not create tables (it cannot migrate).
        self.readonly = False
        #: False for a reader login: it may not change documents or passages.
        self.can_write_corpus = True
        self._writing = False
        self._stats_cache: tuple[int, tuple[int, float]] | None = None

    @classmethod
    def open(cls, url: str, *, create: bool = True, settings=None) -> "PgStore":
        """Connect (and with ``create``, migrate) the database at ``url``.

        Raises :class:`StoreError` (one line: what to check) when the database
        cannot be reached or logged into, or is an equisearch schema of an
        unknown version. A login that may not create tables opens read-only.
        """
        if settings is None:
            from ...settings import Settings

            settings = Settings.from_env()
        store = cls(url, statement_timeout_s=settings.database_statement_timeout,
                    connect_timeout_s=settings.database_connect_timeout, pool_size=settings.database_pool_size,
                    ef_search=session_ef_search(settings))
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise StoreError(
                "a PostgreSQL store needs psycopg: pip install -e '.[postgres]' (psycopg[binary], psycopg-pool)"
            ) from None
        store._init_pool(max_size=store.pool_size)
        try:
            store.readonly = not store.scalar("SELECT has_schema_privilege('public', 'CREATE')", default=False)
            if not create and not store._has_table("meta"):
                raise StoreError(f"no equisearch store in the database {store.display}: run `equisearch --store URL ingest PATH` first")
            store._init_schema()
            store.can_write_corpus = bool(store.scalar("SELECT has_table_privilege('chunks', 'INSERT')", default=False))
        except BaseException:
            store.close()
            raise
        try:
            store.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            store.close()
            raise StoreError(f"cannot create the local folder {store.path} for the database's query encoder: {exc.strerror}"
                             " (set EQUISEARCH_CACHE_DIR)") from exc
        return store

    def __repr__(self) -> str:
        return f"PgStore({self.display!r})"

    # -- write lock: none ------------------------------------------------
    def acquire_write_lock(self, wait: bool = False) -> bool:
        """No global lock: writers run at once, one transaction per document.

        Returns False when this object is already inside a Writer (the caller
        then must not release), as the SQLite backend does.
        """
        if self._writing:
            return False
        self._writing = True
        return True

    def release_write_lock(self) -> None:
        self._writing = False

    # -- vector index: the database's own --------------------------------
    def vector_index(self, settings=None):
        from .vectors import PgVectorSearch

        return PgVectorSearch(self, settings)
