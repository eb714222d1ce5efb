"""Shared fixtures.

Two embedders: the real bundled all-MiniLM-L6-v2 (loaded once per session)
wherever behaviour or quality is asserted, and a hashing fake that only
exists to test plumbing (store, index, CLI wiring) fast.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.backends import backend, other_location, store_location  # noqa: F401  (both backends)
from tests.pg_server import pg_database, pg_server  # noqa: F401  (PostgreSQL fixtures)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
CORPUS = ROOT / "corpus"
#: Documents in the starter corpus (its manifest lists each one).
STARTER_DOCS = len(json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))["documents"])


def _seed_corpus() -> Path:
    """The starter corpus's five web-page extracts and their manifest entries, without the PDFs.

    Plumbing tests (fake embedder: store, CLI wiring, doctor, crash) ingest
    a corpus many times; the four guidance PDFs cost seconds of parsing each
    time and test nothing more there. Tests of behaviour use CORPUS.
    """
    folder = Path(tempfile.mkdtemp(prefix="eqs-seeds-"))
    atexit.register(shutil.rmtree, folder, True)
    manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
    manifest["documents"] = [d for d in manifest["documents"] if d["file"].endswith(".txt")]
    for d in manifest["documents"]:
        shutil.copy(CORPUS / d["file"], folder / d["file"])
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


SEEDS = _seed_corpus()
SEED_DOCS = 5
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared is not beside this checkout; CI has it)")
    return path


class FakeEmbedder:
    """Hashed bag of words: similar texts get similar vectors. Plumbing only."""

    name = "fake-hash-64"

    def __init__(self, dim: int = 64):
        self._dim = dim
        self.calls = 0
        self.encoded = 0

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts, *, batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        self.encoded += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for w in re.findall(r"\w+", text.lower()):
                h = int(hashlib.md5(w.encode()).hexdigest(), 16)
                out[i, h % self._dim] += 1.0 if (h >> 8) & 1 else -1.0
            n = np.linalg.norm(out[i])
            out[i] = out[i] / n if n else out[i]
            if not n:
                out[i, 0] = 1.0
        return out


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from search.embedding import load_embedder

    return load_embedder()


@pytest.fixture
def settings(tmp_path):
    from search.settings import Settings

    return Settings(home=str(tmp_path / "store"))


@pytest.fixture
def corpus_copy(tmp_path):
    """A writable copy of the starter corpus's web pages (:data:`SEEDS`: seeds + manifest)."""
    dest = tmp_path / "corpus"
    shutil.copytree(SEEDS, dest)
    return dest


@pytest.fixture(scope="session")
def starter_store(tmp_path_factory, real_embedder):
    """The starter corpus ingested with the real model (built once per session)."""
    from ingest.pipeline import Ingestor
    from search.settings import Settings
    from search.store import Store

    home = tmp_path_factory.mktemp("starter") / "store"
    settings = Settings(home=str(home))
    store = Store.open(home)
    report = Ingestor(store, settings, real_embedder).ingest_paths([CORPUS])
    assert not report.failed, report.failed
    store.close()
    return home


@pytest.fixture(scope="session")
def starter_engine(starter_store, real_embedder):
    from search.api import Engine
    from search.settings import Settings

    return Engine.open(starter_store, Settings(home=str(starter_store)), embedder=real_embedder)


# -- UI (tests/test_ui*.py) ---------------------------------------------------------
#: A test document whose title and text carry script payloads: the UI must
#: show them as text. Loading them would set window.__xss or open a dialog.
XSS_TITLE = '<img src=x onerror="window.__xss=1;alert(1)"> Breakfast club evaluation'
XSS_TEXT = (
    "Breakfast clubs for disadvantaged pupils raised attendance by three percentage points in the trial schools. "
    '<script>window.__xss = 2; alert("xss")</script> '
    '<img src=x onerror="window.__xss=3;alert(3)"> '
    "Pupils who attended the breakfast club regularly made more progress in reading and maths over the year.\n"
)


@pytest.fixture(scope="session")
def ui_store(starter_store, tmp_path_factory, real_embedder):
    """Starter corpus + one XSS test document, real model (built once per session)."""
    import json

    from ingest.pipeline import Ingestor
    from search.settings import Settings
    from search.store import Store

    home = tmp_path_factory.mktemp("ui") / "store"
    shutil.copytree(starter_store, home)
    docs = tmp_path_factory.mktemp("ui_docs")
    (docs / "breakfast_club.txt").write_text(XSS_TEXT, encoding="utf-8")
    (docs / "manifest.json").write_text(json.dumps({"documents": [{
        "file": "breakfast_club.txt", "title": XSS_TITLE, "site": "Test <b>site</b>", "kind": "report",
        "date": "2024-03-01", "url": "https://example.org/breakfast?a=1&b=<x>"}]}), encoding="utf-8")
    store = Store.open(home)
    report = Ingestor(store, Settings(home=str(home)), real_embedder).ingest_paths([docs])
    assert report.counts["added"] == 1, report.results
    store.close()
    return home


@pytest.fixture
def ui_store_copy(ui_store, tmp_path):
    """A private, writable copy of :func:`ui_store` for tests that change it."""
    dest = tmp_path / "store"
    shutil.copytree(ui_store, dest)
    return dest


def _starter_plus(folder: str, starter_store, tmp_path_factory, real_embedder):
    """The starter store with ../shared/data/<folder> ingested on top, real model."""
    from ingest.pipeline import Ingestor
    from search.api import Engine
    from search.settings import Settings
    from search.store import Store

    extra = shared_path("data", folder)
    home = tmp_path_factory.mktemp(folder) / "store"
    shutil.copytree(starter_store, home)
    settings = Settings(home=str(home))
    report = Ingestor(Store.open(home), settings, real_embedder).ingest_paths([extra])
    assert not report.failed, report.failed
    return Engine.open(home, settings, embedder=real_embedder)


@pytest.fixture(scope="session")
def plac_engine(starter_store, tmp_path_factory, real_embedder):
    """Starter corpus + ../shared/data/edu_plac (the PLAC guidance and reports), real model (built once)."""
    return _starter_plus("edu_plac", starter_store, tmp_path_factory, real_embedder)


@pytest.fixture(scope="session")
def edu_engine(starter_store, tmp_path_factory, real_embedder):
    """The teachers' store: starter corpus + all of ../shared/data/edu, real model (built once)."""
    return _starter_plus("edu", starter_store, tmp_path_factory, real_embedder)
