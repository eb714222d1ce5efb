"""equisearch's core library: records, settings, the store, retrieval, answers.

Scripting entry points::

    from search import Engine, Filters, Settings
    engine = Engine.open("data")
    result = engine.search("pupil premium plus", k=5)
    answer = engine.ask("what works for PLAC pupils?")

This package imports nothing from ``ingest`` or ``ui``; heavy libraries
(torch, sentence-transformers, faiss) load on first use.
"""
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

__all__ = [
    "Answer", "AnswerSentence", "Chunk", "Citation", "Document", "Engine", "EquisearchError",
    "ExtractionError", "Filters", "Hit", "ModelError", "QueryError", "SearchResult", "Settings",
    "Store", "StoreError", "StoreInfo", "StoreLocked", "StoreMismatch", "UnsupportedSource",
]

#: Names loaded on first access: they pull in numpy (and the store), which
#: ``equisearch --help`` and ``import search.settings`` must not pay for.
_LAZY = {
    "Engine": ".api", "SearchResult": ".api", "Store": ".store",
    "Answer": ".types", "AnswerSentence": ".types", "Chunk": ".types", "Citation": ".types",
    "Document": ".types", "Filters": ".types", "Hit": ".types", "StoreInfo": ".types",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
