"""The real education documents in ../shared/data/edu (skipped without ../shared)."""
from __future__ import annotations

import pytest

from ingest.clean import clean
from ingest.extract import SUPPORTED_SUFFIXES, extract_file
from ingest.pipeline import Ingestor
from search.api import Engine
from search.settings import Settings
from search.store import Store

from .conftest import shared_path

pytestmark = pytest.mark.slow


def test_every_edu_file_extracts_to_text():
    edu = shared_path("data", "edu")
    files = [p for p in sorted(edu.rglob("*")) if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES]
    assert len(files) >= 209
    failures = []
    for path in files:
        try:
            cleaned = clean(extract_file(path))
            assert sum(len(s.text.split()) for s in cleaned.segments) > 20, "almost no text left"
        except Exception as exc:  # collect every failure, then report them together
            failures.append(f"{path.relative_to(edu)}: {exc}")
    assert not failures, "\n".join(failures)


def test_ask_cites_pdf_pages_and_transcripts(tmp_path, real_embedder):
    edu = shared_path("data", "edu")
    pdfs = sorted((edu / "ofsted_area_send_inspections").glob("*.pdf"))[:4]
    videos = sorted((edu / "cip_early_career" / "ambition-institute" / "year-1-behaviour").glob("*video*.md"))
    settings = Settings(home=str(tmp_path))
    report = Ingestor(Store.open(tmp_path), settings, real_embedder).ingest_paths(pdfs + videos)
    assert not report.failed, report.failed
    engine = Engine.open(tmp_path, settings, embedder=real_embedder)

    answer = engine.ask("how do schools support pupils with an EHC plan?")
    assert not answer.abstained
    assert "education, health and care plan" in [s.lower() for s in answer.also_searched] or answer.also_searched
    cited = [answer.passages[s.ref - 1] for s in answer.sentences]
    assert any(h.chunk.page_start and h.citation.location.startswith("p") for h in cited)
    for hit in answer.passages:
        if hit.chunk.page_start:
            assert hit.citation.link.endswith(f"#page={hit.chunk.page_start}")

    answer = engine.ask("What should a teacher do about low-level disruption such as pupils talking?")
    top = answer.passages[0]
    assert top.document.kind == "transcript" and top.chunk.speaker
