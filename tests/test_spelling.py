"""Typing slips in queries are read as the store's word one edit away."""
from __future__ import annotations

from search import spelling
from search.models import resolve_model
from search.settings import Settings

WORDS = spelling.model_word_list(resolve_model(Settings().model))


def counts_from(text: str):
    held = set(text.lower().split())
    return lambda words: {w: int(w.lower() in held) for w in words}


STORE = counts_from("pupil premium plus for previously looked after children exclusion behaviour behavior behaviour")


def test_slips_one_edit_away_are_corrected_to_words_the_store_holds():
    assert WORDS, "the bundled model ships vocab.txt"
    fixes = dict(spelling.corrections("Premuim plus for previosly looked after children", STORE, WORDS))
    assert fixes == {"Premuim": "premium", "previosly": "previously"}
    assert spelling.apply("Premuim plus for previosly LAC", list(fixes.items())) == "Premium plus for previously LAC"
    # swapped letters are one edit (Damerau), and the store's commoner spelling wins
    assert dict(spelling.corrections("exclusoin and behaviuor", STORE, WORDS)) == {
        "exclusoin": "exclusion", "behaviuor": "behaviour"}


def test_known_words_names_acronyms_and_far_slips_are_left_alone():
    assert spelling.corrections("pupil premium", STORE, WORDS) == []  # the store has them
    assert spelling.corrections("Gloucestershire", STORE, WORDS) == []  # nothing one edit away in the store
    assert spelling.corrections("SENCO KCSIE", STORE, WORDS) == []  # capitals: acronyms, never "corrected"
    assert spelling.corrections("prmeuim", STORE, WORDS) == []  # two edits: not guessed
    assert spelling.corrections("plus", STORE, WORDS) == []  # under five letters
    assert spelling.corrections("premuim", STORE, "") == []  # no word list: nothing to correct against


def test_the_engine_searches_the_correction_and_says_so(tmp_path):
    from ingest.pipeline import Ingestor
    from search.api import Engine
    from search.store import Store

    from .conftest import FakeEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pp.txt").write_text("The pupil premium plus is managed by the virtual school head for looked-after children.")
    (docs / "other.txt").write_text("Uniform rules should be relaxed in summer for every pupil.")
    settings = Settings(home=str(tmp_path / "store"))
    emb = FakeEmbedder()
    Ingestor(Store.open(settings.home_path), settings, emb).ingest_paths([docs])
    engine = Engine.open(settings.home_path, settings, embedder=emb)
    result = engine.search("premuim", k=1, mode="bm25")
    assert result.query == "premium"
    assert "premium (for premuim)" in result.also_searched
    assert "pupil premium plus" in result.hits[0].chunk.text
    off = Engine.open(settings.home_path, settings.with_(correct_spelling=0), embedder=emb)
    assert off.search("premuim", k=1, mode="bm25").hits == ()
