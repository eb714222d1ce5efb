"""Connections to PostgreSQL: a pool shared by threads, transactions, consistent reads, errors.

psycopg 3 with psycopg-pool. A method outside a transaction borrows a pooled
connection for one statement (autocommit); :meth:`ConnectionMixin.transaction`
and :meth:`ConnectionMixin.consistent_view` pin one connection to the thread
for their duration, so every statement inside runs in the same transaction.
The pool checks a connection before lending it, so after a database restart
the next request reconnects instead of failing on a dead socket.

Every psycopg error is translated here into a :class:`~search.errors.StoreError`
with one line that says what to check (the URL is shown without its password).
"""
from __future__ import annotations

import contextlib
import logging
import re
import threading
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

from ...errors import StoreError
from ..base import is_database_url  # noqa: F401  (re-exported for the package)


def redact(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable database URL>"
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in creds else f"{user}@{host}"
    query = re.sub(r"(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class DatabaseUnavailable(StoreError):
    """The database cannot be reached, or refused the login."""


class QueryTimeout(StoreError):
    """A statement ran past the statement timeout and was cancelled."""


def translate(exc: BaseException, url: str, timeout_s: float | None = None) -> StoreError:
    """One line for a psycopg error: what happened and what to check (never the password)."""
    import psycopg
    from psycopg import errors as pge

    where = redact(url)
    cause = _first_line(str(exc), _password(url))
    low = " ".join(str(exc).split()).lower()
    if isinstance(exc, pge.QueryCanceled):
        limit = f" after {timeout_s:g} s" if timeout_s else ""
        return QueryTimeout(
            f"the database cancelled a query{limit} (statement timeout): try a narrower question or filter,"
            " or raise EQUISEARCH_DATABASE_STATEMENT_TIMEOUT"
        )
    if isinstance(exc, pge.InsufficientPrivilege):
        return StoreError(
            f"the database role has no right to do that ({cause}): sign in as an editor,"
            " or ask the operator to grant equisearch_editor"
        )
    if isinstance(exc, pge.UndefinedFile) or 'extension "vector"' in low:
        return StoreError(f"pgvector is not installed in {where}: install the vector extension (CREATE EXTENSION vector) and try again")
    if isinstance(exc, psycopg.OperationalError):
        if "password authentication failed" in low or "no password supplied" in low:
            hint = "check the user name and password in the database URL"
        elif "does not exist" in low and "database" in low:
            hint = "check the database name in the URL (create it first)"
        elif "role" in low and "does not exist" in low:
            hint = "check the user name in the URL"
        elif "resolve host" in low or "translate host name" in low or "name or service" in low:
            hint = "check the host name in the URL"
        elif "server closed" in low or "terminating connection" in low or "connection is lost" in low \
                or "consuming input failed" in low or "connection is closed" in low:
            return DatabaseUnavailable(
                f"lost the connection to the database {where} ({cause}): try again (it reconnects by itself);"
                " if it goes on, check that PostgreSQL is running")
        elif "connection refused" in low or "could not connect" in low or "timeout" in low:
            hint = "check the host and port in the URL and that PostgreSQL is running"
        else:
            hint = "check the database URL and that PostgreSQL is running"
        return DatabaseUnavailable(f"cannot use the database {where}: {cause}: {hint}")
    return StoreError(f"database error on {where}: {cause}")


#: What libpq puts before the cause: said once by our own message (which names the URL).
_PREFIXES = re.compile(
    r'^(?:connection failed:\s*|connection to server (?:at "[^"]*"(?: \([^)]*\))?, port \d+|on socket "[^"]*")'
    r" failed:\s*|(?:FATAL|ERROR):\s*|fe_sendauth:\s*)+", re.I)


def _first_line(text: str, secret: str = "") -> str:
    """The cause in a libpq/psycopg message, once: its first line without the "connection failed:
    connection to server at ..., port ... failed: FATAL:" prefixes, DETAIL or HINT (libpq's own hint,
    "Is the server running...?", is on the next line and goes too); a password never appears."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    for cut in (" DETAIL:", " HINT:"):
        first = first.split(cut, 1)[0]
    resolving = re.match(r"^failed to resolve host '([^']*)'", first)
    first = _PREFIXES.sub("", first).strip()
    if resolving:  # "failed to resolve host 'x': [Errno -2] Name or service not known"
        first = f"no host named {resolving.group(1)!r}"
    if len(first) > 1 and first[0].isupper() and first[1].islower():
        first = first[0].lower() + first[1:]  # "Connection refused" reads on after a colon
    if secret:
        first = first.replace(secret, "***")
    return first[:300] or "no reason given"


def _password(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    found = re.search(r"(?:^|&)password=([^&]*)", parts.query)
    return parts.password or (found.group(1) if found else "")


class ConnectionMixin:
    """The pool, pinned connections, transactions and error translation (PostgreSQL backend)."""

    url: str
    statement_timeout_s: float | None
    connect_timeout_s: float

    def _init_pool(self, *, max_size: int = 8) -> None:
        from psycopg_pool import ConnectionPool

        options = []
        if self.statement_timeout_s:
            options.append(f"-c statement_timeout={int(self.statement_timeout_s * 1000)}")
        # How an unfiltered vector query scans HNSW (vectors.py), set once per
        # connection at start-up: a search is then one statement, not a
        # transaction with two SET LOCALs (round trips that cost most under
        # many clients). pgvector takes the values when its library loads.
        ef = int(getattr(self, "ef_search", 0) or 0)
        if ef:
            options.append(f"-c hnsw.ef_search={ef} -c hnsw.iterative_scan=relaxed_order")
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": max(1, int(self.connect_timeout_s))}
        if options:
            kwargs["options"] = " ".join(options)
        self._local = threading.local()
        self._pool = ConnectionPool(
            self.url, min_size=0, max_size=max_size, kwargs=kwargs, open=False,
            check=ConnectionPool.check_connection, timeout=self.connect_timeout_s + 5,
            configure=self._configure_connection, name="equisearch",
        )
        # One direct connection first: its error names the cause (wrong password,
        # no such database, nothing listening), where the pool's only says it timed out.
        import psycopg

        try:
            psycopg.connect(self.url, **kwargs).close()
        except Exception as exc:
            raise self._translate(exc) from None
        # The pool logs every failed reconnection attempt; the caller gets one line instead.
        logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
        self._pool.open(wait=False)

    def _configure_connection(self, conn) -> None:
        """Every new connection: pgvector's types need no adapter (vectors travel as text)."""

    def _translate(self, exc: BaseException) -> BaseException:
        import psycopg
        from psycopg_pool import PoolTimeout

        if isinstance(exc, PoolTimeout):
            return DatabaseUnavailable(
                f"cannot use the database {redact(self.url)}: no connection within {self.connect_timeout_s:g} s:"
                " check the host and port in the URL and that PostgreSQL is running"
            )
        if isinstance(exc, psycopg.Error):
            return translate(exc, self.url, self.statement_timeout_s)
        return exc

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            translated = self._translate(exc)
            if translated is exc:
                raise
            raise translated from None

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """The thread's pinned connection (inside a transaction or view), else a pooled one."""
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
            return
        with self._errors(), self._pool.connection() as conn:
            yield conn

    def execute(self, sql: str, params: Any = None):
        """Run one statement; returns the cursor's rows (a list of tuples) or []."""
        with self.connection() as conn, self._errors():
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description is not None else []

    def one(self, sql: str, params: Any = None):
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Any = None, default: Any = None):
        row = self.one(sql, params)
        return row[0] if row is not None and row[0] is not None else default

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """One READ COMMITTED transaction on a pinned connection; rolled back on any exception.

        Nested use joins the outer transaction.
        """
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
            return
        with self._errors(), self._pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield conn
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def consistent_view(self) -> Iterator[None]:
        """Reads inside see one committed state (a REPEATABLE READ, READ ONLY transaction)."""
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield
            return
        with self._errors(), self._pool.connection() as conn:
            self._local.conn = conn
            self._local.view = {}  # what one snapshot answers once (schema.py's generation)
            try:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    yield
                finally:
                    if not conn.closed:
                        conn.execute("COMMIT")
            finally:
                self._local.conn = None
                self._local.view = None

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()
