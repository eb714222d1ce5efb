"""BEIR loading and scoring: metric definitions, broken lines, a SciFact quality floor."""
from __future__ import annotations

import json

import pytest

from ingest.beir import load_beir, run_beir
from search.evaluate import ndcg_at_k, recall_at_k

from .conftest import shared_path


def test_metric_definitions():
    assert ndcg_at_k(["a", "b"], {"a": 1}) == 1.0
    assert ndcg_at_k(["x", "a"], {"a": 1}) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert ndcg_at_k(["x"], {"a": 1}) == 0.0
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 1}, 2) == pytest.approx(1 / 3)


def test_broken_lines_are_skipped_and_reported(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "Pupil premium."}\n{broken\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "premium"}\n[1, 2]\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nnot a line\n")
    data = load_beir(tmp_path)
    assert list(data.corpus) == ["d1"] and data.qrels == {"q1": {"d1": 1}}
    assert len(data.skipped_lines) == 3


@pytest.mark.slow
def test_scifact_subset_quality_floor(real_embedder):
    """A fixed SciFact subset (60 test queries, their documents + 600 distractors).

    Measured 2026-11-22: hybrid 0.915, dense 0.877, bm25 0.882 (nDCG@10).
    Floors sit about three points under, so a real regression fails CI.
    """
    folder = shared_path("data", "beir", "scifact")
    report = run_beir(folder, ("hybrid", "dense", "bm25"), embedder=real_embedder, max_queries=60, extra_docs=600)
    print(json.dumps(report["modes"]))
    modes = report["modes"]
    assert modes["hybrid"]["ndcg_at_10"] >= 0.88
    assert modes["dense"]["ndcg_at_10"] >= 0.84
    assert modes["bm25"]["ndcg_at_10"] >= 0.85
    assert modes["hybrid"]["ndcg_at_10"] >= max(modes["dense"]["ndcg_at_10"], modes["bm25"]["ndcg_at_10"]) - 0.01


def _argument_folder(tmp_path):
    """ArguAna's shape: the query is itself a corpus document (same id); its counter-argument is judged."""
    (tmp_path / "qrels").mkdir(parents=True)
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "a1", "title": "", "text": "Pupil premium plus should follow every looked after child to school."}\n'
        '{"_id": "a2", "title": "", "text": "Pupil premium plus money is better pooled by the virtual school."}\n'
        '{"_id": "a3", "title": "", "text": "Uniform rules should be relaxed in summer."}\n')
    (tmp_path / "queries.jsonl").write_text(
        '{"_id": "a1", "text": "Pupil premium plus should follow every looked after child to school."}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\na1\ta2\t1\n")
    return tmp_path


def test_the_querys_own_document_is_left_out_as_beir_does(tmp_path):
    folder = _argument_folder(tmp_path / "beir")
    kept = run_beir(folder, ("bm25",), store_dir=tmp_path)["modes"]["bm25"]
    assert kept["own_document_ranked"] == 1
    assert kept["ndcg_at_10"] == 1.0  # a2 is first once a1 (the query itself) is left out
    assert kept["ndcg_at_10_counting_own"] == pytest.approx(1 / 1.5849625, abs=1e-4)  # the same ranking, a1 kept
    raw = run_beir(folder, ("bm25",), store_dir=tmp_path, ignore_identical_ids=False)["modes"]["bm25"]
    assert raw["ndcg_at_10"] == pytest.approx(1 / 1.5849625, abs=1e-4)  # a1 first, a2 second
