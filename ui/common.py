"""Shared pieces of the Streamlit pages: who is signed in, the cached engine, escaping, messages.

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
from ui.auth import Access, decide, store_location

log = logging.getLogger("equisearch.ui")

#: Session-state keys shared between pages.
ACTIVE_LIST = "active_list_id"
FLASH = "flash_messages"


def settings() -> Settings:
    """Settings from the environment (``EQUISEARCH_HOME`` names the store)."""
    return Settings.from_env()


def home() -> str:
    """The store as editors open it (Add sources, Remove): a directory or a database URL."""
    return str(settings().location)


def request_headers() -> dict[str, list[str]]:
    """The headers of the request that opened this session, every value of each."""
    headers = st.context.headers
    return {name: headers.get_all(name) for name in headers.keys()}


def signed_in_user() -> dict:
    """``st.user`` as a dict (what the OIDC provider said about who signed in)."""
    return st.user.to_dict()


def current_access() -> Access:
    """This session's identity and role (:func:`ui.auth.decide`), read afresh on every run.

    Never kept in session state: it follows from the sign-in cookie or the
    proxy's header alone.
    """
    s = settings()
    mode = (s.auth or "none").strip().lower()
    return decide(s, user=signed_in_user() if mode == "oidc" else None,
                  headers=request_headers() if mode == "proxy" else None)


def engine_location() -> str:
    """The store this session's pages open: a reader's login on PostgreSQL, else the store itself."""
    return store_location(settings(), current_access())


@st.cache_resource(show_spinner="Loading the language model (once per server)…")
def get_embedder(model: str):
    from search.embedding import load_embedder

    return load_embedder(model)


@st.cache_resource(show_spinner="Opening the store…")
def get_engine(location: str):
    """One engine (store, vector index, model) per store location per server process.

    Keyed by the location: a store directory, or a database URL, so readers
    (``reader_database_url``) and editors never share one connection pool.
    It stays valid when another process (a CLI ingest) writes to the store:
    the engine compares the store's generation counter on every search and
    reloads the vector index when it moved. Raises ``StoreError`` when there
    is no store yet (not cached, so the next run tries again).
    """
    from search.api import Engine

    s = Settings.from_env(home=location)  # a directory or a database URL: s.location is it
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
        return get_engine(engine_location())
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
    """The reading lists as this session's user sees them (everyone's when nobody signs in)."""
    from search.lists import ReadingLists

    return ReadingLists(get_engine(engine_location()).store, user=current_access().list_user)


def active_list_id(create: bool = False) -> int | None:
    """The list "Add to reading list" buttons add to: one of the user's own (made on first use if ``create``)."""
    rls = reading_lists()
    lists = [rl for rl in rls.lists() if rls.can_change(rl)]
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


def list_label(rls, rl) -> str:
    """A list's name for a select box: item count, and whose it is when it is someone else's."""
    whose = "" if rls.can_change(rl) or not rl.owner else f" · {rl.owner}'s, read-only"
    shared = " · shared" if rl.shared and rls.can_change(rl) and rls.user is not None else ""
    return f"{rl.name} ({rl.n_items}){shared}{whose}"


def list_picker(label: str, where=st, *, own_only: bool = True) -> int | None:
    """A select box over the reading lists that keeps the active list in step.

    ``own_only``: only lists the user may add to (the Ask and Sources pages);
    the Reading lists page shows the shared ones too.
    """
    rls = reading_lists()
    lists = [rl for rl in rls.lists() if rls.can_change(rl) or not own_only]
    if not lists:
        return None
    ids = [rl.id for rl in lists]
    names = {rl.id: list_label(rls, rl) for rl in lists}
    current = st.session_state.get(ACTIVE_LIST)
    if current not in ids:
        current = active_list_id() if own_only else None
    choice = where.selectbox(label, ids, index=ids.index(current) if current in ids else 0, format_func=names.get)
    st.session_state[ACTIVE_LIST] = choice
    return choice


def store_path_for_display() -> str:
    from search.store import describe_location

    return describe_location(home())
