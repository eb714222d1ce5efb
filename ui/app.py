"""equisearch in the browser: ask a question, get an answer with cited sources.

Run with ``streamlit run ui/app.py`` (or ``equisearch ui`` / ``make run``);
the store is ``EQUISEARCH_HOME``. The engine (store, index, model) is loaded
once per server process with ``st.cache_resource``; it notices stores changed
by a CLI ingest through the store's generation counter.

All document text is rendered through ``st.text``/escaped Markdown, never as
HTML, so a page that contained ``<script>`` shows it as text.
"""
from __future__ import annotations

import html
import sys
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ on sys.path, not the project root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from search.errors import EquisearchError  # noqa: E402
from search.settings import Settings  # noqa: E402

EXAMPLES = (
    "What share of parents say their child's special educational needs are not fully met?",
    "Why is family income not enough to identify the children most in need of support?",
    "How can schools collaborate to promote equity?",
)


@st.cache_resource(show_spinner="Loading the search engine…")
def get_engine(home: str):
    """One engine (store, index, model) per store per server process."""
    from search.api import Engine

    settings = Settings.from_env(home=home)
    return Engine.open(settings.home_path, settings)


def _md_escape(text: str) -> str:
    """Escape Markdown and HTML so document text is shown, never interpreted."""
    text = html.escape(text, quote=False)
    # Characters that start Markdown syntax inline (emphasis, links, code,
    # tables, maths); the text is joined into one line so list markers at a
    # line start cannot occur.
    for ch in "\\`*_[]#|~$":
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())


def render_answer(answer) -> None:
    if answer.abstained:
        st.warning("The sources don't answer this clearly. The closest passages are below.")
    else:
        st.markdown(" ".join(f"{_md_escape(s.text)} **[{s.ref}]**" for s in answer.sentences))
    if answer.also_searched:
        st.caption("Also searched for: " + ", ".join(answer.also_searched))
    st.subheader("Sources" if not answer.abstained else "Closest passages")
    for n, hit in enumerate(answer.passages, start=1):
        cit = hit.citation
        meta = " · ".join(b for b in (cit.site, cit.kind, cit.date, cit.location) if b)
        with st.container(border=True):
            st.markdown(f"**[{n}] {_md_escape(cit.title)}**")
            if meta:
                st.caption(meta)
            if cit.link.startswith(("http://", "https://")):
                st.link_button("Open source", cit.link)
            else:
                st.caption(cit.link)
            st.text(hit.chunk.text)


def main() -> None:
    st.set_page_config(page_title="equisearch", page_icon="🔎", layout="wide")
    st.title("equisearch")
    st.caption("Answers from your education-equity sources, with every sentence cited.")
    try:
        engine = get_engine(str(Settings.from_env().home_path))
    except EquisearchError as exc:
        st.error(f"The store could not be opened: {exc}")
        st.info("Build it first: `make run` or `equisearch ingest corpus`.")
        return
    if "question" not in st.session_state:
        st.session_state.question = ""
    st.write("Try:")
    cols = st.columns(len(EXAMPLES))
    for col, example in zip(cols, EXAMPLES):
        if col.button(example, use_container_width=True):
            st.session_state.question = example
    question = st.text_input("Your question", key="question", placeholder="What works for PLAC pupils?")
    if not question.strip():
        return
    try:
        with st.spinner("Searching…"):
            answer = engine.ask(question)
    except EquisearchError as exc:
        st.error(str(exc))
        return
    if not answer.passages:
        st.info("The store has no passages yet: add sources with `equisearch ingest PATH`.")
        return
    render_answer(answer)


main()
