"""ui/actions.py without Streamlit: upload names can never escape the store,
sizes are capped, URL lines are checked, the same upload is idempotent."""
from __future__ import annotations

import os

import pytest

from search.errors import EquisearchError
from ui.actions import UPLOAD_DIR, sanitise_filename, save_upload, split_urls


@pytest.mark.parametrize("name, expected", [
    ("report.pdf", "report.pdf"),
    ("../../x.pdf", "x.pdf"),
    ("..\\..\\windows\\evil.txt", "evil.txt"),
    ("/etc/cron.d/job.md", "job.md"),
    ("a\x00b.txt", "ab.txt"),
    ("line\nbreak\r.vtt", "linebreak.vtt"),
    (".hidden.txt", "hidden.txt"),
    ("...pdf.pdf", "pdf.pdf"),
    ("Report (final) v2.PDF", "Report (final) v2.pdf"),
    ("naïve café.srt", "naïve café.srt"),
    ("nursery policy.RST", "nursery policy.rst"),  # every type the extractors read can be uploaded
    ("x;rm -rf $HOME`.html", "x_rm -rf _HOME_.html"),
    ("..pdf", None),
    ("../..", None),
    ("notes.exe", None),
    ("", None),
    ("\x00\x00", None),
])
def test_sanitise_filename(name, expected):
    if expected is None:
        with pytest.raises(EquisearchError):
            sanitise_filename(name)
    else:
        out = sanitise_filename(name)
        assert out == expected
        assert "/" not in out and "\\" not in out and "\x00" not in out and not out.startswith(".")


@pytest.mark.parametrize("name", ["../../x.pdf", "../../../../../../tmp/owned.txt", "/abs/path.md",
                                  "..\\..\\y.txt", "z\x00.txt/../../w.txt"])
def test_uploads_never_write_outside_the_store(tmp_path, name):
    store = tmp_path / "store"
    store.mkdir()
    before = set(tmp_path.rglob("*"))
    path = save_upload(store, name, b"some text", max_file_mb=1)
    uploads = (store / UPLOAD_DIR).resolve()
    assert uploads in path.parents and path.parent.parent == uploads
    assert path.read_bytes() == b"some text"
    created = set(tmp_path.rglob("*")) - before
    assert all((store / UPLOAD_DIR).resolve() in p.resolve().parents or p.resolve() == uploads for p in created)
    assert not (tmp_path / "x.pdf").exists() and not os.path.exists("/tmp/owned.txt")


def test_same_upload_same_path_different_content_kept_apart(tmp_path):
    a = save_upload(tmp_path, "notes.txt", b"one", 1)
    assert save_upload(tmp_path, "notes.txt", b"one", 1) == a
    b = save_upload(tmp_path, "notes.txt", b"two", 1)
    assert b != a and a.read_bytes() == b"one" and b.read_bytes() == b"two"
    assert not list(tmp_path.rglob(".upload.*"))  # no temp files left


def test_upload_size_cap(tmp_path):
    with pytest.raises(EquisearchError, match="over the 1 MiB limit"):
        save_upload(tmp_path, "big.pdf", b"x" * (1024 * 1024 + 1), max_file_mb=1)
    assert not (tmp_path / UPLOAD_DIR).exists()


def test_split_urls_only_http():
    good, bad = split_urls("https://a.org/x\n\n# comment\nftp://b.org/y\njavascript:alert(1)\nhttp://c.org/z\nfile:///etc/passwd")
    assert good == ["https://a.org/x", "http://c.org/z"]
    assert [r.source for r in bad] == ["ftp://b.org/y", "javascript:alert(1)", "file:///etc/passwd"]
    assert all(r.status == "failed" and "http(s)" in r.reason for r in bad)


def test_upload_types_are_the_extractors_suffixes():
    from ingest.extract import SUPPORTED_SUFFIXES
    from ui.actions import UPLOAD_TYPES

    assert {"." + t for t in UPLOAD_TYPES} == set(SUPPORTED_SUFFIXES)
