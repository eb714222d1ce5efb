"""Domain errors raised by the library.

Only the edges (the click CLI in ``cli/`` and the Streamlit UI) turn these
into messages for people; library code raises them with enough context that the
message alone tells the user what to do next.
"""
from __future__ import annotations


class EquisearchError(Exception):
    """Base class: every error the library raises on purpose."""


class StoreError(EquisearchError):
    """The store cannot be opened or written (missing, corrupt, locked)."""


class StoreMismatch(StoreError):
    """The store was built with another model, dimension or chunking.

    Mixing vectors from two models silently ruins retrieval, so the store
    refuses; the message names what to run (``equisearch rebuild``).
    """


class StoreLocked(StoreError):
    """Another process is writing to the store."""


class StoreDamaged(StoreError):
    """The store's database could not be read: its file is damaged.

    ``equisearch doctor`` reports it as a problem of the check that met it.
    """


class ExtractionError(EquisearchError):
    """A source could not be turned into text (bad file, no text layer...)."""


class UnsupportedSource(ExtractionError):
    """A file type or URL scheme equisearch does not read."""


class QueryError(EquisearchError):
    """A query that cannot be run (for example empty after cleaning)."""


class ListError(EquisearchError):
    """A reading-list operation that cannot be done (bad name, duplicate...)."""


class ListNotFound(ListError):
    """No reading list (or list item) by that name, id or position."""


class ModelError(EquisearchError):
    """The embedding model cannot be loaded."""
