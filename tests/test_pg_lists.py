"""Reading lists on PostgreSQL (search/store/postgres/lists.py), against a real server.

- the same script of list calls on the SQLite store and on PostgreSQL gives
  the same answers and row shapes (the backend contract);
- the owner rules of search/lists.py hold on PostgreSQL;
- a reader login (a member of equisearch_reader only) opened with
  ``open_store`` keeps its reading lists, and the database refuses every
  change to the corpus, whatever method asks: StoreError, corpus unchanged.

The corpus rows the lists point at are written here with plain SQL as the
superuser: the document methods of the PostgreSQL backend are not what is
tested here.
"""
from __future__ import annotations

import uuid

import numpy as np
import pytest

from search.errors import ListError, ListNotFound, StoreError
from search.lists import ReadingLists
from search.settings import Settings
from search.store import NewChunk, NewDocument, Store, open_store
from search.text import content_hash

pytestmark = pytest.mark.postgres

ALICE, BOB = "alice@school.example", "bob@school.example"
DOCS = {
    "/plac.txt": ["Designated teachers promote the achievement of looked-after children.",
                  "Staff understand the effects of trauma and attachment on learning."],
    "/send.txt": ["The SEND system costs rose by 40% in five years."],
}
ITEM_KEYS = {"id", "list_id", "position", "item_type", "doc_id", "chunk_id", "uri", "title", "site", "kind", "date",
             "author", "url", "link", "location", "page_start", "page_end", "t_start", "t_end", "text", "words",
             "note", "added_at"}


def _seed_pg(url: str) -> dict[str, tuple[int, list[int]]]:
    """Documents and passages written with SQL as the superuser: {uri: (doc id, chunk ids)}."""
    import psycopg

    out = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for uri, texts in DOCS.items():
            doc = conn.execute(
                "INSERT INTO documents(uri, title, content_hash, text_hash, text, added_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, 'x', 'x') RETURNING id",
                (uri, uri.strip("/"), content_hash(uri), content_hash(" ".join(texts)), " ".join(texts))).fetchone()[0]
            ids = [conn.execute(
                "INSERT INTO chunks(doc_id, ord, text, char_start, char_end, text_hash, tsv, len)"
                " VALUES (%s, %s, %s, 0, %s, %s, to_tsvector('english', %s), 3) RETURNING id",
                (doc, n, t, len(t), content_hash(t), t)).fetchone()[0] for n, t in enumerate(texts)]
            out[uri] = (doc, ids)
        conn.execute("INSERT INTO aliases(uri, doc_id) VALUES ('/plac-copy.txt', %s)", (out["/plac.txt"][0],))
    return out


def _seed_sqlite(store: Store) -> dict[str, tuple[int, list[int]]]:
    out = {}
    for uri, texts in DOCS.items():
        text = " ".join(texts)
        chunks = [NewChunk(text=t, char_start=0, char_end=len(t), text_hash=content_hash(t)) for t in texts]
        vecs = np.eye(len(texts), 4, dtype=np.float32)
        res = store.write_document(NewDocument(uri=uri, title=uri.strip("/"), text=text, content_hash=content_hash(uri),
                                               text_hash=content_hash(text)), chunks, vecs, model="m", dim=4, chunking="c")
        out[uri] = (res.doc_id, list(res.added_ids))
    return out


def _passage(corpus, uri, n, **kw):
    doc_id, chunk_ids = corpus[uri]
    return {"item_type": "passage", "doc_id": doc_id, "chunk_id": chunk_ids[n], "uri": uri, "title": uri.strip("/"),
            "text": DOCS[uri][n], "words": len(DOCS[uri][n].split()), **kw}


def _source(corpus, uri, **kw):
    return {"item_type": "source", "doc_id": corpus[uri][0], "chunk_id": None, "uri": uri, "title": uri.strip("/"),
            "words": 9, **kw}


def _other_source(n):
    """A source no document backs (as after a removal): its items are matched by uri alone."""
    return {"item_type": "source", "doc_id": None, "chunk_id": None, "uri": f"/copy-{n}.txt", "words": 1}


@pytest.fixture
def pg(pg_database):
    store = open_store(pg_database, settings=Settings())
    corpus = _seed_pg(pg_database)
    yield store, corpus, pg_database
    store.close()


# -- the backend contract -------------------------------------------------------------
def _exercise(store, corpus) -> dict:
    """One script of list calls; the answers, with ids replaced by their order of creation."""
    out: dict = {}
    a = store.create_reading_list("CPD", owner=ALICE)
    out["duplicate"] = store.create_reading_list("cpd", owner=ALICE)
    b = store.create_reading_list("CPD", owner=BOB)
    other = store.create_reading_list("Other", owner=BOB)
    single = store.create_reading_list("Single")
    ids = {a: "a", b: "b", other: "other", single: "single"}
    out["rename_clash"] = store.rename_reading_list(other, "cpd")
    out["rename_case"] = store.rename_reading_list(b, "cPd")
    store.rename_reading_list(b, "CPD")
    out["alice_sees"] = [ids[r["id"]] for r in store.reading_lists(visible_to=ALICE)]
    store.share_reading_list(a, True)
    out["bob_sees"] = [(ids[r["id"]], r["name"], r["owner"], r["shared"]) for r in store.reading_lists(visible_to=BOB)]
    out["refs"] = [ids.get(store.reading_list_id(ref, visible_to=who)) for ref, who in (
        ("cpd", BOB), (str(a), BOB), ("Single", BOB), (str(single), BOB), ("CPD", ALICE), ("cpd", None),
        ("single", None), (" Other ", BOB), ("9999", None), ("nope", None))]
    i1, added1 = store.add_reading_list_item(a, _passage(corpus, "/plac.txt", 0, note="first"))
    again = store.add_reading_list_item(a, _passage(corpus, "/plac.txt", 0))
    recut = store.add_reading_list_item(a, _passage(corpus, "/plac.txt", 0, chunk_id=None))  # same uri and text
    i2, added2 = store.add_reading_list_item(a, _source(corpus, "/send.txt"))
    by_uri = store.add_reading_list_item(a, _source(corpus, "/send.txt", doc_id=None))
    i3, added3 = store.add_reading_list_item(a, _passage(corpus, "/plac.txt", 1))
    items = {i1: "i1", i2: "i2", i3: "i3"}
    out["adds"] = [added1, again == (i1, False), recut == (i1, False), added2, by_uri == (i2, False), added3]
    order = lambda: [(items[r["id"]], r["position"]) for r in store.reading_list_items(a)]  # noqa: E731
    out["order_added"] = order()
    store.move_reading_list_item(i3, 1)
    out["order_moved"] = order()
    store.move_reading_list_item(i3, 99)
    out["order_clamped"] = order()
    store.set_reading_list_note(i2, "whole report")
    store.update_reading_list_items([(i1, {"title": "Renamed", "chunk_id": None}), (i3, {"link": "https://x/#p"})])
    store.update_reading_list_items([])
    with pytest.raises(ValueError, match="not reading-list item columns"):
        store.update_reading_list_items([(i1, {"list_id": b})])
    row = store.reading_list_item(i1)
    out["item_keys"] = sorted(row)
    out["item"] = {k: v for k, v in row.items() if k not in ("id", "list_id", "doc_id", "added_at")}
    out["item_types"] = {k: type(v).__name__ for k, v in store.reading_list_item(i3).items()}
    store.remove_reading_list_item(i3)
    out["order_removed"] = order()
    out["notes"] = [r["note"] for r in store.reading_list_items(a)]
    out["lists"] = [(ids[r["id"]], sorted(r), r["n"], r["w"], r["shared"]) for r in store.reading_lists()]
    store.delete_reading_list(a)
    out["after_delete"] = (store.reading_list_items(a), store.reading_list_item(i1),
                           [ids[r["id"]] for r in store.reading_lists()])
    return out


def test_lists_behave_the_same_on_sqlite_and_postgresql(pg, tmp_path):
    pg_store, pg_corpus, _url = pg
    sqlite_store = Store.open(tmp_path / "store")
    on_sqlite = _exercise(sqlite_store, _seed_sqlite(sqlite_store))
    on_pg = _exercise(pg_store, pg_corpus)
    assert on_pg == on_sqlite
    # And both are right (not only equal):
    assert on_pg["duplicate"] is None and on_pg["rename_clash"] is False and on_pg["rename_case"] is True
    assert on_pg["alice_sees"] == ["a"]
    assert on_pg["bob_sees"] == [("a", "CPD", ALICE, True), ("b", "CPD", BOB, False), ("other", "Other", BOB, False)]
    assert on_pg["refs"] == ["b", "a", None, None, "a", "a", "single", "other", None, None]
    assert on_pg["adds"] == [True, True, True, True, True, True]
    assert on_pg["order_added"] == [("i1", 1), ("i2", 2), ("i3", 3)]
    assert on_pg["order_moved"] == [("i3", 1), ("i1", 2), ("i2", 3)]
    assert on_pg["order_clamped"] == [("i1", 1), ("i2", 2), ("i3", 3)]
    assert on_pg["order_removed"] == [("i1", 1), ("i2", 2)] and on_pg["notes"] == ["first", "whole report"]
    assert set(on_pg["item_keys"]) == ITEM_KEYS
    assert on_pg["item"]["title"] == "Renamed" and on_pg["item"]["chunk_id"] is None
    assert on_pg["item_types"]["t_start"] == "NoneType" and on_pg["item_types"]["words"] == "int"
    assert [(name, n, w) for name, _keys, n, w, _s in on_pg["lists"]] == [
        ("a", 2, 8 + 9), ("b", 0, 0), ("other", 0, 0), ("single", 0, 0)]
    assert on_pg["after_delete"] == ([], None, ["b", "other", "single"])


def test_concurrent_appends_to_one_list_get_distinct_positions(pg):
    from concurrent.futures import ThreadPoolExecutor

    store, corpus, _url = pg
    lst = store.create_reading_list("Busy", owner=ALICE)
    values = [_other_source(n) for n in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda v: store.add_reading_list_item(lst, v), values))
    assert sorted(r["position"] for r in store.reading_list_items(lst)) == list(range(1, 17))


# -- owner rules (search/lists.py) on PostgreSQL -----------------------------------------
def test_owner_rules_hold_on_postgresql(pg):
    store, corpus, _url = pg
    alice, bob, single = ReadingLists(store, user=ALICE), ReadingLists(store, user=BOB), ReadingLists(store)
    mine = alice.create("PLAC CPD")
    item_id, _ = store.add_reading_list_item(mine.id, _passage(corpus, "/plac.txt", 0))
    store.add_reading_list_item(mine.id, _source(corpus, "/send.txt"))
    bobs = bob.create("plac cpd")
    with pytest.raises(ListError, match="already exists"):
        alice.create("Plac Cpd")
    assert [rl.id for rl in bob.lists()] == [bobs.id]
    with pytest.raises(ListNotFound):
        bob.get(mine.id)
    with pytest.raises(ListNotFound):
        bob.set_note(item_id, "x")
    assert alice.share(mine.id).shared is True
    assert bob.get("PLAC CPD").id == bobs.id and bob.get(mine.id).owner == ALICE
    for refuse in (lambda: bob.rename(mine.id, "x"), lambda: bob.delete(mine.id), lambda: bob.share(mine.id, False),
                   lambda: bob.set_note(item_id, "x"), lambda: bob.move(item_id, 2), lambda: bob.remove_item(item_id)):
        with pytest.raises(ListError, match=f"is {ALICE}'s shared list"):
            refuse()
    assert [(r["id"], r["position"], r["note"]) for r in store.reading_list_items(mine.id)][0] == (item_id, 1, "")
    alice.move(item_id, 2)
    alice.set_note(item_id, "mine")
    assert alice.rename(mine.id, "PLAC CPD 2").name == "PLAC CPD 2"
    assert {rl.id for rl in single.lists()} == {mine.id, bobs.id}
    assert single.create("PLAC CPD").owner == ""
    alice.share(mine.id, False)
    assert [rl.id for rl in bob.lists()] == [bobs.id]


def test_items_through_the_library_on_postgresql(pg):
    """Adding by passage id and source, reading with relinking, export: the document methods of the backend."""
    store, corpus, _url = pg
    alice, bob = ReadingLists(store, user=ALICE), ReadingLists(store, user=BOB)
    rl = alice.create("Attachment")
    doc_id, chunk_ids = corpus["/plac.txt"]
    item, added = alice.add_passage(rl.id, chunk_ids[1], note="discuss")
    assert added and (item.doc_id, item.chunk_id, item.text) == (doc_id, chunk_ids[1], DOCS["/plac.txt"][1])
    assert alice.add_passage(rl.id, chunk_ids[1])[1] is False
    alice.add_source(rl.id, "/send.txt")
    alice.share(rl.id)
    # Bob reads it (statuses, relinked snapshots) and exports it; he may not add to it.
    assert [(i.item_type, i.status) for i in bob.items(rl.id)] == [("passage", "current"), ("source", "current")]
    assert "discuss" in bob.export(rl.id, "md")
    with pytest.raises(ListError, match="shared list"):
        bob.add_passage(rl.id, chunk_ids[0])
    # A source gone from the store: its item is kept, marked removed.
    store.remove_document(corpus["/send.txt"][0])
    assert [i.status for i in bob.items(rl.id)] == ["current", "removed"]


# -- a reader login: lists yes, corpus never ---------------------------------------------
@pytest.fixture
def reader_url(pg):
    """A login that is only a member of equisearch_reader (roles are cluster-wide: a fresh name)."""
    import psycopg

    _store, _corpus, url = pg
    role = f"r_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE equisearch_reader")
    yield url.replace("postgresql://postgres@", f"postgresql://{role}@")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")


def _corpus_state(url) -> list:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return [conn.execute(sql).fetchall() for sql in (
            "SELECT id, uri, title, text, tags, meta::text FROM documents ORDER BY id",
            "SELECT id, doc_id, ord, text, tsv::text, len FROM chunks ORDER BY id",
            "SELECT uri, doc_id FROM aliases ORDER BY uri",
            "SELECT lexeme, chunk_id FROM postings ORDER BY 1, 2",
            "SELECT key, value FROM meta ORDER BY key",
            "SELECT count(*) FROM changes")]


#: Every corpus write a UI bug could reach through the backend: (method, arguments).
CORPUS_METHODS = ["remove_document", "write_document", "write_document(replace)", "add_alias", "remove_alias",
                  "update_metadata", "record_extraction", "replace_passages"]
#: ... and through SQL on the store's own connection.
CORPUS_STATEMENTS = {
    "DELETE documents": "DELETE FROM documents",
    "DELETE chunks": "DELETE FROM chunks",
    "UPDATE documents": "UPDATE documents SET title = 'Defaced'",
    "INSERT aliases": "INSERT INTO aliases(uri, doc_id) SELECT '/a', min(id) FROM documents",
    "DELETE postings": "DELETE FROM postings",
    "UPDATE meta": "UPDATE meta SET value = '0'",
    "INSERT changes": "INSERT INTO changes DEFAULT VALUES",
    "TRUNCATE chunks": "TRUNCATE chunks CASCADE",
    "DROP TABLE": "DROP TABLE reading_list_items",
}


def _call(store, corpus, name: str):
    doc_id, _chunk_ids = corpus["/plac.txt"]
    text = "A rewritten document."
    new_doc = NewDocument(uri="/evil.txt", title="Evil", text=text, content_hash="e", text_hash=content_hash(text))
    new_chunk = NewChunk(text=text, char_start=0, char_end=len(text), text_hash=content_hash(text))
    vec = np.ones((1, 4), dtype=np.float32) / 2
    kw = {"model": "m", "dim": 4, "chunking": "c"}
    calls = {
        "remove_document": lambda: store.remove_document(doc_id),
        "write_document": lambda: store.write_document(new_doc, [new_chunk], vec, **kw),
        "write_document(replace)": lambda: store.write_document(new_doc, [new_chunk], vec, replace_id=doc_id, **kw),
        "add_alias": lambda: store.add_alias(doc_id, "/alias.txt"),
        "remove_alias": lambda: store.remove_alias("/plac-copy.txt"),
        "update_metadata": lambda: store.update_metadata(doc_id, title="Defaced"),
        "record_extraction": lambda: store.record_extraction(doc_id, "h2", "9"),
        "replace_passages": lambda: store.replace_passages([(doc_id, [new_chunk], vec)], **kw),
    }
    return calls[name]()


def _refused(write, *, by_database: bool = True) -> str:
    """The one-line refusal ``write`` gets; fails the test if it went through.

    ``by_database``: the database's own refusal (translated insufficient
    privilege); else a backend method may refuse first, naming editors.
    """
    with pytest.raises(StoreError) as exc:
        write()
    message = str(exc.value)
    assert "\n" not in message, message
    assert "no right to do that" in message or (not by_database and "editor" in message.lower()), message
    return message


def _in_transaction(store):
    with store.transaction() as conn:
        conn.execute("UPDATE documents SET title = 'Defaced'")


def test_reader_login_keeps_lists_but_the_database_refuses_corpus_sql(pg, reader_url):
    owner_store, corpus, url = pg
    before = _corpus_state(url)
    reader = open_store(reader_url, create=False, settings=Settings())
    try:
        assert reader.readonly and not reader.can_write_corpus
        # Its reading lists: every list write works under the reader login.
        rls = ReadingLists(reader, user=BOB)
        rl = rls.create("Bob's CPD")
        item_id, added = reader.add_reading_list_item(rl.id, _passage(corpus, "/plac.txt", 0))
        assert added
        reader.add_reading_list_item(rl.id, _source(corpus, "/send.txt"))
        rls.set_note(item_id, "read first")
        rls.move(item_id, 2)
        reader.update_reading_list_items([(item_id, {"title": "Relinked"})])
        assert rls.share(rl.id).shared and rls.rename(rl.id, "Bob's CPD 2").name == "Bob's CPD 2"
        rls.remove_item(item_id)
        assert [r["item_type"] for r in reader.reading_list_items(rl.id)] == ["source"]
        # The corpus: the database refuses, whatever the statement, inside a transaction too.
        for name, sql in CORPUS_STATEMENTS.items():
            _refused(lambda sql=sql: reader.execute(sql))
        _refused(lambda: _in_transaction(reader))
        # A refusal leaves the pooled connection usable.
        assert reader.reading_lists(visible_to=BOB)[0]["n"] == 1
        rls.delete(rl.id)
        assert rls.lists() == []
    finally:
        reader.close()
    assert _corpus_state(url) == before
    # The same statement as the owner login goes through: the refusals were the role's, not the SQL's.
    owner_store.execute("UPDATE documents SET title = 'Changed by the owner'")
    assert _corpus_state(url) != before


@pytest.mark.parametrize("method", CORPUS_METHODS)
def test_reader_login_cannot_change_the_corpus_through_any_backend_method(pg, reader_url, method):
    _owner_store, corpus, url = pg
    name = method.split("(")[0]
    from search.store.postgres import PgStore

    if getattr(PgStore, name, None) is None:
        pytest.skip(f"PgStore.{name} is not written yet (another part of the PostgreSQL backend)")
    before = _corpus_state(url)
    reader = open_store(reader_url, create=False, settings=Settings())
    try:
        _refused(lambda: _call(reader, corpus, method), by_database=False)
    finally:
        reader.close()
    assert _corpus_state(url) == before
