"""Health checks and repair of a store: what ``equisearch doctor`` runs.

A store is healthy when SQLite says its pages are sound and every derived
structure agrees with the rows it derives from:

- ``sqlite``: ``PRAGMA quick_check`` then ``PRAGMA integrity_check``;
- ``builder``: a store with passages records the model and dimension;
- ``vectors``: one vector per passage, each blob ``dim * itemsize`` bytes
  (the item size comes from meta ``vector_dtype``, float32 when absent);
- ``documents``: no document without passages (a half-stored document);
- ``orphans``: no passage, vector or alias pointing at nothing;
- ``offsets``: every passage is the slice of its document text it claims;
- ``fts``: the FTS5 index has one row per passage and passes FTS5's own
  ``integrity-check`` against the ``chunks`` table;
- ``faiss``: the FAISS file, when it claims the store's generation, holds
  exactly the stored vectors' ids with the store's dimension;
- ``temp_files``: no temporary files left by an interrupted save.

A PostgreSQL store (``store.backend == "postgresql"``) keeps no files and
no FTS5 or FAISS index, so three checks differ (the rest are the same):

- ``database``: every table can be read to its end, and every index of the
  store is valid (an HNSW or GIN build that failed leaves it invalid);
- ``keyword index``: each passage's tsvector and BM25 length are what its
  title and text give, and its postings one row per lexeme with its counts;
- ``vector index``: the HNSW index exists (once passages have vectors), is
  valid, and has the store's dimension;

and there is no ``faiss`` or ``temp_files`` check. Repair there re-derives
the damaged passages' tsvectors and postings, rebuilds invalid indexes and
the HNSW index (``REINDEX``).

Each check ends ``ok``, ``warning`` (nothing is wrong with the data but
something will be redone: a FAISS file behind the store is rebuilt at the
next search) or ``problem``. A store is healthy when nothing is a problem.

:func:`repair` fixes what is derived, without re-embedding anything: FTS5
``rebuild``, the FAISS index rebuilt from the stored vectors, orphans deleted
and temporary files removed. What cannot be derived (a corrupt SQLite page,
a passage without its vector, a wrong-size vector) is reported with the
command that fixes it (``equisearch rebuild`` re-embeds from stored text).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import StoreDamaged, StoreError
from .store import SCHEMA_VERSION, VECTOR_DTYPES, StoreBackend, Writer

log = logging.getLogger(__name__)

OK, WARNING, PROBLEM = "ok", "warning", "problem"

#: Temporary files a save leaves behind when killed (see search/vectors.py).
TEMP_PATTERNS = (".vectors.*.tmp", ".vectors.json*.tmp")


@dataclass(frozen=True)
class Check:
    """One health check: ``status`` is ok, warning or problem.

    ``detail`` says what was measured; ``problem`` what is wrong (empty when
    ok); ``fix`` what to do about it; ``repairable`` whether ``doctor
    --repair`` fixes it without re-embedding.
    """

    name: str
    status: str
    detail: str
    problem: str = ""
    fix: str = ""
    repairable: bool = False

    @property
    def ok(self) -> bool:
        return self.status != PROBLEM


@dataclass(frozen=True)
class DoctorReport:
    """All checks of one store, the counts they compared and what was repaired."""

    store: str
    checks: tuple[Check, ...]
    counts: dict = field(default_factory=dict)
    repaired: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def problems(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == PROBLEM)

    def to_dict(self) -> dict:
        """The ``doctor --json`` document (keys listed in the README)."""
        return {
            "store": self.store,
            "healthy": self.healthy,
            "counts": dict(self.counts),
            "checks": [{**asdict(c), "ok": c.ok} for c in self.checks],
            "repaired": list(self.repaired),
        }


def _guard(name: str, func, *args) -> Check:
    """Run one check; a database error inside it is itself the finding."""
    try:
        return func(*args)
    except StoreDamaged as exc:
        return Check(name, PROBLEM, "the check could not run", str(exc),
                     "the database is damaged: restore a backup, or move the store aside and re-ingest")


def _check_sqlite(store: StoreBackend) -> Check:
    failed = store.database_check()
    if failed is not None:
        what, rows = failed
        # One finding per line (SQLite packs several into one row).
        found = [ln.strip() for r in rows for ln in r.splitlines() if ln.strip() and not ln.startswith("***")]
        shown = "; ".join(found[:3]) + (f" (+{len(found) - 3} more)" if len(found) > 3 else "")
        return Check("sqlite", PROBLEM, f"{what} failed", shown,
                     "the database file is damaged: restore a backup, or move the store aside and re-ingest")
    return Check("sqlite", OK, "quick_check and integrity_check ok")


def _check_database(store: StoreBackend) -> Check:
    failed = store.database_check()
    if failed is None:
        return Check("database", OK, "every table readable, every index valid")
    what, found = failed
    shown = "; ".join(found[:3]) + (f" (+{len(found) - 3} more)" if len(found) > 3 else "")
    if what == "indexes":
        return Check("database", PROBLEM, "indexes checked", shown,
                     "run `equisearch doctor --repair` (REINDEX, no re-embedding)", repairable=True)
    return Check("database", PROBLEM, f"{what} could not be read", shown,
                 "the database is damaged: restore a backup, or re-create the database and re-ingest")


def _check_builder(meta: dict, counts: dict, newest: int = SCHEMA_VERSION) -> Check:
    version = meta.get("schema_version", "")
    detail = f"model {meta.get('model') or '-'}, dim {meta.get('dim') or '-'}, schema {version or '-'}"
    if counts["chunks"] == 0:
        return Check("builder", OK, detail + " (no passages yet)")
    missing = [k for k in ("model", "dim") if not meta.get(k)]
    if missing or not str(meta.get("dim", "")).isdigit() or int(meta["dim"]) <= 0:
        return Check("builder", PROBLEM, detail, f"passages exist but meta lacks a valid {', '.join(missing) or 'dim'}",
                     "run `equisearch rebuild` to re-embed and record the model")
    if version and version.isdigit() and int(version) > newest:
        return Check("builder", PROBLEM, detail, f"schema {version} is newer than this equisearch ({newest})",
                     "upgrade equisearch")
    return Check("builder", OK, detail)


def _check_vectors(store: StoreBackend, meta: dict, counts: dict) -> Check:
    dtype = meta.get("vector_dtype") or "float32"
    if dtype not in VECTOR_DTYPES:
        return Check("vectors", PROBLEM, f"vector_dtype {dtype!r}", f"unknown vector dtype {dtype!r}",
                     "upgrade equisearch, or run `equisearch rebuild`")
    dim = int(meta["dim"]) if str(meta.get("dim", "")).isdigit() else 0
    missing = store.missing_vectors()
    wrong = store.wrong_size_vectors(dim * VECTOR_DTYPES[dtype]) if dim else 0
    detail = f"{counts['vectors']} vectors for {counts['chunks']} passages ({dtype}, {dim * VECTOR_DTYPES[dtype]} bytes each)"
    problems = []
    if missing:
        problems.append(f"{missing} passage(s) without a vector")
    if wrong:
        problems.append(f"{wrong} vector(s) of the wrong size")
    if problems:
        return Check("vectors", PROBLEM, detail, "; ".join(problems),
                     "run `equisearch rebuild` (re-embeds every document from its stored text)")
    return Check("vectors", OK, detail)


def _check_documents(store: StoreBackend, counts: dict) -> Check:
    n, empty = store.documents_without_passages()
    detail = f"{counts['documents']} documents, {counts['chunks']} passages"
    if empty:
        return Check("documents", PROBLEM, detail, f"{n} document(s) without passages, e.g. {empty[0]}",
                     "run `equisearch rebuild`, or remove and re-ingest those sources")
    return Check("documents", OK, detail)


def _check_orphans(store: StoreBackend) -> Check:
    orphans = store.orphan_counts()
    found = {k: v for k, v in orphans.items() if v}
    if found:
        text = ", ".join(f"{v} {k}" for k, v in found.items())
        return Check("orphans", PROBLEM, "rows pointing at nothing", f"orphan {text}",
                     "run `equisearch doctor --repair` (deletes them)", repairable=True)
    if "postings" in orphans:  # PostgreSQL: vectors live in the passages' rows
        return Check("orphans", OK, "no orphan passages, postings or aliases")
    return Check("orphans", OK, "no orphan passages, vectors or aliases")


def _check_offsets(store: StoreBackend) -> Check:
    bad = store.misplaced_passages()
    if bad:
        return Check("offsets", PROBLEM, "passages compared with their document text",
                     f"{bad} passage(s) differ from the document text at their offsets",
                     "run `equisearch rebuild` (re-cuts passages from the stored text)")
    return Check("offsets", OK, "every passage is the slice of its document it claims")


def _check_fts(store: StoreBackend, counts: dict) -> Check:
    detail = f"{counts['fts_rows']} FTS rows for {counts['chunks']} passages"
    fix = "run `equisearch doctor --repair` (FTS5 rebuild, no re-embedding)"
    if counts["fts_rows"] != counts["chunks"]:
        return Check("fts", PROBLEM, detail, "the keyword index and the passages disagree", fix, repairable=True)
    outcome, why = store.keyword_index_check()
    if outcome == "not run":
        return Check("fts", WARNING, detail + f"; FTS5 integrity-check not run ({why})")
    if outcome != "ok":
        return Check("fts", PROBLEM, detail, f"FTS5 integrity-check failed: {why}", fix, repairable=True)
    return Check("fts", OK, detail + "; FTS5 integrity-check ok")


def _check_keyword_index(store: StoreBackend, counts: dict) -> Check:
    detail = f"{counts['postings']} postings for {counts['chunks']} passages"
    outcome, why = store.keyword_index_check()
    if outcome != "ok":
        return Check("keyword index", PROBLEM, detail, why,
                     "run `equisearch doctor --repair` (re-indexes those passages, no re-embedding)", repairable=True)
    return Check("keyword index", OK, detail + "; tsvectors and postings match the passages")


def _check_vector_index(store: StoreBackend, meta: dict, vector_ids: np.ndarray) -> Check:
    fix = "run `equisearch doctor --repair` (or `equisearch rebuild --index-only`): REINDEX, no re-embedding"
    state = store.vector_index_state()
    if not state["present"]:
        if len(vector_ids) == 0:
            return Check("vector index", OK, "no vectors and no HNSW index yet")
        return Check("vector index", PROBLEM, f"no HNSW index for {len(vector_ids)} stored vectors",
                     "vector searches scan every passage", fix, repairable=True)
    detail = f"HNSW index of {state['bytes'] // 1024} KiB over {len(vector_ids)} vectors (halfvec({state['dim']}))"
    if not state["valid"]:
        return Check("vector index", PROBLEM, detail, "the HNSW index is not valid (a build failed)", fix,
                     repairable=True)
    dim = int(meta["dim"]) if str(meta.get("dim", "")).isdigit() else 0
    if dim and state["dim"] != dim:
        return Check("vector index", PROBLEM, detail, f"vector column dimension {state['dim']}, store dimension {dim}",
                     "run `equisearch rebuild` (re-embeds every document)")
    return Check("vector index", OK, detail)


def _is_pg(store: StoreBackend) -> bool:
    return getattr(store, "backend", "sqlite") == "postgresql"


def _where(store: StoreBackend) -> str:
    """The store as a report names it: its directory, or a database URL without its password."""
    return getattr(store, "display", None) if _is_pg(store) else str(store.path)


def _check_faiss(store: StoreBackend, meta: dict, vector_ids: np.ndarray) -> Check:
    from .vectors import INDEX_NAME, SIDECAR_NAME, _faiss

    fix = "run `equisearch doctor --repair` (or `equisearch rebuild --index-only`); searches also rebuild it"
    generation = int(meta.get("generation", "0") or 0)
    index_path, sidecar_path = store.path / INDEX_NAME, store.path / SIDECAR_NAME
    if len(vector_ids) == 0 and not index_path.exists():
        return Check("faiss", OK, "no vectors and no index file")
    if not index_path.exists() or not sidecar_path.exists():
        return Check("faiss", WARNING, f"no {INDEX_NAME} yet: it is built from the stored vectors at the next search",
                     fix=fix, repairable=True)
    try:
        side = json.loads(sidecar_path.read_text())
        side_gen = int(side.get("generation"))
    except (OSError, ValueError, TypeError, AttributeError):
        return Check("faiss", WARNING, f"{SIDECAR_NAME} unreadable: the index is rebuilt at the next search",
                     fix=fix, repairable=True)
    if side_gen != generation:
        return Check("faiss", WARNING, f"index from generation {side_gen}, store at {generation}: "
                     "it is rebuilt at the next search", fix=fix, repairable=True)
    # The sidecar vouches for this generation, so searches trust the file:
    # it must then hold exactly the stored vectors.
    try:
        index = _faiss().read_index(str(index_path))
    except RuntimeError as exc:
        return Check("faiss", WARNING, f"{INDEX_NAME} unreadable ({' '.join(str(exc).split())[:120]}): "
                     "it is rebuilt at the next search", fix=fix, repairable=True)
    detail = f"{index.ntotal} vectors in {INDEX_NAME} (generation {side_gen}) for {len(vector_ids)} stored"
    dim = int(meta["dim"]) if str(meta.get("dim", "")).isdigit() else 0
    if dim and index.d != dim:
        return Check("faiss", PROBLEM, detail, f"index dimension {index.d}, store dimension {dim}", fix,
                     repairable=True)
    if index.ntotal != len(vector_ids):
        # Searches notice a count mismatch and rebuild; still worth saying.
        return Check("faiss", PROBLEM, detail, "the index and the stored vectors differ in number", fix,
                     repairable=True)
    ids = _index_ids(_faiss(), index)
    if ids is None:  # neither an IDMap nor an IVF index: cannot be ours
        return Check("faiss", PROBLEM, detail, "the index is not keyed by passage id", fix, repairable=True)
    ids = np.sort(ids.astype(np.int64))
    if not np.array_equal(ids, np.sort(vector_ids)):
        return Check("faiss", PROBLEM, detail, "the index holds other passage ids than the stored vectors", fix,
                     repairable=True)
    return Check("faiss", OK, detail)


def _index_ids(faiss, index) -> np.ndarray | None:
    """The passage ids an index holds: ``IndexIDMap2`` (exact search) keeps them
    in ``id_map``, an IVF index (large stores) in its inverted lists."""
    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map)
    try:
        ivf = faiss.extract_index_ivf(index)
    except (RuntimeError, AttributeError):
        return None
    lists = ivf.invlists
    parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
             for i in range(ivf.nlist) if lists.list_size(i)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _temp_files(store: StoreBackend) -> list:
    found = []
    for pattern in TEMP_PATTERNS:
        found += [p for p in store.path.glob(pattern) if p.is_file()]
    return sorted(set(found))


def _check_temp(store: StoreBackend) -> Check:
    temps = _temp_files(store)
    if temps:
        return Check("temp_files", WARNING, f"{len(temps)} temporary file(s) left by an interrupted save "
                     f"(e.g. {temps[0].name})", fix="run `equisearch doctor --repair` (removes them)",
                     repairable=True)
    return Check("temp_files", OK, "no leftover temporary files")


def diagnose(store: StoreBackend) -> DoctorReport:
    """Run every check on ``store`` (read-only; safe while an ingest runs).

    The row checks read one consistent snapshot, so an ingest committing
    meanwhile cannot make counts disagree.
    """
    pg = _is_pg(store)
    checks: list[Check] = [_guard("database", _check_database, store) if pg else _guard("sqlite", _check_sqlite, store)]
    counts: dict = {}
    vector_ids = np.zeros(0, dtype=np.int64)
    meta: dict = {}
    try:
        with store.consistent_view():
            meta = store.meta_values()
            counts = store.integrity()
            if pg:
                from .store.postgres import PG_SCHEMA_VERSION

                counts["generation"] = store.generation()
                checks.append(_check_builder(meta, counts, PG_SCHEMA_VERSION))
            else:
                counts["generation"] = int(meta.get("generation", "0") or 0)
                checks.append(_check_builder(meta, counts))
            for name, func, args in (
                ("vectors", _check_vectors, (store, meta, counts)),
                ("documents", _check_documents, (store, counts)),
                ("orphans", _check_orphans, (store,)),
                ("offsets", _check_offsets, (store,)),
            ):
                checks.append(_guard(name, func, *args))
            vector_ids = store.vector_ids()
    except StoreDamaged as exc:
        checks.append(Check("tables", PROBLEM, "the store's tables could not be read", str(exc),
                            "the database is damaged: restore a backup, or move the store aside and re-ingest"))
        return DoctorReport(_where(store), tuple(checks), counts)
    if pg:
        checks.append(_guard("keyword index", _check_keyword_index, store, counts))
        checks.append(_guard("vector index", _check_vector_index, store, meta, vector_ids))
        return DoctorReport(_where(store), tuple(checks), counts)
    checks.append(_guard("fts", _check_fts, store, counts))
    checks.append(_check_faiss(store, meta, vector_ids))
    checks.append(_check_temp(store))
    return DoctorReport(str(store.path), tuple(checks), counts)


def repair(store: StoreBackend) -> DoctorReport:
    """Fix what is derived, then check again; never re-embeds.

    Takes the store's writer lock (raises :class:`~search.errors.StoreLocked`
    with a clear message while an ingest runs). In one transaction: orphan
    aliases, vectors and passages are deleted and the FTS5 index rebuilt from
    ``chunks``; then the FAISS index is rebuilt from the stored vectors and
    temporary files are removed. Returns the report after repair, with
    ``repaired`` naming what was done.
    """
    before = diagnose(store)
    if _is_pg(store):
        return _repair_pg(store, before)
    if any(c.name in ("sqlite", "tables") and not c.ok for c in before.checks):
        # Writing to a damaged database can make it worse: refuse.
        where = getattr(store, "db_path", store.path)  # the database file, where the backend has one
        raise StoreError(
            f"{where} is damaged ({before.problems[0].problem}): restore a backup, "
            "or move the store aside and re-ingest; --repair only rebuilds derived indexes"
        )
    done: list[str] = []
    with Writer.open(store) as w:
        # Orphans deleted bump the generation: readers' FAISS indexes notice.
        orphans = w.repair_derived()
        done += [f"deleted {n} orphan {k}" for k, n in orphans.items() if n]
        done.append("rebuilt the FTS5 keyword index")
        blobs_ok = next((c.ok for c in before.checks if c.name == "vectors"), True)
        if blobs_ok:
            n = w.rebuild_index()
            done.append(f"rebuilt the FAISS index from {n} stored vectors")
        else:
            done.append("FAISS index not rebuilt: stored vectors are damaged (run `equisearch rebuild`)")
        temps = _temp_files(store)
        for p in temps:
            p.unlink(missing_ok=True)
        if temps:
            done.append(f"removed {len(temps)} temporary file(s)")
    log.info("doctor repair: %s", "; ".join(done))
    after = diagnose(store)
    return DoctorReport(after.store, after.checks, after.counts, tuple(done))


def _repair_pg(store: StoreBackend, before: DoctorReport) -> DoctorReport:
    """:func:`repair` on PostgreSQL: re-derive keyword rows, REINDEX, delete orphans; never re-embeds."""
    damaged = [c for c in before.checks if c.name in ("database", "tables") and not c.ok and not c.repairable]
    if damaged:
        raise StoreError(
            f"{_where(store)} is damaged ({damaged[0].problem}): restore a backup, or re-create the database"
            " and re-ingest; --repair only rebuilds derived rows and indexes"
        )
    done: list[str] = []
    with Writer.open(store) as w:
        fixed = w.repair_derived()
        done += [f"deleted {fixed[k]} orphan {k}" for k in ("chunks", "postings", "aliases") if fixed.get(k)]
        if fixed.get("keyword rows"):
            done.append(f"re-indexed the keywords (tsvector, postings) of {fixed['keyword rows']} passage(s)")
        else:
            done.append("checked the keyword index: nothing to re-index")
        if fixed.get("indexes"):
            done.append(f"rebuilt {fixed['indexes']} invalid index(es)")
        blobs_ok = next((c.ok for c in before.checks if c.name == "vectors"), True)
        if blobs_ok:
            n = w.rebuild_index()
            done.append(f"rebuilt the HNSW vector index over {n} stored vectors")
        else:
            done.append("HNSW index not rebuilt: stored vectors are damaged (run `equisearch rebuild`)")
    log.info("doctor repair: %s", "; ".join(done))
    after = diagnose(store)
    return DoctorReport(after.store, after.checks, after.counts, tuple(done))
