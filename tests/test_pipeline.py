"""Ingest pipeline plumbing (fake embedder): idempotence, replacement, failures.

Every test but one runs on both backends (``settings`` below names
``store_location``, tests/backends.py); the one left is about a SQLite store
migrated from schema 3.
"""
from __future__ import annotations

import os

import pytest

import ingest.pipeline as pipeline
from ingest.pipeline import Ingestor, rebuild_store
from search.errors import StoreMismatch
from search.settings import Settings
from search.text import content_hash

from .backends import open_at, settings_at
from .conftest import CORPUS, SEED_DOCS, FakeEmbedder


@pytest.fixture
def settings(store_location):
    """Settings naming this test's store: a directory, or a database URL (both backends)."""
    return settings_at(store_location)


@pytest.fixture
def sqlite_settings(tmp_path):
    return Settings(home=str(tmp_path / "store"))


def _ingestor(settings, embedder=None):
    store = open_at(settings.location, settings=settings)
    return Ingestor(store, settings, embedder or FakeEmbedder())


def test_idempotent_reingest_costs_nothing(settings, corpus_copy):
    emb = FakeEmbedder()
    first = _ingestor(settings, emb).ingest_paths([corpus_copy])
    assert first.counts["added"] == SEED_DOCS and not first.failed
    calls = emb.calls
    again = _ingestor(settings, emb).ingest_paths([corpus_copy])
    assert again.counts["unchanged"] == SEED_DOCS
    assert emb.calls == calls, "unchanged files must not be re-embedded"


def test_manifest_metadata_is_applied(settings, corpus_copy):
    ing = _ingestor(settings)
    ing.ingest_paths([corpus_copy])
    docs = {d.title: d for d in ing.store.documents()}
    forum = docs["Leadership webinar: social mobility in schools (video and webchat)"]
    assert (forum.site, forum.kind, forum.date) == ("TES Community", "forum", "2017-09-29")


def test_changed_file_replaced_reusing_unchanged_passages(settings, corpus_copy):
    emb = FakeEmbedder()
    ing = _ingestor(settings, emb)
    ing.ingest_paths([corpus_copy])
    target = corpus_copy / "004_7697dcc9a961e9f5.txt"
    n_before = ing.store.info().chunks
    target.write_text(target.read_text() + "\n\nA brand new closing paragraph about attendance and belonging in school.\n")
    encoded_before = emb.encoded
    report = _ingestor(settings, emb).ingest_paths([target])
    assert report.counts["updated"] == 1
    assert emb.encoded - encoded_before < report.results[0].chunks, "unchanged passages reuse stored vectors"
    store = open_at(settings.location)
    assert store.info().documents == SEED_DOCS
    assert any("brand new closing paragraph" in c.text for d in store.documents() for c in store.chunks_of(d.id))
    assert store.info().chunks >= n_before


def test_same_text_twice_is_stored_once(settings, tmp_path):
    a = tmp_path / "a.txt"
    b = tmp_path / "copy" / "b.txt"
    b.parent.mkdir()
    body = "Virtual school heads promote the education of looked-after children.\n\nThey work with designated teachers."
    a.write_text(body)
    b.write_text(body)
    report = _ingestor(settings).ingest_paths([a, b])
    assert [r.status for r in report.results] == ["added", "duplicate"]
    store = open_at(settings.location)
    assert store.info().documents == 1
    assert store.find_document(str(b.resolve())).id == report.results[0].doc_id


def test_alias_with_other_bytes_stays_unchanged_until_its_text_changes(settings, tmp_path):
    """A copy whose bytes differ (extra blank lines) but whose text is the same
    is an alias: re-ingesting costs nothing and never flips the document's
    location; once its text changes it becomes a document of its own."""
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    body = "Virtual school heads promote the education of looked-after children.\n\nThey work with designated teachers."
    a.write_text(body)
    b.write_text(body + "\n\n\n")
    assert [r.status for r in _ingestor(settings).ingest_paths([a, b]).results] == ["added", "duplicate"]
    for _ in range(2):
        again = _ingestor(settings).ingest_paths([a, b])
        assert [r.status for r in again.results] == ["unchanged", "unchanged"]
    store = open_at(settings.location)
    assert store.find_document(str(b.resolve())).uri == str(a.resolve())
    b.write_text("Designated teachers work with virtual school heads on personal education plans.")
    report = _ingestor(settings).ingest_paths([b])
    assert [r.status for r in report.results] == ["added"]
    assert store.info().documents == 2
    assert store.find_document(str(b.resolve())).uri == str(b.resolve())
    assert store.find_document(str(a.resolve())).uri == str(a.resolve())


def test_bad_files_fail_alone(settings, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Pupil premium funding supports disadvantaged pupils in England.")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    garbage = tmp_path / "broken.pdf"
    garbage.write_bytes(os.urandom(2000))
    other = tmp_path / "notes.docx"
    other.write_bytes(b"PK..")
    report = _ingestor(settings).ingest_paths([tmp_path, tmp_path / "missing.txt"])
    status = {os.path.basename(r.source): r.status for r in report.results}
    assert status == {"broken.pdf": "failed", "empty.txt": "failed", "good.txt": "added",
                      "notes.docx": "skipped", "missing.txt": "failed"}
    for r in report.failed:
        assert "\n" not in r.reason and r.reason
    assert open_at(settings.location).info().documents == 1


def test_unsupported_file_named_explicitly_fails(settings, tmp_path):
    f = tmp_path / "x.docx"
    f.write_bytes(b"x")
    (r,) = _ingestor(settings).ingest_paths([f]).results
    assert r.status == "failed" and "unsupported file type .docx" in r.reason


def test_other_model_is_refused_before_work(settings, corpus_copy):
    _ingestor(settings).ingest_paths([corpus_copy])
    other = FakeEmbedder(dim=32)
    other.name = "another-model"
    with pytest.raises(StoreMismatch, match="equisearch rebuild"):
        _ingestor(settings, other).ingest_paths([corpus_copy])


def test_rebuild_re_embeds_from_stored_text(settings, corpus_copy):
    ing = _ingestor(settings)
    ing.ingest_paths([corpus_copy])
    store = ing.store
    pages_before = {c.text for d in store.documents() for c in store.chunks_of(d.id)}
    new = FakeEmbedder(dim=32)
    new.name = "another-model"
    report = rebuild_store(store, settings.with_(chunk_words=60, chunk_overlap_words=10), new)
    assert report.documents == SEED_DOCS
    info = store.info()
    assert (info.model, info.dim, info.chunking) == ("another-model", 32, "words=60,overlap=10,v1")
    after = {c.text for d in store.documents() for c in store.chunks_of(d.id)}
    assert after != pages_before and len(after) > len(pages_before)
    assert store.integrity()["vectors"] == info.chunks


def test_furniture_repeated_across_a_sites_pages_is_dropped(settings, tmp_path):
    site = tmp_path / "council"
    site.mkdir()
    nav = "Home | Schools | Admissions | Contact the council"
    shared = "Our SEND local offer explains what support is available for children and families."
    for i in range(6):
        body = [f"Page {i} explains admissions round number {i} for primary schools in the county.", nav]
        if i < 2:
            body.append(shared)
        (site / f"page{i}.txt").write_text("\n\n".join(body))
    _ingestor(settings).ingest_paths([site])
    store = open_at(settings.location)
    texts = " ".join(c.text for d in store.documents() for c in store.chunks_of(d.id))
    assert "Contact the council" not in texts
    assert texts.count("SEND local offer") == 2, "content shared by a few pages stays"


def test_transcript_citations_link_to_the_moment(settings, tmp_path):
    from search.api import Engine

    vtt = tmp_path / "webinar.vtt"
    vtt.write_text("WEBVTT\n\n00:01:05.000 --> 00:01:09.000\n<v Peps McCrea>Low-level disruption refers to small "
                   "but persistent distractions.\n\n00:01:09.000 --> 00:01:15.000\nTeachers can respond quickly "
                   "with a concise reminder.\n")
    emb = FakeEmbedder()
    ing = _ingestor(settings, emb)
    ing.ingest_paths([vtt], overrides={"url": "https://www.youtube.com/watch?v=gebOYHdS8ZI"})
    hit = Engine.open(settings.location, settings, embedder=emb).search("low-level disruption", k=1).hits[0]
    assert hit.document.kind == "transcript"
    assert hit.citation.location == "01:05"
    assert hit.citation.link == "https://www.youtube.com/watch?v=gebOYHdS8ZI&t=65"
    assert hit.chunk.speaker == "Peps McCrea"


def test_windows_read_ahead_on_a_thread_give_the_same_result(settings, corpus_copy, monkeypatch, other_location):
    """With many small windows (the next one read while this one is embedded),
    every file is ingested once, in order, and failures still stand alone."""
    import ingest.windows

    (corpus_copy / "broken.pdf").write_bytes(b"not a pdf")
    monkeypatch.setattr(ingest.windows, "WINDOW", 2)
    emb = FakeEmbedder()
    report = _ingestor(settings, emb).ingest_paths([corpus_copy])
    one_window = other_location("one-window")
    whole = Ingestor(open_at(one_window), settings_at(one_window), FakeEmbedder())
    monkeypatch.setattr(ingest.windows, "WINDOW", 200)
    reference = whole.ingest_paths([corpus_copy])
    assert [(r.source, r.status, r.chunks) for r in report.results] == \
        [(r.source, r.status, r.chunks) for r in reference.results]
    assert report.counts["failed"] == 1 and report.counts["added"] >= 5


# -- a newer pipeline re-reads unchanged files ------------------------------------
LAC_PDF = "dfe-2018-promoting-education-of-looked-after-and-previously-looked-after-children.pdf"


def _old_extractor(real):
    """The extractor as it was before list items had a kind: the bullet glyph in the text."""
    from ingest.segments import Segment

    def extract(path, data=None):
        ex = real(path, data)
        ex.segments = [Segment(("• " + s.text) if s.kind == "item" else s.text, page=s.page) for s in ex.segments]
        return ex
    return extract


def test_newer_pipeline_re_extracts_unchanged_bytes(settings, tmp_path, monkeypatch):
    pdf = tmp_path / LAC_PDF
    pdf.write_bytes((CORPUS / LAC_PDF).read_bytes())
    emb = FakeEmbedder()
    monkeypatch.setattr(pipeline, "PIPELINE_VERSION", "3")
    monkeypatch.setattr(pipeline, "extract_file", _old_extractor(pipeline.extract_file))
    first = _ingestor(settings, emb).ingest_paths([pdf])
    assert first.counts["added"] == 1
    store = open_at(settings.location)
    doc = store.documents()[0]
    assert doc.pipeline_version == "3" and "• " in store.document_text(doc.id)

    # The same bytes, a newer pipeline with cleaner text: updated, and the
    # passages whose text did not change keep their stored vectors.
    monkeypatch.undo()
    assert pipeline.PIPELINE_VERSION != "3"
    encoded = emb.encoded
    second = _ingestor(settings, emb).ingest_paths([pdf])
    assert second.counts["updated"] == 1, second.results
    assert 0 < emb.encoded - encoded < second.results[0].chunks, "unchanged passages reuse their vectors"
    doc = store.documents()[0]
    assert doc.pipeline_version == pipeline.PIPELINE_VERSION and "• " not in store.document_text(doc.id)

    # And again: nothing to do, nothing embedded.
    calls = emb.calls
    third = _ingestor(settings, emb).ingest_paths([pdf])
    assert third.counts["unchanged"] == 1 and emb.calls == calls


def test_newer_pipeline_with_the_same_text_keeps_the_document_unchanged(settings, tmp_path, monkeypatch):
    """A version bump that changes nothing for this file: reported unchanged,
    the new version recorded, the passages (ids, vectors) untouched."""
    src = tmp_path / "note.txt"
    src.write_text("Virtual school heads promote the education of looked-after children.\n\n"
                   "They work with designated teachers in every school.\n")
    emb = FakeEmbedder()
    monkeypatch.setattr(pipeline, "PIPELINE_VERSION", "3")
    _ingestor(settings, emb).ingest_paths([src])
    store = open_at(settings.location)
    ids = [c.id for c in store.chunks_of(store.documents()[0].id)]
    generation = store.generation()
    monkeypatch.undo()
    calls = emb.calls
    report = _ingestor(settings, emb).ingest_paths([src])
    assert report.counts["unchanged"] == 1 and emb.calls == calls
    doc = store.documents()[0]
    assert doc.pipeline_version == pipeline.PIPELINE_VERSION
    assert doc.content_hash == content_hash(pipeline.PIPELINE_VERSION.encode() + b"\0" + src.read_bytes())
    assert [c.id for c in store.chunks_of(doc.id)] == ids and store.generation() == generation
    # Recorded: the next run does not even read the file.
    monkeypatch.setattr(pipeline, "extract_file", lambda *a: pytest.fail("re-extracted a current document"))
    assert _ingestor(settings, emb).ingest_paths([src]).counts["unchanged"] == 1


def test_documents_from_before_versions_were_recorded_are_read_again(sqlite_settings, tmp_path):
    """A store migrated from schema 3 has pipeline_version '' and the old hash:
    the next ingest re-reads the file once and records the version."""
    settings = sqlite_settings  # SQLite only: PostgreSQL stores never had schema 3
    src = tmp_path / "note.txt"
    src.write_text("Designated teachers champion looked-after pupils' progress in school.\n")
    ing = _ingestor(settings)
    ing.ingest_paths([src])
    with ing.store.transaction() as conn:
        conn.execute("UPDATE documents SET pipeline_version = '', content_hash = ?",
                     (content_hash(b"3\0" + src.read_bytes()),))
    report = _ingestor(settings).ingest_paths([src])
    assert report.counts["unchanged"] == 1
    assert ing.store.documents()[0].pipeline_version == pipeline.PIPELINE_VERSION


def test_web_refresh_re_extracts_pages_read_by_an_older_pipeline(settings, monkeypatch):
    """`refresh` re-fetches; a page whose body is unchanged but was read by an
    older pipeline is read again: updated when its text changes, then unchanged."""
    import ingest.web as web_module
    from ingest.fetch import FetchPolicy, Fetcher
    from ingest.segments import Segment

    from .webserver import LocalSite

    real_extract = web_module.extract_response

    def old_extract(res):
        ex = real_extract(res)
        ex.segments = [Segment("• " + s.text) for s in ex.segments]
        return ex

    emb = FakeEmbedder()
    with LocalSite() as site:
        def web():
            fetcher = Fetcher(FetchPolicy(timeout=5, retries=1, backoff=0.05, host_delay=0))
            return web_module.WebIngest(_ingestor(settings, emb), fetcher)

        url = site.url("/posts/social-mobility")
        for module in (pipeline, web_module):
            monkeypatch.setattr(module, "PIPELINE_VERSION", "3")
        monkeypatch.setattr(web_module, "extract_response", old_extract)
        assert web().ingest_urls([url]).counts["added"] == 1
        monkeypatch.undo()
        encoded = emb.encoded
        report = web().refresh()
        assert [r.status for r in report.results] == ["updated"], report.results
        assert emb.encoded > encoded
        store = open_at(settings.location)
        doc = store.documents()[0]
        assert doc.pipeline_version == pipeline.PIPELINE_VERSION
        assert not store.document_text(doc.id).startswith("• "), "the old pipeline's text is gone"
        calls = emb.calls
        assert [r.status for r in web().refresh().results] == ["unchanged"] and emb.calls == calls
