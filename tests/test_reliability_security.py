"""Security of fetching and of what is stored.

- With ``FetchPolicy(allow_private=False)`` (what the UI uses for URLs people
  type) loopback, private, link-local, metadata and other non-public
  addresses are refused after DNS resolution, on every redirect, and the
  connection goes to the address that was checked (DNS rebinding).
- Downloads are capped in size (also once decompressed) and in total time.
- Nothing stored or fetched is unpickled or evaluated: the package sources
  are grepped for the ways that could happen.

Two loopback servers stand in for "a public site" (127.0.0.2, treated as
public by patching the address classifier) and "an internal service"
(127.0.0.1); the test asserts the internal one is never contacted.
"""
from __future__ import annotations

import gzip
import ipaddress
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import ingest.fetch as fetch
from ingest.fetch import FetchError, FetchPolicy, Fetcher

from .conftest import ROOT

PUBLIC_STANDIN = "127.0.0.2"  # a loopback address we pretend is public
PAGE = "<html><body><p>Pupil premium funding supports disadvantaged pupils.</p></body></html>"


class Server:
    """A tiny HTTP server on ``host`` with canned routes; counts every request."""

    def __init__(self, host: str, routes: dict, port: int = 0):
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                server.hits.append(self.path)
                route = routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                if callable(route):
                    return route(self)
                status, headers, body = route
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def internal():
    s = Server("127.0.0.1", {"/secret": (200, {"Content-Type": "text/html"}, b"<p>internal admin page</p>")})
    yield s
    s.close()


@pytest.fixture
def public_standin(monkeypatch):
    """Treat 127.0.0.2 as a public address; every other address is judged for real."""
    real = fetch._forbidden
    monkeypatch.setattr(fetch, "_forbidden", lambda ip: False if str(ip) == PUBLIC_STANDIN else real(ip))


def strict(**kw) -> Fetcher:
    return Fetcher(FetchPolicy(allow_private=False, respect_robots=False, host_delay=0, retries=0, timeout=3, **kw))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://[::1]/",
    "http://0.0.0.0/", "http://10.0.0.5/", "http://172.16.3.4/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/", "http://[fc00::1]/", "http://[::ffff:127.0.0.1]/", "http://100.100.100.200/", "http://localhost/",
    "http://224.0.0.1/", "https://[::]/",
])
def test_non_public_addresses_refused_before_any_connection(url, monkeypatch):
    def no_connect(*a, **k):
        raise AssertionError("must not connect")

    monkeypatch.setattr(socket, "create_connection", no_connect)
    with pytest.raises(FetchError, match="private address"):
        strict().fetch(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://x/", "javascript:alert(1)",
                                 "data:text/html,<p>x</p>", "http://", "http://[::1", "http://host:99999/"])
def test_only_valid_http_urls(url):
    with pytest.raises(FetchError):
        strict().fetch(url)


def test_hostname_resolving_to_private_refused(monkeypatch):
    real = socket.getaddrinfo

    def fake(host, *a, **k):
        if host == "metadata.attacker.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        if host == "mixed.attacker.example":  # one public and one private answer
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 80))]
        return real(host, *a, **k)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    for host in ("metadata.attacker.example", "mixed.attacker.example"):
        with pytest.raises(FetchError, match="private address"):
            strict().fetch(f"http://{host}/")


def test_redirect_to_internal_address_refused(public_standin, internal):
    port = int(internal.base.rsplit(":", 1)[1])
    for target in (internal.base + "/secret", "http://169.254.169.254/latest/meta-data/",
                   f"http://localhost:{port}/secret", f"http://[::ffff:127.0.0.1]:{port}/secret"):
        site = Server(PUBLIC_STANDIN, {"/go": (302, {"Location": target}, b"")})
        try:
            with pytest.raises(FetchError, match="private address"):
                strict().fetch(site.base + "/go")
            assert site.hits == ["/go"]
        finally:
            site.close()
    assert internal.hits == [], "the internal service was never contacted"


def test_redirect_chain_checked_at_every_hop(public_standin, internal):
    site = Server(PUBLIC_STANDIN, {"/a": (302, {"Location": "/b"}, b""), "/b": (301, {"Location": "/c"}, b""),
                                   "/c": (307, {"Location": internal.base + "/secret"}, b"")})
    try:
        with pytest.raises(FetchError, match="private address"):
            strict().fetch(site.base + "/a")
        assert site.hits == ["/a", "/b", "/c"]
    finally:
        site.close()
    assert internal.hits == []


def test_public_standin_page_is_fetched(public_standin):
    site = Server(PUBLIC_STANDIN, {"/page": (200, {"Content-Type": "text/html"}, PAGE.encode())})
    try:
        assert b"Pupil premium" in strict().fetch(site.base + "/page").body
    finally:
        site.close()


def test_dns_rebinding_connects_to_the_checked_address(public_standin, internal, monkeypatch):
    """The name resolves to a public address when checked and to 127.0.0.1 on any
    later lookup: the fetch must connect to the address that was checked."""
    port = int(internal.base.rsplit(":", 1)[1])
    try:  # the same port on the public stand-in, so only the address differs
        site = Server(PUBLIC_STANDIN, {"/secret": (200, {"Content-Type": "text/html"}, PAGE.encode())}, port=port)
    except OSError:
        pytest.skip(f"port {port} is taken on {PUBLIC_STANDIN}")
    answers = iter([PUBLIC_STANDIN] + ["127.0.0.1"] * 10)
    real = socket.getaddrinfo

    def rebinding(host, *a, **k):
        if host == "rebind.attacker.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, *a, **k)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        res = strict().fetch(f"http://rebind.attacker.example:{port}/secret")
        assert b"Pupil premium" in res.body
        assert site.hits == ["/secret"]
    finally:
        site.close()
    assert internal.hits == [], "a second DNS answer must not redirect the connection"


def test_tls_to_the_checked_address_still_checks_the_certificate_name(public_standin, internal, tmp_path,
                                                                     monkeypatch):
    """https with a pinned address: the connection goes to the address that
    was checked (not to a rebinding second answer) and the certificate must
    name the host asked for, not the address."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=school.example",
                    "-addext", "subjectAltName=DNS:school.example"], check=True, capture_output=True)
    site = Server(PUBLIC_STANDIN, {"/page": (200, {"Content-Type": "text/html"}, PAGE.encode())})
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    site.httpd.socket = context.wrap_socket(site.httpd.socket, server_side=True)
    port = site.httpd.server_address[1]
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test certificate
    answers = {"school.example": iter([PUBLIC_STANDIN] + ["127.0.0.1"] * 10), "other.example": iter([PUBLIC_STANDIN] * 10)}
    real = socket.getaddrinfo

    def rebinding(host, *a, **k):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers[host]), port))]
        return real(host, *a, **k)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        assert b"Pupil premium" in strict().fetch(f"https://school.example:{port}/page").body
        with pytest.raises(FetchError, match="doesn't match"):
            strict().fetch(f"https://other.example:{port}/page")
        assert site.hits == ["/page"]
    finally:
        site.close()
    assert internal.hits == []


def test_download_size_cap_also_after_decompression(internal):
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in ~64 KiB
    internal_site = Server("127.0.0.1", {
        "/bomb": (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb),
        "/big": (200, {"Content-Type": "text/html"}, b"x" * (3 * 1024 * 1024)),
    })
    try:
        f = Fetcher(FetchPolicy(respect_robots=False, host_delay=0, retries=0, max_bytes=1024 * 1024))
        with pytest.raises(FetchError, match="limit once decompressed"):
            f.fetch(internal_site.base + "/bomb")
        with pytest.raises(FetchError, match="limit"):
            f.fetch(internal_site.base + "/big")
    finally:
        internal_site.close()


def test_download_time_cap_against_a_slow_drip():
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        try:
            for _ in range(100):
                handler.wfile.write(b"<p>x</p>")
                handler.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    site = Server("127.0.0.1", {"/drip": drip})
    try:
        f = Fetcher(FetchPolicy(respect_robots=False, host_delay=0, retries=0, timeout=2, max_seconds=1.0))
        t0 = time.monotonic()
        with pytest.raises(FetchError, match="longer than"):
            f.fetch(site.base + "/drip")
        assert time.monotonic() - t0 < 5
    finally:
        site.close()


def test_the_classifier_on_addresses():
    bad = ["127.0.0.1", "10.0.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
           "::1", "fe80::1", "fd00::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::", "ff02::1", "240.0.0.1"]
    good = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
    assert all(fetch._forbidden(ipaddress.ip_address(a)) for a in bad)
    assert not any(fetch._forbidden(ipaddress.ip_address(a)) for a in good)


# -- nothing stored or fetched is executed -------------------------------------------
UNSAFE = [
    (r"\bimport pickle\b|\bpickle\.", "pickle"),
    (r"\bcPickle\b|\bdill\b|\bcloudpickle\b|\bjoblib\.load\b|\bshelve\b|\bmarshal\.loads?\b", "pickle-like loaders"),
    (r"(?<![\w.])eval\(", "eval"),
    (r"(?<![\w.])exec\(", "exec"),
    (r"allow_pickle\s*=\s*True", "numpy allow_pickle"),
    (r"\bnp\.load\(|\bnumpy\.load\(", "numpy load (pickles by default in old numpy)"),
    (r"\btorch\.load\(", "torch.load (pickle)"),
    (r"yaml\.load\(|yaml\.unsafe_load|yaml\.full_load|Loader=yaml\.(Unsafe)?Loader", "unsafe YAML"),
    (r"__import__\(|(?<![\w.])compile\(", "dynamic code"),
    (r"subprocess\.[a-z_]+\([^)]*shell\s*=\s*True|os\.system\(|os\.popen\(", "shell commands"),
]


def test_no_pickle_eval_or_exec_in_the_package():
    offenders = []
    for package in ("search", "ingest", "ui"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                code = line.split("#", 1)[0]
                for pattern, what in UNSAFE:
                    if re.search(pattern, code):
                        offenders.append(f"{path.relative_to(ROOT)}:{n}: {what}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_stored_formats_are_sqlite_faiss_and_json_only(tmp_path):
    """A store holds SQLite, a FAISS native index and JSON text; nothing else."""
    from ingest.pipeline import Ingestor
    from search.settings import Settings
    from search.store import Store

    from .conftest import CORPUS, FakeEmbedder

    home = tmp_path / "store"
    Ingestor(Store.open(home), Settings(home=str(home)), FakeEmbedder()).ingest_paths([CORPUS])
    kinds = {}
    for f in home.iterdir():
        head = f.read_bytes()[:16]
        kinds[f.name] = ("sqlite" if head.startswith(b"SQLite format 3") or f.name.endswith(("-wal", "-shm")) else
                         "faiss" if head[:4] in (b"IxMp", b"IxM2") else
                         "json" if head[:1] in (b"{", b"[") else "empty" if not head else head)
    assert kinds["equisearch.db"] == "sqlite" and kinds["vectors.faiss"] == "faiss" and kinds["vectors.json"] == "json"
    assert set(kinds.values()) <= {"sqlite", "faiss", "json", "empty"}, kinds
