"""``equisearch migrate``: a store copied to another location without re-embedding.

Plumbing on SQLite -> SQLite with the hashing fake embedder: every document,
passage, vector, alias, list item and the builder record arrive unchanged
(ids remapped), the destination rules (empty, a migration run again, anything
else refused), an interrupted migration finished by running it again, the
local files, the CLI. Then the issue's bar with the real model on the starter
store: the top 10 of 100 real questions are the same in the copy
(tests/test_pg_migrate.py does the same across backends).

The helpers here (:func:`build_source`, :func:`assert_same_store`,
:func:`overlap_questions`, :func:`top10_overlap`) are shared with it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from search.errors import StoreError
from search.migrate import migrate_store
from search.settings import Settings
from search.store import open_store

from .conftest import DATA, FakeEmbedder, shared_path

# -- the source store -----------------------------------------------------------------


def build_source(home, corpus: Path, *, vector_dtype: str = "float16", lists: bool = True):
    """The seed corpus ingested with the fake embedder, one alias, and reading lists.

    The lists hold a passage item with a note, a source item, and an item
    whose source was removed since (its ids are NULL), so remapping sees all
    three cases; a signed-in teacher's shared list has the same name as the
    single user's. Returns the closed store's location.
    """
    from ingest.pipeline import Ingestor
    from search.lists import ReadingLists

    settings = Settings(home=str(home), batch_size=8, vector_dtype=vector_dtype)
    store = open_store(home)
    files = sorted(p for p in corpus.iterdir() if p.suffix == ".txt")
    # The same text under a second name: stored once, the second kept as an alias.
    shutil.copy(files[0], corpus / "copy_of_first.txt")
    report = Ingestor(store, settings, FakeEmbedder()).ingest_paths([corpus])
    assert not report.failed, report.failed
    assert report.counts["duplicate"] == 1, report.counts
    if lists:
        rl = ReadingLists(store)
        rl.create("PLAC reading")
        rl.create("Zz second list")
        docs = sorted(store.documents(), key=lambda d: d.id)
        passages = store.chunks_of(docs[1].id)
        rl.add_passage("PLAC reading", passages[2].id, note="read before the staff meeting")
        rl.add_passage("PLAC reading", store.chunks_of(docs[2].id)[0].id)
        rl.add_source("PLAC reading", docs[3].id, note="whole report")
        rl.add_passage("Zz second list", passages[0].id)
        rl.add_source("Zz second list", docs[4].id)
        # A signed-in teacher's list of the same name (names are unique per owner), shared.
        khan = ReadingLists(store, user="khan@school.example")
        khan.create("PLAC reading")
        khan.add_passage("PLAC reading", passages[1].id, note="for the DT network")
        khan.share("PLAC reading")
        from search.maintenance import remove_sources

        remove_sources(store, [docs[4].id], settings)  # its item keeps the citation, ids NULL
    store.close()
    return home


@pytest.fixture
def source(tmp_path, corpus_copy):
    return build_source(tmp_path / "src", corpus_copy)


# -- comparing two stores -------------------------------------------------------------
def _chunk_fields(c) -> tuple:
    return (c.ord, c.text, c.char_start, c.char_end, c.page_start, c.page_end, c.t_start, c.t_end, c.speaker,
            c.section)


def store_content(location) -> dict:
    """Everything a migration must carry, without ids or dates (ids inside lists as (uri, ord))."""
    from search.migrate import document_signature

    store = open_store(location, create=False)
    try:
        info = store.info()
        docs = store.documents()
        ids = {d.id: d.uri for d in docs}
        out = {"builder": (info.model, info.dim, info.chunking), "documents": [], "lists": []}
        passage_of = {}
        for d in docs:
            chunks = store.chunks_of(d.id)
            hashes = store.chunk_text_hashes(d.id)
            vectors = store.vectors_by_ids([c.id for c in chunks])
            for c in chunks:
                passage_of[c.id] = (d.uri, c.ord)
            out["documents"].append({
                "signature": document_signature(d), "aliases": sorted(d.aliases),
                "text": store.document_text(d.id), "meta": store.document_meta(d.id),
                "blocks": store.document_blocks(d.id),
                "chunks": [(*_chunk_fields(c), hashes[c.id]) for c in chunks],
                "vectors": np.stack([vectors[c.id] for c in chunks]) if chunks else None,
            })
        for row in store.reading_lists():
            items = []
            for it in store.reading_list_items(row["id"]):
                kept = {k: v for k, v in it.items() if k not in ("id", "list_id", "added_at", "doc_id", "chunk_id")}
                kept["doc"] = ids.get(it["doc_id"]) if it["doc_id"] is not None else None
                kept["passage"] = passage_of.get(it["chunk_id"]) if it["chunk_id"] is not None else None
                items.append(kept)
            out["lists"].append({"name": row["name"], "owner": row["owner"], "shared": bool(row["shared"]),
                                 "n": row["n"], "w": row["w"], "items": items})
        out["counts"] = (info.documents, info.chunks, store.vector_count())
        return out
    finally:
        store.close()


def assert_same_store(a, b) -> None:
    """``a`` and ``b`` hold the same documents, passages, vectors, aliases, lists and builder record."""
    one, two = store_content(a), store_content(b)
    assert one["builder"] == two["builder"]
    assert one["counts"] == two["counts"]
    assert [d["signature"] for d in one["documents"]] == [d["signature"] for d in two["documents"]]  # same order too
    for x, y in zip(one["documents"], two["documents"]):
        uri = x["signature"][0]
        for key in ("aliases", "text", "meta", "blocks", "chunks"):
            assert x[key] == y[key], (uri, key)
        if x["vectors"] is not None:
            # float16 on both sides: the very same numbers, not merely close ones
            assert np.array_equal(x["vectors"], y["vectors"]), uri
    assert one["lists"] == two["lists"]


def doctor_healthy(location) -> list[str]:
    """The problems ``equisearch doctor`` finds (empty: healthy)."""
    from search.doctor import diagnose

    store = open_store(location, create=False)
    try:
        report = diagnose(store)
        return [f"{c.name}: {c.problem}" for c in report.problems]
    finally:
        store.close()


# -- SQLite -> SQLite -------------------------------------------------------------------
def test_migrate_copies_everything_and_both_stores_are_healthy(source, tmp_path):
    dest = tmp_path / "dest"
    report = migrate_store(source, dest, Settings(home=str(dest)))
    assert_same_store(source, dest)
    assert doctor_healthy(source) == [] and doctor_healthy(dest) == []
    src = store_content(source)
    assert report.documents == len(src["documents"]) == 4  # 5 seeds, one removed since (the copy of one is an alias)
    assert report.passages == src["counts"][1]
    assert report.aliases == 1 and report.reading_lists == 3 and report.items == 6
    assert (report.model, report.dim) == ("fake-hash-64", 64)
    assert not report.nothing_to_do and report.kept == 0
    # The removed source's item stays a citation without ids; the others point at the copies.
    items = [it for rl in src["lists"] for it in rl["items"]]
    assert sum(it["doc"] is None for it in items) == 1
    assert sum(it["passage"] is not None for it in items) == 4
    assert [(rl["name"], rl["owner"], rl["shared"]) for rl in src["lists"]] == [
        ("PLAC reading", "", False), ("PLAC reading", "khan@school.example", True), ("Zz second list", "", False)]


def test_items_point_at_the_destinations_own_rows(source, tmp_path):
    from search.lists import ReadingLists

    dest = tmp_path / "dest"
    migrate_store(source, dest, Settings(home=str(dest)))
    store = open_store(dest, create=False)
    items = ReadingLists(store).items("PLAC reading")
    assert [i.status for i in items] == ["current", "current", "current"]  # relinked by id, nothing to repair
    for item in items:
        doc = store.get_document(item.doc_id)
        assert doc is not None and doc.uri == item.uri
        if item.item_type == "passage":
            assert store.chunks_by_ids([item.chunk_id])[item.chunk_id].text == item.text
    assert items[0].note == "read before the staff meeting"
    store.close()


def test_float32_vectors_stay_float32(tmp_path, corpus_copy):
    src = build_source(tmp_path / "src", corpus_copy, vector_dtype="float32", lists=False)
    dest = tmp_path / "dest"
    migrate_store(src, dest, Settings(home=str(dest)))
    assert_same_store(src, dest)
    store = open_store(dest, create=False)
    assert store.get_meta("vector_dtype") == "float32"
    store.close()


def test_a_second_run_has_nothing_to_do(source, tmp_path):
    dest = tmp_path / "dest"
    migrate_store(source, dest, Settings(home=str(dest)))
    generation = open_store(dest, create=False).generation()
    again = migrate_store(source, dest, Settings(home=str(dest)))
    assert again.nothing_to_do and again.kept == 4 and again.documents == 0
    assert open_store(dest, create=False).generation() == generation  # nothing was written
    assert_same_store(source, dest)


def test_an_interrupted_migration_is_finished_by_running_it_again(source, tmp_path):
    dest = tmp_path / "dest"
    seen = []

    def stop_after_two(done, total):
        seen.append((done, total))
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate_store(source, dest, Settings(home=str(dest)), progress=stop_after_two)
    partial = open_store(dest, create=False)
    assert partial.info().documents == 2 and partial.reading_lists() == []
    partial.close()
    assert doctor_healthy(dest) == []  # what was written is whole (and its FAISS file was saved)
    report = migrate_store(source, dest, Settings(home=str(dest)))
    assert (report.kept, report.documents, report.reading_lists) == (2, 2, 3)
    assert_same_store(source, dest)
    assert doctor_healthy(dest) == []


def test_a_list_left_half_copied_is_completed(source, tmp_path):
    dest = tmp_path / "dest"
    migrate_store(source, dest, Settings(home=str(dest)))
    store = open_store(dest, create=False)
    list_id = store.reading_list_id("PLAC reading")
    last = store.reading_list_items(list_id)[-1]
    store.remove_reading_list_item(last["id"])  # as if killed before the last item
    khan = next(r for r in store.reading_lists() if r["owner"])
    store.share_reading_list(khan["id"], False)  # or before its sharing
    store.close()
    report = migrate_store(source, dest, Settings(home=str(dest)))
    assert (report.documents, report.reading_lists, report.items) == (0, 0, 1)
    assert_same_store(source, dest)


def test_a_destination_holding_other_documents_is_refused_untouched(source, tmp_path, corpus_copy):
    from ingest.pipeline import Ingestor

    dest = tmp_path / "dest"
    other = tmp_path / "other"
    other.mkdir()
    (other / "note.txt").write_text("A note about attendance and the pupil premium in one school.\n")
    store = open_store(dest)
    Ingestor(store, Settings(home=str(dest)), FakeEmbedder()).ingest_paths([other])
    store.close()
    before = store_content(dest)
    with pytest.raises(StoreError) as err:
        migrate_store(source, dest, Settings(home=str(dest)))
    message = str(err.value)
    assert "already holds 1 document(s) that are not the source's" in message
    assert "note.txt" in message and "migrate into an empty store" in message and "\n" not in message
    after = store_content(dest)
    assert after["counts"] == before["counts"] and after["lists"] == before["lists"] == []


def test_a_changed_copy_of_a_source_document_is_refused(source, tmp_path):
    dest = tmp_path / "dest"
    migrate_store(source, dest, Settings(home=str(dest)))
    store = open_store(dest, create=False)
    doc = store.documents()[0]
    store.update_metadata(doc.id, title="Renamed in the copy")
    store.close()
    with pytest.raises(StoreError, match="not the source's"):
        migrate_store(source, dest, Settings(home=str(dest)))


def test_a_destination_with_a_list_of_its_own_is_refused(source, tmp_path):
    dest = tmp_path / "dest"
    store = open_store(dest)
    store.create_reading_list("Mine")
    store.close()
    with pytest.raises(StoreError, match=r"1 reading list\(s\) that are not the source's \(e.g. 'Mine'\)"):
        migrate_store(source, dest, Settings(home=str(dest)))


def test_a_destination_built_by_another_model_is_refused(source, tmp_path, corpus_copy):
    from ingest.pipeline import Ingestor

    dest = tmp_path / "dest"
    store = open_store(dest)
    first = sorted(corpus_copy.glob("0*.txt"))[0]
    Ingestor(store, Settings(home=str(dest)), FakeEmbedder(dim=32)).ingest_paths([first])
    store.close()
    with pytest.raises(StoreError, match="built with fake-hash-64 \\(32 dimensions.*the source with fake-hash-64 \\(64"):
        migrate_store(source, dest, Settings(home=str(dest)))


def test_same_store_empty_source_and_missing_source_are_refused(source, tmp_path):
    with pytest.raises(StoreError, match="both the source and the destination"):
        migrate_store(source, Path(str(source) + "/"), Settings())
    empty = tmp_path / "empty"
    open_store(empty).close()
    with pytest.raises(StoreError, match="holds no documents: nothing to migrate"):
        migrate_store(empty, tmp_path / "dest", Settings())
    with pytest.raises(StoreError, match="no equisearch store at"):
        migrate_store(tmp_path / "nowhere", tmp_path / "dest2", Settings())
    assert not (tmp_path / "dest").exists() and not (tmp_path / "dest2").exists()


def test_same_store_knows_urls_and_paths():
    from search.migrate import same_store

    assert same_store("postgresql://a:pw@db.example:5432/eq", "postgresql://b@DB.example/eq")
    assert not same_store("postgresql://db.example/eq", "postgresql://db.example/eq2")
    assert not same_store("postgresql://db.example/eq", "data")
    assert same_store("data", "./data/")


def test_local_files_go_with_the_store_and_never_overwrite(source, tmp_path):
    (Path(source) / "vocabulary.json").write_text('{"terms": []}')
    (Path(source) / "query-encoder").mkdir()
    (Path(source) / "query-encoder" / "encoder.json").write_text("{}")
    dest = tmp_path / "dest"
    dest.mkdir()
    report = migrate_store(source, dest, Settings(home=str(dest)))
    assert report.files == ("vocabulary.json", "query-encoder")
    assert (dest / "query-encoder" / "encoder.json").read_text() == "{}"
    assert not list(dest.glob(".*"))  # no temporary copies left
    (dest / "vocabulary.json").write_text('{"terms": [], "mine": true}')
    other = tmp_path / "dest-b"
    migrate_store(dest, other, Settings())
    assert json.loads((other / "vocabulary.json").read_text())["mine"] is True


# -- the command line -----------------------------------------------------------------
def test_cli_migrate_prints_one_summary_and_doctor_agrees(source, tmp_path):
    from cli.app import main

    dest = tmp_path / "dest"
    runner = CliRunner()
    r = runner.invoke(main, ["migrate", str(source), str(dest)])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("copied 4 documents, ") and " passages with their vectors, 1 aliases, " in lines[0]
    assert "3 reading lists (6 items)" in lines[0] and "fake-hash-64, 64 dimensions" in lines[0]
    assert lines[1] == f"check it with: equisearch --store {dest} doctor"
    r = runner.invoke(main, ["--store", str(dest), "doctor"])
    assert r.exit_code == 0 and r.output.strip().endswith("healthy"), r.output
    r = runner.invoke(main, ["migrate", str(source), str(dest)])
    assert r.exit_code == 0 and r.output.strip() == f"nothing to do: {dest} already holds the 4 documents of {source}"


def test_cli_migrate_refusal_is_one_error_line(source, tmp_path):
    from cli.app import main

    r = CliRunner().invoke(main, ["migrate", str(source), str(source)])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [f"Error: {source} is both the source and the destination: give another destination"]
    assert "Traceback" not in r.output


# -- the bar: the same answers from the copy ---------------------------------
def _questions(path: Path) -> list[str]:
    return [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


#: Questions written for this project over the starter corpus and the teachers' documents (not the
#: held-out sets under tests/data/blind, which are only for measuring quality).
BUNDLED = ("starter_questions.jsonl", "teacher_questions.jsonl", "edu_questions.jsonl")


def overlap_questions(which: str, n: int = 100) -> list[str]:
    """``n`` distinct questions: ``dev-eval`` starts with the team's real ones from ../shared
    (skipping without it), then both take the bundled sets in order."""
    out: list[str] = []
    if which == "dev-eval":
        for path in sorted(shared_path("dev-eval").glob("*.jsonl")):
            out += _questions(path)
    for name in BUNDLED:
        out += _questions(DATA / name)
    out = list(dict.fromkeys(q for q in out if q.strip()))
    assert len(out) >= n, f"only {len(out)} questions"
    return out[:n]


def top10(engine, question: str) -> list[tuple]:
    """A question's top 10 passages, named the same in every store: (document uri, start, end)."""
    hits = engine.search(question, k=10).hits
    return [(h.document.uri, h.chunk.char_start, h.chunk.char_end) for h in hits]


def top10_overlap(a, b, questions: list[str]) -> tuple[float, int]:
    """Mean share of the top 10 both engines return, and the number of questions whose lists differ at all."""
    shares, differ = [], 0
    for q in questions:
        x, y = top10(a, q), top10(b, q)
        shares.append(len(set(x) & set(y)) / max(len(x), len(y), 1))
        differ += x != y
    return float(np.mean(shares)), differ


@pytest.fixture(scope="module")
def migrated_starter(starter_store, tmp_path_factory):
    dest = tmp_path_factory.mktemp("migrated") / "store"
    report = migrate_store(starter_store, dest, Settings(home=str(dest)))
    assert report.documents and not report.kept
    return dest, report


@pytest.fixture(scope="module")
def rebuilt_starter(starter_store, tmp_path_factory):
    """The starter store with its FAISS file rebuilt from its stored vectors.

    Ingest adds the model's float32 vectors to FAISS and stores them as
    float16; a copy (like any rebuild) indexes the stored float16 ones, so a
    near-tie may swap between the two. Against this rebuilt source the copy
    must rank exactly alike.
    """
    from search.maintenance import rebuild_index

    home = tmp_path_factory.mktemp("rebuilt") / "store"
    shutil.copytree(starter_store, home)
    store = open_store(home, create=False)
    rebuild_index(store, Settings(home=str(home)))
    store.close()
    return home


@pytest.mark.slow
@pytest.mark.parametrize("which", ["dev-eval", "bundled"])
def test_copy_of_the_starter_store_answers_the_same(starter_store, migrated_starter, rebuilt_starter, real_embedder,
                                                     which):
    from search.api import Engine

    questions = overlap_questions(which)
    dest, report = migrated_starter
    assert report.seconds < 30, report  # seconds, not minutes (bench/RESULTS.md "Moving between backends")
    assert doctor_healthy(starter_store) == [] and doctor_healthy(dest) == []
    # The reranker off: it reads the same passage texts from either store, so it can only pass on
    # what the stores' own retrieval does differently, and it would make this test 3x slower.
    source = Engine.open(starter_store, Settings(home=str(starter_store), reranker="off"), embedder=real_embedder)
    copy = Engine.open(dest, Settings(home=str(dest), reranker="off"), embedder=real_embedder)
    share, differ = top10_overlap(source, copy, questions)
    assert share >= 0.95, (share, differ)  # the bar
    # Same backend, same stored vectors, same keyword statistics: against the source indexed
    # from its stored vectors, nothing may differ at all.
    rebuilt = Engine.open(rebuilt_starter, Settings(home=str(rebuilt_starter), reranker="off"), embedder=real_embedder)
    assert top10_overlap(rebuilt, copy, questions) == (1.0, 0)
