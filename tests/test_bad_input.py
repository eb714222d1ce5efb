"""Bad input: every case gets one line naming the file and what to do, the rest
of the batch is stored, nothing of the bad input is stored, exit code 1, and
never a traceback. Inputs that are odd but fine (latin-1, UTF-16, odd names)
must simply work.

Every case is generated into ``tmp_path`` (nothing large is committed). Each
runs through the real ``equisearch ingest`` command (click's CliRunner, fake
embedder for speed) beside a good file; one slow test runs them all as one
batch through a real subprocess with the bundled model and checks stderr
holds exactly one line per bad file and nothing else (no library logging).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

import ingest.pipeline
import search.api
from cli.app import main
from cli.sources import printable
from search.store import Store

from .conftest import DATA, ROOT, FakeEmbedder

GOOD_TEXT = "Pupil premium funding supports disadvantaged pupils in England and raises their attainment.\n"
#: Words that say what to do next; every failure reason must contain one.
ADVICE = ("check", "run ", "save", "convert", "make ", "split", "raise", "decrypt", "re-save", "re-download",
          "rename", "copy", "fix", "remove", "try", "report", "ocr", "add text", "give", "use ")


# -- builders ------------------------------------------------------------------
def pdf(pages: list[bytes], *, images: bool = False) -> bytes:
    """A minimal valid PDF whose pages have the given content streams."""
    objs: list[bytes] = []
    n_pages = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n_pages))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    image_ref = 4 + 2 * n_pages
    for i, content in enumerate(pages):
        xobj = f" /XObject << /Im1 {image_ref} 0 R >>" if images else ""
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i} 0 R "
                    f"/Resources << /Font << /F1 3 0 R >>{xobj} >> >>".encode())
        objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    if images:
        pixels = bytes(random.Random(1).randrange(256) for _ in range(64 * 64))
        objs.append(b"<< /Type /XObject /Subtype /Image /Width 64 /Height 64 /ColorSpace /DeviceGray "
                    b"/BitsPerComponent 8 /Length %d >>\nstream\n" % len(pixels) + pixels + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def text_page(*lines: str) -> bytes:
    body = [b"BT /F1 12 Tf 72 720 Td 14 TL"]
    body += [b"(" + ln.encode("latin-1") + b") Tj T*" for ln in lines]
    return b"\n".join(body + [b"ET"])


def tiny_text_objects(n: int = 4000) -> bytes:
    rng = random.Random(2)
    words = "pupil premium school attendance inclusion belonging reading tutoring".split()
    return b"\n".join(b"BT /F1 1 Tf %d %d Td (%s) Tj ET" % (rng.randrange(600), rng.randrange(780),
                                                                rng.choice(words).encode()) for _ in range(n))


def encrypted_pdf() -> bytes:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf([text_page("Confidential pupil premium plan.")]))))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def rand(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@dataclass(frozen=True)
class Case:
    """One input. ``make`` writes it under a folder and returns the path to ingest.

    ``fails``: the CLI must report it failed, with ``reason`` in the message;
    otherwise it must be stored and ``stored`` (a substring) found in its text.
    """

    id: str
    make: Callable[[Path], Path]
    fails: bool
    reason: str = ""
    stored: str = ""


def write(name: str, data: bytes | str, encoding: str = "utf-8"):
    def make(folder: Path) -> Path:
        p = folder / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
        return p
    return make


def symlink_loop(folder: Path) -> Path:
    os.symlink("loop_b.txt", folder / "loop_a.txt")
    os.symlink("loop_a.txt", folder / "loop_b.txt")
    return folder / "loop_a.txt"


def dangling(folder: Path) -> Path:
    os.symlink(folder / "nowhere.txt", folder / "dangling.txt")
    return folder / "dangling.txt"


def fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.txt")
    return folder / "pipe.txt"


def folder_with_loop(folder: Path) -> Path:
    d = folder / "looped"
    (d / "sub").mkdir(parents=True)
    os.symlink("..", d / "sub" / "up")
    os.symlink(str(d), d / "self")
    (d / "sub" / "inside.txt").write_text("Virtual school heads champion looked-after children's education.\n")
    return d


def folder_with_pipe(folder: Path) -> Path:
    d = folder / "withpipe"
    d.mkdir()
    os.mkfifo(d / "stuck.txt")
    return d / "stuck.txt"


def over_limit(folder: Path) -> Path:
    p = folder / "huge.txt"
    with open(p, "wb") as fh:  # sparse: 51 MiB on disk costs nothing
        fh.truncate(51 * 1024 * 1024)
    return p


def vtt(*cues: str) -> str:
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


P = "Designated teachers support previously looked-after children in every school."
CASES = [
    # zero bytes and whitespace
    *[Case(f"empty{ext}", write(f"empty{ext}", b""), True, "empty") for ext in
      (".txt", ".pdf", ".html", ".vtt", ".srt", ".md", ".gs", ".rst")],
    Case("whitespace.txt", write("blank.txt", "  \n\t\n \n"), True, "empty"),
    # random bytes under text and document names
    *[Case(f"random{ext}", write(f"random{ext}", rand(4096, i)), True, "") for i, ext in
      enumerate((".pdf", ".html", ".txt", ".vtt", ".srt", ".md", ".rst"))],
    Case("binary-nul.txt", write("zeros.txt", b"\0" * 5000), True, "binary"),
    # PDFs
    Case("truncated.pdf", lambda f: write("truncated.pdf", (DATA / "ofsted_send_sample.pdf").read_bytes()[:60000])(f),
         True, "not a readable PDF"),
    Case("header-only.pdf", write("header.pdf", b"%PDF-1.7\n%%EOF\n"), True, "PDF"),
    Case("encrypted.pdf", write("locked.pdf", b""), True, "encrypted"),  # bytes filled in below
    Case("blank-page.pdf", write("blank.pdf", pdf([b""])), True, "no text layer"),
    Case("image-only.pdf", write("scan.pdf", pdf([b"q 200 0 0 200 50 50 cm /Im1 Do Q"], images=True)), True,
         "OCR"),
    Case("tiny-text-objects.pdf", write("confetti.pdf", pdf([tiny_text_objects()])), False, stored="premium"),
    Case("not-a-pdf.pdf", write("fake.pdf", "<html><body>Actually a web page</body></html>"), True, "not a PDF"),
    Case("bad-stream.pdf", write("badstream.pdf", pdf([zlib.compress(b"garbage")[:5] * 50])), True, ""),
    # encodings that must work
    Case("latin-1.txt", write("latin1.txt", "Élèves défavorisés: café, naïve, Zoë and the pupil premium.\n",
                              "latin-1"), False, stored="Élèves défavorisés"),
    Case("utf-16-le-bom.txt", write("utf16le.txt", "\ufeffInclusion in schools: 学校 and pupil premium.\n",
                                    "utf-16-le"), False, stored="学校"),
    Case("utf-16-be-bom.txt", write("utf16be.txt", "\ufeffBelonging matters for pupils with SEND.\n",
                                    "utf-16-be"), False, stored="Belonging matters"),
    Case("utf-8-bom.md", write("bom.md", "\ufeff# Attendance\n\nAttendance improves with mentoring.\n"), False,
         stored="mentoring"),
    Case("utf-16-no-bom.txt", write("utf16raw.txt", "Pupil premium text without a byte order mark.\n",
                                    "utf-16-le"), True, "binary"),
    # HTML
    Case("only-scripts.html", write("scripts.html", "<html><head><script>var a=1;</script></head><body>"
                                    "<script>document.write('x')</script><style>p{}</style></body></html>"),
         True, "no readable text"),
    Case("only-iframes.html", write("frames.html", "<html><body><iframe src='https://a.example/x'></iframe>"
                                    "<iframe src='https://b.example/y'></iframe></body></html>"),
         True, "no readable text"),
    Case("only-images.html", write("images.html", "<html><body><img src='a.png'><img src='b.png'></body></html>"),
         True, "no readable text"),
    Case("deeply-nested.html", write("nested.html", "<div>" * 20000 + f"<p>{P}</p>" + "</div>" * 20000),
         True, "no readable text"),
    Case("unclosed-tags.html", write("unclosed.html", f"<html><body><p>{P}<p><b>More on belonging <i>and"), False,
         stored="Designated teachers"),
    Case("xss.html", write("xss.html", f"<html><body><p>{P} &lt;script&gt;alert(1)&lt;/script&gt;</p>"
                                       "<script>alert(2)</script></body></html>"), False, stored="<script>alert(1)"),
    # transcripts
    Case("vtt-invalid-cues.vtt", write("badcues.vtt", vtt("00:00:xx --> 00:00:05.000\nHello", "1 --> 2\nWorld")),
         True, "no valid subtitle cues"),
    Case("vtt-end-before-start.vtt", write("backwards.vtt", vtt("00:00:09.000 --> 00:00:01.000\nBackwards")),
         True, "no valid subtitle cues"),
    Case("vtt-header-only.vtt", write("header.vtt", "WEBVTT\n"), True, ""),
    Case("vtt-overlapping-cues.vtt", write("overlap.vtt", vtt(
        "00:00:01.000 --> 00:00:08.000\nMentors meet pupils every week.",
        "00:00:03.000 --> 00:00:05.000\nAttendance improved.",
        "00:00:02.000 --> 00:00:04.000\nParents were involved early.")), False, stored="Attendance improved"),
    Case("vtt-some-invalid.vtt", write("mixed.vtt", vtt("00:00:01.000 --> 00:00:02.000\nGood cue about tutoring.",
                                                        "99:xx --> nonsense\nBad cue")), False,
         stored="Good cue about tutoring"),
    Case("srt-invalid-times.srt", write("bad.srt", "1\n00:00:01 --> 00:00:02\nNo millis\n\n2\nabc --> def\nNo\n"),
         True, "no valid subtitle cues"),
    Case("srt-overlapping.srt", write("overlap.srt", "1\n00:00:05,000 --> 00:00:09,000\nSecond said.\n\n"
                                      "2\n00:00:01,000 --> 00:00:06,000\nFirst said about SEND support.\n"),
         False, stored="First said about SEND support"),
    Case("srt-no-blank-lines.srt", write("packed.srt", "1\n00:00:01,000 --> 00:00:02,000\nOne\n2\n"
                                         "00:00:02,000 --> 00:00:03,000\nTwo about inclusion\n"), False, stored="One"),
    # markdown
    Case("md-front-matter-only.md", write("fm.md", "---\ntitle: Only metadata\ndate: 2024-01-01\n---\n"), True, ""),
    Case("md-broken-yaml.md", write("yaml.md", f"---\ntitle: [unclosed\n: : :\n---\n\n{P}\n"), False,
         stored="Designated teachers"),
    Case("gs-markers-only.gs", write("markers.gs", "{barchart}\n$CTA\n$CTA\n{/barchart}\n"), True, ""),
    # names
    Case("name-with-spaces", write("my report final v2.txt", P), False, stored=P),
    Case("name-with-quotes", write("""it's "quoted".txt""", P + " Quotes."), False, stored="Quotes."),
    Case("name-non-ascii", write("résumé 学校 😀.txt", P + " Unicode."), False, stored="Unicode."),
    Case("name-with-newline", write("two\nlines.txt", P + " Newline."), False, stored="Newline."),
    Case("name-with-escape", write("red\x1b[31m.txt", P + " Escape."), False, stored="Escape."),
    Case("name-leading-dash", write("-rf.txt", P + " Dash."), False, stored="Dash."),
    # file system oddities
    Case("symlink-loop", symlink_loop, True, "symbolic link"),
    Case("dangling-symlink", dangling, True, "no such file"),
    Case("named-pipe", fifo, True, "not a regular file"),
    Case("pipe-inside-folder", folder_with_pipe, True, "not a regular file"),
    Case("folder-symlink-loop", folder_with_loop, False, stored="Virtual school heads"),
    Case("over-size-limit", over_limit, True, "EQUISEARCH_MAX_FILE_MB"),
    Case("missing-file", lambda f: f / "not-there.txt", True, "no such file"),
    Case("unsupported-type", write("slides.pptx", b"PK\x03\x04" + rand(100, 9)), True, "unsupported file type"),
]


def _fill_encrypted():
    i = next(i for i, c in enumerate(CASES) if c.id == "encrypted.pdf")
    data = encrypted_pdf()
    CASES[i] = Case("encrypted.pdf", write("locked.pdf", data), True, "encrypted")


_fill_encrypted()


@pytest.fixture
def fake(monkeypatch):
    emb = FakeEmbedder()
    emb.name = "all-MiniLM-L6-v2"  # looks like the default: no model mismatch
    monkeypatch.setattr(ingest.pipeline, "load_embedder", lambda name, **kw: emb)
    monkeypatch.setattr(search.api, "load_embedder", lambda name, **kw: emb)
    return emb


def stored_texts(home: Path) -> dict[str, str]:
    store = Store.open(home)
    try:
        return {d.uri: store.document_text(d.id) for d in store.documents()}
    finally:
        store.close()


def test_at_least_forty_cases():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, fake):
    inputs = tmp_path / "in"
    inputs.mkdir()
    bad = case.make(inputs)
    good = tmp_path / "good.txt"
    good.write_text(GOOD_TEXT)
    home = tmp_path / "store"
    result = CliRunner().invoke(main, ["--store", str(home), "ingest", "--", str(bad), str(good)])
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in out and result.exception is None or isinstance(result.exception, SystemExit), out
    texts = stored_texts(home)
    assert str(good.resolve()) in texts, f"the good file beside {case.id} must be stored: {out}"
    failures = [ln for ln in result.stderr.splitlines() if ln.startswith("failed:")]
    if case.fails:
        assert result.exit_code == 1, out
        assert len(failures) == 1, out
        (line,) = failures
        assert printable(bad.name) in line, f"the message names the file: {line}"
        reason = line.split(": ", 2)[-1] if printable(str(bad)) not in line else line.split(printable(str(bad)), 1)[1]
        assert case.reason.lower() in reason.lower(), line
        assert any(word in reason.lower() for word in ADVICE), f"the message says what to do: {line}"
        assert len(texts) == 1, f"nothing of {case.id} is stored"
    else:
        assert result.exit_code == 0, out
        assert not failures, out
        assert any(case.stored in t for uri, t in texts.items() if uri != str(good.resolve())), texts.keys()


def test_unreadable_file_and_folder_as_another_user(tmp_path):
    """Permissions: root reads everything, so the CLI runs as ``nobody`` when we are root."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="eqs-perm-"))
    try:
        os.chmod(base, 0o777)
        (base / "secret.txt").write_text(P)
        os.chmod(base / "secret.txt", 0o000)
        locked = base / "locked"
        locked.mkdir()
        (locked / "inside.txt").write_text(P + " Locked.")
        os.chmod(locked, 0o000)
        (base / "ok.txt").write_text(GOOD_TEXT)
        os.chmod(base / "ok.txt", 0o644)
        home = base / "store"
        code = (
            "import sys; sys.argv = ['equisearch'] + sys.argv[1:]\n"
            "import ingest.pipeline, search.api\n"
            "from tests.conftest import FakeEmbedder\n"
            "e = FakeEmbedder(); e.name = 'all-MiniLM-L6-v2'\n"
            "ingest.pipeline.load_embedder = lambda name, **kw: e\n"
            "from cli.app import main; main()\n"
        )
        prefix = []
        if os.geteuid() == 0:
            # Root ignores file modes through CAP_DAC_OVERRIDE: drop it (and
            # CAP_DAC_READ_SEARCH) for the child so permissions apply.
            import shutil

            setpriv = shutil.which("setpriv")
            if not setpriv:
                pytest.skip("running as root without setpriv (util-linux): cannot make a file unreadable")
            caps = "-dac_override,-dac_read_search"
            prefix = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]
        r = subprocess.run([*prefix, sys.executable, "-c", code, "--store", str(home), "ingest",
                            str(base / "secret.txt"), str(locked), str(base / "ok.txt")],
                           env={**os.environ, "PYTHONPATH": str(ROOT)},
                           capture_output=True, text=True, timeout=120, cwd=str(base))
        assert "Traceback" not in r.stderr, r.stderr
        assert r.returncode == 1, r.stdout + r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("failed:")]
        assert any("secret.txt" in ln and "permission denied" in ln for ln in lines), r.stderr
        assert any("locked" in ln and "permission denied" in ln for ln in lines), r.stderr
        assert len(lines) == 2, r.stderr
        assert "1 added" in r.stdout
    finally:
        for p in (base / "locked", base / "secret.txt"):
            if p.exists():
                os.chmod(p, 0o755)
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def test_url_list_with_malformed_urls(tmp_path, fake):
    urls = tmp_path / "urls.txt"
    urls.write_text("# reading list\nhttp://[::1\nnot a url\nftp://x.example/a\nhttps://\njavascript:alert(1)\n"
                    "http://host:99999/x\nhttps://exa mple.org/\n\n")
    home = tmp_path / "store"
    r = CliRunner().invoke(main, ["--store", str(home), "ingest", "--from-file", str(urls)])
    assert r.exit_code == 1 and r.exception is None or isinstance(r.exception, SystemExit), r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("failed:")]
    assert len(lines) == 7, r.stderr
    assert all("not a valid http(s) URL" in ln and f"{urls}:" in ln for ln in lines)
    # A malformed URL given directly is one failure too, not a crash.
    r = CliRunner().invoke(main, ["--store", str(home), "ingest", "http://[::1", "https://host:abc/"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("failed:")]) == 2, r.stderr


def test_beir_jsonl_with_broken_lines(tmp_path, fake):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    corpus = [json.dumps({"_id": f"d{i}", "title": f"Doc {i}", "text": f"Text {i} about pupil premium and tutoring."})
              for i in range(6)]
    lines = corpus[:2] + ["{broken json", '["not", "an", "object"]', '{"title": "no id"}', ""] + corpus[2:]
    (beir / "corpus.jsonl").write_bytes("\n".join(lines).encode() + b"\n\xff\xfe{\"_id\": \"bad-utf8\"\n")
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "pupil premium tutoring"}\nnot json\n')
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\n")
    r = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "eval-beir", str(beir), "--mode", "bm25", "--json"])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    report = json.loads(r.stdout)
    assert report["documents"] == 6
    assert len(report["skipped_lines"]) == 6, report["skipped_lines"]


@pytest.mark.slow
def test_large_inputs_bounded_memory(tmp_path):
    """A 50 MB text file (under the 50 MiB cap) and a 10 MB HTML page, each in a
    subprocess whose peak RSS is measured: they must work, or refuse clearly."""
    big = tmp_path / "big.txt"
    rng = random.Random(3)
    words = "pupil premium school attendance inclusion belonging reading tutoring mentoring governors".split()
    para = lambda: " ".join(rng.choice(words) for _ in range(120)) + "."  # noqa: E731
    with open(big, "w") as fh:
        while fh.tell() < 50 * 1000 * 1000:
            fh.write("\n\n".join(para() for _ in range(200)) + "\n\n")
    html = tmp_path / "big.html"
    html.write_text("<html><body>" + "".join(f"<p>{para()}</p>" for _ in range(12000)) + "</body></html>")
    assert html.stat().st_size > 10 * 1000 * 1000
    results = {}
    for f in (big, html):
        r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_reliability.py"), "--one-file", str(f),
                            "--store", str(tmp_path / f"store-{f.suffix[1:]}")],
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=1200)
        assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
        results[f.suffix] = json.loads(r.stdout.strip().splitlines()[-1])
    for suffix, res in results.items():
        assert res["status"] in ("added", "failed"), res
        if res["status"] == "failed":
            assert "\n" not in res["reason"] and res["reason"]
        # Bounded: a few times the file, not unbounded growth.
        assert res["peak_rss_mb"] < 2500, res


@pytest.mark.slow
def test_all_cases_in_one_batch_through_the_real_cli(tmp_path):
    """One `equisearch ingest` process (bundled model) over every case: stderr holds
    exactly one line per bad input and nothing else (no library logging, no
    traceback); the good inputs are all stored; exit code 1."""
    folder = tmp_path / "in"
    folder.mkdir()
    paths = [str(c.make(folder)) for c in CASES]
    good = tmp_path / "good.txt"
    good.write_text(GOOD_TEXT)
    r = subprocess.run([sys.executable, "-m", "cli", "--store", str(tmp_path / "store"), "ingest", "--",
                        *paths, str(good)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert all(ln.startswith("failed: ") for ln in lines), r.stderr
    failing = [c for c in CASES if c.fails]
    assert len(lines) == len(failing), r.stderr
    import re

    counts = {k: int(v) for v, k in re.findall(r"(\d+) (added|duplicate|failed)", r.stdout)}
    # Two cases hold the same text (stored once, the second as an alias).
    assert counts["added"] + counts["duplicate"] == sum(1 for c in CASES if not c.fails) + 1, r.stdout
    assert counts["failed"] == len(failing)
