"""equisearch's core library: records, settings, the store, retrieval, answers.

Scripting entry points::

    from search import Engine, Filters, Settings
    engine = Engine.open("data")
    result = engine.search("pupil premium plus", k=5)
    answer = engine.ask("what works for PLAC pupils?")

This package imports nothing from ``ingest`` or ``ui``; heavy libraries
(torch, sentence-transformers, faiss) load on first use.
"""
from .api import Engine, SearchResult
from .errors import (
    EquisearchError,
    ExtractionError,
    ModelError,
    QueryError,
    StoreError,
    StoreLocked,
    StoreMismatch,
    UnsupportedSource,
)
from .settings import Settings
from .store import Store
from .types import Answer, AnswerSentence, Chunk, Citation, Document, Filters, Hit, StoreInfo

__all__ = [
    "Answer", "AnswerSentence", "Chunk", "Citation", "Document", "Engine", "EquisearchError",
    "ExtractionError", "Filters", "Hit", "ModelError", "QueryError", "SearchResult", "Settings",
    "Store", "StoreError", "StoreInfo", "StoreLocked", "StoreMismatch", "UnsupportedSource",
]
