"""PDF layout debris: footnote markers, paragraph numbers, list items, split
words, contents pages and titles; on made-up lines and on the real DfE
guidance PDFs in corpus/ (OGL v3.0, they ship with the repo)."""
from __future__ import annotations

import io
import re
from functools import lru_cache

import pytest

from ingest.chunk import chunk_document
from ingest.extract import _pdf_meta, extract_file, extract_pdf_bytes
from ingest.pdf_layout import (Numbering, drop_contents_lines, is_contents_page, join_split_words, page_paragraphs,
                               strip_markers, word_counts)
from ingest.segments import assemble

from .conftest import CORPUS, shared_path

LAC = CORPUS / "dfe-2018-promoting-education-of-looked-after-and-previously-looked-after-children.pdf"
ADMISSIONS = CORPUS / "dfe-2021-school-admissions-code.pdf"
SUSPENSION = CORPUS / "dfe-2024-suspension-and-permanent-exclusion-guidance.pdf"
MENTAL_HEALTH = CORPUS / "dfe-2018-mental-health-and-behaviour-in-schools.pdf"
GUIDANCE = (LAC, ADMISSIONS, SUSPENSION, MENTAL_HEALTH)
# A sentence that starts with a paragraph or footnote number, not a date.
NUMBER_LED = re.compile(r"^\d{1,3}(?:\.\d{1,3})*\.?\s+(?!(January|February|March|April|May|June|July|August|"
                        r"September|October|November|December)\b)[A-Z‘“(]")


@lru_cache(maxsize=None)
def _extracted(path):
    return extract_file(path)


def _seg(ex, phrase):
    return next(s for s in ex.segments if phrase in s.text)


# -- footnote markers -------------------------------------------------------------
def test_markers_are_stripped_only_for_footnotes_of_the_page():
    lines = ["Getting the most from Pupil Premium Plus11:", "include SMART8 short-term targets for Year 11",
             "pupils in KS3-4 under section 22 of the Act, costing £2,345 in 2018 (see paragraph 1.9).",
             "as a last resort .8", "", "8 SMART means specific, significant and stretching.",
             "9 A second note.", "10 A third", "note over two lines.", "11 This table was produced by a Virtual School Head."]
    paras, removed = page_paragraphs(lines)
    texts = [p.text for p in paras]
    assert "Getting the most from Pupil Premium Plus:" in texts[0]
    assert "include SMART short-term targets for Year 11" in texts[0]
    # Real numbers stay, although 11, 22, 4, 9 ... could be footnote numbers.
    assert "KS3-4 under section 22" in texts[0] and "£2,345 in 2018 (see paragraph 1.9)" in texts[0]
    assert texts[0].endswith("as a last resort .")  # the PDF's own space before the full stop
    assert removed == 3
    notes = [(p.label, p.text) for p in paras if p.kind == "footnote"]
    assert notes == [("8", "SMART means specific, significant and stretching."), ("9", "A second note."),
                     ("10", "A third note over two lines."), ("11", "This table was produced by a Virtual School Head.")]


def test_a_number_is_not_a_marker_without_its_footnote():
    assert strip_markers("Plus11: and SMART8", set()) == ("Plus11: and SMART8", 0)
    paras, removed = page_paragraphs(["We saw 11 pupils in Year11 and KS3.", "", "Nothing else here."])
    assert removed == 0 and "Year11" in paras[0].text


def test_footnotes_continue_across_pages():
    numbering = Numbering()
    page_paragraphs(["Body text with a marker5 here.", "", "5 The first note."], numbering=numbering)
    assert numbering.footnote == 5
    body = ["The rest of the body text goes on here and does not end", "with any marker at all today."] * 3
    paras, _ = page_paragraphs(body + ["", "6 A note whose marker was on the page before."], numbering=numbering)
    assert paras[-1].kind == "footnote" and paras[-1].label == "6"


# -- paragraph numbers and list items ------------------------------------------
def test_numbered_paragraphs_and_list_items_keep_their_marker_as_a_label():
    lines = ["Allocating places", "2.7 Admission authorities must allocate places on the basis of their",
             "determined arrangements only.", "113. There is no automatic right to take a public",
             "examination on the school's premises.", "• Supporting pupil transition (e.g. primary-secondary/KS3-4)",
             "o any person that has parental responsibility for the child;", "a) the headteacher;",
             "The deadline for secondary school places is the", "31 October for all schools in the area."]
    paras, _ = page_paragraphs(lines)
    got = [(p.kind, p.label, p.text) for p in paras]
    assert got == [
        ("heading", "", "Allocating places"),
        ("numbered", "2.7", "Admission authorities must allocate places on the basis of their determined arrangements only."),
        ("numbered", "113", "There is no automatic right to take a public examination on the school's premises."),
        ("item", "•", "Supporting pupil transition (e.g. primary-secondary/KS3-4)"),
        ("item", "o", "any person that has parental responsibility for the child;"),
        ("item", "a)", "the headteacher;"),
        ("", "", "The deadline for secondary school places is the 31 October for all schools in the area."),
    ]


def test_a_bare_number_starts_a_paragraph_only_when_it_continues_the_numbering():
    numbering = Numbering(paragraph="68")
    paras, _ = page_paragraphs(["69 If the pupil is previously looked-after the VSH should advise.",
                                "16 to 19 year olds are not affected.", "70 Governing boards must meet."],
                               numbering=numbering)
    assert [(p.label, p.text[:10]) for p in paras] == [("69", "If the pup"), ("70", "Governing ")]
    assert "16 to 19 year olds" in paras[0].text
    assert numbering.paragraph == "70"


def test_line_end_hyphens_follow_the_documents_spelling():
    paras, _ = page_paragraphs(["Promoting the education of looked-", "after children needs inclu-", "sion."],
                               frozenset({"looked-after"}))
    assert paras[0].text == "Promoting the education of looked-after children needs inclusion."


def test_contents_pages_are_dropped():
    toc = ["Contents", "Summary 4", "About this guidance 4", "Who is this guidance for? 5"]
    assert is_contents_page(toc)
    assert drop_contents_lines(toc, True) == []
    mixed = ["VISIT OUR WEBSITE", "GLOSSARY .............................. 23", "AUTHORS"]
    assert not is_contents_page(mixed)
    assert drop_contents_lines(mixed, False) == ["VISIT OUR WEBSITE", "AUTHORS"]
    # A body page that merely has lines ending in numbers is not a contents page.
    assert not is_contents_page(["The duty is in section 22", "of the Children Act 1989 and in", "regulation 5"])


# -- split words ------------------------------------------------------------------------
def test_split_words_are_joined_only_when_the_join_is_a_word_and_a_part_is_not():
    text = ("admission authorities m ay request; The governi ng body; For t he allocation; T he ability; "
            "a part of it; came in to school; R v Greenwich; Annex B in the advice; Jones, L et al.; "
            "discuss t his; Buildin g trust; Mc Crory")
    counts = word_counts([text, "governing governing may the this building trust"])
    joined, joins = join_split_words(text, counts)
    assert joined == ("admission authorities may request; The governing body; For the allocation; The ability; "
                      "a part of it; came in to school; R v Greenwich; Annex B in the advice; Jones, L et al.; "
                      "discuss this; Building trust; Mc Crory")
    assert len(joins) == 6


# -- the real guidance PDFs -------------------------------------------------------
def test_lac_guidance_markers_items_and_footnotes():
    ex = _extracted(LAC)
    assert _seg(ex, "Getting the most from Pupil Premium Plus").text == "Getting the most from Pupil Premium Plus:"
    smart = _seg(ex, "short-term targets, including progress monitoring")
    assert smart.kind == "item" and smart.text.startswith("include SMART short-term targets")
    note = next(s for s in ex.segments if s.kind == "footnote" and s.label == "8")
    assert note.text.startswith("SMART means specific") and note.page == smart.page
    assert _seg(ex, "child looked after by them").text.count("after1") == 0
    assert not any("lookedafter" in s.text for s in ex.segments)
    sub = _seg(ex, "any person that has parental responsibility")
    assert (sub.kind, sub.label, sub.text) == ("item", "o", "any person that has parental responsibility for the child;")


def test_suspension_guidance_footnote_is_not_a_sentence_start():
    ex = _extracted(SUSPENSION)
    note = next(s for s in ex.segments if s.page == 42 and "If the pupil is previously looked-after (PLAC)" in s.text)
    assert (note.kind, note.label, note.page) == ("footnote", "69", 42)
    assert _seg(ex, "if the pupil is looked-after, the VSH").kind == "item"
    para = _seg(ex, "There is no automatic right for a suspended")
    assert (para.kind, para.label) == ("numbered", "113")
    assert _seg(ex, "body must give written notification").text.startswith("The governing body must give")


def test_admissions_code_kerning_and_numbered_paragraphs():
    ex = _extracted(ADMISSIONS)
    assert any("admission authorities may request a copy" in s.text for s in ex.segments)
    assert not any(" m ay " in s.text for s in ex.segments)
    para = _seg(ex, "Admission authorities must allocate places on the basis of their determined")
    assert (para.kind, para.label) == ("numbered", "2.7") and para.text.startswith("Admission authorities")
    assert not any("......" in s.text for s in ex.segments), "contents-page entries are not text"


@pytest.mark.parametrize("path", GUIDANCE, ids=lambda p: p.name[:30])
def test_no_glyph_or_stray_number_leads_a_segment_or_passage(path):
    ex = _extracted(path)
    for s in ex.segments:
        assert not s.text[:1] in "•▪◼●\uf0b7\uf0a7", s.text[:60]
        if s.kind in ("numbered", "footnote"):
            assert s.label and not NUMBER_LED.match(s.text), s.text[:60]
    text, blocks = assemble(ex.segments)
    chunks = chunk_document(text, blocks)
    led = [c.text[:50] for c in chunks if NUMBER_LED.match(c.text)]
    assert not led
    for c in chunks:
        assert text[c.char_start:c.char_end] == c.text
        assert c.char_start == 0 or not (text[c.char_start - 1].isalnum() and c.text[0].isalnum()), "mid-word start"
        covered = [b.segment.page for b in blocks if b.start < c.char_end and b.end > c.char_start]
        assert (c.page_start, c.page_end) == (min(covered), max(covered))


# -- titles -----------------------------------------------------------------------------
def _without_title(path) -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter(clone_from=str(path))
    w.add_metadata({"/Title": ""})
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_title_from_the_largest_type_on_page_one_not_the_file_name():
    ex = extract_pdf_bytes(_without_title(LAC), "dfe-2018-promoting-education.pdf")
    assert ex.meta["title"] == "Promoting the education of looked-after children and previously looked-after children"
    ex = extract_pdf_bytes(_without_title(ADMISSIONS), "x.pdf")
    assert ex.meta["title"] == "School Admissions Code"


def test_draft_and_file_name_metadata_titles_are_not_titles():
    class Reader:
        metadata = {"/Title": "Microsoft Word - Cheshire East - draft report"}

    assert "title" not in _pdf_meta(Reader(), "x.pdf")
    Reader.metadata = {"/Title": "80495_greenwich__children_s_services_inspection_-_16_july_2024"}
    assert "title" not in _pdf_meta(Reader(), "80495_greenwich__children_s_services_inspection_-_16_july_2024.pdf")
    Reader.metadata = {"/Title": "School admissions code 2021"}
    assert _pdf_meta(Reader(), "x.pdf")["title"] == "School admissions code 2021"


@pytest.mark.parametrize("name, title", [
    ("edu_plac/ofsted-sif-cheshire-east-2015-09-15.pdf", "Cheshire East Unitary Authority: Inspection of services for "
     "children in need of help and protection, children looked after and care leavers"),
    ("edu_plac/ofsted-sif-richmond-upon-thames-2017-12-08.pdf", "London Borough of Richmond upon Thames: Inspection of "
     "services for children in need of help and protection, children looked after and care leavers"),
    ("edu_plac/uktc-mccrory-childhood-trauma-the-brain-and-the-social-world.pdf",
     "Childhood trauma, the brain and the social world"),
    ("edu/ofsted_ilacs_childrens_services/80495_greenwich__children_s_services_inspection_-_16_july_2024.pdf",
     "Inspection of Royal Borough of Greenwich local authority children’s services"),
])
def test_inspection_and_report_titles_come_from_the_document(name, title):
    assert extract_file(shared_path("data", *name.split("/"))).meta["title"] == title
