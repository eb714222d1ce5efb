"""Shared pieces of the Streamlit pages: the cached engine, escaping, messages.

Safety rule for every page: document text (titles, passages, sites, notes)
is either rendered by a widget that shows text as text (``st.text``,
``st.dataframe``, widget labels never carry it) or passed through
:func:`esc` before it goes into ``st.html``. ``st.html`` never runs
JavaScript and is sanitised, but escaping first means a page that contained
``<script>`` or ``<img onerror=...>`` is shown as those characters.
"""
from __future__ import annotations

import html
import logging
import mimetypes
import os
import re
from functools import wraps
from pathlib import Path

import streamlit as st

from search.errors import EquisearchError
from search.settings import Settings

log = logging.getLogger("equisearch.ui")

#: Session-state keys shared between pages.
ACTIVE_LIST = "active_list_id"
FLASH = "flash_messages"


def settings() -> Settings:
    """Settings from the environment (``EQUISEARCH_HOME`` names the store)."""
    return Settings.from_env()


def home() -> str:
    return str(settings().location)


@st.cache_resource(show_spinner="Loading the language model (once per server)…")
def get_embedder(model: str):
    from search.embedding import load_embedder

    return load_embedder(model)


@st.cache_resource(show_spinner="Opening the store…")
def get_engine(home: str):
    """One engine (store, vector index, model) per store per server process.

    It stays valid when another process (a CLI ingest) writes to the store:
    the engine compares the store's generation counter on every search and
    reloads the vector index when it moved. Raises ``StoreError`` when there
    is no store yet (not cached, so the next run tries again).
    """
    from search.api import Engine

    s = Settings.from_env(home=home)
    # No embedder passed: the engine encodes queries with the store's ONNX
    # export (no torch import: the first answer comes seconds sooner) and
    # falls back to sentence-transformers itself. Only "Add sources" loads
    # the torch model (get_embedder), when it ingests. A model named in
    # EQUISEARCH_MODEL (`equisearch --model X ui`) must be the store's, as
    # on the command line: Engine.open checks.
    return Engine.open(s.location, s, model=os.environ.get("EQUISEARCH_MODEL") or None)


def engine_or_stop():
    """The engine, or a friendly message and the end of this page's run."""
    try:
        return get_engine(home())
    except EquisearchError as exc:
        st.error(f"The store could not be opened: {one_line(exc)}")
        st.info("Build it first: `make run`, `equisearch ingest corpus`, or the **Add sources** page.")
        st.stop()


def one_line(exc: BaseException | str) -> str:
    """An error as one line, Markdown-escaped (alerts render Markdown; messages may quote titles)."""
    return md(str(exc))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}()#+!|<>~$])")


def md(text: str | None) -> str:
    """Text for a Markdown-rendering widget (alerts, captions): one line, syntax escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join((text or "").split()))


def esc(text: str | None) -> str:
    """HTML-escape document text (quotes too, so it is safe in attributes)."""
    return html.escape(text or "", quote=True)


def safe_link(url: str) -> str:
    """``url`` if it is an http(s) link a browser may open from the page, else ''."""
    return url if url.startswith(("http://", "https://")) else ""


def local_file(cit, key: str) -> None:
    """The source's own file, offered for download from the server, with its page.

    A document ingested from disk has no link a browser could open (a
    ``file://`` link names a path on the server): show its file name and the
    cited page ("dfe-2018-guidance.pdf, p. 21") and serve the file itself.
    Read only when the button is pressed.
    """
    if not cit.file:
        return
    path = Path(cit.file)
    label = cit.file_name + (f", {cit.location}" if cit.location else "")
    if not path.is_file():
        st.caption(f"{label} (the file is no longer on the server)")
        return
    st.download_button(f"Download {label}", data=path.read_bytes, file_name=cit.file_name,
                       mime=mimetypes.guess_type(cit.file_name)[0] or "application/octet-stream",
                       key=key, on_click="ignore")


def flash(kind: str, message: str) -> None:
    """Queue a message to show on the next run (callbacks run before the page)."""
    st.session_state.setdefault(FLASH, []).append((kind, message))


def show_flashes() -> None:
    for kind, message in st.session_state.pop(FLASH, []):
        {"success": st.success, "warning": st.warning, "error": st.error}.get(kind, st.info)(message)


def safe_callback(func):
    """Widget callbacks run outside the page's try/except: turn errors into messages."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except EquisearchError as exc:
            flash("error", one_line(exc))
        except Exception as exc:  # never a traceback in the browser
            log.exception("UI action failed")
            flash("error", f"That did not work ({type(exc).__name__}). The details are in the server log.")

    return wrapper


def reading_lists():
    from search.lists import ReadingLists

    return ReadingLists(get_engine(home()).store)


def active_list_id(create: bool = False) -> int | None:
    """The list "Add to reading list" buttons add to (made on first use if ``create``)."""
    rls = reading_lists()
    lists = rls.lists()
    ids = [rl.id for rl in lists]
    current = st.session_state.get(ACTIVE_LIST)
    if current in ids:
        return current
    if lists:
        st.session_state[ACTIVE_LIST] = ids[0]
        return ids[0]
    if not create:
        return None
    rl = rls.create("My reading list")
    st.session_state[ACTIVE_LIST] = rl.id
    return rl.id


def list_picker(label: str, where=st) -> int | None:
    """A select box over the reading lists that keeps the active list in step."""
    lists = reading_lists().lists()
    if not lists:
        return None
    ids = [rl.id for rl in lists]
    names = {rl.id: f"{rl.name} ({rl.n_items})" for rl in lists}
    current = active_list_id()
    choice = where.selectbox(label, ids, index=ids.index(current), format_func=names.get)
    st.session_state[ACTIVE_LIST] = choice
    return choice


def store_path_for_display() -> str:
    from search.store import describe_location

    return describe_location(home())
