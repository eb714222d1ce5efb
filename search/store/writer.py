"""The one way passages and vectors change: a :class:`Writer` holds the store's
write lock, keeps the vector index in step with each write and saves it on exit.

::

    with Writer.open(store, settings) as w:
        w.write_document(doc, chunks, vectors, model=..., dim=..., chunking=...)
        w.remove_document(doc_id)

Crash safety is the store's and the index's: each write commits on its own,
the index file is replaced atomically with a sidecar naming the generation
it reflects, and a reader that finds the file behind the store rebuilds it.
A kill at any moment therefore costs at most an index rebuild.

The index is brought up to date before the first write that changes
passages, not on entry: an ingest that finds nothing new then never loads
(or re-saves) a large FAISS file.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from .base import NewChunk, NewDocument, StoreBackend, VectorSearch, WriteResult


class Writer:
    """The store's single writer for one batch of writes (a context manager)."""

    def __init__(self, store: StoreBackend, index: VectorSearch, *, owns_lock: bool = True):
        self.store = store
        self.index = index
        self._owns_lock = owns_lock
        self._current = False  # index brought up to date in this session
        self._dirty = False  # index changed in memory since it was last saved
        self._closed = False

    @classmethod
    def open(cls, store: StoreBackend, settings=None, *, index: VectorSearch | None = None,
             wait: bool = False) -> "Writer":
        """Take ``store``'s write lock and return its writer.

        Raises :class:`~search.errors.StoreLocked` at once when another
        process writes (``wait`` blocks instead). ``index`` is the vector
        index to keep current (default: a new one from the store, with
        ``settings``); pass the one you search with to keep it warm. When
        this ``store`` object already holds the lock (a writer inside a
        writer), the lock is left to the outer one.
        """
        took = store.acquire_write_lock(wait=wait)
        try:
            return cls(store, index if index is not None else store.vector_index(settings), owns_lock=took)
        except BaseException:
            if took:
                store.release_write_lock()
            raise

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Save what the index followed, then release the lock (even if saving fails)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._dirty:
                self.index.save()
                self._dirty = False
        finally:
            if self._owns_lock:
                self.store.release_write_lock()

    def _follow(self) -> None:
        # The index must reflect the store as it is before a write, so the
        # write can be applied to it without a rebuild.
        if not self._current:
            self.index.ensure_current()
            self._current = True

    # -- writes ----------------------------------------------------------
    def write_document(
        self,
        doc: NewDocument,
        chunks: Sequence[NewChunk],
        vectors,
        *,
        model: str,
        dim: int,
        chunking: str,
        replace_id: int | None = None,
        aliases: Sequence[str] = (),
    ) -> WriteResult:
        """Store one document (see the store's ``write_document``) and add its vectors to the index."""
        self._follow()
        result = self.store.write_document(doc, chunks, vectors, model=model, dim=dim, chunking=chunking,
                                           replace_id=replace_id, aliases=aliases)
        self._dirty = True
        self.index.apply(result, vectors)
        return result

    def remove_document(self, doc_id: int) -> WriteResult:
        """Delete a document with its passages, and its vectors from the index."""
        self._follow()
        result = self.store.remove_document(doc_id)
        self._dirty = True
        self.index.apply(result, None)
        return result

    def replace_passages(self, passages: Iterable[tuple[int, Sequence[NewChunk], object]], *, model: str,
                         dim: int, chunking: str) -> int:
        """Re-cut every document in one transaction (the store's ``replace_passages``), then rebuild the index."""
        n = self.store.replace_passages(passages, model=model, dim=dim, chunking=chunking)
        self.rebuild_index()
        return n

    def repair_derived(self) -> dict[str, int]:
        """The store's repair of derived rows (orphans, keyword index); the index is rebuilt at the next write or search."""
        orphans = self.store.repair_derived()
        self._current = False
        return orphans

    def rebuild_index(self) -> int:
        """Rebuild the vector index from the stored vectors and save it; returns the vector count."""
        n = self.index.rebuild()
        self._current, self._dirty = True, False
        return n
