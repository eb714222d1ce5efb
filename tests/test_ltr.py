"""The learned ranker (search/ltr.py): its features, its fit, its file, and the engine using it."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from search.errors import ModelError
from search.hybrid import Candidate
from search.ltr import BUNDLED, FEATURES, RANKER_FORMAT, LearnedRanker, RankContext, all_features, fit_listwise, specific_words


def _col(name: str) -> int:
    return FEATURES.index(name)


def _rows(ctx, texts, titles=None, kinds=None):
    cands = [Candidate(i, score=1.0 - 0.1 * i, dense=0.5 - 0.05 * i) for i in range(len(texts))]
    return all_features(ctx, cands, texts, titles or ["Guidance"] * len(texts), kinds or ["guidance"] * len(texts))


def test_features_see_phrases_names_and_the_best_sentence():
    question = "How does the designated teacher in Surrey support adopted pupils?"
    terms = ("designated", "teacher", "surrey", "support", "adopted", "pupils")
    ctx = RankContext(terms=terms, weights={t: 2.0 for t in terms} | {"surrey": 6.0},
                      specific=specific_words(question))
    texts = [
        # Every word, together in one sentence, the phrase kept, the name there.
        "In Surrey the designated teacher should support adopted pupils with a plan agreed with their parents. "
        "Other staff are told what they need to know.",
        # The same words scattered over sentences, no name.
        "Every school has a designated member of staff for this work. A teacher may ask for advice. "
        "Parents of pupils who were adopted can ask for support from the local authority.",
    ]
    x = _rows(ctx, texts)
    assert specific_words(question) == ("surrey",)
    assert x[0, _col("phrases")] > x[1, _col("phrases")]
    assert x[0, _col("specific_missing")] == 0 and x[1, _col("specific_missing")] == 1
    assert x[0, _col("sentence_coverage")] == pytest.approx(1.0)
    assert x[1, _col("sentence_coverage")] < 0.6
    assert x[0, _col("sentence_coverage_gap")] == 0 and x[1, _col("sentence_coverage_gap")] < 0
    assert x[0, _col("fused")] == 1.0 and x[1, _col("fused")] == 0.0


def test_the_vocabulary_s_acronyms_are_not_names_a_passage_must_contain():
    assert specific_words("What works for PLAC pupils in Year 7?", frozenset({"plac"})) == ("year", "7")


def test_a_question_s_kind_reads_the_cue_of_each_passage():
    ctx = RankContext(terms=("long", "assessment"), kind="how-long")
    x = _rows(ctx, ["The assessment must be finished within 20 weeks of the request being made.",
                    "The assessment looks at the needs of the child and what support they need."])
    assert x[0, _col("cue")] == 1 and x[1, _col("cue")] == 0


def test_the_listwise_fit_learns_which_feature_marks_the_answer():
    rng = np.random.default_rng(3)
    groups = []
    for _ in range(60):
        x = rng.normal(size=(20, len(FEATURES))).astype(np.float32)
        y = np.zeros(20)
        pos = int(rng.integers(20))
        x[pos, _col("phrases")] += 3.0  # only this feature tells
        y[pos] = 1
        groups.append((x, y))
    fitted = fit_listwise(groups, l2=0.01)
    w = np.asarray(fitted["weights"])
    assert int(np.argmax(w)) == _col("phrases")
    ranker = LearnedRanker.__new__(LearnedRanker)
    ranker.mean, ranker.scale, ranker.weights = (np.asarray(fitted[k], np.float32) for k in ("mean", "scale", "weights"))
    first = sum(int(np.argmax(ranker.score(x)) == np.argmax(y)) for x, y in groups)
    assert first >= 50


def test_the_bundled_weights_load_and_say_how_they_were_trained():
    ranker = LearnedRanker(BUNDLED)
    assert len(ranker.weights) == len(FEATURES)
    trained = ranker.info["trained"]
    assert trained["by"] == "python -m ingest.ranker_train"
    assert not any("blind" in name for name in trained["files"])
    assert trained["questions"] > 100


@pytest.mark.parametrize("change", [{"format": RANKER_FORMAT + 1}, {"features": list(FEATURES[:-1])},
                                    {"weights": [1.0]}])
def test_weights_of_another_format_are_refused(tmp_path, change):
    info = json.loads(BUNDLED.read_text()) | change
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(info))
    with pytest.raises(ModelError):
        LearnedRanker(path)


def test_a_broken_ranker_file_leaves_search_on_the_first_stage(starter_store, real_embedder, tmp_path, caplog):
    from search.api import Engine
    from search.settings import Settings

    bad = tmp_path / "ranker.json"
    bad.write_text("{not json")
    e = Engine.open(starter_store, Settings(home=str(starter_store), ranker=str(bad)), embedder=real_embedder)
    off = Engine.open(starter_store, Settings(home=str(starter_store), ranker="off"), embedder=real_embedder)
    try:
        with caplog.at_level(logging.WARNING):
            hits = e.search("pupil premium", k=5).hits
        same = off.search("pupil premium", k=5).hits
    finally:
        e.close()
        off.close()
    assert [h.chunk.id for h in hits] == [h.chunk.id for h in same]
    assert "ranker" in caplog.text and "not used" in caplog.text


def test_the_engine_orders_the_fused_candidates_by_the_ranker(starter_store, real_embedder):
    from search.api import Engine
    from search.ltr import order
    from search.settings import Settings

    question = "what works for PLAC pupils?"
    e = Engine.open(starter_store, Settings(home=str(starter_store), reranker="off"), embedder=real_embedder)
    try:
        head, chunks, x = e.ranking_candidates(question)
        ranked = [head[i].chunk_id for i in order(e.ranker.score(x))]
        hits = e.search(question, k=5).hits
    finally:
        e.close()
    assert e.settings.ranker == "bundled" and x.shape == (len(head), len(FEATURES))
    # The search's first hit is the ranker's first candidate (diversification keeps the best).
    assert hits[0].chunk.id == ranked[0]


def test_a_passage_that_spells_out_the_question_s_acronym_covers_it():
    ctx = RankContext(terms=("many", "pupils", "send"), weights={"send": 5.0}, quantity=True,
                      acronyms=frozenset({"send"}), alternatives=("special educational needs and disabilities",))
    x = _rows(ctx, ["This includes many of the 1.5 million pupils with special educational needs and disabilities.",
                    "Schools must publish their policy on pupils' behaviour and on the curriculum they teach."])
    assert x[0, _col("sentence_coverage")] == pytest.approx(1.0)
    assert x[0, _col("rarest")] == 1 and x[1, _col("rarest")] == 0
    assert x[0, _col("quantity")] == 1 and x[1, _col("quantity")] == -1


def test_the_ui_s_example_question_is_answered_with_its_number(starter_engine):
    """The learned ranker once pushed the passage holding the answer from 5th to 15th:
    it did not count "Special Educational Needs and Disabilities" as the question's "SEND"."""
    answer = starter_engine.ask("How many pupils have SEND?")
    assert not answer.abstained and "1.5 million" in answer.text


def test_a_query_longer_than_any_training_question_keeps_the_first_stage_order(starter_store, real_embedder):
    from search.api import Engine
    from search.settings import Settings

    ranker = LearnedRanker(BUNDLED)
    assert ranker.max_query_words == ranker.info["max_query_words"] > 0
    short = "what works for PLAC pupils?"
    long = " ".join(["pupils with special educational needs in mainstream schools"] * 10)
    assert ranker.applies_to(short) and not ranker.applies_to(long)
    # Nor does the reranker read it: it was trained on the same questions.
    on = Engine.open(starter_store, Settings(home=str(starter_store)), embedder=real_embedder)
    off = Engine.open(starter_store, Settings(home=str(starter_store), ranker="off", reranker="off"),
                      embedder=real_embedder)
    try:
        assert on.reranker is not None and on.ranker is not None
        assert [h.chunk.id for h in on.search(long).hits] == [h.chunk.id for h in off.search(long).hits]
        assert all(h.relevance is None for h in on.search(long).hits)
        assert any(h.relevance is not None for h in on.search(short).hits)
    finally:
        on.close()
        off.close()
