"""equisearch in the browser: Ask, Sources, Add sources, Reading lists.

Run with ``streamlit run ui/app.py`` (or ``equisearch ui`` / ``make run``); the
store is ``EQUISEARCH_HOME``. The engine (store, index, model) is loaded once
per server process (``st.cache_resource`` in :mod:`ui.common`) and notices
stores changed by a CLI ingest through the store's generation counter.

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
from ui.common import one_line  # noqa: E402

log = logging.getLogger("equisearch.ui")
VIEWS = Path(__file__).resolve().parent / "views"


def main() -> None:
    st.set_page_config(page_title="equisearch", page_icon="🔎", layout="wide")
    # Readers, not developers: no "Deploy" menu, and never error details even
    # if something slipped past the handlers below.
    st.set_option("client.toolbarMode", "viewer")
    st.set_option("client.showErrorDetails", "none")
    page = st.navigation([
        st.Page(VIEWS / "ask.py", title="Ask", icon=":material/forum:", default=True),
        st.Page(VIEWS / "sources.py", title="Sources", icon=":material/library_books:"),
        st.Page(VIEWS / "add_sources.py", title="Add sources", icon=":material/add_circle:"),
        st.Page(VIEWS / "reading_lists.py", title="Reading lists", icon=":material/bookmarks:"),
    ])
    try:
        page.run()
    except EquisearchError as exc:
        st.error(one_line(exc))
    except Exception as exc:  # noqa: BLE001 - the browser must never see a traceback
        log.exception("page %s failed", page.title)
        st.error(f"Something went wrong on this page ({type(exc).__name__}). "
                 "The details are in the server log; try again or reload the page.")


main()
