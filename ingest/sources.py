"""The "add sources" use-case, written once for every edge.

``equisearch ingest`` and the UI's "Add sources" page both describe what to
add as a :class:`SourceRequest` and call :func:`add_sources`; they keep only
what is theirs (parsing arguments or form fields, saving uploads, showing
progress, the UI's one-writer-per-process lock). The caller chooses the
:class:`~ingest.fetch.FetchPolicy`: the UI refuses private addresses, the
operator's command line does not.

Local files and folders are ingested first, then every web page: the URLs
given, those listed in URL files, and those a sitemap, feed or crawl finds.
One bad source never stops the batch: a URL-file line that is no URL or a
sitemap that cannot be read becomes a failed result like any other.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

from search.errors import EquisearchError
from search.settings import Settings

if TYPE_CHECKING:  # the pipeline (numpy, the store) loads when sources are added, not on import
    from .fetch import FetchPolicy
    from .pipeline import IngestReport, Progress as ItemProgress

#: The stages :func:`add_sources` runs, in order (names passed to :meth:`Progress.stage`).
FILES, WEB = "files", "web"


@dataclass(frozen=True)
class SourceRequest:
    """What to add, as the edges collect it.

    ``paths``: files and folders; an http(s) URL among them is fetched like
    one in ``urls`` (a command line's arguments mix both), any other
    ``scheme://`` is refused by name. ``url_files``: (label, text) of files
    of URLs, one a line; a bad line is reported as ``label:line-number``.
    ``sitemaps``, ``feeds``, ``crawls``: pages to discover (``max_pages`` per
    crawl). ``overrides``: metadata recorded for every source (empty values
    are ignored).
    """

    paths: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    crawls: tuple[str, ...] = ()
    max_pages: int = 50
    url_files: tuple[tuple[str, str], ...] = ()
    overrides: Mapping[str, object] = field(default_factory=dict)

    @property
    def local_paths(self) -> list[str]:
        return [p for p in self.paths if not _is_web(p)]

    @property
    def wants_web(self) -> bool:
        return bool(self.urls or self.sitemaps or self.feeds or self.crawls or self.url_files
                    or any(_is_web(p) for p in self.paths))

    @property
    def is_empty(self) -> bool:
        return not (self.local_paths or self.wants_web)


def _is_web(path: str) -> bool:
    return str(path).startswith(("http://", "https://"))


class Progress:
    """What :func:`add_sources` reports while it works; this base reports
    nothing but ``on_item(result, done, total)`` for every source.

    Edges that show more (the CLI's bar per stage, its "sitemap URL: N
    pages" line) override :meth:`stage` and :meth:`found`.
    """

    def __init__(self, on_item: ItemProgress | None = None):
        self.on_item = on_item

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[ItemProgress | None]:
        """Around one stage (:data:`FILES`, then :data:`WEB`): yields the per-source callback."""
        yield self.on_item

    def found(self, how: str, source: str, pages: list[str]) -> None:
        """A sitemap, feed or crawl (``how``) named ``source`` led to ``pages``."""


def add_sources(
    store_home: str | os.PathLike,
    settings: Settings,
    request: SourceRequest,
    *,
    policy: FetchPolicy,
    progress: Progress | None = None,
    embedder=None,
) -> IngestReport:
    """Add what ``request`` names to the store at ``store_home`` (created if missing).

    Returns one result per source: files, URL-file lines that are no URL,
    sitemaps/feeds/crawls that failed, then web pages. Raises only what
    stops the whole batch: :class:`~search.errors.StoreMismatch` for a store
    built by another model, :class:`~search.errors.StoreLocked` when another
    writer holds it.
    """
    from search.store import open_store

    from .fetch import Fetcher, read_url_list
    from .pipeline import IngestReport, Ingestor, ItemResult, one_line
    from .web import WebIngest

    report = IngestReport()
    if request.is_empty:
        return report
    progress = progress or Progress()
    overrides = {k: v for k, v in request.overrides.items() if v}
    store = open_store(store_home, settings=settings)
    try:
        ingestor = Ingestor(store, settings, embedder)
        local = request.local_paths
        if local:
            with progress.stage(FILES) as on_item:
                report.results += ingestor.ingest_paths(local, overrides=overrides, progress=on_item).results
        if not request.wants_web:
            return report
        web = WebIngest(ingestor, Fetcher(policy))
        urls = [p for p in request.paths if _is_web(p)] + list(request.urls)
        for label, text in request.url_files:
            good, bad = read_url_list(text)
            urls += good
            report.results += [ItemResult(f"{label}:{n}", "failed", f"not a valid http(s) URL: {line[:80]!r}")
                               for n, line in bad]
        finders: tuple[tuple[str, Callable[[str], list[str]], tuple[str, ...]], ...] = (
            ("sitemap", web.sitemap_urls, request.sitemaps),
            ("feed", web.feed_urls, request.feeds),
            ("crawl", lambda u: web.crawl_urls(u, request.max_pages), request.crawls),
        )
        for how, finder, sources in finders:
            for src in sources:
                try:
                    found = finder(src)
                except EquisearchError as exc:
                    report.results.append(ItemResult(src, "failed", one_line(exc, src)))
                    continue
                progress.found(how, src, found)
                urls += found
        with progress.stage(WEB) as on_item:
            report.results += web.ingest_urls(urls, overrides=overrides, progress=on_item).results
    finally:
        store.close()
    return report
