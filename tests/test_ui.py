"""The Streamlit pages through AppTest (real model, a small store: starter
corpus + one document carrying script payloads).

Each page's logic: Ask (answer, citations, highlighting, filters, abstention,
examples, add to list, escaping, a store changed by another process), Sources
(table, search, passages, remove with confirmation), Add sources (upload,
URLs with the private-address guard, bad lines), Reading lists (create,
rename, reorder, note, delete, exports), and friendly errors.
"""
from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from search.lists import ReadingLists
from search.store import Store

from .conftest import ROOT, STARTER_DOCS, XSS_TITLE
from .webserver import LocalSite

pytestmark = pytest.mark.slow
APP = str(ROOT / "ui" / "app.py")


def open_app(home, monkeypatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv("EQUISEARCH_HOME", str(home))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def html(at) -> str:
    return "\n".join(h.value for h in at.get("html"))


def ask(at, question: str) -> AppTest:
    at.text_input(key="question").input(question).run()
    assert not at.exception, at.exception
    return at


def cards(at) -> list[str]:
    return [h.value for h in at.get("html") if 'class="eq-card"' in h.value]


# -- Ask -----------------------------------------------------------------------------
def test_first_visit_shows_examples_that_ask(ui_store, monkeypatch):
    at = open_app(ui_store, monkeypatch)
    examples = [b for b in at.button if b.key and b.key.startswith("example-")]
    assert len(examples) == 3
    examples[2].click().run()
    assert at.text_input(key="question").value == examples[2].label
    assert cards(at), "an example question must produce source cards"


def test_answer_has_citations_cards_and_highlights(ui_store, monkeypatch):
    at = ask(open_app(ui_store, monkeypatch), "How many pupils have SEND?")
    answer = next(h.value for h in at.get("html") if 'class="eq-answer"' in h.value)
    assert "1.5 million" in answer
    refs = sorted(set(int(n) for n in re.findall(r"\[(\d+)\]</a>", answer)))
    assert refs and refs[0] >= 1
    assert any(s.value == "Sources" for s in at.subheader)
    cs = cards(at)
    assert len(cs) == 5  # the default number of sources
    # Each cited card carries the cited sentence inside <mark>, title, meta.
    for n in refs:
        card = cs[n - 1]
        assert f'id="source-{n}"' in card and "<mark>" in card
    assert all('class="eq-meta"' in c for c in cs)
    assert [b for b in at.button if b.label == "Add passage to list"]


def test_number_of_sources_and_kind_filter(ui_store, monkeypatch):
    at = open_app(ui_store, monkeypatch)
    at.slider(key="k").set_value(2).run()
    at.multiselect(key="f_kinds").select("forum").run()
    ask(at, "social mobility in schools")
    cs = cards(at)
    assert len(cs) == 2
    assert all("· forum" in c for c in cs)


def test_unanswerable_shows_closest_passages(ui_store, monkeypatch):
    at = ask(open_app(ui_store, monkeypatch), "What is the boiling point of liquid nitrogen?")
    assert any("don't answer" in w.value for w in at.warning)
    assert any(s.value == "Closest passages" for s in at.subheader)
    assert cards(at)


def test_vocabulary_expansion_is_shown(ui_store, monkeypatch):
    at = ask(open_app(ui_store, monkeypatch), "support for SEND pupils")
    assert any(c.value.startswith("Also searched for:") and "special educational needs" in c.value.lower()
               for c in at.caption)


def test_document_markup_is_escaped(ui_store, monkeypatch):
    at = ask(open_app(ui_store, monkeypatch), "Did breakfast clubs raise attendance?")
    page = html(at)
    assert "Breakfast club evaluation" in page
    assert "&lt;script&gt;window.__xss = 2" in page
    assert "&lt;img src=x onerror=&quot;window.__xss=1" in page
    assert "Test &lt;b&gt;site&lt;/b&gt;" in page
    # No element carries live markup from the document.
    assert "<script" not in page and "<img" not in page and "<b>site" not in page
    # Links are only ever http(s) (never javascript: or data:), passed as an attribute, not markup.
    urls = [lb.proto.url for lb in at.get("link_button")]
    assert "https://example.org/breakfast?a=1&b=<x>" in urls
    assert all(u.startswith(("http://", "https://")) for u in urls)


def test_safe_link_refuses_script_urls():
    from ui.common import safe_link

    assert safe_link("javascript:alert(1)") == "" and safe_link("data:text/html,x") == ""
    assert safe_link("file:///tmp/x.pdf#page=2") == "" and safe_link("https://a.org/x") == "https://a.org/x"


def test_add_passage_and_source_from_ask(ui_store_copy, monkeypatch):
    at = ask(open_app(ui_store_copy, monkeypatch), "How can schools collaborate to promote equity?")
    first = next(b for b in at.button if b.key and b.key.startswith("addp-1-"))
    first.click().run()
    assert any("added to “My reading list”" in s.value for s in at.success)
    next(b for b in at.button if b.key and b.key.startswith("addp-1-")).click().run()
    assert any("already in" in i.value for i in at.info)
    next(b for b in at.button if b.key and b.key.startswith("adds-2-")).click().run()
    rls = ReadingLists(Store.open(ui_store_copy))
    items = rls.items("My reading list")
    assert [i.item_type for i in items] == ["passage", "source"]
    assert items[0].chunk_id == int(first.key.rsplit("-", 1)[1])


def test_store_changed_by_another_process_is_seen(ui_store_copy, monkeypatch, tmp_path, real_embedder):
    """An ingest through the library/CLI after the app loaded: the next question finds it."""
    from ingest.pipeline import Ingestor
    from search.settings import Settings

    at = ask(open_app(ui_store_copy, monkeypatch), "What did the octopus reading scheme find?")
    assert "Octopus" not in html(at)
    new = tmp_path / "new"
    new.mkdir()
    (new / "octopus.txt").write_text(
        "The Octopus reading scheme evaluation found that pupils eligible for free school meals gained "
        "four months of reading progress when volunteers read with them twice a week.\n", encoding="utf-8")
    (new / "manifest.json").write_text(json.dumps({"documents": [
        {"file": "octopus.txt", "title": "Octopus reading scheme evaluation", "site": "Octopus Trust"}]}))
    other = Store.open(ui_store_copy)  # another connection, as the CLI would have
    Ingestor(other, Settings(home=str(ui_store_copy)), real_embedder).ingest_paths([new])
    other.close()
    at.text_input(key="question").input("What did the Octopus reading scheme evaluation find?").run()
    assert "Octopus reading scheme evaluation" in cards(at)[0]
    assert "Octopus Trust" in at.multiselect(key="f_sites").options


def test_missing_store_is_a_friendly_message(tmp_path, monkeypatch):
    at = open_app(tmp_path / "none", monkeypatch)
    assert at.error and "could not be opened" in at.error[0].value
    assert "Traceback" not in at.error[0].value


def test_a_model_the_store_was_not_built_with_is_refused_as_on_the_command_line(ui_store_copy, monkeypatch):
    """`equisearch --model X ui` passes X on; the UI and the CLI refuse it with one message."""
    from click.testing import CliRunner

    from cli.app import main
    from ui.common import md

    home = ui_store_copy  # a store path of its own: no engine cached for it yet
    cli = CliRunner().invoke(main, ["--store", str(home), "--model", "another-model", "search", "pupils"])
    assert cli.exit_code == 1 and cli.output.startswith("Error: store ")
    message = cli.output.strip().removeprefix("Error: ")
    monkeypatch.setenv("EQUISEARCH_MODEL", "another-model")
    at = open_app(home, monkeypatch)
    assert at.error and at.error[0].value == f"The store could not be opened: {md(message)}"


def test_corrupt_store_is_a_friendly_message(tmp_path, monkeypatch):
    home = tmp_path / "bad"
    home.mkdir()
    (home / "equisearch.db").write_bytes(b"this is not sqlite" * 100)
    at = open_app(home, monkeypatch)
    assert at.error and "not a readable SQLite database" in at.error[0].value


def test_unexpected_error_is_not_a_traceback(ui_store, monkeypatch):
    import search.api

    def boom(self, *a, **k):
        raise RuntimeError("internal detail")

    at = open_app(ui_store, monkeypatch)
    monkeypatch.setattr(search.api.Engine, "ask", boom)
    at.text_input(key="question").input("anything at all").run()
    assert not at.exception
    assert any("Something went wrong" in e.value and "internal detail" not in e.value for e in at.error)


# -- Sources -------------------------------------------------------------------------
def test_sources_table_search_open_and_remove(ui_store_copy, monkeypatch):
    store = Store.open(ui_store_copy)
    rls = ReadingLists(store)
    rls.create("Keep")
    xss_doc = next(d for d in store.documents() if d.title == XSS_TITLE)
    rls.add_source("Keep", xss_doc.id)

    at = open_app(ui_store_copy, monkeypatch, "views/sources.py")
    table = at.dataframe[0].value
    assert len(table) == STARTER_DOCS + 1 and {"title", "site", "kind", "date", "passages", "added"} <= set(table.columns)
    at.text_input(key="source_filter").input("breakfast").run()
    assert list(at.dataframe[0].value["title"]) == [XSS_TITLE]
    at.selectbox(key="open_source").select(xss_doc.id).run()
    assert "&lt;img src=x" in html(at) and "<img" not in html(at)
    assert any("<script>window.__xss = 2" in t.value for t in at.text)  # st.text: shown, never run
    at.button(key=f"src-rm-{xss_doc.id}").click().run()
    warning = next(w.value for w in at.warning if "Remove “" in w.value)
    assert "\\<img src=x onerror" in warning  # Markdown-escaped: shown, not rendered
    assert store.get_document(xss_doc.id) is not None  # nothing removed before confirming
    at.button(key="src-rm-no").click().run()
    assert not any("Remove “" in w.value for w in at.warning)
    at.button(key=f"src-rm-{xss_doc.id}").click().run()
    at.button(key="src-rm-yes").click().run()
    assert not at.exception
    assert any("Removed “" in s.value for s in at.success)
    assert store.get_document(xss_doc.id) is None
    assert [i.status for i in rls.items("Keep")] == ["removed"]


# -- Add sources -------------------------------------------------------------------------
def _submit(at):
    next(b for b in at.button if b.label == "Add sources").click().run()
    assert not at.exception, at.exception
    return at


def test_upload_is_ingested_like_the_cli(ui_store_copy, monkeypatch):
    at = open_app(ui_store_copy, monkeypatch, "views/add_sources.py")
    text = (b"Peer tutoring gives pupils extra practice and helps disadvantaged pupils catch up in maths; "
            b"schools ran sessions three times a week for twelve weeks.\n")
    at.file_uploader(key="uploads").set_value([("../../evil name.txt", text, "text/plain"),
                                               ("broken.pdf", b"not a PDF at all", "application/pdf")])
    at.selectbox(key="add_kind").select("report")
    _submit(at)
    table = at.dataframe[0].value
    assert sorted(table["result"]) == ["added", "failed"]
    failed = table[table["result"] == "failed"].iloc[0]
    assert failed["source"].endswith("broken.pdf") and failed["reason"] and "Traceback" not in failed["reason"]
    store = Store.open(ui_store_copy)
    doc = next(d for d in store.documents() if "Peer tutoring" in store.document_text(d.id))
    assert doc.kind == "report"
    assert doc.uri.startswith(str((ui_store_copy / "uploads").resolve())) and doc.uri.endswith("/evil name.txt")
    # The same upload again costs nothing.
    at.file_uploader(key="uploads").set_value([("../../evil name.txt", text, "text/plain")])
    _submit(at)
    assert list(at.dataframe[0].value["result"]) == ["unchanged"]


def test_urls_private_addresses_refused_unless_allowed(ui_store_copy, monkeypatch):
    with LocalSite() as site:
        url = site.url("/posts/social-mobility")
        at = open_app(ui_store_copy, monkeypatch, "views/add_sources.py")
        at.text_area(key="urls").input(f"{url}\nftp://example.org/file.pdf\nnot a url")
        _submit(at)
        rows = at.dataframe[0].value
        assert list(rows["result"]) == ["failed", "failed", "failed"]
        assert "not an http(s) URL" in rows.iloc[0]["reason"]
        assert "local or private address" in rows.iloc[2]["reason"]
        assert "EQUISEARCH_ALLOW_PRIVATE_URLS" in rows.iloc[2]["reason"]

        monkeypatch.setenv("EQUISEARCH_ALLOW_PRIVATE_URLS", "1")
        at = open_app(ui_store_copy, monkeypatch, "views/add_sources.py")
        at.text_area(key="urls").input(url)
        _submit(at)
        assert list(at.dataframe[0].value["result"]) == ["added"]
    titles = [d.title for d in Store.open(ui_store_copy).documents()]
    assert any(t.startswith("Social mobility in schools") for t in titles)


def test_add_sources_on_a_new_store(tmp_path, monkeypatch):
    home = tmp_path / "fresh"
    at = open_app(home, monkeypatch, "views/add_sources.py")
    at.file_uploader(key="uploads").set_value(
        ("plan.md", b"# Plan\n\nThe virtual school head monitors the progress of looked-after children.\n",
         "text/markdown"))
    _submit(at)
    assert list(at.dataframe[0].value["result"]) == ["added"]
    at.switch_page("views/ask.py").run()
    ask(at, "Who monitors the progress of looked-after children?")
    assert "virtual school head" in html(at)


# -- Reading lists -----------------------------------------------------------------------
def test_reading_lists_page(ui_store_copy, monkeypatch):
    store = Store.open(ui_store_copy)
    docs = store.documents()
    at = open_app(ui_store_copy, monkeypatch, "views/reading_lists.py")
    assert any("No reading lists yet" in i.value for i in at.info)
    at.text_input(key="new_list_name").input("PLAC CPD")
    at.button(key="create_list").click().run()
    assert any("Created “PLAC CPD”" in s.value for s in at.success)
    rls = ReadingLists(store)
    rl = rls.get("PLAC CPD")
    rls.add_source(rl.id, docs[0].id)
    rls.add_passage(rl.id, store.chunks_of(docs[1].id)[0].id)
    at.run()
    assert [d.label for d in at.download_button] == ["Markdown", "CSV", "BibTeX", "RIS"]
    assert not any(d.disabled for d in at.download_button)
    assert at.metric[0].value.endswith("min")
    first, second = rls.items(rl.id)
    at.button(key=f"down-{first.id}").click().run()
    assert [i.id for i in rls.items(rl.id)] == [second.id, first.id]
    at.text_area(key=f"note-{first.id}").input('Read "this" first,\nthen discuss')
    at.button(key=f"save-{first.id}").click().run()
    assert rls.items(rl.id)[1].note == 'Read "this" first,\nthen discuss'
    at.text_input(key=f"rename_list-{rl.id}").input("PLAC CPD session 2")
    at.button(key="rename_btn").click().run()
    assert rls.get(rl.id).name == "PLAC CPD session 2"
    at.button(key="delete_btn").click().run()
    assert any("Delete “PLAC CPD session 2”" in w.value for w in at.warning)
    at.button(key="delete_yes").click().run()
    assert not at.exception and rls.lists() == []


def test_local_pdf_card_links_the_source_page_and_offers_the_file(ui_store, monkeypatch):
    """A starter PDF: its GOV.UK landing page (no #page anchor), and the PDF itself by name and page."""
    at = ask(open_app(ui_store, monkeypatch), "what works for PLAC pupils?")
    text = html(at) + "\n".join(t.value for t in at.get("text")) + "\n".join(c.value for c in at.caption)
    assert "/corpus/" not in text and "Local file" not in text, "never a path on the server"
    downloads = at.get("download_button")
    labels = [d.proto.label for d in downloads]
    assert any(re.fullmatch(r"Download dfe-20\d\d-[\w-]+\.pdf, pp?\. \d+(-\d+)?", lb) for lb in labels), labels
    links = [lb.proto.url for lb in at.get("link_button")]
    gov = [u for u in links if u.startswith("https://www.gov.uk/government/publications/")]
    assert gov and not any("#page=" in u for u in gov), links
