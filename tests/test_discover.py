"""Which files a batch reads: the folder walk and the manifest."""
from __future__ import annotations

import json

from ingest.discover import MANIFEST_NAME, Manifests, address_reason, discover, is_address
from search.store import DB_NAME


def test_folder_walk_skips_hidden_excluded_and_store_files(tmp_path):
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden.txt").write_text("h")
    (tmp_path / "README.md").write_text("about this folder")
    (tmp_path / "notes.xyz").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD.txt").write_text("ref")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / DB_NAME).write_bytes(b"")
    (tmp_path / "store" / "uploads.txt").write_text("inside a store")
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"exclude": ["README.md"]}))
    got = [(p.relative_to(tmp_path).as_posix(), explicit) for p, explicit in discover([tmp_path])]
    assert got == [("a.pdf", False), ("b.txt", False), ("notes.xyz", False)]


def test_a_named_file_and_a_folder_with_nothing_to_read_are_explicit(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "picture.png").write_bytes(b"\x89PNG")
    got = list(discover([tmp_path / "missing.txt", empty]))
    assert got == [(tmp_path / "missing.txt", True), (empty / "picture.png", False), (empty, True)]


def test_manifest_metadata_is_read_once_per_folder_and_filtered(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"documents": [
        {"file": "a.txt", "title": "A report", "kind": "report", "colour": "blue"}]}))
    manifests = Manifests()
    assert manifests.metadata(tmp_path / "a.txt") == {"title": "A report", "kind": "report"}
    (tmp_path / MANIFEST_NAME).write_text("{}")
    assert manifests.metadata(tmp_path / "a.txt")["title"] == "A report"  # cached for the batch
    assert manifests.metadata(tmp_path / "b.txt") == {}


def test_addresses_are_recognised_and_refused_by_scheme():
    assert is_address("ftp://example.org/x.pdf") and is_address("https://a.org/")
    assert not is_address("notes/ftp.txt") and not is_address("C:/x.txt")
    assert "only http(s) URLs are supported, not ftp://" in address_reason("ftp://example.org/x.pdf")
    assert "a web address, not a file" in address_reason("https://a.org/")
