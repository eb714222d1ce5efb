"""equisearch in the browser: Ask, Sources, Add sources, Reading lists.

Run with ``streamlit run ui/app.py`` (or ``equisearch ui`` / ``make run``); the
store is ``EQUISEARCH_HOME``. The engine (store, index, model) is loaded once
per server process (``st.cache_resource`` in :mod:`ui.common`) and notices
stores changed by a CLI ingest through the store's generation counter.

Who may do what is decided first, on every run (:mod:`ui.auth`, from
``EQUISEARCH_AUTH``): nobody signed in under ``oidc`` sees only a sign-in
button, a request without the proxy's identity header under ``proxy`` a
one-line refusal; a reader gets Ask, Sources (without Remove) and Reading
lists, an editor Add sources too. With ``auth=none`` (the default) there is
no sign-in and every page is there, as for a single user.

Errors never reach the browser as a traceback: library errors become one-line
messages, anything else a short apology (details in the server log).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ on sys.path, not the project root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from search.errors import EquisearchError  # noqa: E402
from ui.common import current_access, md, one_line  # noqa: E402

log = logging.getLogger("equisearch.ui")
VIEWS = Path(__file__).resolve().parent / "views"


def sign_in(access) -> None:
    """What someone not signed in gets: the sign-in button (oidc), else the one-line refusal."""
    if access.mode != "oidc":
        st.error(one_line(access.refusal))
        return
    if st.button("Sign in", type="primary", key="sign_in"):
        from streamlit.errors import StreamlitAuthError

        try:
            st.login()
        except StreamlitAuthError as exc:  # no [auth] in secrets.toml, or Authlib missing
            log.error("sign-in is not configured: %s", exc)
            st.error("Sign-in is not set up on this server yet: ask the operator (the details are in the server log).")


def who(access) -> None:
    """The signed-in identity and role in the sidebar, and the way out."""
    if access.mode == "none":
        return
    st.sidebar.caption(f"Signed in as {md(access.identity)} ({access.role})")
    if access.mode == "oidc":
        st.sidebar.button("Sign out", key="sign_out", on_click=st.logout)


def main() -> None:
    st.set_page_config(page_title="equisearch", page_icon="🔎", layout="wide")
    # Readers, not developers: no "Deploy" menu, and never error details even
    # if something slipped past the handlers below.
    st.set_option("client.toolbarMode", "viewer")
    st.set_option("client.showErrorDetails", "none")
    try:
        access = current_access()
    except EquisearchError as exc:  # a malformed EQUISEARCH_* setting
        st.error(one_line(exc))
        return
    if not access.signed_in:
        sign_in(access)
        return
    pages = [
        st.Page(VIEWS / "ask.py", title="Ask", icon=":material/forum:", default=True),
        st.Page(VIEWS / "sources.py", title="Sources", icon=":material/library_books:"),
    ]
    if access.is_editor:
        pages.append(st.Page(VIEWS / "add_sources.py", title="Add sources", icon=":material/add_circle:"))
    pages.append(st.Page(VIEWS / "reading_lists.py", title="Reading lists", icon=":material/bookmarks:"))
    page = st.navigation(pages)
    who(access)
    try:
        page.run()
    except EquisearchError as exc:
        st.error(one_line(exc))
    except Exception as exc:  # noqa: BLE001 - the browser must never see a traceback
        log.exception("page %s failed", page.title)
        st.error(f"Something went wrong on this page ({type(exc).__name__}). "
                 "The details are in the server log; try again or reload the page.")


main()
