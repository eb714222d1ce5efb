"""Reading lists: create, rename, delete, share; reorder items, add notes; export for Zotero/Mendeley.

Signed in, a user sees their own lists and the ones others shared; someone
else's shared list is shown read-only (export only), and the library refuses
any change to it whatever the page sends (search/lists.py).
"""
from __future__ import annotations

import re

import streamlit as st

from search.exports import FORMAT_FILES
from search.lists import WORDS_PER_MINUTE
from ui.common import (
    ACTIVE_LIST,
    engine_or_stop,
    esc,
    flash,
    list_picker,
    md,
    reading_lists,
    safe_callback,
    safe_link,
    show_flashes,
)

EXPORT_LABELS = {"md": "Markdown", "csv": "CSV", "bibtex": "BibTeX", "ris": "RIS"}
STATUS_TEXT = {
    "changed": "The source has changed since this passage was added; it is kept as it was.",
    "removed": "The source is no longer in the store; its citation is kept.",
}


@safe_callback
def _create() -> None:
    name = st.session_state.get("new_list_name", "")
    rl = reading_lists().create(name)
    st.session_state[ACTIVE_LIST] = rl.id
    st.session_state["new_list_name"] = ""
    flash("success", f"Created “{md(rl.name)}”.")


@safe_callback
def _rename(list_id: int) -> None:
    rl = reading_lists().rename(list_id, st.session_state.get(f"rename_list-{list_id}", ""))
    flash("success", f"Renamed to “{md(rl.name)}”.")


@safe_callback
def _delete(list_id: int) -> None:
    st.session_state.pop("confirm_delete_list", None)
    rl = reading_lists().delete(list_id)
    st.session_state.pop(ACTIVE_LIST, None)
    flash("success", f"Deleted “{md(rl.name)}” ({rl.n_items} items). The sources stay in the store.")


def _ask_delete(list_id: int) -> None:
    st.session_state["confirm_delete_list"] = list_id


def _cancel_delete() -> None:
    st.session_state.pop("confirm_delete_list", None)


@safe_callback
def _share(list_id: int) -> None:
    shared = bool(st.session_state.get(f"share-{list_id}"))
    rl = reading_lists().share(list_id, shared)
    flash("success", f"“{md(rl.name)}” is {'shared: everyone signed in can read it' if shared else 'private again'}.")


@safe_callback
def _move(item_id: int, position: int) -> None:
    reading_lists().move(item_id, position)


@safe_callback
def _remove_item(item_id: int) -> None:
    reading_lists().remove_item(item_id)
    flash("success", "Removed from the list.")


@safe_callback
def _save_note(item_id: int) -> None:
    reading_lists().set_note(item_id, st.session_state.get(f"note-{item_id}", ""))
    flash("success", "Note saved.")


def file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "reading-list"


def render_item(item, n_items: int, editable: bool = True) -> None:
    bits = " · ".join(esc(b) for b in (item.site, item.kind, item.date, item.location) if b)
    what = "Passage" if item.item_type == "passage" else "Whole source"
    with st.container(border=True):
        st.html(
            f'<div style="font-weight:600">{item.position}. {esc(item.title or item.uri)}</div>'
            f'<div style="opacity:.75;font-size:.9rem">{what}{" · " + bits if bits else ""}'
            f" · {item.reading_minutes} min</div>"
            + (f'<div style="white-space:pre-wrap;margin-top:.4rem;border-left:3px solid #ccc;padding-left:.6rem">'
               f"{esc(item.text)}</div>" if item.item_type == "passage" else "")
        )
        if item.status in STATUS_TEXT:
            st.warning(STATUS_TEXT[item.status])
        link = safe_link(item.link)
        if not editable:
            if link:
                st.link_button("Open source", link)
            if item.note:
                st.caption("Note:")
                st.text(item.note)
            return
        cols = st.columns([1, 1, 1, 2, 3])
        cols[0].button("↑", key=f"up-{item.id}", disabled=item.position == 1, on_click=_move,
                       args=(item.id, item.position - 1), help="Move up")
        cols[1].button("↓", key=f"down-{item.id}", disabled=item.position == n_items, on_click=_move,
                       args=(item.id, item.position + 1), help="Move down")
        cols[2].button("✕", key=f"rm-{item.id}", on_click=_remove_item, args=(item.id,), help="Remove from list")
        if link:
            cols[3].link_button("Open source", link)
        key = f"note-{item.id}"
        if key not in st.session_state:
            st.session_state[key] = item.note
        st.text_area("Note", key=key, height=70, placeholder="Why this matters, what to discuss…")
        st.button("Save note", key=f"save-{item.id}", on_click=_save_note, args=(item.id,))


def rename_or_delete(rl, n_items: int) -> None:
    with st.expander("Rename or delete this list"):
        st.text_input("New name", value=rl.name, key=f"rename_list-{rl.id}")
        c1, c2, _ = st.columns([1, 1, 3])
        c1.button("Rename", key="rename_btn", on_click=_rename, args=(rl.id,))
        c2.button("Delete list…", key="delete_btn", on_click=_ask_delete, args=(rl.id,))
        if st.session_state.get("confirm_delete_list") == rl.id:
            st.warning(f"Delete “{md(rl.name)}” and its {n_items} items? The sources stay in the store.")
            y, n, _ = st.columns([1, 1, 4])
            y.button("Yes, delete", type="primary", key="delete_yes", on_click=_delete, args=(rl.id,))
            n.button("Cancel", key="delete_no", on_click=_cancel_delete)


def main() -> None:
    engine_or_stop()
    st.title("Reading lists")
    show_flashes()
    rls = reading_lists()
    with st.expander("New list", expanded=not rls.lists()):
        st.text_input("Name", key="new_list_name", placeholder="PLAC CPD, session 2")
        st.button("Create list", key="create_list", on_click=_create)
    list_id = list_picker("List", own_only=False)
    if list_id is None:
        st.info("No reading lists yet. Create one above, or press “Add passage to list” on the Ask page.")
        return
    rl = rls.get(list_id)
    items = rls.items(list_id)
    editable = rls.can_change(rl)
    st.metric("Estimated reading time", f"{rl.reading_minutes} min",
              help=f"{rl.words} words at {WORDS_PER_MINUTE} words a minute (a careful pace for reports).")
    st.caption(f"{len(items)} item{'' if len(items) == 1 else 's'}")
    if not editable:
        st.info(f"Shared by {md(rl.owner)}: you can read and export this list; only its owner can change it.")
    elif rls.user is not None:  # signed in: lists are private until their owner shares them
        st.session_state[f"share-{rl.id}"] = rl.shared
        st.toggle("Shared: everyone signed in can read and export it", key=f"share-{rl.id}", on_change=_share,
                  args=(rl.id,))
    if editable:
        rename_or_delete(rl, len(items))
    st.subheader("Export")
    st.caption("BibTeX and RIS import into Zotero, Mendeley and EndNote; CSV opens in a spreadsheet.")
    cols = st.columns(len(EXPORT_LABELS))
    for col, (fmt, label) in zip(cols, EXPORT_LABELS.items()):
        suffix, mime = FORMAT_FILES[fmt]
        col.download_button(label, data=rls.export(rl.id, fmt).encode("utf-8"), file_name=file_stem(rl.name) + suffix,
                            mime=mime, key=f"export-{fmt}", disabled=not items, width="stretch",
                            on_click="ignore")
    st.subheader("Items")
    if not items:
        st.info("This list is empty: add passages or sources from the Ask or Sources pages.")
    for item in items:
        render_item(item, len(items), editable)


main()
