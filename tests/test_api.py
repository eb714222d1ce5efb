"""Engine behaviour with the hashing fake (plumbing): filters, limits, modes, vocabulary.

Every test runs on both backends (tests/backends.py: ``store_location``).
"""
from __future__ import annotations

import pytest

from ingest.pipeline import Ingestor
from search.api import Engine
from search.errors import QueryError
from search.types import Filters

from .backends import open_at, settings_at
from .conftest import FakeEmbedder


@pytest.fixture
def engine(tmp_path, store_location):
    docs = tmp_path / "docs"
    docs.mkdir()
    # One long report about attendance, and short documents of other kinds.
    (docs / "report.txt").write_text("\n\n".join(
        f"Attendance paragraph {i}: persistent absence among disadvantaged pupils rose in year {2000 + i}, "
        f"and schools responded with mentoring scheme number {i} and family liaison work." for i in range(30)))
    for i in range(6):
        (docs / f"guide{i}.txt").write_text(
            f"Guide {i} on attendance: previously looked-after children benefit from a designated teacher {i}.")
    (docs / "dup1.txt").write_text("Absence and attendance policy wording that two schools copied word for word today.")
    (docs / "dup2.txt").write_text("Absence and attendance policy wording that two schools copied word for word today!")
    (docs / "manifest.json").write_text(
        '{"documents": [' + ",".join(f'{{"file": "guide{i}.txt", "kind": "guidance", "site": "DfE", "date": "202{i}-01-01"}}'
                                     for i in range(6)) + "]}")
    settings = settings_at(store_location)
    emb = FakeEmbedder()
    Ingestor(open_at(store_location), settings, emb).ingest_paths([docs])
    return Engine.open(store_location, settings, embedder=emb)


def test_one_document_cannot_fill_the_page(engine):
    hits = engine.search("persistent absence attendance mentoring", k=5).hits
    per_doc = {}
    for h in hits:
        per_doc[h.document.uri] = per_doc.get(h.document.uri, 0) + 1
    assert len(hits) == 5 and max(per_doc.values()) <= engine.settings.per_doc_limit


def test_filters_apply_before_ranking(engine):
    hits = engine.search("persistent absence attendance mentoring", k=5, filters=Filters(kinds=("guidance",))).hits
    assert len(hits) == 5 and {h.document.kind for h in hits} == {"guidance"}
    hits = engine.search("attendance", k=10, filters=Filters(sites=("DfE",), date_from="2023")).hits
    assert {h.document.date[:4] for h in hits} == {"2023", "2024", "2025"}


def test_near_duplicates_collapse(engine):
    texts = [h.chunk.text for h in engine.search("attendance policy wording copied", k=10).hits]
    assert sum("copied word for word" in t for t in texts) == 1


def test_vocabulary_expansion_is_reported(engine):
    result = engine.search("support for PLAC pupils", k=3)
    assert "previously looked-after children" in result.also_searched
    assert any("previously looked-after" in h.chunk.text for h in result.hits)


def test_bm25_mode_needs_no_model(store_location, engine):
    fresh = Engine.open(store_location, engine.settings)  # no embedder given: would load the real model
    hits = fresh.search("mentoring", k=3, mode="bm25").hits
    assert hits and fresh._embedder is None


def test_bad_mode_and_empty_query(engine):
    with pytest.raises(QueryError):
        engine.search("x", mode="magic")
    with pytest.raises(QueryError):
        engine.search(" \n\t ")


def test_hostile_queries_return_results_or_nothing(engine):
    for q in ['"', "NEAR(", "*", "-", "OR", "^", "a" * 10000, "😀", "مرحبا", "'; DROP TABLE chunks; --"]:
        engine.search(q, k=3)


def test_users_add_their_own_terms(engine, tmp_path):
    from search.vocabulary import load_vocabulary

    (engine.store.path / "vocabulary.json").write_text(
        '{"terms": [{"acronym": "DSL", "forms": ["designated safeguarding lead"]}]}')
    load_vocabulary.cache_clear()
    assert "designated safeguarding lead" in engine.search("who is the DSL?", k=1).also_searched
    extra = tmp_path / "mine.json"
    extra.write_text('{"terms": [{"acronym": "TAC", "forms": ["team around the child"]}]}')
    other = Engine(engine.store, engine.settings.with_(vocabulary=str(extra)), engine._embedder)
    assert "team around the child" in other.search("TAC meeting", k=1).also_searched
    extra.write_text("not json")
    load_vocabulary.cache_clear()
    with pytest.raises(Exception, match="vocabulary file"):
        other.search("TAC meeting", k=1)


def test_large_store_keyword_query_leaves_out_common_words(store_location, monkeypatch):
    """Above the row budget the commonest words are dropped from the FTS5
    query (the rarest stays); below it the query is untouched."""
    import search.api
    from search.api import Engine
    from search.store import NewChunk, NewDocument
    from search.text import content_hash

    from .conftest import FakeEmbedder

    store = open_at(store_location)
    emb = FakeEmbedder()
    texts = [f"pupils in school number {i}" for i in range(12)] + ["pupils with a rare zebra timetable"]
    for i, t in enumerate(texts):
        store.write_document(NewDocument(uri=f"/{i}", title=t, text=t, content_hash=str(i), text_hash=content_hash(t)),
                             [NewChunk(t, 0, len(t), content_hash(t))], emb.encode([t]), model=emb.name,
                             dim=emb.dim, chunking="c")
    engine = Engine(store, settings_at(store_location), emb)
    assert store.term_doc_counts(["pupil", "zebras", "schools", "nothing"]) == \
        {"pupil": 13, "zebras": 1, "schools": 12, "nothing": 0}  # Porter stems, as FTS5 indexes them
    def affordable(text):
        return engine._affordable_terms(engine._prepare(text, encode=False))

    assert affordable("pupils zebra") == ["pupils", "zebra"]  # small store: untouched
    monkeypatch.setattr(search.api, "LEXICAL_ROW_BUDGET", 5)
    assert affordable("pupils zebra") == ["pupils", "zebra"]  # under LEXICAL_BUDGET_FROM: untouched
    monkeypatch.setattr(search.api, "LEXICAL_BUDGET_FROM", 10)
    assert affordable("pupils zebra") == ["zebra"]
    assert affordable("pupils school") == ["school"]  # the rarer of two common words stays
    assert affordable("what is it?") == ["what", "is", "it"]  # only stopwords: they are kept
    hits = engine.search("pupils zebra", k=3, mode="bm25").hits
    assert hits[0].chunk.text == texts[-1]


def test_keyword_top_and_vector_hits_are_scored_in_one_pass(engine):
    """keyword_scores gives keyword_search's top n and, for any other ids,
    the BM25 they get when every match is ranked; ids matching no query word
    are absent, and filters apply to both parts. (On SQLite these are
    fts_rank_and_score and fts_search of the same quoted terms.)"""
    from search.lexical import keyword_terms

    store = engine.store
    all_ids = [c.id for c in store.iter_chunks()]
    for query in ("persistent absence attendance mentoring", "designated teacher", "family liaison year 2007"):
        terms = keyword_terms(query)
        everything = dict(store.keyword_search(terms, 10_000))
        top, scores = store.keyword_scores(terms, 3, all_ids)
        assert top == store.keyword_search(terms, 3)
        assert scores == pytest.approx(everything)
    _top, scores = store.keyword_scores(keyword_terms("designated teacher"), 3, all_ids)
    assert 0 < len(scores) < len(all_ids), "ids matching no word are absent"
    guides = Filters(kinds=("guidance",))
    top, scores = store.keyword_scores(keyword_terms("attendance"), 2, all_ids, guides)
    assert top == store.keyword_search(keyword_terms("attendance"), 2, guides)
    assert scores == pytest.approx(dict(store.keyword_search(keyword_terms("attendance"), 100, guides)))


def test_passage_scores_blend_in_their_documents_vector(engine):
    """document_weight: a passage's vector score = (1 - w) cosine + w cosine(its document's mean vector)."""
    import numpy as np

    store = engine.store
    qvec = engine.encode_query("persistent absence mentoring")
    dense = engine.index.search(qvec, 10)
    blended = dict(engine._with_document_scores(dense, qvec))
    doc_of = store.doc_ids_of([c for c, _ in dense])
    w = engine.settings.document_weight
    assert 0 < w < 1
    for cid, cos in dense:
        members = [c.id for c in store.chunks_of(doc_of[cid])]
        mean = np.mean(list(store.vectors_by_ids(members).values()), axis=0)
        expect = (1 - w) * cos + w * float(mean @ qvec) / float(np.linalg.norm(mean))
        assert blended[cid] == pytest.approx(expect, abs=1e-5)
    # Hits still show the passage's own cosine as "dense".
    hit = engine.search("persistent absence mentoring", k=1, mode="dense").hits[0]
    searched = engine._prepare("persistent absence mentoring").vector  # with its vocabulary synonyms
    assert hit.dense == pytest.approx(float(store.vectors_by_ids([hit.chunk.id])[hit.chunk.id] @ searched), abs=1e-4)


def test_answer_sentences_are_encoded_once(engine):
    """The sentence cache: a second ask over the same passages encodes no sentence again."""
    emb = engine.embedder
    engine.ask("persistent absence mentoring scheme")
    before = emb.encoded
    first = engine.ask("persistent absence mentoring scheme")
    assert emb.encoded - before == 1  # the question only
    cache = engine._sentences
    import numpy as np
    texts = ["Pupils attend more.", "A second sentence here."]
    assert np.allclose(cache.encode(texts), emb.encode(texts))
    assert first.sentences or first.abstained


def test_engine_open_checks_the_model_asked_for(store_location, engine):
    """The one compatibility check, for every edge: a model named by the user must
    be the store's; without one the engine searches with the store's own."""
    from search.errors import StoreMismatch

    home, settings = store_location, engine.settings
    with pytest.raises(StoreMismatch, match="model 'fake-hash-64' \\(asked for 'another-model'\\).*equisearch rebuild"):
        Engine.open(home, settings, model="another-model")
    Engine.open(home, settings, model="fake-hash-64").close()
    Engine.open(home, settings).close()
