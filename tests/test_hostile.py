"""Hostile queries and parser inputs: results or one clear message, never a traceback.

Queries go through ``Engine.search`` / ``Engine.ask`` and the CLI's ``search``
and ``ask`` (CliRunner; the fake embedder for plumbing, the bundled model in
the slow test). Property-based tests (hypothesis) cover the chunker's offsets
(tests/test_chunk.py), query escaping (here and tests/test_lexical.py) and the
VTT/SRT parser (here).
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings as hsettings, strategies as st

import ingest.pipeline
import search.api
from cli.app import main
from ingest.extract import parse_srt, parse_vtt
from ingest.pipeline import Ingestor
from search.api import Engine
from search.errors import ExtractionError, QueryError
from search.lexical import build_match
from search.settings import Settings
from search.store import Store

from .conftest import CORPUS, FakeEmbedder

HOSTILE = [
    '"', '""', '"pupil', 'pupil"', 'NEAR(', 'NEAR(pupil premium', 'NEAR(pupil premium, 2)', 'pupil NEAR/3 premium',
    '*', 'pupil*', '*pupil', '-', '-pupil', 'pupil -premium', 'OR', 'pupil OR', 'OR OR OR', 'AND', 'NOT',
    'pupil AND NOT premium', '^', '^pupil', 'text:pupil', 'chunks_fts:pupil', '{text}: pupil', '(', ')', '(((', ')))',
    "'; DROP TABLE chunks; --", "1' OR '1'='1", 'SELECT * FROM documents', "Robert'); DROP TABLE students;--",
    'pupil' + ' premium' * 2500, 'a' * 10000, 'x ' * 5000, '', ' ', '\t\n  \r', '😀', '😀 pupil premium 🎓',
    'تلاميذ المدارس premium', 'תלמידים בבית ספר', '\u202eevil\u202c pupil', 'pupil\u200bpremium',
    '\x00', 'pupil\x00premium', '\x1b[31mred', '%', '_', '\\', '\\"', "'", '?', ';', '||', '/* */',
    'ＰＵＰＩＬ', 'İstanbul ß ǅ', 'e\u0301cole', '\udcff', 'pupil \udcff premium',
]
assert len(HOSTILE) >= 50


@pytest.fixture(scope="module")
def fake_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile") / "store"
    emb = FakeEmbedder()
    emb.name = "all-MiniLM-L6-v2"
    Ingestor(Store.open(home), Settings(home=str(home)), emb).ingest_paths([CORPUS])
    return home


@pytest.fixture(scope="module")
def fake_engine(fake_home):
    return Engine(Store.open(fake_home), Settings(home=str(fake_home)), FakeEmbedder())


@pytest.fixture
def fake_cli(monkeypatch):
    emb = FakeEmbedder()
    emb.name = "all-MiniLM-L6-v2"
    monkeypatch.setattr(ingest.pipeline, "load_embedder", lambda name, **kw: emb)
    monkeypatch.setattr(search.api, "load_embedder", lambda name, **kw: emb)


def _blank(q: str) -> bool:
    return not "".join(q.split())


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_engine_search(fake_engine, query, mode):
    if _blank(query):
        with pytest.raises(QueryError, match="empty"):
            fake_engine.search(query, mode=mode)
        return
    result = fake_engine.search(query, k=5, mode=mode)
    assert len(result.hits) <= 5
    assert len(result.query) <= search.api.MAX_QUERY_CHARS


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_engine_ask(fake_engine, query):
    if _blank(query):
        with pytest.raises(QueryError):
            fake_engine.ask(query)
        return
    answer = fake_engine.ask(query, k=3)
    assert answer.passages or answer.abstained


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("command", ["search", "ask"])
def test_cli(fake_home, fake_cli, command, query):
    for extra in ([], ["--json"]):
        r = CliRunner().invoke(main, ["--store", str(fake_home), command, query, *extra])
        assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
        assert "Traceback" not in r.output
        if _blank(query):
            assert r.exit_code == 1
            assert r.stderr.strip().splitlines() == ["Error: the query is empty: type a question or some words to search for"]
        else:
            assert r.exit_code == 0, r.output
            if extra:
                data = json.loads(r.stdout)
                assert ("results" if command == "search" else "sources") in data


def test_query_arrives_with_an_option_looking_word(fake_home, fake_cli):
    r = CliRunner().invoke(main, ["--store", str(fake_home), "search", "--", "--json OR -k 5"])
    assert r.exit_code == 0 and "Traceback" not in r.output


@pytest.mark.slow
@pytest.mark.parametrize("query", HOSTILE[::3], ids=range(len(HOSTILE[::3])))
def test_real_model_engine(starter_engine, query):
    if _blank(query):
        with pytest.raises(QueryError):
            starter_engine.ask(query)
        return
    starter_engine.search(query, k=5)
    answer = starter_engine.ask(query, k=3)
    assert answer.passages or answer.abstained


# -- property-based -------------------------------------------------------------
ANY_TEXT = st.text(alphabet=st.characters(), max_size=300)  # includes surrogates and controls


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=ANY_TEXT)
def test_property_any_query_gives_results_or_query_error(fake_engine, query):
    try:
        result = fake_engine.search(query, k=3, mode="bm25")
    except QueryError:
        assert _blank(query), "only an empty query is refused"
        return
    assert len(result.hits) <= 3


@hsettings(max_examples=200, deadline=None)
@given(text=ANY_TEXT, extra=st.lists(ANY_TEXT, max_size=3))
def test_property_match_expression_is_only_quoted_terms(text, extra):
    match = build_match(text, tuple(extra))
    if not match:
        return
    # Every part is one FTS5 string literal: no operator, column or prefix leaks.
    for part in match.split(" OR "):
        assert part.startswith('"') and part.endswith('"') and '"' not in part[1:-1].replace('""', "")


_SECONDS = st.integers(min_value=0, max_value=10 * 3600 * 1000)  # milliseconds
_CUE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="<>&-"),
                    min_size=1, max_size=60).map(lambda s: " ".join(s.split())).filter(bool)


def _stamp(ms: int, sep: str) -> str:
    h, rest = divmod(ms, 3600 * 1000)
    m, rest = divmod(rest, 60 * 1000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


@hsettings(max_examples=150, deadline=None)
@given(cues=st.lists(st.tuples(_SECONDS, _SECONDS, _CUE_TEXT), min_size=1, max_size=12), srt=st.booleans())
def test_property_subtitles_round_trip(cues, srt):
    """Valid cues come back with their times and text, in time order; invalid ones are skipped."""
    blocks = []
    for i, (a, b, text) in enumerate(cues, start=1):
        stamp = f"{_stamp(a, ',' if srt else '.')} --> {_stamp(b, ',' if srt else '.')}"
        blocks.append(f"{i}\n{stamp}\n{text}" if srt else f"{stamp}\n{text}")
    source = "\n\n".join(blocks) + "\n"
    valid = [(a / 1000, b / 1000, t) for a, b, t in cues if b >= a]
    parse = parse_srt if srt else parse_vtt
    if not source.startswith("WEBVTT") and not srt:
        source = "WEBVTT\n\n" + source
    try:
        segs = parse(source, "x").segments
    except ExtractionError:
        assert not valid or all(t.strip().upper().startswith(("NOTE", "STYLE", "REGION")) for *_, t in valid)
        return
    assume(not any(t.upper().startswith(("NOTE", "STYLE", "REGION")) for *_, t in valid))
    starts = [s.t_start for s in segs]
    assert starts == sorted(starts)
    for s in segs:
        assert s.t_end >= s.t_start and s.transcript
        assert any(abs(s.t_start - a) < 1e-6 and abs(s.t_end - b) < 1e-6 and s.text in t for a, b, t in valid)
    # Nothing is lost except rolling-caption repeats of the previous cue's text.
    assert len(segs) <= len(valid)


@hsettings(max_examples=200, deadline=None)
@given(text=ANY_TEXT, srt=st.booleans())
def test_property_subtitle_parser_never_crashes(text, srt):
    try:
        (parse_srt if srt else parse_vtt)(text, "x")
    except ExtractionError:
        pass


@hsettings(max_examples=120, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=1500),
       suffix=st.sampled_from([".txt", ".md", ".rst", ".vtt", ".srt"]))
def test_property_whole_text_pipeline_offsets_map_back(text, suffix):
    """Arbitrary text through extract -> clean -> assemble -> chunk: every passage
    is the exact slice of the stored text its offsets claim, or the file is
    refused with an ExtractionError."""
    from ingest.chunk import chunk_document
    from ingest.clean import clean
    from ingest.extract import extract_text
    from ingest.segments import assemble

    try:
        extracted = extract_text(text, "x" + suffix, suffix)
    except ExtractionError:
        return
    doc, blocks = assemble(clean(extracted).segments)
    for b in blocks:
        assert 0 <= b.start <= b.end <= len(doc)
    for c in chunk_document(doc, blocks, max_words=40, overlap_words=8):
        assert doc[c.char_start:c.char_end] == c.text and c.text.strip()
