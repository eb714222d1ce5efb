"""Signing in and roles in the Streamlit app, through AppTest (real model, the UI test store).

- proxy: a request without the identity header gets one line and no page; a
  reader gets no Add sources page and no Remove; an editor named in
  EQUISEARCH_EDITORS gets both;
- oidc: signed out, only a sign-in button; signed in, who and the role in
  the sidebar;
- reading lists with owners: a list is private until its owner shares it
  with the toggle; someone else's shared list is read-only on the page and
  never offered for "Add to list".
- on PostgreSQL a reader's pages open the store with reader_database_url
  (the list is written through it, a removal is refused by the database),
  an editor's with database_url.

AppTest cannot send request headers (Streamlit reads them from a browser's
session), so the proxy tests replace ``ui.common.request_headers``, the one
function that reads ``st.context.headers``; tests/test_ui_browser_auth.py
sends the real header from a browser.
"""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from search.errors import StoreError
from search.lists import ReadingLists
from search.store import Store

from .conftest import ROOT

pytestmark = pytest.mark.slow
APP = str(ROOT / "ui" / "app.py")
ANN, BOB = "ann@school.example", "bob@school.example"


def run_app(home, monkeypatch, *, auth: str, email: str | None = None, user: dict | None = None) -> AppTest:
    monkeypatch.setenv("EQUISEARCH_HOME", str(home))
    monkeypatch.setenv("EQUISEARCH_AUTH", auth)
    monkeypatch.setenv("EQUISEARCH_EDITORS", f"{ANN.upper()}, lead@school.example")
    import ui.common

    headers = {"X-Forwarded-Email": [email]} if email else {}
    monkeypatch.setattr(ui.common, "request_headers", lambda: headers)
    at = AppTest.from_file(APP, default_timeout=180)
    if user is not None:
        at.user = user
    at.run()
    assert not at.exception, at.exception
    return at


def page(at, path: str) -> AppTest:
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def test_proxy_without_the_header_is_one_line_and_no_page(ui_store, monkeypatch):
    at = run_app(ui_store, monkeypatch, auth="proxy")
    assert [e.value for e in at.error] == ["sign-in required: open equisearch through the organisation's sign-in page"]
    assert not at.title and not at.button and not at.text_input and not at.sidebar.children


def test_proxy_reader_has_no_add_sources_and_no_remove(ui_store, monkeypatch):
    at = run_app(ui_store, monkeypatch, auth="proxy", email="Bob@School.example")
    assert [t.value for t in at.title] == ["Ask"]
    assert [c.value for c in at.sidebar.caption][0] == "Signed in as bob@school.example (reader)"
    with pytest.raises(ValueError):
        at.switch_page("views/add_sources.py")
    page(at, "views/sources.py")
    doc_id = at.selectbox(key="open_source").options[0]
    at.selectbox(key="open_source").select(int(doc_id.split(":")[0])).run()
    assert at.subheader and "passages" in at.subheader[0].value
    assert not [b for b in at.button if b.key and b.key.startswith("src-rm-")]
    assert [b.label for b in at.button if b.key and b.key.startswith("src-add-")] == ["Add whole source to list"]
    page(at, "views/reading_lists.py")
    assert [t.value for t in at.title] == ["Reading lists"]


def test_proxy_editor_identity_gets_add_sources_and_remove(ui_store, monkeypatch):
    at = run_app(ui_store, monkeypatch, auth="proxy", email="ann@school.example")
    assert [c.value for c in at.sidebar.caption][0] == "Signed in as ann@school.example (editor)"
    page(at, "views/add_sources.py")
    assert [t.value for t in at.title] == ["Add sources"] and any(b.label == "Add sources" for b in at.button)
    page(at, "views/sources.py")
    first = Store.open(ui_store).documents()[0].id
    at.selectbox(key="open_source").select(first).run()
    assert [b.label for b in at.button if b.key == f"src-rm-{first}"] == ["Remove this source…"]


def test_oidc_signed_out_sees_only_a_sign_in_button(ui_store, monkeypatch):
    at = run_app(ui_store, monkeypatch, auth="oidc", user={"is_logged_in": False})
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.title and not at.error and not at.text_input and not at.markdown and not at.sidebar.children
    # No provider configured on this machine (no [auth] secrets, no Authlib): one line, no traceback.
    at.button(key="sign_in").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Sign-in is not set up on this server yet: ask the operator (the details are in the server log)."]


def test_oidc_signed_in_reader_and_editor(ui_store, monkeypatch):
    at = run_app(ui_store, monkeypatch, auth="oidc", user={"is_logged_in": True, "email": "Bob@school.example"})
    assert [c.value for c in at.sidebar.caption][0] == "Signed in as bob@school.example (reader)"
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    with pytest.raises(ValueError):
        at.switch_page("views/add_sources.py")
    at = run_app(ui_store, monkeypatch, auth="oidc", user={"is_logged_in": True, "email": ANN})
    page(at, "views/add_sources.py")
    assert [t.value for t in at.title] == ["Add sources"]


def _list_box(at):
    return next(sb for sb in at.selectbox if sb.label == "List")


def test_reading_lists_private_until_shared_and_read_only_for_others(ui_store_copy, monkeypatch):
    store = Store.open(ui_store_copy)
    ann_user = {"is_logged_in": True, "email": ANN}
    at = page(run_app(ui_store_copy, monkeypatch, auth="oidc", user=ann_user), "views/reading_lists.py")
    at.text_input(key="new_list_name").input("PLAC CPD")
    at.button(key="create_list").click().run()
    ann = ReadingLists(store, user=ANN)
    rl = ann.get("PLAC CPD")
    assert (rl.owner, rl.shared) == (ANN, False)
    ann.add_source(rl.id, store.documents()[0].id, note="start here")
    at.run()
    assert at.toggle(key=f"share-{rl.id}").value is False

    # Bob: not shared yet, so nothing to see; his Ask page offers no list of Ann's.
    bob_user = {"is_logged_in": True, "email": BOB}
    bob_at = page(run_app(ui_store_copy, monkeypatch, auth="oidc", user=bob_user), "views/reading_lists.py")
    assert any("No reading lists yet" in i.value for i in bob_at.info)

    at.toggle(key=f"share-{rl.id}").set_value(True).run()
    assert not at.exception and ann.get(rl.id).shared is True
    assert any("is shared" in s.value for s in at.success)

    bob_at = page(run_app(ui_store_copy, monkeypatch, auth="oidc", user=bob_user), "views/reading_lists.py")
    box = _list_box(bob_at)
    assert box.value == rl.id and box.format_func(rl.id) == f"PLAC CPD (1) · {ANN}'s, read-only"
    assert any(f"Shared by {ANN}" in i.value.replace("\\", "") for i in bob_at.info)
    assert [d.label for d in bob_at.download_button] == ["Markdown", "CSV", "BibTeX", "RIS"]
    assert not bob_at.text_area and not bob_at.toggle
    assert not [b for b in bob_at.button if b.key and b.key.split("-")[0] in ("up", "down", "rm", "save")]
    assert not [t for t in bob_at.text_input if t.key and t.key.startswith("rename_list-")]
    assert "start here" in [t.value for t in bob_at.text]
    bob_at = page(bob_at, "views/ask.py")
    assert not [sb for sb in bob_at.sidebar.selectbox if sb.label == "Add passages to"]
    # His own list, made on the same page, is his alone; hers is unchanged.
    bob_at = page(bob_at, "views/reading_lists.py")
    bob_at.text_input(key="new_list_name").input("PLAC CPD")
    bob_at.button(key="create_list").click().run()
    assert not bob_at.exception and any("Created “PLAC CPD”" in s.value for s in bob_at.success)
    assert sorted((r.owner, r.n_items) for r in ReadingLists(store).lists()) == [(ANN, 1), (BOB, 0)]
    assert [i.note for i in ann.items(rl.id)] == ["start here"]


# -- PostgreSQL: a reader's pages use the reader login -------------------------------------
@pytest.mark.postgres
def test_on_postgresql_a_readers_pages_open_the_reader_login(pg_database, monkeypatch):
    import uuid

    import numpy as np
    import psycopg

    import search.api
    from search.settings import Settings
    from search.store import NewChunk, NewDocument, open_store
    from search.text import content_hash

    owner = open_store(pg_database, settings=Settings())
    text = "Virtual school heads promote the education of children in care."
    owner.write_document(NewDocument(uri="/vsh.txt", title="Virtual school heads", text=text,
                                     content_hash=content_hash(text), text_hash=content_hash(text)),
                         [NewChunk(text=text, char_start=0, char_end=len(text), text_hash=content_hash(text))],
                         np.ones((1, 4), dtype=np.float32) / 2, model="fake", dim=4, chunking="c")
    role = f"r_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE equisearch_reader")
    reader_url = pg_database.replace("postgresql://postgres@", f"postgresql://{role}@")
    opened, every = [], set()
    real_open = search.api.Engine.open.__func__

    def recording_open(cls, home=None, *args, **kw):
        opened.append(str(home))
        every.add(str(home))
        return real_open(cls, home, *args, **kw)

    monkeypatch.setattr(search.api.Engine, "open", classmethod(recording_open))
    monkeypatch.setenv("EQUISEARCH_DATABASE_URL", pg_database)
    monkeypatch.setenv("EQUISEARCH_READER_DATABASE_URL", reader_url)
    try:
        # EQUISEARCH_HOME empty: the database URL names the store.
        at = page(run_app("", monkeypatch, auth="proxy", email=BOB), "views/sources.py")
        assert not at.exception and list(at.dataframe[0].value["title"]) == ["Virtual school heads"]
        assert opened == [reader_url]
        # His list is written through the reader login; the corpus cannot be.
        page(at, "views/reading_lists.py")
        at.text_input(key="new_list_name").input("Bob's CPD")
        at.button(key="create_list").click().run()
        assert [(r["name"], r["owner"]) for r in owner.reading_lists()] == [("Bob's CPD", BOB)]
        reader_engine = search.api.Engine.open(reader_url)
        with pytest.raises(StoreError, match="no right to do that"):
            reader_engine.store.remove_document(owner.documents()[0].id)
        reader_engine.store.close()
        # An editor's session opens the store's own login.
        opened.clear()
        at = run_app("", monkeypatch, auth="proxy", email=ANN)
        assert opened == [pg_database]
    finally:
        import ui.common

        owner.close()
        for url in every:  # the cached engines' connection pools
            ui.common.get_engine(url).store.close()
        ui.common.get_engine.clear()
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")
