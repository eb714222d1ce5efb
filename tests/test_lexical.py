"""FTS5 query escaping: hostile user text never reaches FTS5 raw."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from search.lexical import build_match, query_terms
from search.store import NewChunk, NewDocument, Store
from search.text import content_hash

TEXT = "The pupil premium plus (PP+) supports previously looked-after children; NEAR the school."


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store.open(tmp_path_factory.mktemp("lex"))
    s.write_document(
        NewDocument(uri="/a", title="a", text=TEXT, content_hash="h", text_hash=content_hash(TEXT)),
        [NewChunk(TEXT, 0, len(TEXT), content_hash(TEXT))],
        np.ones((1, 2), np.float32) / np.sqrt(2), model="m", dim=2, chunking="c",
    )
    return s


HOSTILE = ['pupil-premium', '"pupil', 'NEAR(pupil premium', 'pupil*', 'pupil OR', 'OR', 'AND NOT', '^pupil',
           'premium:plus', "'; DROP TABLE chunks; --", '(((', '"', 'col:"x"', 'pupil AND', 'NOT pupil',
           '😀 pupil', 'تلاميذ premium', 'a' * 10000, '   ', '{pupil}', 'pupil NEAR/2 premium']


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_run(store, query):
    match = build_match(query)
    if match:
        store.fts_search(match, 5)  # must not raise (fts_search logs and returns [] on error too)
        store.conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?", (match,)).fetchall()


def test_hyphenated_and_stemmed_terms_match(store):
    assert store.fts_search(build_match("pupil-premium"), 5)
    assert store.fts_search(build_match("supporting pupils"), 5), "porter stemming: pupils -> pupil"


def test_stopwords_dropped_but_not_everything():
    assert query_terms("What is the pupil premium?") == ["pupil", "premium"]
    assert build_match("what is it") != ""


@hsettings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_property_any_text_is_a_valid_match(text):
    match = build_match(text)
    if not match:
        return
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')")
    conn.execute("INSERT INTO t VALUES ('pupil premium')")
    conn.execute("SELECT * FROM t WHERE t MATCH ?", (match,)).fetchall()
