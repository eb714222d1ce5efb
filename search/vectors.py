"""The FAISS vector index: the SQLite backend's derived data, keyed by chunk id.

The vectors themselves live in SQLite (table ``vectors``); the FAISS file is a
cache of them that makes search fast. It is written atomically (temp file +
``os.replace``) with a sidecar ``vectors.json`` naming the store generation it
reflects. When the file is missing, unreadable or from another generation, the
index is rebuilt from SQLite, so a crash between a commit and a save costs a
rebuild, never a wrong answer.

Vectors are unit length, so inner product equals cosine similarity.

Two index shapes, chosen by size (setting ``ann_threshold``):

* up to the threshold, exact search: ``IndexIDMap2(IndexFlatIP)``;
* above it, ``IndexIVFScalarQuantizer`` (inner product, fp16 codes): vectors
  are assigned to ``nlist`` k-means cells and a query scans ``ann_nprobe`` of
  them. IVF rather than HNSW because the store replaces and removes passages
  (re-ingest of a changed file, ``equisearch remove``): IVF supports
  ``remove_ids`` and adding to a trained index, HNSW supports neither (and
  took 454 s to build at 1M vectors here). fp16 codes halve memory and
  bandwidth; bench/RESULTS.md has the measured recall@10 against exact
  search and the nprobe trade-off. On real MiniLM vectors (Reuters passages,
  short title queries) the nearest passages of a query are spread over many
  cells, so IVF needs to scan many for high recall: by default
  (``ann_nprobe`` 0) a query scans a quarter of the cells and never fewer
  than 512 (:func:`auto_nprobe`): recall@10 0.995 at 100k chunks in ~2 ms
  (128 cells gave 0.94) and 0.99 at 1M in ~11 ms (512 gave 0.97 there).

Adding documents never rebuilds the index: new vectors go into the trained
cells. The index is trained once, when the store crosses the threshold or on
``equisearch rebuild --index-only`` (which also re-trains after a store has
grown much beyond its training size).
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading

from typing import TYPE_CHECKING

import numpy as np

from .files import atomic_write

if TYPE_CHECKING:
    from .store.base import StoreBackend, WriteResult

log = logging.getLogger(__name__)

INDEX_NAME = "vectors.faiss"
SIDECAR_NAME = "vectors.json"


def _faiss():
    import faiss  # lazy: ~0.3 s import, not needed for --help

    return faiss


def ivf_lists(n: int) -> int:
    """IVF cells for ``n`` vectors: ~4 sqrt(n) (FAISS guidance), 64..16384."""
    return int(min(16384, max(64, 4 * int(n**0.5))))


#: Fewest IVF cells a query scans by default (see auto_nprobe).
MIN_NPROBE = 512


def auto_nprobe(nlist: int) -> int:
    """Cells to scan when ``ann_nprobe`` is 0: a quarter of them, at least MIN_NPROBE.

    Measured on real vectors (bench/RESULTS.md): a fixed 512 gave recall@10
    0.995 with 1260 cells (100k chunks) but 0.97 with 4000 (1M); a quarter
    of 4000 gave 0.99.
    """
    return min(nlist, max(MIN_NPROBE, nlist // 4))


#: Vectors sampled to train the IVF quantiser (FAISS wants >= 39 per cell;
#: more costs time without improving recall measurably).
TRAIN_SAMPLE = 100_000


class VectorIndex:
    """Inner-product search over the store's vectors (flat ``IndexIDMap2`` or IVF).

    Thread-safe for one writer and many readers within a process. Readers
    get one from ``store.vector_index(settings)``; writes reach it only
    through a :class:`~search.store.Writer`, which applies each write and
    saves the file.
    """

    def __init__(self, store: StoreBackend, settings=None):
        self.store = store
        self.threshold = int(getattr(settings, "ann_threshold", 50_000))
        #: 0 means auto_nprobe(nlist) (the default); a positive number is used as is.
        self.nprobe = int(getattr(settings, "ann_nprobe", 0))
        self.path = store.path / INDEX_NAME
        self.sidecar = store.path / SIDECAR_NAME
        self._index = None
        self._generation = -1
        self._lock = threading.RLock()

    # -- loading ---------------------------------------------------------
    def _dim(self) -> int:
        return int(self.store.get_meta("dim", "0") or 0)

    def _empty(self, dim: int):
        faiss = _faiss()
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def ensure_current(self) -> None:
        """Load or rebuild so the index reflects the store's current generation."""
        gen = self.store.generation()
        if self._index is not None and gen == self._generation:
            return
        with self._lock:
            gen = self.store.generation()
            if self._index is not None and gen == self._generation:
                return
            if self._load_file(gen):
                return
            self.rebuild()

    def _load_file(self, gen: int) -> bool:
        try:
            meta = json.loads(self.sidecar.read_text())
        except (OSError, ValueError):
            return False
        if meta.get("generation") != gen or not self.path.exists():
            return False
        try:
            index = _faiss().read_index(str(self.path))
        except RuntimeError as exc:
            log.warning("FAISS file %s unreadable (%s); rebuilding", self.path, exc)
            return False
        if index.ntotal != meta.get("count"):
            return False
        self._index, self._generation = index, gen
        return True

    @property
    def kind(self) -> str:
        """``flat`` (exact), ``ivf`` (approximate) or ``none`` (not loaded/empty)."""
        if self._index is None:
            return "none"
        return "ivf" if self._is_ivf(self._index) else "flat"

    def nprobe_for(self, index) -> int:
        """IVF cells a query scans in ``index``: the setting, or auto_nprobe when it is 0."""
        return min(index.nlist, self.nprobe) if self.nprobe > 0 else auto_nprobe(index.nlist)

    @staticmethod
    def _is_ivf(index) -> bool:
        return hasattr(index, "nprobe")

    def _build_ivf(self, dim: int, n: int):
        """Train an IVF-SQfp16 index on a sample of the stored vectors."""
        faiss = _faiss()
        nlist = ivf_lists(n)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        sample = []
        # Every step-th vector: at least TRAIN_SAMPLE, and the 39 a cell
        # that FAISS asks for (156k at 1M vectors, 4000 cells).
        want = max(TRAIN_SAMPLE, 39 * nlist)
        step = max(1, n // want)
        for ids, vecs in self.store.iter_vectors():
            sample.append(vecs[::step])
        train = np.ascontiguousarray(np.concatenate(sample)[:want])
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        index.train(train)
        index.nprobe = self.nprobe_for(index)
        log.info("trained IVF index: %d cells on %d vectors", nlist, len(train))
        return index

    def rebuild(self) -> int:
        """Rebuild from the vectors in SQLite and save; returns the vector count.

        Exact (flat) up to ``ann_threshold`` vectors, IVF above it.
        """
        with self._lock:
            gen = self.store.generation()
            dim = self._dim()
            if not dim:
                self._index, self._generation = None, gen
                return 0
            n = self.store.vector_count()
            index = self._build_ivf(dim, n) if n > self.threshold else self._empty(dim)
            _faiss().omp_set_num_threads(os.cpu_count() or 1)
            for ids, vecs in self.store.iter_vectors():
                index.add_with_ids(vecs, ids)
            self._index, self._generation = index, gen
            try:
                self.save()
            except OSError as exc:
                # The file is only a cache: a reader that cannot write it
                # (read-only store, full disk) still searches from memory.
                log.warning("could not save the vector index to %s (%s); using it from memory", self.path, exc)
            log.info("rebuilt vector index: %d vectors (%s)", index.ntotal, "ivf" if self._is_ivf(index) else "flat")
            return index.ntotal

    # -- writing ---------------------------------------------------------
    def apply(self, result: WriteResult, vectors: np.ndarray | None) -> None:
        """Follow one committed document write without a full rebuild.

        Must be called right after the write, by the single writer; if the
        in-memory index was not current before the write it is rebuilt.
        """
        with self._lock:
            gen = self.store.generation()
            if self._index is None or self._generation != gen - 1:
                self.rebuild()
                return
            if result.removed_ids:
                faiss = _faiss()
                self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(result.removed_ids, dtype=np.int64)))
            if result.added_ids and vectors is not None and len(vectors):
                self._index.add_with_ids(
                    np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(result.added_ids, dtype=np.int64)
                )
            self._generation = gen
            if not self._is_ivf(self._index) and self._index.ntotal > self.threshold:
                # Crossing the threshold: train the approximate index once;
                # later additions go into its cells without a rebuild.
                log.info("%d vectors > ann_threshold %d: switching to IVF", self._index.ntotal, self.threshold)
                self.rebuild()

    def save(self) -> None:
        """Write the index atomically, then the sidecar that vouches for it."""
        with self._lock:
            if self._index is None:
                return
            faiss = _faiss()
            fd, tmp = tempfile.mkstemp(dir=self.store.path, prefix=".vectors.", suffix=".tmp")
            os.close(fd)
            try:
                faiss.write_index(self._index, tmp)
                os.chmod(tmp, 0o644)  # mkstemp makes 0600; the index is as readable as the database
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            atomic_write(
                self.sidecar,
                json.dumps({"generation": self._generation, "count": int(self._index.ntotal), "dim": self._dim()}),
            )

    # -- searching -------------------------------------------------------
    @property
    def ntotal(self) -> int:
        self.ensure_current()
        return 0 if self._index is None else int(self._index.ntotal)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top ``k`` (chunk id, cosine) for one unit-length query vector.

        ``allowed`` restricts the search to those chunk ids *before* ranking
        (FAISS ``IDSelectorBatch``), so filters never starve the result list.
        """
        self.ensure_current()
        index = self._index
        if index is None or index.ntotal == 0 or k <= 0:
            return []
        faiss = _faiss()
        # One query is too small to split across threads; with onnxruntime
        # in the same process, 2 OpenMP threads made FAISS 4x slower here.
        faiss.omp_set_num_threads(1)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        params = None
        ivf = self._is_ivf(index)
        if allowed is not None:
            if len(allowed) == 0:
                return []
            sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            if ivf:
                # A filter keeps only some passages: scan more cells so the
                # survivors still fill k.
                params = faiss.SearchParametersIVF(sel=sel, nprobe=min(index.nlist, self.nprobe_for(index) * 4))
            else:
                params = faiss.SearchParameters(sel=sel)
        elif ivf:
            params = faiss.SearchParametersIVF(nprobe=self.nprobe_for(index))
        k = min(k, index.ntotal)
        scores, ids = index.search(q, k, params=params) if params is not None else index.search(q, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
