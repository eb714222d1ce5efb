"""Records: citations and the links they carry."""
from __future__ import annotations

from search.types import Chunk, Citation, Document


def _doc(**kw):
    base = dict(id=1, uri="/srv/corpus/dfe-2018-guidance.pdf", title="Guidance", kind="guidance")
    return Document(**{**base, **kw})


PAGE = Chunk(id=7, doc_id=1, ord=0, text="x", char_start=0, char_end=1, page_start=21, page_end=21)


def test_landing_page_gets_no_page_anchor():
    """A #page=N anchor on an HTML landing page does nothing: link to the page as it is."""
    doc = _doc(url="https://www.gov.uk/government/publications/school-exclusion")
    cit = Citation.for_chunk(doc, PAGE)
    assert cit.link == "https://www.gov.uk/government/publications/school-exclusion"
    assert not cit.link_at_location and cit.location == "p. 21"
    assert cit.file == "/srv/corpus/dfe-2018-guidance.pdf" and cit.file_name == "dfe-2018-guidance.pdf"


def test_url_that_serves_the_pdf_opens_at_the_page():
    doc = _doc(url="https://assets.example.org/media/abc/Guidance.PDF")
    cit = Citation.for_chunk(doc, PAGE)
    assert cit.link == "https://assets.example.org/media/abc/Guidance.PDF#page=21" and cit.link_at_location


def test_pdf_fetched_from_the_web_opens_at_the_page():
    doc = _doc(uri="https://example.org/download?id=3", url="https://example.org/download?id=3")
    cit = Citation.for_chunk(doc, PAGE)
    assert cit.link.endswith("#page=21") and cit.link_at_location and cit.file == ""


def test_local_file_without_url_is_a_file_link_and_a_file():
    cit = Citation.for_chunk(_doc(), PAGE)
    assert cit.link == "file:///srv/corpus/dfe-2018-guidance.pdf#page=21"
    assert cit.file_name == "dfe-2018-guidance.pdf"


def test_video_url_gets_a_time():
    doc = _doc(uri="/srv/talk.vtt", url="https://www.youtube.com/watch?v=abc")
    chunk = Chunk(id=1, doc_id=1, ord=0, text="x", char_start=0, char_end=1, t_start=65.0, t_end=70.0)
    cit = Citation.for_chunk(doc, chunk)
    assert cit.link == "https://www.youtube.com/watch?v=abc&t=65" and cit.location == "01:05"
