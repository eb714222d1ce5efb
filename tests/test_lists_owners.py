"""Reading lists with owners on SQLite: schema 5's migration, who sees and changes
which list (search/lists.py), and `equisearch lists share/unshare` through CliRunner.

Plumbing only: the hashing fake embedder builds the store. The same rules on
PostgreSQL are tests/test_pg_lists.py.
"""
from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from cli.app import main
from ingest.pipeline import Ingestor
from search import store as store_mod
from search.errors import ListError, ListNotFound, StoreError
from search.lists import ReadingLists
from search.settings import Settings
from search.store import Store

from .conftest import FakeEmbedder

ALICE, BOB = "alice@school.example", "bob@school.example"
TEXT = ("Designated teachers promote the educational achievement of looked-after children.\n\n"
        "They make sure staff understand the effects of trauma and attachment on learning.\n\n"
        + " ".join(f"Training session {n} covered attachment-aware practice." for n in range(30)))


@pytest.fixture
def store(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "plac.txt").write_text(TEXT, encoding="utf-8")
    (src / "send.txt").write_text("The SEND system costs rose by 40% in five years.\n", encoding="utf-8")
    s = Store.open(tmp_path / "store")
    report = Ingestor(s, Settings(home=str(tmp_path / "store")), FakeEmbedder()).ingest_paths([src])
    assert not report.failed
    yield s
    s.close()


def _doc(store, name):
    return next(d for d in store.documents() if d.uri.endswith(name))


# -- schema 5 ----------------------------------------------------------------------
def _v4_store_with_lists(folder):
    """A store as equisearch wrote it at schema 4: two lists, three items (one on a passage)."""
    folder.mkdir()
    conn = sqlite3.connect(folder / store_mod.DB_NAME, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript("BEGIN;" + "".join(store_mod.MIGRATIONS[v] for v in (1, 2, 3, 4))
                       + "INSERT INTO meta VALUES ('schema_version', '4'), ('generation', '9');"
                       "PRAGMA user_version=4; COMMIT;")
    conn.execute("INSERT INTO documents(uri, title, content_hash, text_hash, text, added_at, updated_at)"
                 " VALUES ('/a.txt', 'Attachment guidance', 'h', 'h', 'Attachment matters.', 'x', 'x')")
    conn.execute("INSERT INTO chunks(doc_id, ord, text, char_start, char_end, text_hash)"
                 " VALUES (1, 0, 'Attachment matters.', 0, 19, 'h')")
    conn.execute("INSERT INTO reading_lists(id, name, created_at, updated_at) VALUES"
                 " (4, 'PLAC CPD', 't1', 't2'), (7, 'Governors', 't3', 't4')")
    conn.execute("INSERT INTO reading_list_items(id, list_id, position, item_type, doc_id, chunk_id, uri, title,"
                 " text, words, note, added_at) VALUES"
                 " (10, 4, 1, 'passage', 1, 1, '/a.txt', 'Attachment guidance', 'Attachment matters.', 2, 'n1', 'a'),"
                 " (11, 4, 2, 'source', 1, NULL, '/a.txt', 'Attachment guidance', '', 2, '', 'b'),"
                 " (12, 7, 1, 'source', NULL, NULL, '/gone.pdf', 'Gone report', '', 900, 'kept', 'c')")
    conn.close()


def _items(s):
    return [tuple(r) for r in s.conn.execute(
        "SELECT id, list_id, position, item_type, doc_id, chunk_id, uri, note FROM reading_list_items ORDER BY id")]


def test_v4_store_with_lists_migrates_keeping_ids_items_and_cascades(tmp_path):
    _v4_store_with_lists(tmp_path / "old")
    s = Store.open(tmp_path / "old", create=False)
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION == 5
    assert s.get_meta("schema_version") == "5" and s.generation() == 9
    lists = s.reading_lists()
    assert [(r["id"], r["name"], r["owner"], r["shared"], r["created_at"], r["updated_at"], r["n"], r["w"])
            for r in lists] == [(7, "Governors", "", False, "t3", "t4", 1, 900),
                                (4, "PLAC CPD", "", False, "t1", "t2", 2, 4)]
    assert _items(s) == [(10, 4, 1, "passage", 1, 1, "/a.txt", "n1"), (11, 4, 2, "source", 1, None, "/a.txt", ""),
                         (12, 7, 1, "source", None, None, "/gone.pdf", "kept")]
    assert not s.conn.execute("PRAGMA foreign_key_check").fetchall()
    refs = {r["from"]: r["table"] for r in s.conn.execute("PRAGMA foreign_key_list(reading_list_items)")}
    assert refs == {"list_id": "reading_lists", "doc_id": "documents", "chunk_id": "chunks"}
    leftovers = [r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%_v5'")]
    assert leftovers == []
    # Names are now unique per owner: another owner may reuse one, the same owner may not (any case).
    assert s.create_reading_list("plac cpd", owner=ALICE) is not None
    assert s.create_reading_list("plac cpd") is None
    # The rebuilt tables still cascade and set NULL as schema 3 did.
    with s.transaction() as conn:
        conn.execute("DELETE FROM documents WHERE id = 1")
    assert _items(s)[0][4:6] == (None, None)
    s.delete_reading_list(4)
    assert [i[0] for i in _items(s)] == [12]
    s.close()
    # The library reads the migrated lists as the single user's.
    rls = ReadingLists(Store.open(tmp_path / "old"))
    assert [(rl.name, rl.owner, rl.shared) for rl in rls.lists()] == [("Governors", "", False), ("plac cpd", ALICE, False)]
    assert rls.items("Governors")[0].status == "removed"


def test_a_failed_migration_leaves_the_v4_store_as_it_was(tmp_path):
    _v4_store_with_lists(tmp_path / "old")
    # A half-made table from elsewhere makes the script fail part-way: nothing of it may stay.
    conn = sqlite3.connect(tmp_path / "old" / store_mod.DB_NAME)
    conn.execute("CREATE TABLE reading_list_items_v5 (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="could not upgrade"):
        Store.open(tmp_path / "old", create=False)
    conn = sqlite3.connect(tmp_path / "old" / store_mod.DB_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    assert conn.execute("SELECT count(*) FROM reading_list_items").fetchone()[0] == 3
    assert "owner" not in [r[1] for r in conn.execute("PRAGMA table_info(reading_lists)")]
    conn.close()


# -- who sees and changes what ------------------------------------------------------
def test_own_lists_private_until_shared_and_others_read_only(store):
    alice, bob, single = ReadingLists(store, user=ALICE), ReadingLists(store, user=BOB), ReadingLists(store)
    chunk = store.chunks_of(_doc(store, "plac.txt").id)[0]
    mine = alice.create("PLAC CPD")
    assert (mine.owner, mine.shared) == (ALICE, False)
    alice.add_passage(mine.id, chunk.id, note="read first")
    alice.add_source(mine.id, _doc(store, "send.txt").id)
    # Names are per owner: Bob may have his own "plac cpd"; Alice may not have two.
    bobs = bob.create("plac cpd")
    with pytest.raises(ListError, match="already exists"):
        alice.create("Plac Cpd")
    # Private: Bob sees only his own, by name or id, list or item.
    assert [rl.id for rl in bob.lists()] == [bobs.id]
    assert bob.get("PLAC CPD").id == bobs.id
    for call in (lambda: bob.get(mine.id), lambda: bob.items(mine.id), lambda: bob.export(mine.id, "md")):
        with pytest.raises(ListNotFound):
            call()
    item_id = alice.items(mine.id)[0].id
    with pytest.raises(ListNotFound):
        bob.set_note(item_id, "mine now")
    # Shared: Bob reads and exports it, his own name still wins over hers.
    assert alice.share("PLAC CPD").shared is True
    assert sorted((rl.owner, rl.shared) for rl in bob.lists()) == [(ALICE, True), (BOB, False)]
    assert bob.get("plac cpd").id == bobs.id and bob.get(mine.id).owner == ALICE
    assert [i.note for i in bob.items(mine.id)] == ["read first", ""]
    assert "read first" in bob.export(mine.id, "md")
    assert not bob.can_change(bob.get(mine.id)) and bob.can_change(bobs)
    # ... and may change nothing of it, each refusal one line naming the owner.
    before = (alice.get(mine.id), [(i.id, i.position, i.note) for i in alice.items(mine.id)])
    refusals = [
        lambda: bob.rename(mine.id, "Bob's now"), lambda: bob.delete(mine.id), lambda: bob.share(mine.id, False),
        lambda: bob.add_passage(mine.id, store.chunks_of(_doc(store, "plac.txt").id)[1].id),
        lambda: bob.add_source(mine.id, _doc(store, "send.txt").id), lambda: bob.set_note(item_id, "x"),
        lambda: bob.move(item_id, 2), lambda: bob.remove_item(item_id),
    ]
    for refuse in refusals:
        with pytest.raises(ListError, match=f"is {ALICE}'s shared list: you can read and export it") as exc:
            refuse()
        assert "\n" not in str(exc.value)
    assert (alice.get(mine.id), [(i.id, i.position, i.note) for i in alice.items(mine.id)]) == before
    # Alice changes her own freely; the single user (CLI) sees and changes every list.
    alice.move(item_id, 2)
    assert [rl.id for rl in single.lists()] == [mine.id, bobs.id]  # same name: the older first
    single.set_note(item_id, "edited by the operator")
    assert single.create("PLAC CPD").owner == ""  # the single user's own, beside both of theirs
    # Unshared: gone from Bob's view again.
    alice.share(mine.id, False)
    assert [rl.id for rl in bob.lists()] == [bobs.id]
    with pytest.raises(ListNotFound):
        bob.items(mine.id)


def test_a_sign_in_without_identity_is_never_the_single_user(store):
    for blank in ("", "   "):
        with pytest.raises(ValueError, match="non-empty identity"):
            ReadingLists(store, user=blank)


# -- CLI ---------------------------------------------------------------------------
def run(home, *args):
    return CliRunner().invoke(main, ["--store", str(home), "lists", *args])


def test_cli_share_unshare_and_ls_show_owner_and_sharing(store, tmp_path):
    home = tmp_path / "store"
    ReadingLists(store, user=ALICE).create("Attachment")
    assert run(home, "create", "Mine").exit_code == 0
    r = run(home, "share", "Mine")
    assert r.exit_code == 0 and "shared list" in r.output
    listing = run(home, "ls").output.splitlines()
    assert listing[0].endswith(f"Attachment  (0 items, about 0 min)  [owner {ALICE}]")
    assert listing[1].endswith("Mine  (0 items, about 0 min)  [shared]")
    data = json.loads(run(home, "ls", "--json").output)
    assert [(d["name"], d["owner"], d["shared"]) for d in data] == [("Attachment", ALICE, False), ("Mine", "", True)]
    # The CLI is the single user: it may share anyone's list.
    assert run(home, "share", "Attachment").exit_code == 0
    assert run(home, "unshare", "Mine").exit_code == 0
    data = json.loads(run(home, "ls", "--json").output)
    assert [d["shared"] for d in data] == [True, False]
    r = run(home, "share", "Nope")
    assert r.exit_code == 1 and r.output.startswith("Error: no reading list 'Nope'")
