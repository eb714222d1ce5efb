"""Crash safety: ingests killed with SIGKILL at random moments never lose or
half-store a document, and a re-run completes the batch.

Each trial starts a child process that ingests a batch (new files plus new
versions of files stored by earlier trials), kills it after a seeded random
delay, then checks that the store opens, ``doctor`` finds it healthy, every
previously stored document is exactly its old or its new version, every
stored document is complete (text, passages and vectors equal what an
uninterrupted ingest stores) and searchable, and that re-running the same
ingest finishes it. Most trials use the library with the hashing fake
embedder (the same store code, fast); a few kill the real ``equisearch
ingest`` command with the bundled model.

:func:`run_trials` is also what ``bench/bench_reliability.py`` runs.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT, FakeEmbedder

PY = sys.executable

#: The child: ingest PATHS into HOME with the fake embedder (plumbing is
#: what crashes test; the store code is the same as with the real model).
DRIVER = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from tests.conftest import FakeEmbedder
from ingest.pipeline import Ingestor
from search.errors import StoreLocked
from search.settings import Settings
from search.store import Store
import search.vectors, faiss  # imported before the clock starts
_write = Store.write_document
def _traced(self, *a, **k):  # lets the parent aim a kill just after the n-th commit
    out = _write(self, *a, **k)
    print("wrote", flush=True)
    return out
Store.write_document = _traced
print("start", flush=True)
home, paths = sys.argv[2], sys.argv[3:]
settings = Settings(home=home, batch_size=4)
if os.environ.get("DRIVER_REAL_MODEL"):  # the bundled model instead of the fake
    from search.embedding import load_embedder
    embedder = load_embedder()
    settings = Settings(home=home)
else:
    embedder = FakeEmbedder()
try:
    report = Ingestor(Store.open(home), settings, embedder).ingest_paths(paths)
except StoreLocked as exc:
    print("locked:", exc, flush=True)
    sys.exit(3)
print(json.dumps(report.counts), flush=True)
sys.exit(1 if report.failed else 0)
"""

WORDS = ("pupil premium attendance tutoring reading phonics inclusion belonging disadvantage mobility "
         "governors curriculum assessment feedback mentoring transition careers wellbeing behaviour "
         "parents carers virtual school designated teacher funding outcomes evidence strategy leaders "
         "classroom oracy vocabulary numeracy homework exclusion support plan review progress").split()


def make_text(rng: random.Random, token: str, paragraphs: int) -> str:
    """Prose with a unique ``token`` in every paragraph (so each file is findable
    and no paragraph repeats across files: no cross-file furniture removal)."""
    paras = []
    for p in range(paragraphs):
        sents = []
        for s in range(rng.randint(3, 6)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
            words.insert(rng.randrange(len(words)), f"{token}p{p}s{s}")
            sents.append(" ".join(words).capitalize() + ".")
        paras.append(" ".join(sents))
    return f"Report {token}\n\n" + "\n\n".join(paras) + "\n"


def expected_state(path: Path, settings) -> tuple:
    """(content hash, text, passages) an uninterrupted ingest stores for ``path``."""
    from ingest.chunk import chunk_document
    from ingest.clean import clean
    from ingest.extract import extract_file
    from ingest.pipeline import PIPELINE_VERSION
    from ingest.segments import assemble
    from search.text import content_hash

    chash = content_hash(PIPELINE_VERSION.encode() + b"\0" + path.read_bytes())
    text, blocks = assemble(clean(extract_file(path)).segments)
    chunks = chunk_document(text, blocks, max_words=settings.chunk_words, overlap_words=settings.chunk_overlap_words)
    return chash, text, tuple(c.text for c in chunks)


def stored_state(store, doc) -> tuple:
    return doc.content_hash, store.document_text(doc.id), tuple(c.text for c in store.chunks_of(doc.id))


@dataclass
class TrialLog:
    trials: int = 0
    killed_mid_ingest: int = 0  # the child was still running when killed
    finished_first: int = 0  # the child finished before the kill landed
    partial_batches: int = 0  # killed with some but not all of the batch committed
    docs_checked: int = 0
    searches: int = 0
    failures: list = field(default_factory=list)
    seconds: float = 0.0


class CrashHarness:
    """Runs kill trials on one store and checks it after each."""

    def __init__(self, root: Path, seed: int):
        from search.settings import Settings

        self.root = root
        self.home = root / "store"
        self.settings = Settings(home=str(self.home), batch_size=4)
        self.rng = random.Random(seed)
        self.files: dict[str, Path] = {}  # uri -> file
        self.expected: dict[str, tuple] = {}  # content hash -> expected state
        self.previous: dict[str, tuple] = {}  # uri -> state stored before this trial
        self.log = TrialLog()
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}

    # -- batches -----------------------------------------------------------
    def make_batch(self, t: int, n_new: int = 10, n_changed: int = 2) -> list[str]:
        folder = self.root / f"batch{t:02d}"
        folder.mkdir()
        for i in range(n_new):
            f = folder / f"doc{t:02d}_{i:02d}.txt"
            f.write_text(make_text(self.rng, f"zq{t}x{i}", self.rng.randint(4, 9)))
            self.files[str(f.resolve())] = f
        changed = self.rng.sample(sorted(self.previous), min(n_changed, len(self.previous)))
        for uri in changed:
            f = self.files[uri]
            f.write_text(f.read_text() + "\n" + make_text(self.rng, f"zq{t}c{len(uri) % 97}", 1))
        for f in [*folder.iterdir(), *(self.files[u] for u in changed)]:
            state = expected_state(f, self.settings)
            self.expected[state[0]] = state
        return [str(folder), *changed]

    # -- running -----------------------------------------------------------
    def start_driver(self, paths: list[str]) -> subprocess.Popen:
        return subprocess.Popen([PY, "-c", DRIVER, str(ROOT), str(self.home), *paths], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run_to_end(self, paths: list[str]) -> tuple[int, str, str]:
        proc = self.start_driver(paths)
        out, err = proc.communicate(timeout=120)
        return proc.returncode, out, err

    def kill_after(self, paths: list[str], delay: float, writes: int = 0) -> bool:
        """Start an ingest and SIGKILL it ``delay`` s after its start (or after its
        ``writes``-th document commit); True if it was still running."""
        proc = self.start_driver(paths)
        line = proc.stdout.readline()
        assert line.startswith("start"), line + proc.stderr.read()
        for _ in range(writes):
            if not proc.stdout.readline():
                break
        time.sleep(delay)
        running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        return running

    # -- checking ----------------------------------------------------------
    def committed(self, paths: list[str]) -> tuple[int, int]:
        """(documents of this batch stored in their new version, batch size)."""
        from search.store import Store

        store = Store.open(self.home)
        try:
            wanted = {}
            for p in paths:
                files = sorted(Path(p).iterdir()) if Path(p).is_dir() else [Path(p)]
                for f in files:
                    wanted[str(f.resolve())] = expected_state(f, self.settings)[0]
            done = sum(1 for uri, chash in wanted.items()
                       if (d := store.find_document(uri)) is not None and d.content_hash == chash)
            return done, len(wanted)
        finally:
            store.close()

    def check(self, after_rerun: bool) -> None:
        from search import doctor
        from search.api import Engine
        from search.store import Store

        store = Store.open(self.home)  # it opens
        try:
            report = doctor.diagnose(store)
            assert report.healthy, [c for c in report.checks if not c.ok]
            docs = {d.uri: d for d in store.documents()}
            for uri in self.previous:  # nothing stored before is lost
                assert uri in docs, f"{uri} was stored before the crash and is gone"
            fake = FakeEmbedder()
            for uri, doc in docs.items():
                state = stored_state(store, doc)
                if uri in self.previous and state == self.previous[uri]:
                    continue  # the old version, intact
                # Otherwise it must be a complete new version: nothing half-stored.
                assert state == self.expected.get(doc.content_hash), f"{uri} is not what a clean ingest stores"
                rows = store.conn.execute(
                    "SELECT c.text, v.vec FROM chunks c JOIN vectors v ON v.chunk_id = c.id WHERE c.doc_id = ?",
                    (doc.id,)).fetchall()
                assert len(rows) == len(state[2]), f"{uri}: passages without vectors"
                want = fake.encode([r[0] for r in rows])
                got = np.stack([store._decode(r[1], store.vector_dtype()) for r in rows])
                # float16 storage (the default) keeps about three significant digits.
                assert np.allclose(want, got, atol=2e-3), f"{uri}: vectors are not its passages'"
                self.log.docs_checked += 1
            if after_rerun:
                from ingest.pipeline import PIPELINE_VERSION
                from search.text import content_hash

                for uri, f in self.files.items():
                    assert uri in docs, f"re-run did not complete: {uri} missing"
                    chash = content_hash(PIPELINE_VERSION.encode() + b"\0" + f.read_bytes())
                    assert docs[uri].content_hash == chash, f"re-run did not store the new version of {uri}"
            engine = Engine(store, self.settings, fake)
            sample = self.rng.sample(sorted(docs), min(6, len(docs)))
            for uri in sample:  # searchable: by its words (hybrid) and by its unique token (keywords)
                passage = stored_state(store, docs[uri])[2][-1]
                word = next(w for w in passage.split() if w.lower().startswith("zq") and "p" in w).strip(".")
                for query, mode in ((passage, "hybrid"), (word, "bm25")):
                    hits = engine.search(query, k=5, mode=mode).hits
                    assert any(h.document.id == docs[uri].id for h in hits), f"{uri} not found by {query!r} ({mode})"
                    self.log.searches += 1
            assert engine.index.ntotal == store.vector_count()
        finally:
            store.close()

    def snapshot(self) -> None:
        from search.store import Store

        store = Store.open(self.home)
        self.previous = {d.uri: stored_state(store, d) for d in store.documents()}
        store.close()

    def calibrate(self) -> float:
        """Seconds from the child's start line to its exit for one batch (on a scratch store)."""
        scratch = CrashHarness(self.root / "calibration", seed=0)
        scratch.root.mkdir()
        paths = scratch.make_batch(0)
        proc = scratch.start_driver(paths)
        proc.stdout.readline()
        t0 = time.monotonic()
        proc.communicate(timeout=120)
        return time.monotonic() - t0


def run_trials(root: Path, n: int = 24, seed: int = 7) -> TrialLog:
    """``n`` kill trials on one growing store; raises AssertionError on the first failure."""
    t0 = time.monotonic()
    h = CrashHarness(root, seed)
    span = h.calibrate()
    for t in range(n):
        paths = h.make_batch(t)
        # Even trials: a moment anywhere in the ingest. Odd trials: just after
        # the n-th document commit, where writes and FAISS updates happen.
        if t % 2 == 0:
            killed = h.kill_after(paths, h.rng.uniform(0.0, span * 1.15))
        else:
            killed = h.kill_after(paths, h.rng.uniform(0.0, 0.02), writes=h.rng.randint(0, 12))
        if killed:
            h.log.killed_mid_ingest += 1
        else:
            h.log.finished_first += 1
        h.check(after_rerun=False)
        done, total = h.committed(paths)
        if 0 < done < total:
            h.log.partial_batches += 1
        code, out, err = h.run_to_end(paths)  # re-running completes it
        assert code == 0, out + err
        assert "Traceback" not in err
        h.check(after_rerun=True)
        h.snapshot()
        h.log.trials += 1
    h.log.seconds = time.monotonic() - t0
    return h.log


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_or_half_stores(tmp_path):
    log = run_trials(tmp_path, n=24, seed=7)
    assert log.trials == 24
    # The delays are spread over the whole ingest: most kills land mid-ingest.
    assert log.killed_mid_ingest >= 12, log


@pytest.mark.slow
def test_sigkill_of_the_real_cli_ingest(tmp_path):
    """Three kills of `equisearch ingest` with the bundled model, then a re-run."""
    from search import doctor
    from search.store import Store

    rng = random.Random(11)
    home = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [PY, "-m", "cli", "--store", str(home), "ingest", "-q"]
    stored: dict[str, tuple] = {}
    for t in range(3):
        folder = tmp_path / f"cli{t}"
        folder.mkdir()
        for i in range(8):
            (folder / f"r{t}_{i}.txt").write_text(make_text(rng, f"zq{t}y{i}", 8))
        proc = subprocess.Popen([*cli, str(folder)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # The model loads in a few seconds; passages are embedded after that.
        time.sleep(rng.uniform(4.0, 10.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        r = subprocess.run([PY, "-m", "cli", "--store", str(home), "doctor", "--json"], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and json.loads(r.stdout)["healthy"], r.stdout + r.stderr
        store = Store.open(home)
        assert doctor.diagnose(store).healthy
        docs = {d.uri: d for d in store.documents()}
        for uri, state in stored.items():
            assert stored_state(store, docs[uri]) == state, f"{uri} changed by a killed ingest"
        store.close()
        r = subprocess.run([*cli, str(folder)], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
        store = Store.open(home)
        for d in store.documents():
            stored[d.uri] = stored_state(store, d)
            assert stored[d.uri][1:] == expected_state(Path(d.uri), _settings(home))[1:]
        assert len(stored) == 8 * (t + 1)
        store.close()


def _settings(home):
    from search.settings import Settings

    return Settings(home=str(home))


REBUILD_DRIVER = r"""
import sys
sys.path.insert(0, sys.argv[1])
from tests.conftest import FakeEmbedder
from ingest.pipeline import rebuild_store
from search.settings import Settings
from search.store import Store
import search.vectors, faiss
_insert = Store.insert_chunks
def _traced(*a, **k):  # the parent kills after this: inside the one transaction
    print("inserting", flush=True)
    sys.stdin.readline()  # wait for the parent's "go" (EOF: run on), so a kill lands here for sure
    return _insert(*a, **k)
Store.insert_chunks = _traced  # an instance method: self passes through *a
print("start", flush=True)
home = sys.argv[2]
emb = FakeEmbedder(dim=32)
emb.name = "another-model"
rebuild_store(Store.open(home), Settings(home=home, chunk_words=40, chunk_overlap_words=5), emb)
print("done", flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_rebuild_leaves_old_or_new_store(tmp_path):
    """`rebuild` re-embeds everything in one transaction: a kill leaves the whole
    old store or the whole new one, never a mix of models or chunkings."""
    from ingest.pipeline import Ingestor
    from search import doctor
    from search.settings import Settings
    from search.store import Store

    rng = random.Random(5)
    home = tmp_path / "store"
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(40):
        (folder / f"d{i}.txt").write_text(make_text(rng, f"zq9x{i}", 8))
    Ingestor(Store.open(home), Settings(home=str(home)), FakeEmbedder()).ingest_paths([folder])
    old = Store.open(home)
    old_chunks = sorted(c.text for d in old.documents() for c in old.chunks_of(d.id))
    old.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    outcomes = []
    for trial in range(4):
        proc = subprocess.Popen([PY, "-c", REBUILD_DRIVER, str(ROOT), str(home)], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().startswith("start")
        if trial < 3:
            # The child waits before each insert until told to go on: after
            # 0-39 documents have been written inside the transaction, it is
            # killed while it waits, however fast this machine is (a sleep
            # here let a quiet machine finish the rebuild before the kill).
            for _ in range(rng.randint(0, 39)):
                assert proc.stdout.readline().startswith("inserting")
                proc.stdin.write("go\n")
                proc.stdin.flush()
            assert proc.stdout.readline().startswith("inserting")
            proc.kill()
        # input="" closes the child's stdin: the last one (not killed) runs to the end
        out, err = proc.communicate(input="", timeout=120)
        assert "Traceback" not in err, err
        store = Store.open(home)
        report = doctor.diagnose(store)
        assert report.healthy, [c for c in report.checks if not c.ok]
        info = store.info()
        chunks = sorted(c.text for d in store.documents() for c in store.chunks_of(d.id))
        if info.model == "fake-hash-64":
            assert (info.dim, chunks) == (64, old_chunks), "the old store, whole"
            outcomes.append("old")
        else:
            assert (info.model, info.dim, info.chunking) == ("another-model", 32, "words=40,overlap=5,v1")
            assert len(chunks) > len(old_chunks), "the new store, whole"
            assert store.vector_count() == info.chunks
            outcomes.append("new")
        store.close()
    assert outcomes == ["old", "old", "old", "new"], "kills inside the transaction leave the old store, whole"
    assert time.monotonic() - t0 < 300


#: The same rebuild for a store at any location (a database URL here): the child
#: waits inside the rebuild's one transaction at each document's encoding (the
#: passages are embedded as the transaction consumes them), not at a SQLite method.
REBUILD_ANY_DRIVER = r"""
import sys
sys.path.insert(0, sys.argv[1])
from tests.conftest import FakeEmbedder
from ingest.pipeline import rebuild_store
from search.settings import Settings
from search.store import open_store

class Traced(FakeEmbedder):
    def encode(self, texts, **kw):
        print("encoding", flush=True)
        sys.stdin.readline()  # wait for the parent's "go" (EOF: run on)
        return super().encode(texts, **kw)

print("start", flush=True)
home = sys.argv[2]
emb = Traced(dim=32)
emb.name = "another-model"
rebuild_store(open_store(home), Settings(home=home, chunk_words=40, chunk_overlap_words=5), emb)
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_during_rebuild_of_a_database_leaves_old_or_new_store(pg_database, tmp_path, monkeypatch):
    """PostgreSQL's counterpart of the test above: a client killed inside the rebuild's
    transaction leaves the old passages, vectors and builder whole (the server rolls
    back its open transaction), and a rebuild run to the end leaves the new ones."""
    from ingest.pipeline import Ingestor
    from search import doctor
    from search.settings import Settings
    from search.store import open_store

    monkeypatch.setenv("EQUISEARCH_CACHE_DIR", str(tmp_path / "cache"))
    rng = random.Random(5)
    home = pg_database
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(40):
        (folder / f"d{i}.txt").write_text(make_text(rng, f"zq9x{i}", 8))
    Ingestor(open_store(home), Settings(home=home), FakeEmbedder()).ingest_paths([folder])
    old = open_store(home)
    old_chunks = sorted(c.text for d in old.documents() for c in old.chunks_of(d.id))
    old.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outcomes = []
    for trial in range(4):
        proc = subprocess.Popen([PY, "-c", REBUILD_ANY_DRIVER, str(ROOT), home], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().startswith("start")
        if trial < 3:
            # After 0-39 documents written inside the transaction, killed while it waits.
            for _ in range(rng.randint(0, 39)):
                assert proc.stdout.readline().startswith("encoding")
                proc.stdin.write("go\n")
                proc.stdin.flush()
            assert proc.stdout.readline().startswith("encoding")
            proc.kill()
        out, err = proc.communicate(input="", timeout=120)
        assert "Traceback" not in err, err
        store = open_store(home)
        report = doctor.diagnose(store)
        assert report.healthy, [c for c in report.checks if not c.ok]
        info = store.info()
        chunks = sorted(c.text for d in store.documents() for c in store.chunks_of(d.id))
        if info.model == "fake-hash-64":
            assert (info.dim, chunks) == (64, old_chunks), "the old store, whole"
            assert store.vector_count() == info.chunks
            outcomes.append("old")
        else:
            assert (info.model, info.dim, info.chunking) == ("another-model", 32, "words=40,overlap=5,v1")
            assert len(chunks) > len(old_chunks), "the new store, whole"
            assert store.vector_count() == info.chunks
            outcomes.append("new")
        store.close()
    assert outcomes == ["old", "old", "old", "new"], "kills inside the transaction leave the old store, whole"
