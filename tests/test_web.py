"""Web ingest against a canned site on 127.0.0.1: fetch, route, discover, refresh."""
from __future__ import annotations

import pytest

from ingest.fetch import FetchError, FetchPolicy, Fetcher, looks_like_article, parse_feed, parse_sitemap, read_url_list
from ingest.pipeline import Ingestor
from ingest.web import WebIngest
from search.errors import ExtractionError
from search.store import Store

from .conftest import DATA, FakeEmbedder
from .webserver import LocalSite


@pytest.fixture
def site():
    with LocalSite() as s:
        yield s


def _fetcher(**kw):
    return Fetcher(FetchPolicy(timeout=kw.pop("timeout", 5), retries=kw.pop("retries", 1), backoff=0.05,
                               host_delay=kw.pop("host_delay", 0), **kw))


@pytest.fixture
def web(settings):
    store = Store.open(settings.home_path)
    return WebIngest(Ingestor(store, settings, FakeEmbedder()), _fetcher())


def _texts(store):
    return " ".join(c.text for d in store.documents() for c in store.chunks_of(d.id))


def test_article_main_text_and_metadata(web, site):
    report = web.ingest_urls([site.url("/posts/social-mobility")])
    assert report.counts["added"] == 1, report.results
    doc = web.store.documents()[0]
    assert doc.title.startswith("Social mobility in schools")
    assert doc.url == doc.uri == site.url("/posts/social-mobility")
    assert doc.kind == "article"
    text = _texts(web.store)
    assert "intelligent targeting of resources" in text
    for furniture in ("uses cookies", "Leave a Reply", "Share this", "Related posts", "Sign up to our newsletter",
                      "Great post, thanks"):
        assert furniture not in text


def test_two_urls_one_article_kept_as_aliases(web, site):
    report = web.ingest_urls([site.url("/posts/equity"), site.url("/posts/equity-alias")])
    assert [r.status for r in report.results] in (["added", "unchanged"], ["added", "duplicate"]), report.results
    (doc,) = web.store.documents()
    assert doc.uri == site.url("/posts/equity")
    assert site.url("/posts/equity-alias") in doc.aliases


def test_errors_fail_alone_with_reasons(web, site):
    urls = [site.url(p) for p in ("/missing", "/broken", "/loop-a", "/image.png", "/huge", "/private/secret",
                                  "/posts/conference")]
    web.fetcher.policy.max_bytes = 1024 * 1024
    report = web.ingest_urls(urls)
    reasons = {r.source.rsplit("/", 1)[-1]: (r.status, r.reason) for r in report.results}
    assert reasons["missing"][0] == "failed" and "404" in reasons["missing"][1]
    assert reasons["broken"][0] == "failed" and "500" in reasons["broken"][1]
    assert "redirect loop" in reasons["loop-a"][1]
    assert "content type image/png" in reasons["image.png"][1]
    assert "limit" in reasons["huge"][1]
    assert "robots.txt" in reasons["secret"][1]
    assert reasons["conference"][0] == "added"
    assert site.site.hits.get("/private/secret", 0) == 0, "robots.txt must be honoured before fetching"
    assert len(web.store.documents()) == 1


def test_timeout_and_retry(site):
    with pytest.raises(FetchError, match="timed out"):
        _fetcher(timeout=0.5, retries=0).fetch(site.url("/slow"))
    res = _fetcher(retries=2).fetch(site.url("/flaky"))
    assert res.status == 200 and site.site.hits["/flaky"] == 2


def test_redirect_followed_and_per_host_delay(site):
    import time

    f = _fetcher(host_delay=0.3)
    res = f.fetch(site.url("/moved"))
    assert res.final_url == site.url("/posts/conference")
    t0 = time.monotonic()
    f.fetch(site.url("/plain.txt"))
    f.fetch(site.url("/plain.txt"))
    assert time.monotonic() - t0 >= 0.3


def test_private_addresses_refused_when_not_allowed(site):
    f = _fetcher(allow_private=False)
    with pytest.raises(FetchError, match="private address"):
        f.fetch(site.url("/posts/conference"))
    with pytest.raises(FetchError, match="only http and https"):
        f.fetch("file:///etc/passwd")


def test_sitemap_index_feed_and_crawl(web, site):
    assert web.sitemap_urls(site.url("/sitemap-index.xml")) == [site.url("/posts/social-mobility"),
                                                                 site.url("/posts/conference")]
    assert web.feed_urls(site.url("/feed.xml")) == [site.url("/posts/equity"), site.url("/posts/conference")]
    crawled = web.crawl_urls(site.url("/"), max_pages=10)
    assert site.url("/posts/social-mobility") in crawled and site.url("/posts/equity") in crawled
    assert site.url("/tag/send") not in crawled and site.url("/private/secret") not in crawled
    assert not any("elsewhere.example" in u for u in crawled)


def test_plain_text_and_pdf_routed_by_content_type(web, site):
    pdf = DATA / "ofsted_send_sample.pdf"
    if pdf.exists():
        site.site.routes["/report.pdf"] = (200, "application/pdf", pdf.read_bytes())
    urls = [site.url("/plain.txt")] + ([site.url("/report.pdf")] if pdf.exists() else [])
    report = web.ingest_urls(urls)
    assert all(r.status == "added" for r in report.results), report.results
    if pdf.exists():
        doc = next(d for d in web.store.documents() if d.uri.endswith(".pdf"))
        assert any(c.page_start for c in web.store.chunks_of(doc.id))


def test_refresh_uses_conditional_requests(web, site):
    url = site.url("/etag")
    assert web.ingest_urls([url]).counts["added"] == 1
    r = web.refresh()
    assert r.results[0].status == "unchanged" and "304" in r.results[0].reason
    site.site.etag_version = "v2"
    r = web.refresh()
    assert r.results[0].status == "updated"
    assert "second version about attendance" in _texts(web.store)


def test_url_list_and_feed_parsing_helpers():
    good, bad = read_url_list("# list\nhttps://a.example/x\nnot a url\nftp://b.example/y\n\nhttp://c.example/z\n")
    assert good == ["https://a.example/x", "http://c.example/z"]
    assert [n for n, _ in bad] == [3, 4]
    atom = b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><link rel="alternate" href="https://a/1"/></entry></feed>'
    assert parse_feed(atom) == ["https://a/1"]
    assert not looks_like_article("https://a.example/tag/send")
    assert looks_like_article("https://a.example/2024/05/plac-support")


def test_feed_parsing_reads_real_world_feeds():
    """feedparser reads what ElementTree refused: a raw "&", HTML entities,
    a leading blank line, guid permalinks, relative links and RSS 1.0."""
    rss = (b'\n<?xml version="1.0"?><rss version="2.0"><channel><title>T&nbsp;x</title>'
           b'<item><link>https://a.example/1?x=1&y=2</link></item>'
           b'<item><guid isPermaLink="true">https://a.example/2</guid></item>'
           b'<item><link>/3</link></item></channel></rss>')
    assert parse_feed(rss, "https://a.example/feed.xml") == ["https://a.example/1?x=1&y=2", "https://a.example/2",
                                                              "https://a.example/3"]
    rdf = (b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">'
           b'<channel rdf:about="https://a.example/"><title>T</title><link>https://a.example/</link></channel>'
           b'<item rdf:about="https://a.example/1"><title>A</title><link>https://a.example/1</link></item></rdf:RDF>')
    assert parse_feed(rdf) == ["https://a.example/1"]
    with pytest.raises(ExtractionError, match="not a valid RSS/Atom feed"):
        parse_feed(b"<!doctype html><html><body><a href='/x'>x</a></body></html>")


def test_feed_bodies_never_make_the_parser_read_files(tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_bytes(b'<rss version="2.0"><channel><item><link>https://leak.example/</link></item></channel></rss>')
    with pytest.raises(ExtractionError):
        parse_feed(str(secret).encode())  # a body naming a file is just text
    xxe = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file://{secret}">]>'
           '<rss version="2.0"><channel><item><link>https://a.example/&e;</link></item></channel></rss>').encode()
    assert not any("leak" in link for link in parse_feed(xxe))


def test_sitemap_pages_are_the_entries_own_locations():
    ns = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"'
    body = (f'\ufeff\n<?xml version="1.0"?><urlset {ns}><url><loc>\n  https://a.example/1\n</loc>'
            '<image:image><image:loc>https://a.example/1.jpg</image:loc></image:image></url>'
            '<url><loc>https://cdn.example/2</loc></url></urlset>').encode()
    assert parse_sitemap(body) == (["https://a.example/1", "https://cdn.example/2"], [])
    index = (b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             b'<sitemap><loc>https://a.example/sitemap?page=2</loc></sitemap></sitemapindex>')
    assert parse_sitemap(index) == ([], ["https://a.example/sitemap?page=2"])
