"""The add-sources use-case both edges call: files then web pages, URL files,
sitemaps, feeds and crawls, one bad source never sinking the batch.

Every test runs on both backends (``settings`` below names ``store_location``).
"""
from __future__ import annotations

import contextlib

import pytest

from ingest.fetch import FetchPolicy
from ingest.sources import FILES, WEB, Progress, SourceRequest, add_sources
from search.errors import StoreError

from .backends import open_at, settings_at
from .conftest import FakeEmbedder
from .webserver import LocalSite


@pytest.fixture
def settings(store_location):
    """Settings naming this test's store: a directory, or a database URL (both backends)."""
    return settings_at(store_location)


@pytest.fixture
def site():
    with LocalSite() as s:
        yield s


POLICY = FetchPolicy(timeout=5, retries=0, backoff=0.05, host_delay=0)


class Recorder(Progress):
    def __init__(self):
        super().__init__()
        self.events = []

    @contextlib.contextmanager
    def stage(self, name):
        self.events.append(("stage", name))
        yield lambda result, done, total: self.events.append(("item", name, result.status, done, total))

    def found(self, how, source, pages):
        self.events.append(("found", how, len(pages)))


def test_files_then_web_pages_in_order_with_every_failure_reported(settings, site, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("Designated teachers for looked-after children work with the virtual school head.")
    request = SourceRequest(
        paths=(str(note), site.url("/posts/equity"), "ftp://example.org/x.pdf"),
        urls=(site.url("/plain.txt"),),
        url_files=(("urls.txt", f"# a comment\n{site.url('/posts/social-mobility')}\nnot a url\n"),),
        sitemaps=(site.url("/sitemap.xml"), site.url("/missing")),
        feeds=(site.url("/feed.xml"),),
        overrides={"kind": "report", "site": "", "tags": []},
    )
    progress = Recorder()
    report = add_sources(settings.location, settings, request, policy=POLICY, progress=progress,
                         embedder=FakeEmbedder())
    got = [(r.source, r.status) for r in report.results]
    assert got[:2] == [("ftp://example.org/x.pdf", "failed"), (str(note), "added")]
    assert got[2:4] == [("urls.txt:3", "failed"), (site.url("/missing"), "failed")]
    assert "not a valid http(s) URL: 'not a url'" in report.results[2].reason
    assert "HTTP 404" in report.results[3].reason
    # Web pages: the URL among the paths, the given URLs, the URL file's,
    # then what the sitemap and feed found, each fetched once.
    web = [s for s, _ in got[4:]]
    assert web == list(dict.fromkeys([site.url("/posts/equity"), site.url("/plain.txt"),
                                      site.url("/posts/social-mobility"), site.url("/posts/conference")]))
    assert report.counts["failed"] == 3 and report.counts["added"] == 5
    stages = [e for e in progress.events if e[0] != "item"]
    assert stages == [("stage", FILES), ("found", "sitemap", 2), ("found", "feed", 2), ("stage", WEB)]
    assert [e[3:] for e in progress.events if e[:2] == ("item", WEB)] == [(n, 4) for n in range(1, 5)]
    store = open_at(settings.location)
    assert {d.kind for d in store.documents()} == {"report"}  # empty overrides ignored, kind applied


def test_nothing_to_add_opens_no_store(settings, backend):
    report = add_sources(settings.location, settings, SourceRequest(), policy=POLICY)
    if backend == "postgres":  # the database exists already; no store in it means no tables made
        assert report.results == []
        with pytest.raises(StoreError, match="no equisearch store"):
            open_at(settings.location, create=False)
    else:
        assert report.results == [] and not settings.home_path.exists()


def test_a_crawl_is_bounded_by_max_pages(settings, site):
    request = SourceRequest(crawls=(site.url("/"),), max_pages=2)
    progress = Recorder()
    add_sources(settings.location, settings, request, policy=POLICY, progress=progress, embedder=FakeEmbedder())
    assert ("found", "crawl", 2) in progress.events
