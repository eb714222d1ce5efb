"""Sources: the corpus as a table; search it, open one to read its passages, remove one (editors)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from search.errors import EquisearchError
from search.types import Citation
from ui.actions import remove_source
from ui.common import (
    active_list_id,
    current_access,
    engine_or_stop,
    esc,
    flash,
    home,
    local_file,
    md,
    reading_lists,
    safe_callback,
    safe_link,
    show_flashes,
)

MAX_PASSAGES_SHOWN = 300


@safe_callback
def _confirm_remove(doc_id: int) -> None:
    st.session_state["confirm_remove"] = doc_id


def _cancel_remove() -> None:
    st.session_state.pop("confirm_remove", None)


@safe_callback
def _remove(doc_id: int) -> None:
    st.session_state.pop("confirm_remove", None)
    if not current_access().is_editor:  # the button is not shown to readers; never trust that alone
        raise EquisearchError("only editors may remove sources")
    title = remove_source(home(), doc_id)
    st.session_state.pop("open_source", None)
    flash("success", f"Removed “{md(title)}” and its passages. Reading lists keep their citations of it.")


@safe_callback
def _add_source(doc_id: int) -> None:
    rls = reading_lists()
    list_id = active_list_id(create=True)
    item, added = rls.add_source(list_id, doc_id)
    flash("success" if added else "info",
          f"{'Added to' if added else 'Already in'} “{md(rls.get(list_id).name)}” (item {item.position}).")


def matches(doc, needle: str) -> bool:
    hay = " ".join((doc.title, doc.site, doc.kind, doc.date, doc.uri, doc.url, " ".join(doc.tags))).lower()
    return all(word in hay for word in needle.lower().split())


def main() -> None:
    engine = engine_or_stop()
    st.title("Sources")
    show_flashes()
    docs = engine.store.documents()
    needle = st.text_input("Search sources", key="source_filter", placeholder="title, site, kind, year, URL…")
    shown = [d for d in docs if matches(d, needle)] if needle.strip() else docs
    st.caption(f"{len(shown)} of {len(docs)} sources · {sum(d.n_chunks for d in docs)} passages in total")
    if not shown:
        st.info("No source matches." if docs else "The store is empty: add sources on the **Add sources** page."
                if current_access().is_editor else "The store is empty: ask an editor to add sources.")
        return
    # st.dataframe draws cells as text, so titles with markup stay text.
    st.dataframe(
        [{"id": d.id, "title": d.title, "site": d.site, "kind": d.kind, "date": d.date, "passages": d.n_chunks,
          "added": d.added_at[:10]} for d in shown],
        hide_index=True, width="stretch",
        column_config={"id": st.column_config.NumberColumn(width="small"),
                       "title": st.column_config.TextColumn(width="large")},
    )
    ids = [d.id for d in shown]
    by_id = {d.id: d for d in shown}
    current = st.session_state.get("open_source")
    doc_id = st.selectbox(
        "Open a source", ids, index=ids.index(current) if current in ids else None,
        format_func=lambda i: f"{i}: {by_id[i].title[:90]}" + (f" ({by_id[i].site})" if by_id[i].site else ""),
        placeholder="Choose a source to read its passages", key="open_source",
    )
    if doc_id is None:
        return
    doc = by_id[doc_id]
    st.html(f'<h3 style="margin:0">{esc(doc.title)}</h3><div style="opacity:.75">'
            + " · ".join(esc(b) for b in (doc.site, doc.kind, doc.date, doc.author) if b) + "</div>")
    local = "" if safe_link(doc.uri) else doc.uri
    st.text(doc.url or Path(local).name)  # never a path on the server
    editor = current_access().is_editor
    c1, c2, c3 = st.columns([2, 2, 3])
    if safe_link(doc.url or doc.uri):
        c1.link_button("Open the original", safe_link(doc.url or doc.uri))
    local_file(Citation(doc.title, doc.site, doc.kind, doc.date, doc.uri, "", "", file=local), key=f"src-file-{doc.id}")
    c2.button("Add whole source to list", key=f"src-add-{doc.id}", on_click=_add_source, args=(doc.id,))
    if editor:
        c3.button("Remove this source…", key=f"src-rm-{doc.id}", on_click=_confirm_remove, args=(doc.id,))
    if editor and st.session_state.get("confirm_remove") == doc.id:
        st.warning(f"Remove “{md(doc.title)}” and its {doc.n_chunks} passages from the store? "
                   "Reading lists keep their citation of it. This cannot be undone (re-ingest to get it back).")
        y, n, _ = st.columns([1, 1, 4])
        y.button("Yes, remove it", type="primary", key="src-rm-yes", on_click=_remove, args=(doc.id,))
        n.button("Cancel", key="src-rm-no", on_click=_cancel_remove)
    chunks = engine.store.chunks_of(doc.id)
    st.subheader(f"{len(chunks)} passages")
    for ch in chunks[:MAX_PASSAGES_SHOWN]:
        where = " · ".join(b for b in (
            (f"p. {ch.page_start}" if ch.page_start is not None else ""),
            ch.section, ch.speaker) if b)
        with st.container(border=True):
            st.html(f'<div style="opacity:.7;font-size:.85rem">passage {ch.ord + 1}'
                    + (f" · {esc(where)}" if where else "") + "</div>")
            st.text(ch.text)
    if len(chunks) > MAX_PASSAGES_SHOWN:
        st.caption(f"The first {MAX_PASSAGES_SHOWN} passages are shown; search on the Ask page to find the rest.")


main()
