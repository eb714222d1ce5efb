"""Cutting an assembled document into passages that fit the model.

Passages follow sentence and paragraph boundaries and hold at most
``max_words`` words (MiniLM reads 256 word-pieces; about 185 words of English
prose fit, so 150 leaves room for long words and numbers). Consecutive
passages share up to ``overlap_words`` words of whole trailing sentences, so an
answer that straddles a boundary is still found whole in one of them.

Every passage is an exact slice of the document text (``text[start:end]``), so
char offsets always map back, and it inherits pages, time spans, speaker and
section from the segments it covers. A change of speaker (a new forum post,
another voice in a transcript) or between transcript and prose always starts a
new passage: a citation must not put words in the wrong mouth.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from search.store import NewChunk
from search.text import WORD_RE, content_hash, sentence_spans

from .segments import Block

# Passages shorter than this at the end of a group are merged back into the
# previous passage when the result stays within bounds.
MIN_WORDS = 25


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    words: int
    block: int


def embedding_text(title: str | None, passage: str) -> str:
    """What the model reads for a passage: the document title, then the passage.

    A passage out of context ("This session will explore...") loses what it is
    about; prefixing the title (a "contextual chunk header") lets the vector
    carry it. The stored passage text stays the exact slice of the document.
    """
    title = " ".join((title or "").split())
    if not title or passage.lstrip().startswith(title[:40]):
        return passage
    return f"{title}\n\n{passage}"


#: A reply is embedded together with the post before it when that post is a
#: short question: the reply's vector then knows what it answers. The stored
#: passage text is unchanged.
REPLY_CONTEXT_WORDS = 50


def embedding_inputs(chunks: list[NewChunk], title: str | None = None) -> list[str]:
    """What the model reads for each passage (see :func:`embedding_text`).

    In threads and interviews (passages with speakers), a passage that starts
    a new speaker's turn after a short question is read with that question, so
    "what would you do with a magic wand?" and its answer meet in one vector.
    """
    out = []
    for i, c in enumerate(chunks):
        text = c.text
        prev = chunks[i - 1] if i else None
        if (c.speaker and prev is not None and prev.speaker and prev.speaker != c.speaker
                and len(prev.text.split()) <= REPLY_CONTEXT_WORDS and prev.text.rstrip().endswith("?")):
            text = f"{prev.text}\n\n{text}"
        out.append(embedding_text(title, text))
    return out


def _units(text: str, blocks: list[Block], max_words: int) -> list[_Unit]:
    units = []
    for bi, block in enumerate(blocks):
        for a, b in sentence_spans(text, block.start, block.end):
            matches = list(WORD_RE.finditer(text, a, b))
            if len(matches) <= max_words:
                units.append(_Unit(a, b, max(1, len(matches)), bi))
                continue
            # A "sentence" longer than a passage (tables, run-on lists): cut it
            # into word windows so nothing is lost to truncation.
            for i in range(0, len(matches), max_words):
                window = matches[i : i + max_words]
                s = a if i == 0 else window[0].start()
                e = b if i + max_words >= len(matches) else matches[i + max_words].start()
                while e > s and text[e - 1].isspace():
                    e -= 1
                units.append(_Unit(s, e, len(window), bi))
    return units


def _group_key(block: Block) -> tuple:
    return (block.segment.speaker, block.segment.transcript)


def chunk_document(
    text: str, blocks: list[Block], *, max_words: int = 150, overlap_words: int = 30
) -> list[NewChunk]:
    """Passages of ``text`` covering every block, with provenance.

    ``blocks`` must be ordered and non-overlapping (as :func:`assemble` makes).
    """
    if max_words < 10:
        raise ValueError("max_words must be at least 10")
    units = _units(text, blocks, max_words)
    groups: list[list[list[_Unit]]] = []  # per group key: list of passages (unit lists)
    current: list[_Unit] = []
    passages: list[list[_Unit]] = []
    prev_key = None

    def flush():
        nonlocal current
        if current:
            passages.append(current)
        current = []

    for u in units:
        key = _group_key(blocks[u.block])
        if prev_key is not None and key != prev_key:
            flush()
            groups.append(passages)
            passages = []
        prev_key = key
        size = sum(x.words for x in current)
        if current and size + u.words > max_words:
            done = current
            flush()
            # Overlap: whole trailing sentences up to overlap_words, never the
            # entire previous passage (that would loop on long sentences).
            carry: list[_Unit] = []
            total = 0
            for x in reversed(done[1:]):
                if total + x.words > overlap_words or total + x.words + u.words > max_words:
                    break
                carry.insert(0, x)
                total += x.words
            current = carry
        current.append(u)
    flush()
    groups.append(passages)

    out: list[NewChunk] = []
    starts = [b.start for b in blocks]
    for passages in groups:
        merged = _merge_small_tail(passages, max_words)
        for p in merged:
            out.append(_make_chunk(text, blocks, starts, p[0].start, p[-1].end))
    return out


def _merge_small_tail(passages: list[list[_Unit]], max_words: int) -> list[list[_Unit]]:
    if len(passages) >= 2:
        tail = passages[-1]
        prev = passages[-2]
        tail_words = sum(u.words for u in tail)
        prev_ids = {(u.start, u.end) for u in prev}
        extra = [u for u in tail if (u.start, u.end) not in prev_ids]
        if tail_words < MIN_WORDS and sum(u.words for u in prev) + sum(u.words for u in extra) <= int(max_words * 1.2):
            return passages[:-2] + [prev + extra]
    return passages


def _make_chunk(text: str, blocks: list[Block], starts: list[int], start: int, end: int) -> NewChunk:
    first = max(0, bisect.bisect_right(starts, start) - 1)
    covered = []
    for b in blocks[first:]:
        if b.start >= end:
            break
        if b.end > start:
            covered.append(b.segment)
    pages = [s.page for s in covered if s.page is not None]
    t_starts = [s.t_start for s in covered if s.t_start is not None]
    t_ends = [s.t_end for s in covered if s.t_end is not None]
    speakers = {s.speaker for s in covered}
    body = text[start:end]
    return NewChunk(
        text=body,
        char_start=start,
        char_end=end,
        text_hash=content_hash(body),
        page_start=min(pages) if pages else None,
        page_end=max(pages) if pages else None,
        t_start=min(t_starts) if t_starts else None,
        t_end=max(t_ends) if t_ends else None,
        speaker=covered[0].speaker if covered and len(speakers) == 1 else "",
        section=covered[0].section if covered else "",
    )
