"""Chunking: exact offsets, provenance, limits and overlap."""
from __future__ import annotations

from hypothesis import given, settings as hsettings, strategies as st

from ingest.chunk import chunk_document
from ingest.segments import Segment, assemble
from search.text import words

SENT = "Pupils with an EHC plan receive support from the SENCO and class teacher."


def test_offsets_map_back_and_limits_hold():
    segs = [Segment(" ".join([SENT] * 6), page=p) for p in range(1, 6)]
    text, blocks = assemble(segs)
    chunks = chunk_document(text, blocks, max_words=60, overlap_words=15)
    assert len(chunks) > 3
    for c in chunks:
        assert text[c.char_start:c.char_end] == c.text
        assert len(words(c.text)) <= 60 + 15
    # Every sentence occurrence lies inside at least one chunk.
    covered = set()
    for c in chunks:
        covered.update(range(c.char_start, c.char_end))
    assert all(i in covered for i in range(len(text)) if not text[i].isspace())


def test_page_span_follows_segments():
    segs = [Segment(SENT * 1, page=7), Segment("Second page sentence is here and short.", page=8)]
    text, blocks = assemble(segs)
    (chunk,) = chunk_document(text, blocks, max_words=150)
    assert (chunk.page_start, chunk.page_end) == (7, 8)


def test_overlap_repeats_trailing_sentence():
    text, blocks = assemble([Segment(" ".join(f"Sentence number {i} is about attendance." for i in range(40)))])
    chunks = chunk_document(text, blocks, max_words=40, overlap_words=12)
    for a, b in zip(chunks, chunks[1:]):
        assert b.char_start < a.char_end, "consecutive passages should overlap"


def test_speaker_change_starts_new_passage():
    segs = [Segment("alice: I think tutoring works well for us.", speaker="alice"),
            Segment("bob: We saw gains in reading with small groups.", speaker="bob")]
    text, blocks = assemble(segs)
    chunks = chunk_document(text, blocks)
    assert [c.speaker for c in chunks] == ["alice", "bob"]


def test_transcript_times_are_min_and_max():
    segs = [Segment(f"Cue {i} says something useful here.", t_start=10.0 * i, t_end=10.0 * i + 9, transcript=True)
            for i in range(5)]
    text, blocks = assemble(segs)
    (chunk,) = chunk_document(text, blocks)
    assert (chunk.t_start, chunk.t_end) == (0.0, 49.0)


def test_very_long_sentence_is_cut_not_lost():
    text, blocks = assemble([Segment(" ".join(["word"] * 500))])
    chunks = chunk_document(text, blocks, max_words=100, overlap_words=0)
    assert sum(len(words(c.text)) for c in chunks) == 500
    assert all(len(words(c.text)) <= 120 for c in chunks)


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=400),
                min_size=1, max_size=8),
       st.integers(min_value=10, max_value=80), st.integers(min_value=0, max_value=30))
def test_property_offsets_always_map_back(paragraphs, max_words, overlap):
    text, blocks = assemble([Segment(p, page=i + 1) for i, p in enumerate(paragraphs)])
    for c in chunk_document(text, blocks, max_words=max_words, overlap_words=overlap):
        assert text[c.char_start:c.char_end] == c.text
        assert c.text.strip()
        assert 1 <= c.page_start <= c.page_end <= len(paragraphs)
