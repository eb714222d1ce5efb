"""A canned website on 127.0.0.1 for the web-ingest tests (no real network).

Pages are built around real text from the starter corpus with realistic page
furniture (navigation, cookie banner, comments, footer, related links), plus
sitemap, feed, robots.txt and the error cases a crawler meets.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def _paragraphs(name: str) -> list[str]:
    text = (CORPUS / name).read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n\n") if len(p.split()) > 12][:14]


def page(title: str, paragraphs: list[str], *, canonical: str = "", date: str = "2023-04-11") -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    canon = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} | Equity Blog</title>
{canon}<meta name="author" content="Sam Teacher"><meta property="article:published_time" content="{date}">
<meta property="og:site_name" content="Equity Blog"></head><body>
<div id="cookie-banner">This site uses cookies. By continuing to use this site, you are agreeing to our use of cookies. <a href="/cookies">Accept all cookies</a></div>
<nav><ul><li><a href="/">Home</a></li><li><a href="/tag/send">SEND</a></li><li><a href="/about">About us</a></li><li><a href="/login">Log in</a></li></ul></nav>
<main><article><h1>{title}</h1><p class="byline">By Sam Teacher, {date}</p>
{body}
</article>
<section class="share">Share this: <a href="https://twitter.com/share">Twitter</a> <a href="https://facebook.com/share">Facebook</a></section>
<section id="comments"><h3>Leave a Reply</h3><p>Your email address will not be published. Required fields are marked *</p>
<div class="comment"><p>Great post, thanks! I will share this with my whole department tomorrow morning.</p></div></section>
<aside><h3>Related posts</h3><ul><li><a href="/posts/other-1">The importance of keeping the unique child at the heart of the EYFS</a></li>
<li><a href="/posts/other-2">Establishing and embedding a precedent of support of PLAC pupils</a></li></ul></aside></main>
<footer><p>Sign up to our newsletter for monthly education news.</p><p>&copy; 2024 Equity Blog. All rights reserved.</p></footer>
</body></html>"""


class Site:
    """Routes for the handler; tests may change them between requests."""

    def __init__(self):
        self.hits: dict[str, int] = {}
        self.routes: dict[str, tuple] = {}
        self.etag_version = "v1"

    def setup(self, base: str) -> None:
        social = _paragraphs("001_140eb0e026268c8e.txt")
        equity = _paragraphs("002_57a6076ff04e724a.txt")
        conf = _paragraphs("004_7697dcc9a961e9f5.txt")
        html = "text/html; charset=utf-8"
        self.routes = {
            "/robots.txt": (200, "text/plain", "User-agent: *\nDisallow: /private/\n"),
            "/posts/social-mobility": (200, html, page("Social mobility in schools", social)),
            "/posts/equity": (200, html, page("Moving knowledge around", equity, canonical=base + "/posts/equity")),
            "/posts/equity-alias": (200, html, page("Moving knowledge around", equity, canonical=base + "/posts/equity")),
            "/posts/conference": (200, html, page("Delivering inclusive excellence", conf)),
            "/private/secret": (200, html, page("Secret", conf)),
            "/tag/send": (200, html, page("Tag page", ["tag listing " * 20])),
            "/": (200, html, "<html><body><a href='/posts/social-mobility'>a</a> <a href='/posts/equity'>b</a>"
                             "<a href='/tag/send'>tag</a> <a href='/private/secret'>p</a>"
                             "<a href='https://elsewhere.example/x'>x</a></body></html>"),
            "/sitemap.xml": (200, "application/xml",
                             '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                             f"<url><loc>{base}/posts/social-mobility</loc></url>"
                             f"<url><loc>{base}/posts/conference</loc></url></urlset>"),
            "/sitemap-index.xml": (200, "application/xml",
                                   '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                                   f"<sitemap><loc>{base}/sitemap.xml</loc></sitemap></sitemapindex>"),
            "/feed.xml": (200, "application/rss+xml",
                          '<?xml version="1.0"?><rss version="2.0"><channel><title>Equity Blog</title>'
                          f"<item><title>A</title><link>{base}/posts/equity</link></item>"
                          f"<item><title>B</title><link>{base}/posts/conference</link></item></channel></rss>"),
            "/missing": (404, "text/html", "<h1>Not found</h1>"),
            "/broken": (500, "text/html", "<h1>Server error</h1>"),
            "/loop-a": (302, "text/html", "", {"Location": "/loop-b"}),
            "/loop-b": (302, "text/html", "", {"Location": "/loop-a"}),
            "/moved": (301, "text/html", "", {"Location": "/posts/conference"}),
            "/image.png": (200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100),
            "/huge": (200, "text/html", "<p>" + "word " * 400000 + "</p>"),
            "/slow": ("slow", html, page("Slow", social)),
            "/plain.txt": (200, "text/plain; charset=utf-8",
                           "Virtual school heads promote the educational achievement of looked-after children.\n\n"
                           "Designated teachers work with them in every maintained school in England."),
            "/flaky": ("flaky", html, page("Flaky but fine", conf)),
        }


def make_handler(site: Site):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            path = self.path
            site.hits[path] = site.hits.get(path, 0) + 1
            if path.startswith("/etag"):
                return self._etag()
            if path.startswith("/report.pdf"):
                return self._send(200, "application/pdf", site.routes.get("/report.pdf", (0, "", b""))[2])
            route = site.routes.get(path.split("?")[0])
            if route is None:
                return self._send(404, "text/html", "<h1>Not found</h1>")
            status, ctype, body, *extra = route
            headers = extra[0] if extra else {}
            if status == "slow":
                time.sleep(2.0)
                status = 200
            if status == "flaky":
                status = 503 if site.hits[path] == 1 else 200
            self._send(status, ctype, body, headers)

        def _etag(self):
            tag = f'"{site.etag_version}"'
            if self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.end_headers()
                return
            text = _paragraphs("004_7697dcc9a961e9f5.txt")
            if site.etag_version != "v1":
                text = text + ["A new paragraph added in the second version about attendance and belonging in school."]
            self._send(200, "text/html; charset=utf-8", page("Versioned page", text), {"ETag": tag})

        def _send(self, status, ctype, body, headers=None):
            data = body.encode("utf-8") if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


class LocalSite:
    """Context manager: a running canned site; ``.url(path)`` builds URLs."""

    def __init__(self):
        self.site = Site()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.site))
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.site.setup(self.base)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
