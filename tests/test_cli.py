"""The click CLI through CliRunner: commands, --json keys, errors as one line."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import ingest.pipeline
import search.api
from cli.app import main

from .conftest import SEED_DOCS, SEEDS, FakeEmbedder


@pytest.fixture
def fake(monkeypatch):
    emb = FakeEmbedder()
    monkeypatch.setattr(ingest.pipeline, "load_embedder", lambda name, **kw: emb)
    monkeypatch.setattr(search.api, "load_embedder", lambda name, **kw: emb)
    # The fake is not exportable to ONNX: keep queries on the (patched) torch path.
    monkeypatch.setenv("EQUISEARCH_QUERY_ENCODER", "torch")
    emb.name = "all-MiniLM-L6-v2"  # looks like the default so no mismatch is raised
    return emb


@pytest.fixture
def store_dir(tmp_path, fake):
    d = tmp_path / "store"
    r = CliRunner().invoke(main, ["--store", str(d), "ingest", str(SEEDS)])
    assert r.exit_code == 0, r.output
    return d


def run(*args, store=None):
    argv = (["--store", str(store)] if store else []) + list(args)
    return CliRunner().invoke(main, argv)


def test_every_command_has_help():
    for cmd in ("ingest", "search", "ask", "sources", "remove", "stats", "rebuild", "eval", "ui"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Usage:" in r.output


def test_ingest_summary_and_idempotence(store_dir):
    r = run("ingest", str(SEEDS), store=store_dir)
    assert r.exit_code == 0
    assert f"0 added, 0 updated, {SEED_DOCS} unchanged" in r.output


def test_stats_json_keys(store_dir):
    data = json.loads(run("stats", "--json", store=store_dir).output)
    assert {"documents", "chunks", "model", "dim", "chunking", "vectors", "schema_version", "store"} <= set(data)
    assert data["documents"] == SEED_DOCS and data["chunks"] == data["vectors"] > SEED_DOCS


def test_sources_json_and_remove(store_dir):
    docs = json.loads(run("sources", "--json", store=store_dir).output)
    assert len(docs) == SEED_DOCS
    assert {"id", "title", "uri", "site", "kind", "date", "chunks", "added_at"} <= set(docs[0])
    r = run("remove", str(docs[0]["id"]), store=store_dir)
    assert r.exit_code == 0 and "removed" in r.output
    assert len(json.loads(run("sources", "--json", store=store_dir).output)) == SEED_DOCS - 1
    r = run("remove", "no-such-thing", store=store_dir)
    assert r.exit_code == 1 and "not found" in r.output


def test_search_and_ask_json_keys(store_dir):
    data = json.loads(run("search", "pupil-premium NEAR( \"", "--json", store=store_dir).output)
    assert {"query", "results", "elapsed_ms", "also_searched"} <= set(data)
    res = data["results"][0]
    for key in ("rank", "chunk_id", "doc_id", "score", "title", "site", "kind", "date", "uri", "link", "location",
                "page_start", "t_start", "char_start", "char_end", "text"):
        assert key in res
    ans = json.loads(run("ask", "How many pupils have SEND?", "--json", store=store_dir).output)
    assert {"question", "answer", "abstained", "confidence", "sentences", "sources", "also_searched"} <= set(ans)


def test_empty_query_is_one_line_error(store_dir):
    r = run("search", "   ", store=store_dir)
    assert r.exit_code == 1
    assert r.output.strip().startswith("Error:") and "Traceback" not in r.output


def test_missing_store_is_friendly(tmp_path):
    r = run("stats", store=tmp_path / "nothing")
    assert r.exit_code == 1 and "equisearch ingest" in r.output


def test_model_mismatch_is_refused_with_what_to_run(store_dir):
    r = run("--model", "some-other-model", "search", "pupils", store=store_dir)
    assert r.exit_code == 1 and "rebuild" in r.output


def test_ingest_failure_exit_code(tmp_path, fake):
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 truncated")
    good = tmp_path / "good.txt"
    good.write_text("Designated teachers for looked-after children work with the virtual school head.")
    r = run("ingest", str(bad), str(good), store=tmp_path / "s")
    assert r.exit_code == 1
    assert "failed:" in r.output and "bad.pdf" in r.output and "1 added" in r.output


def test_eval_json_keys(store_dir, tmp_path):
    qs = tmp_path / "q.jsonl"
    qs.write_text('{"id": "a", "question": "How many pupils have SEND?", "answers": ["1.5 million"]}\n'
                  '{"id": "b", "question": "What is the capital of Peru?", "answers": []}\n')
    data = json.loads(run("eval", str(qs), "--json", store=store_dir).output)
    assert {"n", "recall_at_k", "mrr", "abstain_correct", "abstain_wrong", "latency_ms", "per_question"} <= set(data)
    assert {"p50", "p95"} <= set(data["latency_ms"]) and data["n"] == 2


def test_rebuild_index_only(store_dir):
    (store_dir / "vectors.faiss").unlink()
    r = run("rebuild", "--index-only", store=store_dir)
    assert r.exit_code == 0 and "vectors" in r.output


# -- messages a newcomer meets (issue: first run) ---------------------------------
def test_other_url_schemes_are_refused_by_name(tmp_path, fake):
    r = run("ingest", "ftp://example.com/x.pdf", store=tmp_path / "s")
    assert r.exit_code == 1
    line = next(ln for ln in r.output.splitlines() if ln.startswith("failed:"))
    assert line.startswith("failed: ftp://example.com/x.pdf: only http(s) URLs are supported"), line
    assert "no such file" not in r.output


def test_empty_folder_says_no_supported_files(tmp_path, fake):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.xlsx").write_bytes(b"not a document")
    r = run("ingest", str(empty), store=tmp_path / "s")
    assert r.exit_code == 1
    assert f"failed: {empty}: no supported files found in this folder" in r.output


def test_failed_url_is_named_once(tmp_path, fake):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/page"
    r = run("ingest", url, "--timeout", "2", store=tmp_path / "s")
    assert r.exit_code == 1
    line = next(ln for ln in r.output.splitlines() if ln.startswith("failed:"))
    assert line.count(url) == 1, line
    assert "cannot connect" in line


def test_search_emptied_by_filters_names_them(store_dir):
    r = run("search", "pupil-premium", "--kind", "inspection", store=store_dir)
    assert r.exit_code == 0
    assert "No passage matches the filters (kind inspection)" in r.output
    assert f"the store has {SEED_DOCS} sources" in r.output
    assert "Ingest sources first" not in r.output
    r = run("ask", "pupil premium", "--site", "Nobody", "--from", "2030", store=store_dir)
    assert "(site Nobody, from 2030)" in r.output


def test_store_found_from_the_checkout(store_dir, tmp_path, monkeypatch):
    """Run from a folder whose ./data holds a store (as make run builds it), no --store needed."""
    import shutil

    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copytree(store_dir, work / "data")
    monkeypatch.chdir(work)
    monkeypatch.delenv("EQUISEARCH_HOME", raising=False)
    data = json.loads(run("stats", "--json").output)
    assert data["store"] == str((work / "data").resolve()) and data["documents"] == SEED_DOCS


def test_ui_prints_address_and_takes_a_free_port(store_dir, monkeypatch):
    import socket

    import cli.serve

    calls = []
    monkeypatch.setattr(cli.serve.subprocess, "call", lambda cmd, env: calls.append((cmd, env)) or 0)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        r = run("ui", "--port", str(port), store=store_dir)
        assert r.exit_code == 1 and not calls
        assert f"port {port} on 127.0.0.1 is already in use" in r.output and "--port N" in r.output
        monkeypatch.setattr(cli.serve, "DEFAULT_PORT", port)
        r = run("ui", store=store_dir)
    assert r.exit_code == 0, r.output
    cmd, env = calls[0]
    served = int(cmd[cmd.index("--server.port") + 1])
    assert served != port
    assert f"http://127.0.0.1:{served}" in r.output and str(store_dir) in r.output
    assert env["EQUISEARCH_HOME"] == str(store_dir)
