"""Vector search in PostgreSQL: pgvector's HNSW index over the passages' halfvec column.

The index is the database's (``chunks_vector``, ``halfvec_cosine_ops``,
made with the column's dimension by schema.py's ``_ensure_dimension``), so
there is nothing to load, follow or save: :class:`PgVectorSearch` is the
:class:`~search.store.base.VectorSearch` of a store whose writes keep their
own index current, and its ``ensure_current``/``apply``/``save`` do
nothing.

A search is one statement. Every connection starts with the scan settings
below (``PgStore.open`` passes them at connect); a search that needs others
(a larger ``k``, a filter) sets them for its own transaction only
(``set_config(..., true)``, i.e. ``SET LOCAL``, in one round trip).
How the HNSW scan runs (bench/PG-SPIKE.md measured each):

- ``hnsw.ef_search`` at least 100 (recall@10 0.995 on SciFact) and at
  least ``k``;
- ``hnsw.iterative_scan = relaxed_order``: without it a ``LIMIT`` above
  ``ef_search``, or a filter, returns fewer rows than asked; relaxed order may
  return them slightly out of order, so the outer query sorts by distance.

With ``allowed`` ids (a filter resolved to its passages, the engine's
named-document candidates), few ids are scanned exactly (see
:data:`EXACT_SCAN_MAX`); more go through HNSW with the iterative scan's
limits raised, and an exact scan makes up the rest when that still found
fewer than ``k``. Inside a caller's :meth:`consistent_view` the statement runs
in the caller's snapshot (``SET LOCAL`` in a REPEATABLE READ READ ONLY
transaction is allowed; it lasts until that view ends).
"""
from __future__ import annotations

import logging

import numpy as np

from .documents import vector_literal

log = logging.getLogger(__name__)

#: Up to this many allowed ids, search them exactly: fetch those rows by id and
#: compute every distance. An exact result does not depend on scan limits,
#: and for a selective filter it is also the cheaper plan: an HNSW scan walks
#: much of the graph before k rows pass (the spike: 2% of 15.6k rows, exact
#: 0.85 ms against iterative HNSW 5.9 ms p50). Measured here on 50k random
#: 384-d vectors, k 50, load average 10 on 2 cores (p50 of 15): 500 ids 7.9 ms
#: exact against 15 ms for the planner's own plan, 2000 27 against 28, 5000
#: 49 against 45, 10,000 100 against 66. So up to 5000 the exact scan costs
#: at most about what the alternative does, and above it the HNSW path wins.
EXACT_SCAN_MAX = 5000
#: ``hnsw.ef_search`` floor without settings (``Settings.database_ef_search``; pgvector's ceiling is 1000).
EF_SEARCH = 100
EF_SEARCH_LIMIT = 1000
#: How far an iterative scan may walk for a filtered search (pgvector's
#: default 20,000 tuples would starve a filter keeping 1 row in 100 of a large
#: store), and the memory it may use for that, in multiples of work_mem.
FILTERED_MAX_SCAN_TUPLES = 2_000_000_000
FILTERED_SCAN_MEM_MULTIPLIER = 8


def session_ef_search(settings) -> int:
    """The ``hnsw.ef_search`` a connection starts with: ``Settings.database_ef_search`` within pgvector's bounds."""
    floor = int(getattr(settings, "database_ef_search", 0) or EF_SEARCH)
    return min(EF_SEARCH_LIMIT, max(1, floor))


_NEAREST_SQL = ("SELECT id, d FROM (SELECT id, vector <=> %(q)s::halfvec AS d FROM chunks"
                " ORDER BY vector <=> %(q)s::halfvec LIMIT %(k)s) s WHERE d IS NOT NULL ORDER BY d, id")
#: The planner may answer it from the primary key and a sort (exact) or from
#: HNSW with the filter checked during the scan (then the limits above apply).
_FILTERED_SQL = ("SELECT id, d FROM (SELECT id, vector <=> %(q)s::halfvec AS d FROM chunks"
                 " WHERE id = ANY(%(ids)s) ORDER BY vector <=> %(q)s::halfvec LIMIT %(k)s) s"
                 " WHERE d IS NOT NULL ORDER BY d, id")
# MATERIALIZED: the rows by id first, so the planner cannot hand the ORDER BY
# to the HNSW index (whose result depends on scan limits).
_EXACT_SQL = ("WITH f AS MATERIALIZED (SELECT id, vector FROM chunks WHERE id = ANY(%(ids)s) AND vector IS NOT NULL)"
              " SELECT id, vector <=> %(q)s::halfvec AS d FROM f ORDER BY d, id LIMIT %(k)s")


class PgVectorSearch:
    """Nearest passages by cosine from the database's HNSW index (PostgreSQL backend)."""

    #: What kind of index answers (the FAISS index says ``flat``, ``ivf`` or ``none``).
    kind = "hnsw"

    def __init__(self, store, settings=None):
        self.store = store
        self.settings = settings
        self._count: tuple[int, int] | None = None  # (generation, vector count)

    @property
    def ntotal(self) -> int:
        """Passages with a vector (cached per store generation: the engine asks on every search)."""
        gen = self.store.generation()
        if self._count is None or self._count[0] != gen:
            self._count = (gen, self.store.vector_count())
        return self._count[1]

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top ``k`` (chunk id, cosine), restricted to ``allowed`` ids before ranking.

        Returns ``k`` results whenever ``k`` passages (of ``allowed``) have a
        vector, best first.
        """
        k = int(k)
        if k <= 0:
            return []
        q = vector_literal(np.asarray(query, dtype=np.float32).reshape(-1))
        ids = None
        if allowed is not None:
            ids = np.unique(np.asarray(allowed, dtype=np.int64)).tolist()
            if not ids:
                return []
            if len(ids) <= EXACT_SCAN_MAX:
                return self._exact(q, k, ids)
        ef = min(EF_SEARCH_LIMIT, max(session_ef_search(self.settings), k))
        if ids is None and ef == getattr(self.store, "ef_search", 0):
            # The connection started with this ef_search and the iterative
            # scan (PgStore.open): one statement, no SET LOCAL round trips.
            rows = self.store.execute(_NEAREST_SQL, {"q": q, "k": k})
        else:
            with self.store.transaction() as conn:
                scan = {"hnsw.ef_search": ef, "hnsw.iterative_scan": "relaxed_order"}
                if ids is not None:
                    scan |= {"hnsw.max_scan_tuples": FILTERED_MAX_SCAN_TUPLES,
                             "hnsw.scan_mem_multiplier": FILTERED_SCAN_MEM_MULTIPLIER}
                # set_config(..., true) is SET LOCAL: all of them in one round trip.
                conn.execute("SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(scan)),
                             [str(x) for pair in scan.items() for x in pair])
                sql, params = (_NEAREST_SQL, {"q": q, "k": k}) if ids is None else (
                    _FILTERED_SQL, {"q": q, "k": k, "ids": ids})
                rows = conn.execute(sql, params).fetchall()
        if ids is not None and len(rows) < k and len(rows) < len(ids):
            # The iterative scan stopped at its limits before k passed the
            # filter: the exact scan finds every one there is.
            log.debug("filtered HNSW scan found %d of %d; scanning %d ids exactly", len(rows), k, len(ids))
            return self._exact(q, k, ids)
        return [(int(i), 1.0 - float(d)) for i, d in rows]

    def _exact(self, q: str, k: int, ids: list[int]) -> list[tuple[int, float]]:
        rows = self.store.execute(_EXACT_SQL, {"q": q, "k": k, "ids": ids})
        return [(int(i), 1.0 - float(d)) for i, d in rows]

    # -- following writes: the database does it ---------------------------
    def ensure_current(self) -> None:
        """Nothing to load: every committed write is in the index."""

    def apply(self, result, vectors) -> None:
        """Nothing to follow: the write updated the index in its own transaction."""

    def save(self) -> None:
        """Nothing to persist."""

    def rebuild(self) -> int:
        """Rebuild the HNSW index from the stored vectors (``REINDEX``); returns the vector count.

        Concurrently (readers and writers go on) unless called inside a
        transaction; an index missing while the column has a dimension is
        made again.
        """
        self.store.reindex_vectors()
        self._count = None
        return self.ntotal
