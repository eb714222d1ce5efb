"""Ask: a question in, a short answer with [n] citations and numbered source cards out."""
from __future__ import annotations

import streamlit as st

from search.types import Filters
from ui.common import (
    active_list_id,
    current_access,
    engine_location,
    engine_or_stop,
    esc,
    flash,
    get_engine,
    list_picker,
    md,
    reading_lists,
    safe_callback,
    local_file,
    safe_link,
    show_flashes,
)

#: Offered on the first visit; each is answered by the starter corpus.
EXAMPLES = (
    "What works for PLAC pupils?",
    "Who counts as a previously looked-after child for school admissions?",
    "How can schools collaborate to promote equity?",
)
ANY = "any"


@st.cache_data(show_spinner=False, max_entries=16)
def facets(location: str, generation: int) -> dict:
    """Kinds, sites, tags and years present in the store (re-read when it changes)."""
    docs = get_engine(location).store.documents()
    return {
        "kinds": sorted({d.kind for d in docs}),
        "sites": sorted({d.site for d in docs if d.site}),
        "tags": sorted({t for d in docs for t in d.tags}),
        "years": sorted({d.date[:4] for d in docs if d.date[:4].isdigit()}),
        "documents": len(docs),
    }


def sidebar_filters(f: dict, default_k: int) -> tuple[Filters, int]:
    sb = st.sidebar
    sb.header("Filters")
    kinds = sb.multiselect("Kind", f["kinds"], key="f_kinds")
    sites = sb.multiselect("Site", f["sites"], key="f_sites")
    tags = sb.multiselect("Tags", f["tags"], key="f_tags") if f["tags"] else []
    years = [ANY, *f["years"]]
    c1, c2 = sb.columns(2)
    date_from = c1.selectbox("From year", years, key="f_from")
    date_to = c2.selectbox("To year", years, key="f_to")
    k = sb.slider("Number of sources", 1, 10, value=min(max(default_k, 1), 10), key="k")
    filters = Filters(tuple(kinds), tuple(sites), tuple(tags),
                      "" if date_from == ANY else date_from, "" if date_to == ANY else date_to)
    return filters, k


def _set_question(text: str) -> None:
    st.session_state["question"] = text


def _add_to_list(what: str, ref: int) -> None:
    """Add a passage (``what="passage"``, a chunk id) or a whole source (a document id)."""
    rls = reading_lists()
    list_id = active_list_id(create=True)
    add = rls.add_passage if what == "passage" else rls.add_source
    item, added = add(list_id, ref)
    name = rls.get(list_id).name
    label = "Passage" if what == "passage" else "Whole source"
    flash("success" if added else "info",
          f"{label} {'added to' if added else 'is already in'} “{md(name)}” (item {item.position}).")


@safe_callback
def _add_passage(chunk_id: int) -> None:
    _add_to_list("passage", chunk_id)


@safe_callback
def _add_source(doc_id: int) -> None:
    _add_to_list("source", doc_id)


def highlighted(text: str, spans: list[tuple[int, int]]) -> str:
    """The passage as escaped HTML with the answer's sentences (their spans in ``text``) in <mark>."""
    spans = [(a, b) for a, b in spans if 0 <= a < b <= len(text)]
    out, pos = [], 0
    for a, b in sorted(spans):
        if a < pos:  # overlapping sentences: extend the open highlight
            a = pos
        if a >= b:
            continue
        out.append(esc(text[pos:a]))
        out.append(f"<mark>{esc(text[a:b])}</mark>")
        pos = b
    out.append(esc(text[pos:]))
    return "".join(out)


def render_answer(answer) -> None:
    if answer.abstained:
        about = f" Nothing in them is about: {md(', '.join(answer.missing))}." if answer.missing else ""
        st.warning(f"The sources don't answer this clearly.{about} The closest passages are below, so you can judge.")
    else:
        parts = [esc(s.text) + " " + "".join(f'<a href="#source-{n}" class="eq-ref">[{n}]</a>' for n in s.cited)
                 for s in answer.sentences]
        if answer.written:
            st.info("Written answer: a language model wrote it from the passages below; each sentence was checked "
                    "against the passages it cites, and sentences they do not support were left out. The check is "
                    "by rule (numbers, names, wording, negation, conditions), not by understanding: read the cited "
                    "passage before relying on a sentence.")
        # "What works" questions are answered with points, one a source passage.
        body = ("<ul style=\"margin:0\">" + "".join(f"<li>{p}</li>" for p in parts) + "</ul>"
                if answer.is_list else " ".join(parts))
        st.html(f'<div class="eq-answer" style="font-size:1.1rem;line-height:1.6">{body}</div>')
    if answer.note and not answer.written:
        st.caption(esc(answer.note))
    if answer.unsupported:
        with st.expander(f"Left out of the written answer ({len(answer.unsupported)})"):
            for text, why in answer.unsupported:
                st.markdown(f"- ~~{md(text)}~~ — {md(why)}")
    if answer.also_searched:
        st.caption("Also searched for: " + ", ".join(esc(t) for t in answer.also_searched))
    st.subheader("Closest passages" if answer.abstained else "Sources")
    for n, hit in enumerate(answer.passages, start=1):
        render_card(n, hit, [(s.start, s.end) for s in answer.sentences if s.ref == n and s.start >= 0])


def render_card(n: int, hit, spans: list[tuple[int, int]]) -> None:
    cit, ch = hit.citation, hit.chunk
    meta = " · ".join(esc(b) for b in (cit.site, cit.kind, cit.date, cit.location) if b)
    speaker = f'<div style="opacity:.7">{esc(ch.speaker)}</div>' if ch.speaker else ""
    with st.container(border=True):
        st.html(
            f'<div class="eq-card" id="source-{n}">'
            f'<div class="eq-title" style="font-weight:600;font-size:1.05rem">[{n}] {esc(cit.title)}</div>'
            f'<div class="eq-meta" style="opacity:.75;font-size:.9rem">{meta}</div>{speaker}'
            f'<div class="eq-passage" style="white-space:pre-wrap;margin-top:.5rem">{highlighted(ch.text, spans)}</div>'
            "</div>"
        )
        c1, c2, c3 = st.columns([2, 2, 3])
        link = safe_link(cit.link)
        if link:
            where = f" at {cit.location}" if cit.location and cit.link_at_location else ""
            c1.link_button(f"Open source{where}" if where or not cit.location else "Open source page", link)
        c2.button("Add passage to list", key=f"addp-{n}-{ch.id}", on_click=_add_passage, args=(ch.id,),
                  help="Adds this passage to the reading list chosen in the sidebar.")
        c3.button("Add whole source to list", key=f"adds-{n}-{ch.doc_id}", on_click=_add_source,
                  args=(ch.doc_id,))
        local_file(cit, key=f"file-{n}-{ch.id}")


def main() -> None:
    engine = engine_or_stop()
    st.title("Ask")
    if engine.settings.writer_url.strip():
        st.caption("Answers built from your education-equity sources, every sentence cited. Written answers come "
                   "from the language model this site is set up with, checked sentence by sentence against the "
                   "passages they cite; otherwise each sentence is copied from the passage its number points to.")
    else:
        st.caption("Answers built from your education-equity sources, every sentence cited. No text is made up: "
                   "each sentence is copied from the passage its number points to.")
    show_flashes()
    generation = engine.store.generation()
    f = facets(engine_location(), generation)
    filters, k = sidebar_filters(f, engine.settings.top_k)
    st.sidebar.header("Reading list")
    if list_picker("Add passages to", st.sidebar) is None:
        st.sidebar.caption("Your first “Add to list” click creates “My reading list”.")
    question = st.text_input("Your question", key="question", placeholder="What works for PLAC pupils?")
    if not question.strip():
        st.write("Try one of these:")
        for i, example in enumerate(EXAMPLES):
            st.button(example, key=f"example-{i}", on_click=_set_question, args=(example,))
        st.caption(f"{f['documents']} sources in the store.")
        return
    key = (question.strip(), filters, k, generation)
    cached = st.session_state.get("last_answer")
    if cached and cached[0] == key:
        answer = cached[1]
    else:
        with st.spinner("Searching…"):
            answer = engine.ask(question, k=k, filters=filters)
        st.session_state["last_answer"] = (key, answer)
    if not answer.passages:
        if filters.is_empty():
            st.info("The store has no passages yet: add sources on the **Add sources** page."
                    if current_access().is_editor else "The store has no passages yet: ask an editor to add sources.")
        else:
            st.info("No passage matches these filters: widen them in the sidebar.")
        return
    render_answer(answer)


main()
