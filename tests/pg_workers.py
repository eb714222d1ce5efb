"""Writer processes for tests/test_pg_store.py's concurrency tests (spawned: importable, no fixtures).

Each document of a test corpus is a function of its number, so every
process builds the same records: :func:`corpus_doc` gives (uri, text hash,
NewDocument, chunks, vectors); two uris share each text (``copy`` 1), so a
second location of a text must end as an alias.
"""
from __future__ import annotations

import hashlib
import random

import numpy as np

DIM = 16
MODEL, CHUNKING = "fake-concurrent", "words=100,overlap=20,v1"


def passages_of(n: int) -> int:
    """How many passages document ``n`` has (1 to 5)."""
    return 1 + n % 5


def corpus_doc(n: int, copy: int = 0):
    from search.store import NewChunk, NewDocument

    words = [f"word{n}x{i}" for i in range(passages_of(n) * 20)]
    pieces = [" ".join(words[i * 20:(i + 1) * 20]) for i in range(passages_of(n))]
    text = " ".join(pieces)
    text_hash = hashlib.sha256(text.encode()).hexdigest()
    chunks, start = [], 0
    for p in pieces:
        chunks.append(NewChunk(p, start, start + len(p), hashlib.sha256(p.encode()).hexdigest()))
        start += len(p) + 1
    uri = f"/corpus/doc{n}" + (f"-copy{copy}" if copy else "") + ".txt"
    doc = NewDocument(uri=uri, title=f"Document {n}", text=text, content_hash=f"{text_hash}:{copy}",
                      text_hash=text_hash, kind="report", tags=("t",))
    rng = np.random.default_rng(n)
    vecs = rng.standard_normal((len(chunks), DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return doc, chunks, vecs


def write_corpus(url: str, items: list[tuple[int, int]], seed: int, barrier) -> list[tuple[str, str, int]]:
    """Write documents ``items`` ((number, copy)) in a shuffled order with no look-up first
    (as two processes that both decided to add them); returns (uri, outcome, doc id) per write."""
    from search.settings import Settings
    from search.store import open_store

    store = open_store(url, settings=Settings())
    order = list(items)
    random.Random(seed).shuffle(order)
    barrier.wait(timeout=60)
    out = []
    try:
        for n, copy in order:
            doc, chunks, vecs = corpus_doc(n, copy)
            res = store.write_document(doc, chunks, vecs, model=MODEL, dim=DIM, chunking=CHUNKING)
            out.append((doc.uri, res.outcome, res.doc_id))
    finally:
        store.close()
    return out


def ingest_folder(url: str, folder: str, barrier) -> dict[str, int]:
    """Ingest ``folder`` through the pipeline with the hashing fake embedder; returns the report's counts."""
    from ingest.pipeline import Ingestor
    from search.settings import Settings
    from search.store import open_store
    from tests.conftest import FakeEmbedder

    store = open_store(url, settings=Settings())
    barrier.wait(timeout=60)
    try:
        report = Ingestor(store, Settings(home=url), FakeEmbedder()).ingest_paths([folder])
    finally:
        store.close()
    return {**report.counts, "reasons": sorted({r.reason for r in report.results if r.reason})}
