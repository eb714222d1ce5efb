"""Embedders: the ONNX query encoder gives the sentence-transformers vectors;
the command line stays light."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from .conftest import DATA, ROOT

# Real, varied texts: questions, a long passage (cut at 256 word-pieces),
# punctuation and non-ASCII, one word.
TEXTS = [
    "what works for PLAC pupils?",
    "pupil premium",
    "How do schools support pupils with an EHC plan and SEN support?",
    "Looked-after children’s attainment gap — “virtual school heads” and café-style drop-ins (2023/24).",
    (ROOT / "README.md").read_text()[:4000],
]


def _texts():
    out = list(TEXTS)
    for line in (DATA / "starter_questions.jsonl").read_text().splitlines()[:20]:
        out.append(json.loads(line)["question"])
    for path in sorted((ROOT / "corpus").glob("*.txt"))[:3]:
        out.append(path.read_text()[:1500])
    return out


@pytest.mark.slow
def test_onnx_encoder_matches_sentence_transformers(tmp_path, real_embedder):
    from search.embedding import query_embedder
    from search.onnx import OnnxEmbedder, export_onnx, load_onnx_embedder

    folder = export_onnx("all-MiniLM-L6-v2", tmp_path)
    onnx = OnnxEmbedder(folder)
    assert onnx.dim == real_embedder.dim == 384 and onnx.max_tokens == real_embedder.max_tokens == 256
    texts = _texts()
    ref = real_embedder.encode(texts)
    for batch in (1, 8):  # single queries and padded batches
        got = onnx.encode(texts, batch_size=batch)
        cos = np.sum(got * ref, axis=1)
        assert cos.min() >= 0.9999, (batch, cos.min())
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # The store's encoder is found again, and only for the model that made it.
    assert isinstance(load_onnx_embedder(tmp_path, "all-MiniLM-L6-v2"), OnnxEmbedder)
    assert load_onnx_embedder(tmp_path, "another-model") is None
    assert isinstance(query_embedder(tmp_path, "all-MiniLM-L6-v2", dim=384), OnnxEmbedder)
    # A dimension mismatch or mode=torch falls back to the given torch loader.
    assert query_embedder(tmp_path, "all-MiniLM-L6-v2", dim=64, fallback=lambda: "torch") == "torch"
    assert query_embedder(tmp_path, "all-MiniLM-L6-v2", "torch", fallback=lambda: "torch") == "torch"


def test_unexportable_model_falls_back_with_a_log_line(tmp_path, caplog):
    from search.embedding import query_embedder

    got = query_embedder(tmp_path, "no-such-model-anywhere", fallback=lambda: "torch")
    assert got == "torch"
    assert "ONNX query encoder unavailable" in caplog.text


def test_bf16_setting_resolution(monkeypatch):
    from search import cpu

    assert cpu.want_bf16("1") and not cpu.want_bf16("0")
    monkeypatch.setattr(cpu, "cpu_has_bf16", lambda: False)
    assert not cpu.want_bf16("auto")
    monkeypatch.setattr(cpu, "cpu_has_bf16", lambda: True)
    assert cpu.want_bf16("auto")


# bibtexparser (with pylatexenc) and rispy are only for the exports: search/exports.py imports them when writing.
_HEAVY = ("numpy", "faiss", "torch", "sentence_transformers", "onnxruntime", "transformers", "bibtexparser", "rispy")


def _modules_after(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, cwd=ROOT, check=True, env=_env())
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env():
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_cli_help_imports_nothing_heavy():
    code = ("from click.testing import CliRunner\nfrom cli.app import main\n"
            "r = CliRunner().invoke(main, ['--help'])\nassert r.exit_code == 0, r.output\n"
            "r = CliRunner().invoke(main, ['search', '--help'])\nassert r.exit_code == 0, r.output")
    loaded = _modules_after(code)
    assert not [m for m in _HEAVY if m in loaded]


@pytest.mark.slow
def test_search_from_a_fresh_process_does_not_import_torch(tmp_path):
    """After an ingest (which exports the encoder) a CLI search runs on onnxruntime."""
    store = tmp_path / "store"
    subprocess.run([sys.executable, "-m", "cli", "--store", str(store), "ingest", "-q",
                    str(ROOT / "corpus")], check=True, env=_env(), cwd=ROOT, capture_output=True)
    assert (store / "query-encoder" / "model.onnx").exists()
    code = (f"from click.testing import CliRunner\nfrom cli.app import main\n"
            f"r = CliRunner().invoke(main, ['--store', {str(store)!r}, 'search', 'pupil premium', '--json'])\n"
            "assert r.exit_code == 0, r.output\nassert '\"results\"' in r.output")
    loaded = _modules_after(code)
    assert "onnxruntime" in loaded
    assert "torch" not in loaded and "sentence_transformers" not in loaded
