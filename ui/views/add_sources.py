"""Add sources: paste URLs or upload files; the same pipeline as `equisearch ingest`."""
from __future__ import annotations

import streamlit as st

from search.errors import EquisearchError
from search.types import KINDS
from ui.actions import UPLOAD_TYPES, add_sources, rows_table
from ui.common import current_access, get_embedder, get_engine, home, one_line, settings

NOT_SET = "(from the source)"


def _embedder(s):
    """The store's model if the store exists, else the configured one (shared cache)."""
    try:
        return get_engine(home()).embedder
    except EquisearchError:
        return get_embedder(s.model)


def main() -> None:
    if not current_access().is_editor:  # not in a reader's navigation; refused here too
        st.error("Only editors may add sources.")
        return
    s = settings()
    st.title("Add sources")
    st.caption("Web pages and files go through the same pipeline as `equisearch ingest`: extracted, cleaned, "
               "cut into passages, embedded and stored. Unchanged sources cost nothing the second time.")
    with st.form("add_sources", clear_on_submit=False):
        urls_text = st.text_area("Web pages (one URL per line)", key="urls", height=120,
                                 placeholder="https://www.gov.uk/guidance/...\nhttps://educationendowmentfoundation.org.uk/...")
        files = st.file_uploader(
            f"Files (PDF, HTML, text, Markdown, VTT/SRT transcripts; at most {s.max_file_mb} MiB each)",
            type=list(UPLOAD_TYPES), accept_multiple_files=True, key="uploads",
        )
        with st.expander("Metadata for this batch (optional)"):
            c1, c2 = st.columns(2)
            kind = c1.selectbox("Kind", [NOT_SET, *KINDS], key="add_kind")
            site = c2.text_input("Site or publisher", key="add_site")
            tags = st.text_input("Tags (comma separated)", key="add_tags")
        submitted = st.form_submit_button("Add sources", type="primary")
    if not s.allow_private_urls:
        st.caption("For safety, addresses on this server's own network (localhost, private ranges) are refused; "
                   "an operator can allow them with EQUISEARCH_ALLOW_PRIVATE_URLS=1.")
    if submitted:
        uploads = [(f.name, f.getvalue()) for f in (files or [])]
        if not urls_text.strip() and not uploads:
            st.warning("Paste at least one URL or choose a file.")
        else:
            overrides = {"kind": None if kind == NOT_SET else kind, "site": site.strip() or None,
                         "tags": [t.strip() for t in tags.split(",") if t.strip()] or None}
            bar = st.progress(0.0, text="Starting…")

            def progress(result, done, total):
                bar.progress(done / max(total, 1), text=f"{done} of {total}: {result.status} {result.source[-80:]}")

            try:
                with st.spinner("Adding sources… (large PDFs take a while)"):
                    rows = add_sources(home(), s, urls_text=urls_text, uploads=uploads, overrides=overrides,
                                       embedder=_embedder(s), progress=progress)
            except EquisearchError as exc:
                bar.empty()
                st.error(one_line(exc))
                return
            bar.progress(1.0, text="Done")
            st.session_state["add_results"] = rows
    rows = st.session_state.get("add_results")
    if rows:
        counts = {}
        for r in rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        (st.warning if counts.get("failed") else st.success)(f"Result: {summary}.")
        st.dataframe(rows_table(rows), hide_index=True, width="stretch",
                     column_config={"reason": st.column_config.TextColumn(width="large")})
        if any(r.status in ("added", "updated") for r in rows):
            st.caption("The new passages are searchable now: ask about them on the **Ask** page.")


main()
