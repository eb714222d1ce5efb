"""The intermediate form every extractor produces and the cleaner filters.

An extractor turns a source into ordered :class:`Segment` objects (a
paragraph, a PDF page's paragraph, a transcript cue, a forum post) that carry
their own citation facts (page, time span, speaker, section). The cleaner
drops or trims segments; :func:`assemble` then joins the survivors into the
document text and records where each one lies, so chunks can inherit pages
and timestamps by character offset.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

#: Separator between segments in the assembled document text.
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Segment:
    """A piece of text with the provenance a citation needs.

    ``page`` is 1-based; ``t_start``/``t_end`` are seconds; ``speaker`` is the
    author of a forum post or the voice in a transcript; ``section`` the
    nearest heading; ``transcript`` marks spoken text (video transcripts).
    """

    text: str
    page: int | None = None
    t_start: float | None = None
    t_end: float | None = None
    speaker: str = ""
    section: str = ""
    transcript: bool = False

    def with_text(self, text: str) -> "Segment":
        return replace(self, text=text)


@dataclass
class Extracted:
    """An extractor's result: segments plus document metadata.

    ``meta`` keys used downstream: title, author, date (ISO ``YYYY-MM-DD`` or
    ``YYYY``), site, url, language, kind (one of ``search.types.KINDS``),
    tags (list). Unknown keys are kept in the store's JSON ``meta`` column.
    """

    segments: list[Segment]
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Block:
    """Where one segment lies in the assembled text: ``text[start:end]``."""

    start: int
    end: int
    segment: Segment


def assemble(segments: list[Segment]) -> tuple[str, list[Block]]:
    """Join segment texts with :data:`SEPARATOR`; return the text and blocks."""
    parts: list[str] = []
    blocks: list[Block] = []
    pos = 0
    for seg in segments:
        text = seg.text.strip()
        if not text:
            continue
        if parts:
            parts.append(SEPARATOR)
            pos += len(SEPARATOR)
        parts.append(text)
        blocks.append(Block(pos, pos + len(text), seg))
        pos += len(text)
    return "".join(parts), blocks


def blocks_to_rows(blocks: list[Block]) -> tuple[tuple, ...]:
    """Blocks as plain rows for storage (JSON), see :func:`rows_to_blocks`."""
    return tuple(
        (b.start, b.end, b.segment.page, b.segment.t_start, b.segment.t_end,
         b.segment.speaker, b.segment.section, b.segment.transcript)
        for b in blocks
    )


def rows_to_blocks(text: str, rows: list) -> list[Block]:
    """Rebuild blocks from stored rows; the whole text is one block if none were stored."""
    if not rows:
        return [Block(0, len(text), Segment(text))] if text else []
    out = []
    for start, end, page, t_start, t_end, speaker, section, transcript in rows:
        seg = Segment(text[start:end], page, t_start, t_end, speaker or "", section or "", bool(transcript))
        out.append(Block(start, end, seg))
    return out
