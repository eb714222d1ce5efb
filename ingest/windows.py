"""Files read a window at a time: window sizes, the read-ahead thread, and
the site-furniture pass that needs a window of one site's pages.

A batch's files are read, extracted and cleaned in windows (bounding
memory), the next window on a worker thread while the model embeds this
one. Within a window, short paragraphs repeated on at least half of one
site's (or folder's) pages are navigation and dropped.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Sequence, TypeVar

from .clean import remove_cross_document_boilerplate
from .segments import Extracted

T = TypeVar("T")
R = TypeVar("R")

#: Files read and cleaned together before embedding (bounds memory).
WINDOW = 200
#: The first window is smaller: reading it is the one wait nothing
#: overlaps (42 PDF/HTML files took 6 s to parse before the model started),
#: so the model starts after 16 files and each next window doubles up to
#: WINDOW. 16 pages are still enough to see a site's navigation repeat.
FIRST_WINDOW = 16


def windows(n: int) -> list[tuple[int, int]]:
    """(start, end) of each window over ``n`` files: FIRST_WINDOW, doubling up to WINDOW."""
    out, start, size = [], 0, min(FIRST_WINDOW, WINDOW)
    while start < n:
        out.append((start, min(n, start + size)))
        start += size
        size = min(WINDOW, size * 2)
    return out


@dataclass
class Loaded:
    """A file read, extracted and cleaned, waiting for the site-furniture pass."""

    tag: object
    source: str
    uri: str
    chash: str
    extracted: Extracted
    meta: dict
    existing: object
    site_key: str


def remove_site_furniture(loaded: list[Loaded]) -> list[Loaded]:
    """Drop short paragraphs repeated across most pages of one site (or folder)."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(loaded):
        groups.setdefault(item.site_key, []).append(i)
    out = list(loaded)
    for members in groups.values():
        if len(members) < 3:
            continue
        docs = [Extracted(loaded[i].extracted.segments, {"site": "s"}) for i in members]
        # Navigation repeats on (nearly) every page; real content shared by a
        # few documents must survive: require half the site's pages.
        cleaned = remove_cross_document_boilerplate(docs, min_docs=max(3, (len(members) + 1) // 2))
        for i, doc in zip(members, cleaned):
            if doc.segments:
                item = loaded[i]
                out[i] = replace(item, extracted=Extracted(doc.segments, item.extracted.meta))
    return out


def read_ahead(
    items: Sequence[T],
    load: Callable[[int, T], R],
    consume: Callable[[list[tuple[int, R]]], None],
    *,
    first_tag: int = 0,
) -> None:
    """``load(tag, item)`` every item a window at a time on a worker thread,
    ``consume([(tag, loaded), ...])`` each window on the caller's thread
    while the next one is read: parsing (pypdf, trafilatura) overlaps the
    model. Tags number the items from ``first_tag``, in order. Whatever
    ``load`` or ``consume`` raises reaches the caller once the worker has
    stopped.
    """
    spans = windows(len(items))

    def read(span: tuple[int, int]) -> list[tuple[int, R]]:
        start, end = span
        return [(first_tag + i, load(first_tag + i, items[i])) for i in range(start, end)]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-read") as reader:
        ahead = reader.submit(read, spans[0]) if spans else None
        for k in range(len(spans)):
            outcomes = ahead.result()
            ahead = reader.submit(read, spans[k + 1]) if k + 1 < len(spans) else None
            consume(outcomes)
