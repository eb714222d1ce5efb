"""Keyword ranking of the PostgreSQL backend against the SQLite backend's (issue 16).

The same hand-made corpus goes into a SQLite store (write_document) and a
PostgreSQL database (bulk_load, ids kept), and both backends' answers are
compared: same passages, same order, same BM25 to rounding. Both index
the same tokens (lexical.py's TS_CONFIG and SEPARATORS: words cut at every
punctuation mark, accents folded, the original Porter stemmer, no stop
words), so FTS5's row length (every token of title and text) is the
PostgreSQL one. Where the backends still differ (lowercasing of non-Latin
capitals in a database with the C locale) a test says so.
"""
from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from search.store import NewChunk, NewDocument, Store
from search.store.postgres import PgStore
from search.store.postgres.bulk import BulkChunk, BulkDocument, bulk_load
from search.store.postgres.lexical import CHUNK_LEN_SQL, CHUNK_TSV_SQL
from search.text import content_hash
from search.types import Filters

postgres = pytest.mark.postgres

# (title, kind, site, date, tags, passages). No stop words of either side.
CORPUS = [
    ("Pupil premium grant", "guidance", "dfe", "2019-04-01", ("funding",),
     ["Schools receive pupil premium grant funding; disadvantaged pupils benefit. Pupil premium grant allocations rise.",
      "Governors review premium spending plans termly."]),
    ("Virtual school heads", "guidance", "dfe", "2020-06-15", ("care",),
     ["Virtual school heads champion the education of care leavers; heads track attendance closely."
      " Heads manage pupil premium plus."]),
    ("Attendance in Bexley", "inspection", "ofsted", "2021-02-01", ("care", "local"),
     ["Bexley attendance fell sharply during the lockdown. Bexley leaders introduced attendance mentors."]),
    ("Children in care", "guidance", "dfe", "2021-09-01", ("care",),
     ["Virtual heads support looked after children and previously looked after children in schools."]),
    ("Exclusions report", "research", "eef", "2018", (),
     ["Permanent exclusions rose and suspensions doubled. Excluded pupils lose learning time."]),
    ("Teaching assistants", "research", "eef", "2022-09-01", ("staff",),
     ["Teaching assistants support pupils needing extra help. Trained assistants improve reading outcomes.",
      "Assistants deployed well raise attainment; poorly deployed assistants hinder pupils."]),
    ("Reading fluency", "research", "eef", "2020", ("literacy",),
     ["Reading fluency programmes boost comprehension. Pupil premium pupils gain substantially."]),
    ("Governance handbook", "guidance", "dfe", "", ("governance",),
     ["Governors oversee budgets, including premium funding."]),
    ("Outcomes report pupil", "research", "nfer", "2023-05-05", (),
     ["Premium grant reforms announced recently; schools welcomed clarity."]),
    ("Bexley local offer", "inspection", "ofsted", "2023-01-10", ("local",),
     ["Local offer lists services; families rated communication poorly."]),
    ("Mathematics mastery", "research", "eef", "2017", (),
     ["Mastery approaches raise mathematics attainment modestly. Mathematics mastery suits primary schools."]),
    ("Curriculum review", "guidance", "dfe", "2024", ("literacy",),
     ["Curriculum reform emphasises reading, writing, mathematics."]),
    ("Unicode names", "research", "eef", "2016", (),
     ["Zoë Brontë studied ünïcode naïve tokenisers."]),
]


def _doc(title, kind, site, date, tags, passages, uri):
    text = "\n\n".join(passages)
    return NewDocument(uri=uri, title=title, text=text, content_hash=content_hash(text), text_hash=content_hash(text),
                       kind=kind, site=site, date=date, tags=tags)


def _chunks(passages):
    out, pos = [], 0
    for p in passages:
        out.append(NewChunk(text=p, char_start=pos, char_end=pos + len(p), text_hash=content_hash(p)))
        pos += len(p) + 2
    return out


@pytest.fixture
def stores(tmp_path, pg_database):
    """(SQLite store, PostgreSQL store) holding CORPUS under the same document and passage ids."""
    sq = Store.open(tmp_path / "sqlite")
    docs, chunks = [], []
    for i, (title, kind, site, date, tags, passages) in enumerate(CORPUS):
        doc, ch = _doc(title, kind, site, date, tags, passages, f"test:{i}"), _chunks(passages)
        vecs = np.tile(np.eye(4, dtype=np.float32)[:1], (len(ch), 1))
        res = sq.write_document(doc, ch, vecs, model="m", dim=4, chunking="c")
        docs.append(BulkDocument(res.doc_id, doc))
        chunks += [BulkChunk(cid, res.doc_id, n, c, v) for n, (cid, c, v) in enumerate(zip(res.added_ids, ch, vecs))]
    pg = PgStore.open(pg_database)
    bulk_load(pg, docs, chunks, model="m", dim=4, chunking="c")
    yield sq, pg
    pg.close()
    sq.close()


def _ranked(pairs):
    """(id, score) best first; exact ties (which each backend may order its own way) by id."""
    return sorted(pairs, key=lambda p: (-round(p[1], 9), p[0]))


def assert_same(sqlite_hits, pg_hits):
    a, b = _ranked(sqlite_hits), _ranked(pg_hits)
    assert [i for i, _ in a] == [i for i, _ in b]
    assert [s for _, s in b] == pytest.approx([s for _, s in a], rel=1e-9, abs=1e-12)


def _write_passage(pg: PgStore, title: str, text: str, uri: str, **fields) -> tuple[int, int]:
    """A document of one passage written the way documents.py writes (lexical.py's contract)."""
    with pg.transaction() as conn:
        doc_id = conn.execute(
            "INSERT INTO documents (uri, title, content_hash, text_hash, text, added_at, updated_at, kind, date)"
            " VALUES (%(uri)s, %(title)s, %(h)s, %(h)s, %(text)s, '', '', %(kind)s, %(date)s) RETURNING id",
            {"uri": uri, "title": title, "text": text, "h": content_hash(text), "kind": fields.get("kind", "other"),
             "date": fields.get("date", "")}).fetchone()[0]
        chunk_id = conn.execute(
            "INSERT INTO chunks (doc_id, ord, text, char_start, char_end, text_hash, tsv, len)"
            f" VALUES (%(doc)s, 0, %(text)s, 0, %(n)s, %(h)s, {CHUNK_TSV_SQL}, {CHUNK_LEN_SQL}) RETURNING id",
            {"doc": doc_id, "text": text, "title": title, "n": len(text), "h": content_hash(text)}).fetchone()[0]
        pg._write_postings(conn, [chunk_id])
        pg._bump_generation(conn)
    return doc_id, chunk_id


def _write_sqlite(sq: Store, title: str, text: str, uri: str, **fields):
    doc = NewDocument(uri=uri, title=title, text=text, content_hash=content_hash(text), text_hash=content_hash(text),
                      **fields)
    return sq.write_document(doc, _chunks([text]), np.eye(4, dtype=np.float32)[:1], model="m", dim=4, chunking="c")


# -- ranking ---------------------------------------------------------------------
@postgres
@pytest.mark.parametrize("word", ["pupils", "pupil", "premium", "attendance", "bexley", "assistants", "mathematics",
                                  "reading", "schools", "grant"])
@pytest.mark.parametrize("title_weight", [0.5, 2.0])
def test_single_word_ranks_as_sqlite(stores, word, title_weight):
    sq, pg = stores
    expected = sq.keyword_search([word], 10, title_weight=title_weight)
    assert expected, "the corpus should hold the word"
    assert_same(expected, pg.keyword_search([word], 10, title_weight=title_weight))


@postgres
@pytest.mark.parametrize("terms", [
    ["pupil", "premium"], ["bexley", "attendance", "mentors"], ["assistants", "reading", "mathematics", "schools"],
    ["pupils", "pupil"],  # one stem twice: counted twice, as two FTS5 phrases are
    ["grant", "grant", "funding"],
])
def test_several_words_rank_as_sqlite(stores, terms):
    sq, pg = stores
    for tw in (0.5, 2.0):
        assert_same(sq.keyword_search(terms, 20, title_weight=tw), pg.keyword_search(terms, 20, title_weight=tw))


@postgres
def test_a_repeated_term_weighs_twice(stores):
    _, pg = stores
    once = dict(pg.keyword_search(["bexley"], 10))
    twice = dict(pg.keyword_search(["bexley", "bexleys"], 10))
    assert once and twice.keys() == once.keys()
    assert all(twice[i] == pytest.approx(2 * once[i]) for i in once)


@postgres
@pytest.mark.parametrize("terms", [
    ["pupil premium grant"],  # twice in one passage, once in a title
    ["pupil premium"],
    ["virtual school heads", "attendance"],
    ["premium grant", "mastery"],
    ["grant premium"],  # the words are there, never in this order: no match
    ["pupil premium"] * 2,
    ["looked after children"],  # a stop word inside: PostgreSQL lets any word stand there, none differs here
    ["previously looked after children", "care"],
])
def test_a_phrase_ranks_as_sqlite(stores, terms):
    sq, pg = stores
    for tw in (0.5, 2.0, 0.0):
        expected = sq.keyword_search(terms, 20, title_weight=tw)
        assert_same(expected, pg.keyword_search(terms, 20, title_weight=tw))


@postgres
def test_a_phrase_never_runs_from_the_title_into_the_text(stores):
    """'Outcomes report pupil' + 'Premium grant reforms...': adjacent positions in the tsvector, not a phrase."""
    sq, pg = stores
    crossing = [i for i, _ in pg.keyword_search(["pupil premium"], 50)]
    outcome = next(c.id for c in sq.iter_chunks() if c.text.startswith("Premium grant reforms"))
    assert outcome not in crossing
    assert outcome not in [i for i, _ in sq.keyword_search(["pupil premium"], 50)]
    assert outcome in [i for i, _ in pg.keyword_search(["premium grant"], 50)]


@postgres
def test_a_title_only_match_is_weighted_by_title_weight(stores):
    """'handbook' is only in a title: its passage scores by title_weight (0 still matches, with 0)."""
    sq, pg = stores
    scores = {}
    for tw in (0.0, 0.5, 2.0):
        expected = sq.keyword_search(["handbook"], 5, title_weight=tw)
        got = pg.keyword_search(["handbook"], 5, title_weight=tw)
        assert len(got) == 1
        assert_same(expected, got)
        scores[tw] = got[0][1]
    assert scores[0.0] == 0 < scores[0.5] < scores[2.0]
    # 'bexley' is in one passage's title and text and only in another's title.
    title_only = next(c.id for c in sq.iter_chunks() if c.text.startswith("Local offer"))
    for tw in (0.0, 2.0):
        got = pg.keyword_search(["bexley"], 5, title_weight=tw)
        assert_same(sq.keyword_search(["bexley"], 5, title_weight=tw), got)
        assert (dict(got)[title_only] == 0) == (tw == 0)


@postgres
def test_a_stop_word_matches_as_in_sqlite(stores):
    """No word is a stop word on either backend: 'the' is ranked, and a phrase holds it literally."""
    sq, pg = stores
    _write_sqlite(sq, "Stop", "the the the", "stop:1")
    _write_passage(pg, "Stop", "the the the", "stop:1")
    assert sq.keyword_search(["the"], 5)
    assert_same(sq.keyword_search(["the"], 5), pg.keyword_search(["the"], 5))
    assert_same(sq.keyword_search(["the", "bexley"], 5), pg.keyword_search(["the", "bexley"], 5))


PUNCTUATED = [
    ("Care leavers", "Previously looked-after children’s well-being: 3.5 per cent, e-mail vsh@kent.gov.uk or see"
                     " https://www.kent.gov.uk/send-local-offer (2019-20 data; KS2 results, “quoted” text)."),
    ("Co-operation", "Co-operation between schools — and the virtual school’s role… matters; PP+ and £1,000."),
]


@postgres
@pytest.mark.parametrize("terms", [
    ["looked"], ["after"], ["looked after"], ["previously looked after children"], ["children's"], ["children’s"],
    ["children s"], ["well being"], ["wellbeing"], ["3"], ["5"], ["3 5"], ["e mail"], ["vsh", "kent"],
    ["gov uk"], ["send local offer"], ["2019 20"], ["20"], ["ks2"], ["quoted"], ["co operation"], ["school's role"],
    ["pp"], ["1 000"], ["1,000"], ["looked-after"], ["well-being", "co-operation"],
])
def test_punctuation_cuts_words_as_in_sqlite(stores, terms):
    """Hyphens, typographic apostrophes and quotes, e-mail addresses, URLs and decimals split words on both."""
    sq, pg = stores
    for n, (title, text) in enumerate(PUNCTUATED):
        _write_sqlite(sq, title, text, f"punct:{n}")
        _write_passage(pg, title, text, f"punct:{n}")
    expected = sq.keyword_search(terms, 10)
    assert bool(expected) == (terms != ["wellbeing"]), terms  # one word is not its hyphenated spelling, on either
    assert_same(expected, pg.keyword_search(terms, 10))


# -- filters --------------------------------------------------------------------------
FILTERS = [
    Filters(kinds=("research",)),
    Filters(kinds=("research", "inspection")),
    Filters(sites=("eef",)),
    Filters(tags=("care",)),
    Filters(tags=("care", "local")),
    Filters(date_from="2020"),
    Filters(date_to="2020"),  # includes all of 2020 ("2020-06-15")
    Filters(date_from="2020-01-01", date_to="2022"),
    Filters(kinds=("guidance",), tags=("funding",), date_to="2019-12-31"),
]


@postgres
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.describe())
def test_filters_rank_only_allowed_passages_as_sqlite(stores, filters):
    sq, pg = stores
    terms = ["pupils", "premium", "attendance", "reading", "bexley", "mathematics", "schools"]
    allowed = set(sq.chunk_ids_matching(filters).tolist())
    expected = sq.keyword_search(terms, 50, filters, title_weight=2.0)
    got = pg.keyword_search(terms, 50, filters, title_weight=2.0)
    assert expected and {i for i, _ in got} <= allowed
    assert_same(expected, got)


@postgres
def test_a_filtered_query_still_fills_its_limit(stores):
    """The two best 'pupils' passages are guidance; a research filter still returns two (research) passages."""
    sq, pg = stores
    best = [i for i, _ in pg.keyword_search(["pupils", "premium"], 2)]
    research = Filters(kinds=("research",))
    allowed = set(sq.chunk_ids_matching(research).tolist())
    assert not set(best) & allowed
    got = pg.keyword_search(["pupils", "premium"], 2, research)
    assert len(got) == 2 and {i for i, _ in got} <= allowed
    assert_same(sq.keyword_search(["pupils", "premium"], 2, research), got)


@postgres
def test_keyword_scores_match_sqlite(stores):
    sq, pg = stores
    ids = [c.id for c in sq.iter_chunks()]
    for filters in (None, Filters(kinds=("research",))):
        for terms in (["pupils", "assistants"], ["pupil premium", "reading"]):
            top_s, scores_s = sq.keyword_scores(terms, 3, ids, filters, title_weight=2.0)
            top_p, scores_p = pg.keyword_scores(terms, 3, ids, filters, title_weight=2.0)
            assert_same(top_s, top_p)
            assert scores_p.keys() == scores_s.keys()  # no id that matches nothing, or is filtered out
            assert [scores_p[i] for i in scores_s] == pytest.approx(list(scores_s.values()), rel=1e-9)
            assert_same(pg.keyword_search(terms, 3, filters, title_weight=2.0), top_p)
    assert pg.keyword_scores([], 3, ids) == ([], {})


# -- counts ---------------------------------------------------------------------------
@postgres
def test_term_doc_counts_and_text_df_match_sqlite(stores):
    sq, pg = stores
    words = ["pupils", "pupil", "premium", "bexley", "handbook", "attendance", "absent", "mathematics", "children"]
    got = pg.term_doc_counts(words)
    expected = sq.term_doc_counts(words)
    assert got == expected
    # No stop words on either side: 'the' is counted as FTS5 counts it.
    assert pg.term_doc_counts(["the"]) == sq.term_doc_counts(["the"]) and sq.term_doc_counts(["the"])["the"] > 0
    assert pg.text_df("the") == sq.text_df("the")
    assert got["handbook"] == 1  # in a title: counted by term_doc_counts, not by text_df
    for word in words:
        assert pg.text_df(word) == sq.text_df(word), word
    assert pg.text_df("handbook") == 0
    assert pg.term_doc_counts([]) == {} and pg.term_doc_counts(["", "pupils"]) == {"pupils": expected["pupils"]}


@postgres
def test_a_phrase_counts_the_passages_holding_it(stores):
    sq, pg = stores
    chunks = list(sq.iter_chunks())
    titles = {d.id: d.title for d in sq.documents()}
    for phrase in ("pupil premium", "pupil premium grant", "virtual school heads", "grant premium"):
        text_hits = sum(phrase in c.text.lower() for c in chunks)
        any_hits = sum(phrase in c.text.lower() or phrase in titles[c.doc_id].lower() for c in chunks)
        assert pg.text_df(phrase) == text_hits, phrase
        assert pg.term_doc_counts([phrase]) == {phrase: any_hits}, phrase


@postgres
def test_texts_mentioning_matches_sqlite(stores):
    sq, pg = stores
    docs = [d.id for d in sq.documents()]
    for term, among in (("pupils", docs), ("assistants", docs[4:5]), ("bexley", docs), ("handbook", docs),
                        ("pupil premium", docs), ("attendance", docs[:2])):
        assert pg.texts_mentioning(term, among) == sq.texts_mentioning(term, among), term
    assert pg.texts_mentioning("pupils", docs, limit=1) == sq.texts_mentioning("pupils", docs, limit=1)
    assert pg.texts_mentioning("pupils", []) == [] and pg.texts_mentioning("", docs) == []


# -- statistics and snapshots ---------------------------------------------------------
@postgres
def test_corpus_statistics_follow_the_generation(stores):
    sq, pg = stores
    before = pg._corpus_stats()
    calls = []
    real_one = pg.one
    pg.one = lambda *a, **k: calls.append(a[0]) or real_one(*a, **k)
    try:
        assert pg._corpus_stats() == before  # same generation: from the cache
        assert calls and not any("avg(len)" in sql for sql in calls)
    finally:
        del pg.one
    text = "Attendance mentors visited Bexley families weekly; attendance improved."
    res = _write_sqlite(sq, "Mentor pilot", text, "new:1")
    doc_id, chunk_id = _write_passage(pg, "Mentor pilot", text, "new:1")
    assert (doc_id, chunk_id) == (res.doc_id, res.added_ids[0])
    after = pg._corpus_stats()
    assert after[0] == before[0] + 1 and after[1] != before[1]
    for terms in (["attendance"], ["bexley", "mentors"], ["attendance mentors"]):
        assert_same(sq.keyword_search(terms, 20, title_weight=2.0), pg.keyword_search(terms, 20, title_weight=2.0))
    assert pg.term_doc_counts(["mentors"]) == sq.term_doc_counts(["mentors"]) == {"mentors": 2}


@postgres
def test_a_new_title_reindexes_its_passages(stores):
    sq, pg = stores
    doc = next(d for d in sq.documents() if d.title == "Exclusions report")
    sq.update_metadata(doc.id, title="Exclusions Bexley analysis")
    with pg.transaction() as conn:
        conn.execute("UPDATE documents SET title = %s WHERE id = %s", ("Exclusions Bexley analysis", doc.id))
        pg._retitle(conn, doc.id)
        pg._bump_generation(conn)
    for terms in (["bexley"], ["analysis", "exclusions"], ["report"]):
        assert_same(sq.keyword_search(terms, 20, title_weight=2.0), pg.keyword_search(terms, 20, title_weight=2.0))


@postgres
def test_ranking_inside_a_consistent_view_sees_one_snapshot(stores, pg_database):
    _, pg = stores
    other = PgStore.open(pg_database)
    try:
        with pg.consistent_view():
            first = pg.keyword_search(["attendance"], 20)
            writer = threading.Thread(target=_write_passage,
                                      args=(other, "Attendance drive", "Attendance attendance attendance.", "new:2"))
            writer.start()
            writer.join()
            assert pg.keyword_search(["attendance"], 20) == first
            assert pg.term_doc_counts(["attendance"]) == {"attendance": len(first)}
        later = pg.keyword_search(["attendance"], 20)
        assert len(later) == len(first) + 1
    finally:
        other.close()


# -- odd input -------------------------------------------------------------------------
ODD = ["AND", "OR", "NOT", "NEAR(", '"', '""', "'", "''", "(", ")", "()", "a:b", "text:pupils", "*", "pupil*", "^",
       "-", "!", "&", "|", "<->", "\\", "%s", "%(terms)s", "{}", "\x00", "pupils\x00premium", "\ud800", "ünïcode",
       "café", "", "   ", "the", "don't", "' OR 1=1 --", "'); DROP TABLE chunks; --", "x" * 3000,
       "pupil " * 200, "ÆØÅ 中文 العربية", "🙂"]


@postgres
def test_odd_terms_never_raise(stores):
    sq, pg = stores
    docs = [d.id for d in sq.documents()]
    for term in ODD:
        for terms in ([term], [term, "pupils"]):
            assert isinstance(pg.keyword_search(terms, 5), list)
            top, scores = pg.keyword_scores(terms, 5, [1, 2, 3])
            assert isinstance(top, list) and isinstance(scores, dict)
        assert isinstance(pg.term_doc_counts([term, "pupils"]), dict)
        assert pg.text_df(term) >= 0
        assert isinstance(pg.texts_mentioning(term, docs), list)
    assert pg.keyword_search(ODD, 5)  # "pupils" among them still matches
    assert pg.keyword_search([], 5) == [] and pg.keyword_search(["pupils"], 0) == []
    assert pg.scalar("SELECT count(*) FROM chunks") == sum(len(p[-1]) for p in CORPUS)


@postgres
def test_unicode_words_match_as_in_sqlite(stores):
    sq, pg = stores
    for word in ("zoë", "naïve", "brontë"):
        assert_same(sq.keyword_search([word], 5), pg.keyword_search([word], 5))
        assert pg.keyword_search([word], 5)
    # Both fold diacritics (FTS5's remove_diacritics 2, PostgreSQL's unaccent): "ünïcode" is the title's "Unicode".
    for word in ("naive", "zoe", "ünïcode"):
        assert sq.keyword_search([word], 5)
        assert_same(sq.keyword_search([word], 5), pg.keyword_search([word], 5))


def test_terms_are_cleaned_for_the_server():
    from search.store.postgres.lexical import clean_terms

    assert clean_terms(["a\x00b", "", "  ", "\ud800x", "ok", "ok", None]) == ["a b", "?x", "ok", "ok"]
    assert not re.search(r"%\(|\{", CHUNK_TSV_SQL.replace("%(title)s", "").replace("%(text)s", ""))


@postgres
def test_a_version_1_database_is_reindexed_when_opened(pg_database):
    """Schema 1 indexed with PostgreSQL's 'english' configuration; opening it re-derives tsv, len and postings."""
    import psycopg

    from search.store.postgres import schema

    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(schema._SCHEMA_V1)
        conn.execute(schema._GRANTS)
        conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', '1')")
        doc = conn.execute(
            "INSERT INTO documents (uri, title, content_hash, text_hash, text, added_at, updated_at)"
            " VALUES ('v1:1', 'Well-being', 'h', 'h', 'x', '', '') RETURNING id").fetchone()[0]
        text = "Previously looked-after children’s well-being matters."
        chunk = conn.execute(
            "INSERT INTO chunks (doc_id, ord, text, char_start, char_end, text_hash, tsv, len)"
            " VALUES (%s, 0, %s, 0, 10, 'h', setweight(to_tsvector('english', 'Well-being'), 'A')"
            " || setweight(to_tsvector('english', %s), 'D'), 9) RETURNING id", (doc, text, text)).fetchone()[0]
        conn.execute("INSERT INTO postings (lexeme, chunk_id, tf_text, tf_title, len)"
                     " SELECT u.lexeme, %s, 1, 0, 9 FROM chunks c, unnest(c.tsv) u WHERE c.id = %s", (chunk, chunk))
    pg = PgStore.open(pg_database)
    assert pg.info().schema_version == schema.PG_SCHEMA_VERSION
    assert pg.keyword_index_check() == ("ok", "")
    assert [i for i, _ in pg.keyword_search(["previously looked after children"], 5)] == [chunk]
    assert [i for i, _ in pg.keyword_search(["children’s"], 5)] == [chunk]
    assert pg.scalar("SELECT len FROM chunks WHERE id = %s", (chunk,)) == 2 + 8  # "Well being" + eight words of the text, as FTS5 counts
