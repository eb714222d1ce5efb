"""Reading lists: the library (search/lists.py), schema migration, exports parsed
by real BibTeX/RIS readers, and the `equisearch lists` CLI through CliRunner.

Plumbing only (lists never depend on ranking), so the hashing fake embedder
builds the stores. Every test but the SQLite schema migration runs on both
backends (``store_location``, tests/backends.py).
"""
from __future__ import annotations

import csv
import io
import json
import sqlite3

import bibtexparser
import pytest
import rispy
from click.testing import CliRunner

import ingest.pipeline
import search.api
from cli.app import main
from ingest.pipeline import Ingestor
from search import store as store_mod
from search.errors import ListError, ListNotFound
from search.lists import WORDS_PER_MINUTE, ReadingLists, reading_minutes
from search.store import Store

from .backends import open_at, settings_at
from .conftest import FakeEmbedder

NASTY = 'Odd {brace and 100% of R&D_costs #1 ~ ^ \\ "quoted" <script>alert(1)</script>'


def _write(folder, name, text, manifest=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps({"documents": manifest}), encoding="utf-8")


PARA_A = ("Pupils eligible for the pupil premium plus include previously looked-after children. "
          "Schools should work with the virtual school head to plan support for each child.")
PARA_B = ("Designated teachers promote the educational achievement of looked-after children. "
          "They make sure staff understand the effects of trauma and attachment on learning.")
PARA_C = " ".join(f"Training session {n} covered attachment-aware practice for the whole staff team." for n in range(12))


@pytest.fixture
def docs(tmp_path):
    src = tmp_path / "src"
    _write(src, "plac.txt", PARA_A + "\n\n" + PARA_B + "\n\n" + PARA_C)
    _write(src, "report.md", "# Report\n\nThe SEND system costs rose by 40% in five years across local areas.\n")
    manifest = [
        {"file": "plac.txt", "title": NASTY, "site": "DfE", "kind": "guidance", "date": "2018-02-01",
         "url": "https://www.gov.uk/guidance/plac?x=1&y={2}#top"},
        {"file": "report.md", "title": "SEND costs report", "site": "", "kind": "article", "date": "2021",
         "author": "Smith, Jo and Khan, Ali"},
    ]
    (src / "manifest.json").write_text(json.dumps({"documents": manifest}), encoding="utf-8")
    return src


@pytest.fixture
def store(store_location, docs):
    emb = FakeEmbedder()
    s = open_at(store_location)
    report = Ingestor(s, settings_at(store_location), emb).ingest_paths([docs])
    assert not report.failed
    s._emb = emb  # re-ingest helpers below reuse it
    s._location = store_location
    return s


def _doc(store, name):
    return next(d for d in store.documents() if d.uri.endswith(name))


def _first_chunk(store, name):
    return store.chunks_of(_doc(store, name).id)[0]


# -- schema ------------------------------------------------------------------------
def test_v1_store_migrates_to_current_on_open(tmp_path):
    db = tmp_path / "old" / store_mod.DB_NAME
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.executescript(store_mod.MIGRATIONS[1] + "INSERT INTO meta VALUES ('schema_version', '1'), ('generation', '7');"
                       "INSERT INTO documents(uri, title, content_hash, text_hash, text, added_at, updated_at)"
                       " VALUES ('/x.txt', 'Old doc', 'h', 't', 'old text', 'now', 'now');"
                       "PRAGMA user_version=1;")
    conn.close()
    s = Store.open(db.parent)
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION
    assert s.info().schema_version == store_mod.SCHEMA_VERSION and s.generation() == 7
    assert [d.title for d in s.documents()] == ["Old doc"]
    lists = ReadingLists(s)
    lists.create("After migration")
    item, added = lists.add_source("After migration", "/x.txt")
    assert added and item.title == "Old doc" and item.words == 2
    s.close()
    # Opening again is a no-op (already current), the list is still there.
    assert [rl.name for rl in ReadingLists(Store.open(db.parent)).lists()] == ["After migration"]


# -- lists -------------------------------------------------------------------------
def test_create_rename_delete_and_errors(store):
    rls = ReadingLists(store)
    rl = rls.create("  PLAC   CPD ")
    assert rl.name == "PLAC CPD" and rl.n_items == 0
    assert rls.get("plac cpd").id == rl.id and rls.get(str(rl.id)).id == rl.id
    with pytest.raises(ListError, match="already exists"):
        rls.create("plac cpd")
    with pytest.raises(ListError, match="needs a name"):
        rls.create("   ")
    rls.create("Other")
    with pytest.raises(ListError, match="already exists"):
        rls.rename("Other", "PLAC CPD")
    assert rls.rename(rl.id, "Session 2").name == "Session 2"
    with pytest.raises(ListNotFound, match="no reading list"):
        rls.get("PLAC CPD")
    rls.delete("Session 2")
    assert [r.name for r in rls.lists()] == ["Other"]


def test_add_move_note_remove_keep_positions(store):
    rls = ReadingLists(store)
    rls.create("L")
    c1 = _first_chunk(store, "plac.txt")
    i1, added = rls.add_passage("L", c1.id, note="first")
    assert added and i1.position == 1 and i1.text == c1.text and i1.note == "first"
    assert rls.add_passage("L", c1.id)[1] is False  # one click twice = one item
    i2, _ = rls.add_source("L", _doc(store, "report.md").id)
    i3, _ = rls.add_source("L", _doc(store, "plac.txt").uri)  # by URI
    assert [i.position for i in rls.items("L")] == [1, 2, 3]
    rls.move(i3.id, 1)
    assert [i.id for i in rls.items("L")] == [i3.id, i1.id, i2.id]
    rls.move(i3.id, 99)  # clamped to the end
    assert [i.id for i in rls.items("L")] == [i1.id, i2.id, i3.id]
    rls.set_note(i2.id, 'line one\nline "two", with comma')
    rls.remove_item(i1.id)
    items = rls.items("L")
    assert [(i.id, i.position) for i in items] == [(i2.id, 1), (i3.id, 2)]
    assert items[0].note == 'line one\nline "two", with comma'
    with pytest.raises(ListNotFound):
        rls.add_passage("L", 999999)
    with pytest.raises(ListNotFound):
        rls.add_source("L", "https://nowhere.example/")
    with pytest.raises(ListNotFound, match="no item 5"):
        rls.item_at("L", 5)


def test_reading_time(store):
    assert WORDS_PER_MINUTE == 200
    assert (reading_minutes(0), reading_minutes(1), reading_minutes(200), reading_minutes(201)) == (0, 1, 1, 2)
    rls = ReadingLists(store)
    rls.create("L")
    item, _ = rls.add_source("L", _doc(store, "plac.txt").id)
    assert item.words == len((PARA_A + " " + PARA_B + " " + PARA_C).split()) == 179
    assert rls.get("L").words == item.words and rls.get("L").reading_minutes == 1


def _reingest(store, docs):
    return Ingestor(store, settings_at(store._location), store._emb).ingest_paths([docs])


def test_items_survive_reingest_and_removal(store, docs):
    rls = ReadingLists(store)
    rls.create("L")
    plac_chunks = store.chunks_of(_doc(store, "plac.txt").id)
    kept, _ = rls.add_passage("L", plac_chunks[0].id)
    rls.add_source("L", _doc(store, "plac.txt").id)
    report_item, _ = rls.add_passage("L", _first_chunk(store, "report.md").id, note="costs")
    # Re-ingest a changed plac.txt (same passage text, plus a new paragraph):
    # chunk ids change, the passage is found again by its text.
    (docs / "plac.txt").write_text(PARA_A + "\n\n" + PARA_B + "\n\n" + PARA_C + "\n\nA new closing paragraph about exclusions.",
                                   encoding="utf-8")
    # and a report.md whose passage is gone.
    (docs / "report.md").write_text("# Report\n\nEntirely different findings now.\n", encoding="utf-8")
    assert _reingest(store, docs).counts["updated"] == 2
    items = {i.id: i for i in rls.items("L")}
    assert items[kept.id].status == "current"
    assert items[kept.id].chunk_id in {c.id for c in store.chunks_of(_doc(store, "plac.txt").id)}
    assert items[report_item.id].status == "changed"
    assert items[report_item.id].text == report_item.text  # snapshot kept
    # Remove the source entirely: items stay, with their citations.
    store.remove_document(_doc(store, "plac.txt").id)
    items = rls.items("L")
    assert [i.status for i in items] == ["removed", "removed", "changed"]
    assert items[0].title == NASTY and items[0].text == kept.text
    assert "no longer in the store" in rls.export("L", "md")
    # Re-ingest it: relinked by URI.
    _reingest(store, docs)
    assert [i.status for i in rls.items("L")] == ["current", "current", "changed"]


# -- exports -------------------------------------------------------------------------
@pytest.fixture
def full_list(store):
    rls = ReadingLists(store)
    rls.create('Exports "test" {list}')
    rls.add_passage(1, _first_chunk(store, "plac.txt").id, note='Discuss in session 2:\n"why", & how {x}')
    rls.add_source(1, _doc(store, "plac.txt").id, note="100% essential")
    rls.add_passage(1, _first_chunk(store, "report.md").id)
    return rls


def test_bibtex_export_parses_with_unique_keys(full_list):
    text = full_list.export(1, "bibtex")
    lib = bibtexparser.parse_string(text)
    assert not lib.failed_blocks, [b.error for b in lib.failed_blocks]
    assert len(lib.entries) == 3
    keys = [e.key for e in lib.entries]
    assert len(set(keys)) == 3 and keys[0] == "dfe2018" and keys[1] == "dfe2018a"
    guidance, _, misc = lib.entries
    assert guidance.entry_type == "techreport" and misc.entry_type == "misc"
    f = guidance.fields_dict
    assert f["institution"].value == "DfE" and f["year"].value == "2018"
    assert f["url"].value == "https://www.gov.uk/guidance/plac?x=1&y=%7B2%7D#top"
    assert r"\textbraceleft{}" in f["title"].value and r"100\%" in f["title"].value and r"R\&D\_costs" in f["title"].value
    assert "Passage:" in f["note"].value and "Discuss in session 2" in f["note"].value
    assert "\n" not in f["note"].value
    m = misc.fields_dict
    assert m["author"].value == "Smith, Jo and Khan, Ali" and m["year"].value == "2021"
    assert misc.key == "smith2021"
    # Every field's braces balance (BibTeX counts escaped braces too).
    for block in text.split("\n@")[1:]:
        assert block.count("{") == block.count("}")


def test_ris_export_parses(full_list):
    text = full_list.export(1, "ris")
    assert text.startswith("TY  - RPRT\r\n") and text.count("ER  - ") == 3
    entries = rispy.loads(text)
    assert len(entries) == 3
    first = entries[0]
    assert first["type_of_reference"] == "RPRT" and first["title"] == " ".join(NASTY.split())
    assert first["year"] == "2018" and first["publisher"] == "DfE"
    assert first["urls"] == ["https://www.gov.uk/guidance/plac?x=1&y={2}#top"]
    assert any("Discuss in session 2" in n for n in first["notes"])
    assert entries[2]["type_of_reference"] == "GEN"
    assert entries[2]["authors"] == ["Smith, Jo", "Khan, Ali"]
    # RIS is one value per line: no stray line without a tag.
    for line in text.split("\r\n"):
        assert line == "" or line[2:6] == "  - "


def test_csv_export_round_trips_notes(full_list):
    text = full_list.export(1, "csv")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["position"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["note"] == 'Discuss in session 2:\n"why", & how {x}'
    assert rows[0]["type"] == "passage" and rows[1]["type"] == "source" and rows[0]["passage"]
    assert rows[0]["title"] == NASTY and rows[0]["status"] == "current"


def test_markdown_export(full_list):
    text = full_list.export(1, "md")
    assert text.startswith('# Exports "test" {list}\n')
    assert "3 items, about 2 min of reading (at 200 words a minute)" in text
    assert "## 1. " in text and "## 3. SEND costs report" in text
    assert "\\<script\\>" in text and "<script>" not in text  # shown literally by Markdown viewers
    assert "> Pupils eligible" in text and "**Note:** Discuss in session 2:  \n" in text
    with pytest.raises(ListError, match="unknown export format"):
        full_list.export(1, "docx")


# -- CLI ---------------------------------------------------------------------------------
@pytest.fixture
def cli_store(store, monkeypatch):
    emb = store._emb
    emb.name = "fake-hash-64"
    monkeypatch.setattr(ingest.pipeline, "load_embedder", lambda name, **kw: emb)
    monkeypatch.setattr(search.api, "load_embedder", lambda name, **kw: emb)
    store.close()
    return store._location


def run(store_dir, *args, input=None):
    return CliRunner().invoke(main, ["--store", str(store_dir), "lists", *args], input=input)


def test_cli_lists_end_to_end(cli_store, tmp_path):
    s = open_at(cli_store)
    chunk_id = _first_chunk(s, "plac.txt").id
    report_id = _doc(s, "report.md").id
    s.close()
    r = run(cli_store, "create", "PLAC CPD")
    assert r.exit_code == 0 and "created list" in r.output
    r = run(cli_store, "create", "plac cpd")
    assert r.exit_code == 1 and "Error: a reading list called" in r.output and "Traceback" not in r.output
    assert run(cli_store, "add", "PLAC CPD", "--passage", str(chunk_id), "--note", "session 2").exit_code == 0
    assert "already listed" in run(cli_store, "add", "PLAC CPD", "--passage", str(chunk_id)).output
    assert run(cli_store, "add", "PLAC CPD", "--source", str(report_id)).exit_code == 0
    r = run(cli_store, "add", "New list", "--source", str(report_id), "--create")
    assert r.exit_code == 0
    data = json.loads(run(cli_store, "ls", "--json").output)
    assert [(d["name"], d["items"]) for d in data] == [("New list", 1), ("PLAC CPD", 2)]
    assert run(cli_store, "move", "PLAC CPD", "2", "1").exit_code == 0
    assert run(cli_store, "note", "PLAC CPD", "1", "whole report").exit_code == 0
    shown = json.loads(run(cli_store, "show", "PLAC CPD", "--json").output)
    assert [i["type"] for i in shown["items"]] == ["source", "passage"]
    assert shown["items"][0]["note"] == "whole report" and shown["items"][1]["chunk_id"] == chunk_id
    assert "whole report" in run(cli_store, "show", "PLAC CPD").output
    out = tmp_path / "out" / "plac"
    out.parent.mkdir()
    r = run(cli_store, "export", "PLAC CPD", "--format", "bibtex", "-o", str(out))
    assert r.exit_code == 0 and (tmp_path / "out" / "plac.bib").exists()
    assert len(bibtexparser.parse_file(str(tmp_path / "out" / "plac.bib")).entries) == 2
    r = run(cli_store, "export", "PLAC CPD", "--format", "ris")
    assert r.exit_code == 0 and len(rispy.loads(r.output)) == 2
    assert run(cli_store, "remove", "PLAC CPD", "1").exit_code == 0
    r = run(cli_store, "note", "PLAC CPD", "7", "x")
    assert r.exit_code == 1 and "no item 7" in r.output
    r = run(cli_store, "rename", "PLAC CPD", "Session 2")
    assert r.exit_code == 0
    r = run(cli_store, "delete", "Session 2", input="n\n")
    assert r.exit_code == 1  # aborted, still there
    assert run(cli_store, "delete", "Session 2", "--yes").exit_code == 0
    r = run(cli_store, "show", "Session 2")
    assert r.exit_code == 1 and "no reading list" in r.output


def test_cli_lists_without_store_is_one_line(store_location):
    r = run(store_location, "ls")  # nothing ingested there
    assert r.exit_code == 1 and r.output.startswith("Error: no equisearch store")
