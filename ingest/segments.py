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

    ``kind`` says what the text is when it is not running prose: "item" (a
    bulleted or lettered list item), "numbered" (a numbered paragraph or list
    item), "footnote", "heading". ``label`` is the marker printed before it
    ("•", "a)", "2.6", the footnote's number), kept here and not in ``text``
    so that no sentence starts with a bullet or a stray number, and an
    answer can still show an item as an item or cite "paragraph 2.6".
    """

    text: str
    page: int | None = None
    t_start: float | None = None
    t_end: float | None = None
    speaker: str = ""
    section: str = ""
    transcript: bool = False
    kind: str = ""
    label: str = ""

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
    """Blocks as plain rows for storage (JSON), see :func:`rows_to_blocks`.

    [start, end, page, t_start, t_end, speaker, section, transcript, kind,
    label]; the last two are written only when set, so prose documents store
    the same rows as before kinds existed.
    """
    rows = []
    for b in blocks:
        s = b.segment
        row = (b.start, b.end, s.page, s.t_start, s.t_end, s.speaker, s.section, s.transcript)
        rows.append(row + (s.kind, s.label) if s.kind or s.label else row)
    return tuple(rows)


def rows_to_blocks(text: str, rows: list) -> list[Block]:
    """Rebuild blocks from stored rows; the whole text is one block if none were stored.

    Rows of 8 fields (stores written before blocks had a kind) and of 10 both load.
    """
    if not rows:
        return [Block(0, len(text), Segment(text))] if text else []
    out = []
    for row in rows:
        start, end, page, t_start, t_end, speaker, section, transcript = row[:8]
        kind, label = (list(row[8:10]) + ["", ""])[:2]
        seg = Segment(text[start:end], page, t_start, t_end, speaker or "", section or "", bool(transcript),
                      kind or "", label or "")
        out.append(Block(start, end, seg))
    return out
