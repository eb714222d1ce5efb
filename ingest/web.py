"""Web sources: URLs, sitemaps, feeds, same-site crawls and refresh.

Fetching lives in :mod:`ingest.fetch`; this module decides what to fetch,
routes each response to the right extractor by content type, and hands the
result to the same :class:`~ingest.pipeline.Ingestor` as local files, so web
pages get the same cleaning, chunking, idempotence and one-transaction
writes.

A page is stored under its canonical URL (``<link rel=canonical>`` as
trafilatura reports it, else the URL after redirects); the URL asked for and
the redirect target are kept as aliases, so the same article reached by two
URLs is stored once. ETag and Last-Modified are kept in the document's
metadata for conditional re-fetching by :meth:`WebIngest.refresh`.
"""
from __future__ import annotations

import logging
import urllib.parse
from collections import deque
from typing import Iterable

from search.errors import EquisearchError, ExtractionError
from search.text import content_hash

from . import charset, extract
from .fetch import FetchError, Fetcher, FetchResult, looks_like_article, page_links, parse_feed, parse_sitemap
from .pipeline import PIPELINE_VERSION, Ingestor, IngestReport, ItemResult, Progress, one_line

log = logging.getLogger(__name__)

_TEXT_TYPES = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-rst": ".rst",
    "text/x-markdown": ".md",
    "text/vtt": ".vtt",
    "application/x-subrip": ".srt",
    "text/srt": ".srt",
}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}


def decode_body(res: FetchResult) -> str:
    """Response text: the HTTP charset (and for HTML the page's ``<meta>``)
    honoured but checked against the bytes, see :mod:`ingest.charset`."""
    if res.content_type in _TEXT_TYPES:
        return charset.decode_text(res.body, res.final_url, declared=res.charset)
    return charset.decode_html(res.body, res.final_url, declared=res.charset)


def extract_response(res: FetchResult):
    """Route a fetched response to the extractor for its content type."""
    name = urllib.parse.urlsplit(res.final_url).path.rsplit("/", 1)[-1] or res.final_url
    ctype = res.content_type
    if ctype in _HTML_TYPES or (ctype in ("", "application/octet-stream") and res.body.lstrip()[:1] == b"<"):
        return extract.extract_html(decode_body(res), url=res.final_url)
    if ctype == "application/pdf" or res.body[:5] == b"%PDF-":
        return extract.extract_pdf_bytes(res.body, name)
    if ctype in _TEXT_TYPES:
        return extract.extract_text(decode_body(res), name, _TEXT_TYPES[ctype])
    raise ExtractionError(
        f"{res.final_url}: content type {ctype or 'unknown'} is not supported: "
        "equisearch reads HTML, PDF, plain text, Markdown, VTT and SRT"
    )


class WebIngest:
    """Fetch-and-ingest for one batch, sharing one polite :class:`Fetcher`."""

    def __init__(self, ingestor: Ingestor, fetcher: Fetcher | None = None):
        self.ingestor = ingestor
        self.store = ingestor.store
        self.fetcher = fetcher or Fetcher()

    # -- discovery -------------------------------------------------------
    def sitemap_urls(self, url: str, limit: int = 10000) -> list[str]:
        """Page URLs of a sitemap, following sitemap indexes (bounded)."""
        pages: list[str] = []
        todo, seen = deque([url]), set()
        while todo and len(pages) < limit and len(seen) < 100:
            current = todo.popleft()
            if current in seen:
                continue
            seen.add(current)
            found, children = parse_sitemap(self.fetcher.fetch(current).body)
            pages += found
            todo.extend(children)
        return list(dict.fromkeys(pages))[:limit]

    def feed_urls(self, url: str) -> list[str]:
        """Entry links of an RSS or Atom feed, in feed order (relative ones against the feed's URL)."""
        res = self.fetcher.fetch(url)
        return list(dict.fromkeys(parse_feed(res.body, res.final_url)))

    def crawl_urls(self, start: str, max_pages: int = 50) -> list[str]:
        """Breadth-first same-site crawl, focused on article-like links.

        Returns the pages it reached (their text is fetched again by ingest;
        the fetcher is polite, so this costs one delay per page).
        """
        reached: list[str] = []
        todo, seen = deque([start]), {start}
        while todo and len(reached) < max_pages:
            url = todo.popleft()
            try:
                res = self.fetcher.fetch(url)
            except FetchError as exc:
                log.warning("crawl: %s", exc)
                continue
            if res.content_type not in _HTML_TYPES:
                continue
            reached.append(res.final_url)
            try:
                html = decode_body(res)
            except ExtractionError as exc:  # binary served as text/html: no links to follow
                log.warning("crawl: %s", exc)
                continue
            for link in page_links(html, res.final_url):
                if link not in seen and looks_like_article(link):
                    seen.add(link)
                    todo.append(link)
        return reached

    # -- ingest ----------------------------------------------------------
    def ingest_urls(self, urls: Iterable[str], *, overrides: dict | None = None,
                    progress: Progress | None = None) -> IngestReport:
        """Fetch and ingest each URL; one bad URL never stops the batch."""
        self.ingestor.check_store()
        urls = list(dict.fromkeys(u.strip() for u in urls if u.strip()))
        report = IngestReport()
        with self.ingestor.writing():
            for i, url in enumerate(urls, start=1):
                result = self.ingest_url(url, overrides or {})
                report.results.append(result)
                if progress:
                    progress(result, i, len(urls))
        return report

    def ingest_url(self, url: str, overrides: dict, *, conditional: bool = False) -> ItemResult:
        existing = self.store.find_document(url)
        etag = last_mod = ""
        # "Has it changed?" only when the current pipeline read it: a page read
        # by an older one must be fetched again to be read by this one.
        if conditional and existing is not None and existing.pipeline_version == PIPELINE_VERSION:
            meta = self.store.document_meta(existing.id)
            etag, last_mod = meta.get("etag", ""), meta.get("last_modified", "")
        try:
            res = self.fetcher.fetch(url, etag=etag, last_modified=last_mod)
        except EquisearchError as exc:
            return ItemResult(url, "failed", one_line(exc, url))
        if res.not_modified and existing is not None:
            return ItemResult(url, "unchanged", "not modified (HTTP 304)", existing.id, existing.n_chunks, existing.title)
        chash = content_hash(PIPELINE_VERSION.encode() + b"\0" + res.body)
        if existing is None and res.final_url != url:
            existing = self.store.find_document(res.final_url)
        if existing is not None and existing.content_hash == chash:
            return ItemResult(url, "unchanged", doc_id=existing.id, chunks=existing.n_chunks, title=existing.title)
        try:
            extracted = extract_response(res)
        except EquisearchError as exc:
            return ItemResult(url, "failed", one_line(exc, url))
        except Exception as exc:  # a parser bug must not sink the batch
            log.exception("unexpected error extracting %s", url)
            return ItemResult(url, "failed", f"could not be read ({type(exc).__name__}): report this URL as a bug")
        canonical = str(extracted.meta.get("url") or "")
        if not canonical.startswith(("http://", "https://")):
            canonical = res.final_url
        if existing is None:
            existing = self.store.find_document(canonical)
            if existing is not None and existing.content_hash == chash:
                # Another URL of an article we already have: remember the URL.
                for alias in dict.fromkeys((url, res.final_url)):
                    if alias != existing.uri:
                        self.store.add_alias(existing.id, alias)
                return ItemResult(url, "duplicate", f"same page as {existing.uri}", existing.id, existing.n_chunks,
                                  existing.title)
        uri = existing.uri if existing is not None else canonical
        meta = {"url": canonical, "etag": res.etag, "last_modified": res.last_modified,
                "site": extracted.meta.get("site") or urllib.parse.urlsplit(canonical).netloc, **overrides}
        if not (extracted.meta.get("kind") or overrides.get("kind")):
            meta["kind"] = "article"
        aliases = tuple(a for a in dict.fromkeys((url, res.final_url, canonical)) if a != uri)
        return self.ingestor.ingest_extracted(uri, chash, extracted, meta, existing=existing, source=url,
                                              aliases=aliases)

    def refresh(self, sources: Iterable[str] = (), progress: Progress | None = None) -> IngestReport:
        """Re-fetch web documents (all, or those named) with conditional requests."""
        wanted = set(sources)
        docs = [d for d in self.store.documents() if d.uri.startswith(("http://", "https://"))]
        if wanted:
            docs = [d for d in docs if d.uri in wanted or str(d.id) in wanted or wanted & set(d.aliases)]
        self.ingestor.check_store()
        report = IngestReport()
        with self.ingestor.writing():
            for i, doc in enumerate(docs, start=1):
                result = self.ingest_url(doc.uri, {}, conditional=True)
                report.results.append(result)
                if progress:
                    progress(result, i, len(docs))
        return report
