"""Use-cases that change a whole store, written once for the CLI and the UI.

- :func:`remove_sources`: ``equisearch remove`` and the UI's "Remove";
- :func:`rebuild_index`: ``equisearch rebuild --index-only``.

Re-embedding every document (``equisearch rebuild``) is
:func:`ingest.pipeline.rebuild_store`, since it re-cuts passages; checking
and repairing a store is :mod:`search.doctor`. Each takes the store's
writer (:class:`~search.store.Writer`), so it raises
:class:`~search.errors.StoreLocked` while another process writes.
"""
from __future__ import annotations

from typing import Iterable

from .store import StoreBackend, Writer
from .types import Document


def remove_sources(store: StoreBackend, refs: Iterable[str | int], settings=None) -> tuple[list[Document], list]:
    """Remove the documents ``refs`` name, with their passages and vectors.

    A ref is what a user types: a document id, URI or alias, public URL or
    local path (:meth:`find_source`). Returns (the documents removed, in
    order; the refs that named nothing, as given). Reading-list items that
    pointed at a removed document keep their citation (search/lists.py).
    """
    removed: list[Document] = []
    missing: list = []
    with Writer.open(store, settings) as w:
        for ref in refs:
            doc = store.find_source(ref)
            if doc is None:
                missing.append(ref)
                continue
            w.remove_document(doc.id)
            removed.append(doc)
    return removed, missing


def rebuild_index(store: StoreBackend, settings=None) -> int:
    """Rebuild the vector index from the stored vectors (no re-embedding); returns the vector count."""
    with Writer.open(store, settings) as w:
        return w.rebuild_index()
