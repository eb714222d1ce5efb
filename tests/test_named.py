"""A question that names a document (a local authority's inspection report) is answered from it.

The issue's failure: "a question naming one local authority is answered from
another authority's report". Real model: the statutory guidance's pupil
premium passage is closer to the question than any report's, so only the
name can pick the report.
"""
from __future__ import annotations

import pytest

from ingest.pipeline import Ingestor
from search.api import Engine
from search.settings import Settings
from search.store import Store

PLACES = ("Gloucestershire", "Surrey", "Wolverhampton")


def _report(place: str) -> str:
    """An inspection report long enough to be cut into passages; the name is only in some of them."""
    summary = (f"Inspectors found that leaders in {place} know their services well and have a clear plan. "
               f"Social workers in {place} visit children regularly and see them alone. ") * 4
    leavers = ("Personal advisers keep in touch with most care leavers and help them find somewhere suitable to live. "
               "Care leavers are offered a council tax exemption and help with budgeting and cooking. ") * 4
    education = ("The virtual school uses the pupil premium plus to fund tutoring, mentoring and music lessons, "
                 "and the personal education plans of children looked after are of "
                 f"{'good' if place == 'Surrey' else 'variable'} quality. ") * 3
    return (f'---\ntitle: "{place}: Inspection of services for children looked after and care leavers"\n---\n\n'
            f"# Summary\n\n{summary}\n\n# Care leavers\n\n{leavers}\n\n# Education of children looked after\n\n{education}\n")


@pytest.fixture(scope="module")
def engine(tmp_path_factory, real_embedder):
    root = tmp_path_factory.mktemp("named")
    docs = root / "docs"
    docs.mkdir()
    for place in PLACES:
        (docs / f"{place.lower()}.md").write_text(_report(place))
    (docs / "guidance.md").write_text("""---
title: "Promoting the education of looked-after children: statutory guidance"
---

# Pupil premium plus

The virtual school head manages the pupil premium plus for looked-after children and should use it to support the educational achievement set out in each child's personal education plan.

# Suspension

Schools should try every practicable means to avoid the suspension of a looked-after child.
""")
    settings = Settings(home=str(root / "store"))
    Ingestor(Store.open(settings.home_path), settings, real_embedder).ingest_paths([docs])
    return Engine.open(settings.home_path, settings, embedder=real_embedder)


def _first(engine, query, **override):
    eng = Engine(engine.store, engine.settings.with_(**override), engine.embedder) if override else engine
    return eng.search(query, k=3).hits[0]


@pytest.mark.parametrize("place", PLACES)
def test_a_named_local_authority_is_answered_from_its_own_report(engine, place):
    query = f"What did Ofsted find about how the pupil premium plus is used in {place}?"
    assert engine.named_documents(query) == {d.id for d in engine.store.documents() if d.title.startswith(place)}
    top = _first(engine, query)
    assert top.citation.title.startswith(place) and "pupil premium plus" in top.chunk.text


def test_the_named_documents_passages_get_the_boost_and_nothing_else_moves(engine):
    query = "What did Ofsted find about how the pupil premium plus is used in Surrey?"
    # The fused scores, before the reranker replaces a hit's score by its blend.
    on = {h.chunk.id: (h.score, h.citation.title) for h in _search(engine, query, reranker="off")}
    off = {h.chunk.id: (h.score, h.citation.title)
           for h in _search(engine, query, named_document_boost=0.0, reranker="off")}
    for cid in on.keys() & off.keys():
        boost = engine.settings.named_document_boost if on[cid][1].startswith("Surrey") else 0.0
        assert on[cid][0] == pytest.approx(off[cid][0] + boost, abs=1e-5), on[cid][1]
    assert any(t.startswith("Surrey") for _, t in on.values())


def _search(engine, query, **override):
    eng = Engine(engine.store, engine.settings.with_(**override), engine.embedder)
    return eng.search(query, k=10).hits


def test_lower_case_names_and_topic_words(engine):
    surrey = {d.id for d in engine.store.documents() if d.title.startswith("Surrey")}
    assert engine.named_documents("pupil premium in surrey") == surrey  # typed in lower case: still a name
    # Title words that are not names: "inspection" is in three titles, "statutory" and
    # "guidance" in one but written in lower case inside sentences (or not at all).
    assert engine.named_documents("statutory guidance on inspection and suspension") == set()
    assert engine.named_documents("pupil premium for looked-after children") == set()
