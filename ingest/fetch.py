"""The only network code: polite HTTP fetching and link discovery.

Polite means: a clear User-Agent, robots.txt honoured, a delay between two
requests to the same host, timeouts, a size cap, and retries with
exponential backoff on 429/5xx and connection errors. Conditional requests
(``If-None-Match`` / ``If-Modified-Since``) let ``equisearch refresh`` skip
pages that did not change.

Built on urllib3 (keep-alive pools, TLS, streamed gzip decoding) and not on
trafilatura's ``fetch_url`` or requests: we need the response headers (content
type, ETag, Last-Modified), every redirect hop in our hands (loops, and the
address checks the UI needs), a connection to the address that was checked
(urllib3 takes it with the host name for SNI and the certificate check, where
urllib needed a private attribute of http.client) and hard size and time
caps; requests would add proxies from the environment, which bypass the
pin. trafilatura still does the text extraction (:mod:`ingest.extract`).

Discovery helpers turn a sitemap, an RSS/Atom feed, a site to crawl or a file
of URLs into a list of page URLs, always from a body this module fetched
(trafilatura's and feedparser's own downloads would bypass the checks above).
Feeds are read by feedparser (RSS 0.9x/1.0/2.0 and Atom, broken XML, HTML
entities, xml:base, guid permalinks). Sitemaps stay hand-parsed: trafilatura's
parser for a fetched body tells a child sitemap from a page by its URL ending
in ``.xml``, and drops other-domain or whitespace-padded ``<loc>`` entries.
"""
from __future__ import annotations

import codecs
import io
import ipaddress
import logging
import re
import socket
import threading
import time
import urllib.parse
import urllib.robotparser
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser

import urllib3

from search.errors import ExtractionError

log = logging.getLogger(__name__)

USER_AGENT = "equisearch/0.1 (+offline education-equity search; polite crawler)"


class FetchError(ExtractionError):
    """A URL could not be fetched (HTTP error, timeout, refused, too large...)."""


@dataclass
class FetchPolicy:
    """How politely and how safely to fetch.

    ``allow_private`` must stay False for URLs typed by people in the UI: it
    refuses loopback, private, link-local and cloud-metadata addresses after
    DNS resolution and on every redirect. The CLI (the operator's own
    machine) and the tests allow them.
    """

    timeout: float = 20.0
    retries: int = 2
    backoff: float = 1.0
    host_delay: float = 1.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    #: Whole-download cap in seconds (``timeout`` is per socket operation, so
    #: a server dripping one byte at a time could otherwise hold us forever).
    max_seconds: float = 120.0
    respect_robots: bool = True
    allow_private: bool = True
    user_agent: str = USER_AGENT


@dataclass(frozen=True)
class FetchResult:
    url: str  # as asked
    final_url: str  # after redirects
    status: int  # 200, or 304 when not modified
    content_type: str  # lower-case media type without parameters
    charset: str
    body: bytes
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def _split_url(url: str) -> tuple[urllib.parse.SplitResult, int]:
    """(parts, port) of an http(s) URL, or :class:`FetchError` saying what is wrong."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises ValueError for "host:99999" or "host:abc"
    except ValueError as exc:  # "http://[::1" -> Invalid IPv6 URL
        raise FetchError(f"{url}: not a valid URL ({exc}): check the address") from None
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"{url}: only http and https URLs can be fetched")
    if not parts.hostname:
        raise FetchError(f"{url}: not a valid URL (no host)")
    return parts, port or (443 if parts.scheme == "https" else 80)


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a URL typed by a person may not reach ``ip``: loopback, private,
    link-local (cloud metadata at 169.254.169.254), shared (100.64/10),
    multicast, reserved, unspecified, or anything else not globally routable;
    IPv4 addresses wrapped in IPv6 (``::ffff:127.0.0.1``) are judged unwrapped."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return (not ip.is_global or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
            or ip.is_multicast or ip.is_unspecified)


def _check_address(url: str, policy: FetchPolicy) -> str | None:
    """Refuse ``url`` unless policy allows where it points; returns the checked IP.

    With ``allow_private`` off the host is resolved here, every address it
    resolves to must be public, and the caller connects to the address that
    was checked (not to a second lookup that a DNS-rebinding host could
    answer with 127.0.0.1).
    """
    parts, port = _split_url(url)
    if policy.allow_private:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"{url}: host {parts.hostname} not found: check the address") from exc
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if _forbidden(ip):
            raise FetchError(
                f"{url}: refusing to fetch from a local or private address ({ip}); "
                "an operator can allow it with EQUISEARCH_ALLOW_PRIVATE_URLS=1"
            )
        addresses.append(str(ip))
    if not addresses:
        raise FetchError(f"{url}: host {parts.hostname} not found: check the address")
    return addresses[0]


def _gunzip(data: bytes, limit: int, what: str) -> bytes:
    """Decompress gzip ``data`` to at most ``limit`` bytes (a 20 MiB bomb can
    inflate to gigabytes); :class:`FetchError` beyond that or when corrupt."""
    import zlib

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise FetchError(f"{what}: corrupt gzip data ({exc})") from None
    if len(out) > limit:
        raise FetchError(f"{what}: over the {limit // 1024 // 1024} MiB limit once decompressed; skipped")
    return out


def _host_header(parts: urllib.parse.SplitResult, port: int) -> str:
    """The Host header for ``parts`` (sent as is when we connect to a pinned address)."""
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return host if port == default else f"{host}:{port}"


def _media_type(value: str) -> tuple[str, str]:
    """(lower-case media type, charset) of a Content-Type header, read as
    http.client reads it (no header: text/plain)."""
    msg = Message()
    if value:
        msg["Content-Type"] = value
    return msg.get_content_type().lower(), msg.get_content_charset() or ""


class Fetcher:
    """Fetches pages politely; one instance per batch (it remembers hosts)."""

    def __init__(self, policy: FetchPolicy | None = None):
        self.policy = policy or FetchPolicy()
        #: (host, port) -> the address _check_address approved (private URLs refused).
        self._pins: dict[tuple[str, int], str] = {}
        #: One keep-alive connection pool per (scheme, host, port, pinned address).
        self._pools: dict[tuple, urllib3.HTTPConnectionPool] = {}
        self._last: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._lock = threading.Lock()

    # -- politeness --------------------------------------------------------
    def _wait_for_host(self, host: str) -> None:
        with self._lock:
            last = self._last.get(host)
            now = time.monotonic()
            if last is not None and now - last < self.policy.host_delay:
                time.sleep(self.policy.host_delay - (now - last))
            self._last[host] = time.monotonic()

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets our User-Agent fetch ``url`` (unreachable robots = allowed)."""
        if not self.policy.respect_robots:
            return True
        parts = urllib.parse.urlsplit(url)
        root = f"{parts.scheme}://{parts.netloc}"
        if root not in self._robots:
            parser = urllib.robotparser.RobotFileParser()
            try:
                res = self._get(root + "/robots.txt", {}, check_robots=False, retries=0)
                if res.status == 200:
                    parser.parse(res.body.decode(res.charset or "utf-8", "replace").splitlines())
                else:
                    parser = None
            except FetchError:
                parser = None  # no robots.txt (404) or unreachable: nothing forbids us
            self._robots[root] = parser
        parser = self._robots[root]
        return parser is None or parser.can_fetch(self.policy.user_agent, url)

    # -- fetching ----------------------------------------------------------
    def fetch(self, url: str, *, etag: str = "", last_modified: str = "") -> FetchResult:
        """GET ``url`` following redirects; raises :class:`FetchError` with a one-line reason."""
        url = url.strip()
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return self._get(url, headers, check_robots=True, retries=self.policy.retries)

    def _get(self, url: str, headers: dict, *, check_robots: bool, retries: int) -> FetchResult:
        seen = []
        current = url
        for _hop in range(self.policy.max_redirects + 1):
            ip = _check_address(current, self.policy)
            if ip is not None:
                parts, port = _split_url(current)
                self._pins[(parts.hostname.lower(), port)] = ip
            if check_robots and not self.allowed(current):
                raise FetchError(f"{current}: robots.txt disallows fetching this page; skipped")
            if current in seen:
                raise FetchError(f"{url}: redirect loop ({' -> '.join(seen + [current])})")
            seen.append(current)
            result, location = self._get_once(current, headers, retries)
            if location is None:
                return FetchResult(url, current, *result)
            try:
                current = urllib.parse.urljoin(current, location)
            except ValueError:
                raise FetchError(f"{url}: redirected to an invalid URL ({location[:100]!r})") from None
        raise FetchError(f"{url}: more than {self.policy.max_redirects} redirects")

    def _pool(self, parts: urllib.parse.SplitResult, port: int) -> urllib3.HTTPConnectionPool:
        """The pool for this origin: connected to the address _check_address
        pinned when there is one (no second DNS lookup a rebinding host could
        answer differently); TLS still checks the certificate against the
        host name, sent as SNI."""
        host = parts.hostname.lower()
        ip = self._pins.get((host, port))
        key = (parts.scheme, host, port, ip)
        pool = self._pools.get(key)
        if pool is None:
            common = {"port": port, "maxsize": 1, "retries": False}
            if parts.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(ip or host, server_hostname=host, assert_hostname=host, **common)
            else:
                pool = urllib3.HTTPConnectionPool(ip or host, **common)
            self._pools[key] = pool
        return pool

    def _get_once(self, url: str, headers: dict, retries: int):
        parts, port = _split_url(url)
        pool = self._pool(parts, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        send = {"Host": _host_header(parts, port), "User-Agent": self.policy.user_agent,
                "Accept-Encoding": "gzip", **headers}
        timeout = urllib3.Timeout(connect=self.policy.timeout, read=self.policy.timeout)
        attempt = 0
        while True:
            self._wait_for_host(parts.netloc)
            try:
                resp = pool.urlopen("GET", target, headers=send, retries=False, redirect=False, timeout=timeout,
                                    preload_content=False, decode_content=True, assert_same_host=False)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt < retries:
                    attempt += 1
                    self._sleep_backoff(attempt, None)
                    continue
                if isinstance(exc, urllib3.exceptions.TimeoutError) and not isinstance(
                        exc, urllib3.exceptions.NewConnectionError):
                    raise FetchError(f"{url}: timed out after {self.policy.timeout:.0f} s: try again later") from None
                raise FetchError(f"{url}: cannot connect ({_reason(exc)}): check the address or try again later") from None
            try:
                code = resp.status
                if code in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                    return None, resp.headers["Location"]
                if code == 304:
                    return (304, "", "", b"", resp.headers.get("ETag", ""), resp.headers.get("Last-Modified", "")), None
                if code in (429, 500, 502, 503, 504) and attempt < retries:
                    attempt += 1
                    self._sleep_backoff(attempt, resp.headers.get("Retry-After"))
                    continue
                if code >= 300:
                    raise FetchError(f"{url}: HTTP {code} {resp.reason}: {_advice(code)}")
                result = self._read(url, resp)
                resp.release_conn()
                return result, None
            finally:
                if resp.connection is not None:  # not read to the end: never hand a half-read connection back
                    resp.close()

    def _sleep_backoff(self, attempt: int, retry_after: str | None) -> None:
        delay = self.policy.backoff * (2 ** (attempt - 1))
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), 30.0))
        time.sleep(delay)

    def _read(self, url: str, resp) -> tuple:
        """The body, read a block at a time: at most ``max_bytes`` (once
        decompressed: a small gzip bomb can inflate to gigabytes) within
        ``max_seconds`` whatever the server's pace."""
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.policy.max_bytes:
            raise FetchError(f"{url}: response is {int(declared) // 1024 // 1024} MiB, over the "
                             f"{self.policy.max_bytes // 1024 // 1024} MiB limit")
        encoded = resp.headers.get("Content-Encoding", "").lower() not in ("", "identity")
        chunks, size = [], 0
        deadline = time.monotonic() + self.policy.max_seconds
        while True:
            if time.monotonic() > deadline:
                raise FetchError(f"{url}: download took longer than {self.policy.max_seconds:.0f} s: "
                                 "try again later or save the page and ingest the file")
            try:
                block = resp.read1(65536)  # what has arrived: read(n) would wait for n bytes
            except urllib3.exceptions.DecodeError as exc:
                raise FetchError(f"{url}: corrupt compressed data ({_reason(exc)})") from None
            except urllib3.exceptions.ReadTimeoutError:
                raise FetchError(f"{url}: timed out while reading: try again later") from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise FetchError(f"{url}: connection broken while reading ({_reason(exc)}): try again later") from None
            if not block:
                break
            size += len(block)
            if size > self.policy.max_bytes:
                limit = self.policy.max_bytes // 1024 // 1024
                raise FetchError(f"{url}: over the {limit} MiB limit once decompressed; skipped" if encoded
                                 else f"{url}: response over the {limit} MiB limit; skipped")
            chunks.append(block)
        ctype, charset = _media_type(resp.headers.get("Content-Type", ""))
        return (resp.status, ctype, charset, b"".join(chunks), resp.headers.get("ETag", ""),
                resp.headers.get("Last-Modified", ""))


def _reason(exc: BaseException) -> str:
    """The innermost cause of a connection error ("[Errno 111] Connection refused"), not urllib3's wrapper text."""
    while exc.__context__ is not None and isinstance(exc, urllib3.exceptions.HTTPError):
        exc = exc.__context__
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith(("HTTPConnection(", "HTTPSConnection(")) and ": " in text else text


def _advice(code: int) -> str:
    if code == 404 or code == 410:
        return "the page is gone: check the URL"
    if code in (401, 403):
        return "access denied: the page needs a login or blocks crawlers"
    if code == 429:
        return "the site is rate-limiting us: try again later"
    if code >= 500:
        return "the site had an error: try again later"
    return "check the URL"


# -- discovery -------------------------------------------------------------------
def parse_sitemap(xml_bytes: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) from a sitemap or sitemap index.

    Only each entry's own ``<loc>`` counts, not an image or video
    extension's (``<image:loc>`` is a picture, not a page to ingest).
    """
    if xml_bytes[:2] == b"\x1f\x8b":
        xml_bytes = _gunzip(xml_bytes, 50 * 1024 * 1024, "sitemap")
    try:
        root = ET.fromstring(xml_bytes.removeprefix(codecs.BOM_UTF8).lstrip())
    except ET.ParseError as exc:
        raise ExtractionError(f"not a valid sitemap ({exc}): check the sitemap URL") from exc
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    locs = [el.text.strip() for entry in root for el in entry
            if el.tag in (f"{ns}loc", "loc") and el.text and el.text.strip()]
    return ([], locs) if root.tag.endswith("sitemapindex") else (locs, [])


def parse_feed(xml_bytes: bytes, base_url: str = "") -> list[str]:
    """Entry links of an RSS (0.9x, 1.0, 2.0) or Atom feed, in feed order,
    made absolute against ``base_url`` (the feed's own URL).

    feedparser reads the body we fetched (never a URL: it is handed a
    stream, so it also never opens a file a body happens to name).
    """
    import feedparser

    parsed = feedparser.parse(io.BytesIO(xml_bytes), resolve_relative_uris=False, sanitize_html=False)
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception") or "no RSS or Atom elements"
        raise ExtractionError(f"not a valid RSS/Atom feed ({reason}): check the feed URL")
    links = [str(e.get("link") or "").strip() for e in parsed.entries]
    return [urllib.parse.urljoin(base_url, link) if base_url else link for link in links if link]


class _LinkParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


# Paths that are navigation, not articles: skip them when crawling.
_NON_ARTICLE = re.compile(
    r"/(tag|tags|category|categories|author|page|search|login|logout|register|wp-admin|wp-login|cart|account|"
    r"feed|comments?|share|print)(/|$|\?)|[?&](replytocom|share|print)=|\.(jpg|jpeg|png|gif|svg|css|js|zip|docx?|xlsx?|pptx?|mp4|mp3)$",
    re.I,
)


def page_links(html: str, base_url: str) -> list[str]:
    """Absolute same-site http(s) links of a page, fragments removed, in page order."""
    parser = _LinkParser()
    try:
        parser.feed(html)
    except Exception:  # malformed HTML: use what was parsed
        pass
    host = urllib.parse.urlsplit(base_url).netloc
    out: dict[str, None] = {}
    for href in parser.links:
        url = urllib.parse.urldefrag(urllib.parse.urljoin(base_url, href.strip()))[0]
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc == host:
            out.setdefault(url, None)
    return list(out)


def looks_like_article(url: str) -> bool:
    """Crawl focus: skip tag/category/author/pagination/login and media links."""
    return not _NON_ARTICLE.search(urllib.parse.urlsplit(url).path + ("?" + urllib.parse.urlsplit(url).query if urllib.parse.urlsplit(url).query else ""))


def read_url_list(text: str) -> tuple[list[str], list[tuple[int, str]]]:
    """(valid URLs, [(line number, bad line)]) from a file of URLs (``#`` comments allowed)."""
    good, bad = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            _split_url(line)
        except FetchError:
            bad.append((n, line))
            continue
        if " " in line:
            bad.append((n, line))
        else:
            good.append(line)
    return good, bad
