"""Documents, passages, aliases, vectors and filters in PostgreSQL.

The same records and values as the SQLite backend's documents.py (tags a
tuple, meta a dict, blocks a list of lists, times from ``now_iso()``), with
PostgreSQL's own storage: tags ``text[]``, meta and blocks ``jsonb``, a
passage's vector in its ``halfvec`` column (float16, as a new SQLite store
keeps them), its tsvector, BM25 length and postings written by the server
in the same transaction (lexical.py's write path).

Many writers at once, no global lock. Every document is one transaction
that first takes transaction-scoped advisory locks on its uri and its text
hash, then looks again at what is stored: two processes that both decided
to add the same uri, or two uris with the same text (``text_hash`` is UNIQUE
here), are serialised on those keys only, and the second one finds the
first's commit. It then does what a later run would have done (nothing, a
replace, or an alias) and says so in :attr:`WriteResult.outcome`. A rebuild
(:meth:`PgDocumentsMixin.replace_passages`) takes the builder lock
exclusively; every other corpus write takes it shared, so no write with the
old model lands in the middle of a rebuild.

Vectors travel as halfvec text literals ('[0.1,0.2,...]', 5 significant
digits: every float16 value exactly) and come back in halfvec's binary form
(big-endian float16), decoded to float32 like the SQLite backend's blobs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ...errors import StoreError, StoreMismatch
from ...types import Chunk, Document, Filters, StoreInfo, now_iso
from ..base import NewChunk, NewDocument, WriteResult
from ..schema import mismatch
from .lexical import CHUNK_LEN_SQL, CHUNK_TSV_SQL

#: Advisory lock key every corpus write takes shared and a rebuild exclusively
#: (the first write of an empty store too: it records the builder).
BUILDER_LOCK = 7_482_010

_DOC_COLUMNS = (
    "d.id, d.uri, d.title, d.site, d.kind, d.date, d.author, d.url, d.language, d.tags, "
    "d.content_hash, d.added_at, d.updated_at, d.pipeline_version"
)
#: A document row with its passage count and aliases (byte order, as SQLite's ORDER BY uri).
_DOC_FULL = (
    f"{_DOC_COLUMNS}, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id),"
    " ARRAY(SELECT a.uri FROM aliases a WHERE a.doc_id = d.id ORDER BY a.uri COLLATE \"C\")"
)
_CHUNK_COLUMNS = "id, doc_id, ord, text, char_start, char_end, page_start, page_end, t_start, t_end, speaker, section"

_INSERT_CHUNK = (
    "INSERT INTO chunks (doc_id, ord, text, char_start, char_end, page_start, page_end, t_start, t_end,"
    " speaker, section, text_hash, vector, tsv, len) VALUES (%(doc_id)s, %(ord)s, %(text)s, %(char_start)s,"
    " %(char_end)s, %(page_start)s, %(page_end)s, %(t_start)s, %(t_end)s, %(speaker)s, %(section)s,"
    f" %(text_hash)s, %(vector)s::halfvec, {CHUNK_TSV_SQL}, {CHUNK_LEN_SQL}) RETURNING id"
)


def _row_to_document(row: Sequence, n_chunks: int = 0, aliases: Sequence[str] = ()) -> Document:
    return Document(
        id=row[0], uri=row[1], title=row[2], site=row[3], kind=row[4], date=row[5], author=row[6], url=row[7],
        language=row[8], tags=tuple(row[9] or ()), content_hash=row[10], added_at=row[11], updated_at=row[12],
        pipeline_version=row[13], n_chunks=int(n_chunks), aliases=tuple(aliases),
    )


def _full_document(row: Sequence) -> Document:
    return _row_to_document(row, row[14], row[15])


def _row_to_chunk(row: Sequence) -> Chunk:
    return Chunk(
        id=row[0], doc_id=row[1], ord=row[2], text=row[3], char_start=row[4], char_end=row[5],
        page_start=row[6], page_end=row[7], t_start=row[8], t_end=row[9], speaker=row[10], section=row[11],
    )


def decode_vector(data: bytes | None) -> np.ndarray | None:
    """A halfvec in binary form (int16 dim, int16 unused, dim big-endian float16) as float32."""
    if data is None:
        return None
    return np.frombuffer(data, dtype=">f2", offset=4).astype(np.float32)


def vector_literal(vec: np.ndarray) -> str:
    """A vector as a halfvec text literal, rounded to float16 first (as the SQLite backend stores it).

    Five significant digits tell every float16 value apart, so the server
    parses back exactly the float16 a SQLite store would hold.
    """
    return "[" + ",".join(["%.5g" % x for x in np.asarray(vec, dtype=np.float16).tolist()]) + "]"


def _clean(text: str) -> str:
    # PostgreSQL text (and jsonb) cannot hold NUL; a lone NUL in an extracted
    # file (charset.py lets a few through) becomes U+FFFD, one character for
    # one, so passage offsets still hold.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _json(value) -> str:
    text = json.dumps(value)
    return text.replace("\\u0000", "\\ufffd") if "\\u0000" in text else text


def _document_values(doc: NewDocument) -> dict:
    return {
        "uri": doc.uri, "title": _clean(doc.title), "site": _clean(doc.site), "kind": doc.kind, "date": doc.date,
        "author": _clean(doc.author), "url": doc.url, "language": doc.language,
        "tags": [_clean(str(t)) for t in doc.tags], "meta": _json(doc.meta or {}),
        "content_hash": doc.content_hash, "text_hash": doc.text_hash, "text": _clean(doc.text),
        "blocks": _json([list(b) for b in doc.blocks]), "pipeline_version": doc.pipeline_version,
    }


_DOC_SETS = ("uri = %(uri)s, title = %(title)s, site = %(site)s, kind = %(kind)s, date = %(date)s,"
             " author = %(author)s, url = %(url)s, language = %(language)s, tags = %(tags)s, meta = %(meta)s::jsonb,"
             " content_hash = %(content_hash)s, text_hash = %(text_hash)s, text = %(text)s,"
             " blocks = %(blocks)s::jsonb, pipeline_version = %(pipeline_version)s")
_DOC_INSERT = (
    "INSERT INTO documents (uri, title, site, kind, date, author, url, language, tags, meta, content_hash,"
    " text_hash, text, blocks, pipeline_version, added_at, updated_at) VALUES (%(uri)s, %(title)s, %(site)s,"
    " %(kind)s, %(date)s, %(author)s, %(url)s, %(language)s, %(tags)s, %(meta)s::jsonb, %(content_hash)s,"
    " %(text_hash)s, %(text)s, %(blocks)s::jsonb, %(pipeline_version)s, %(now)s, %(now)s) RETURNING id"
)


class PgDocumentsMixin:
    """Documents and their passages and vectors (PostgreSQL backend)."""

    # -- documents -------------------------------------------------------
    def find_document(self, uri: str) -> Document | None:
        """The document stored for ``uri`` (its canonical uri or an alias)."""
        row = self.one(
            f"SELECT {_DOC_FULL} FROM documents d WHERE d.id = coalesce("
            "(SELECT id FROM documents WHERE uri = %s), (SELECT doc_id FROM aliases WHERE uri = %s))", (uri, uri))
        return _full_document(row) if row else None

    def find_source(self, ref: str | int) -> Document | None:
        """The document a user means by ``ref``: its id, URI (or an alias), its
        public URL, or a local path as typed (relative to the working directory)."""
        ref = str(ref).strip()
        doc = self.get_document(int(ref)) if ref.isdigit() else None
        if doc is None:
            doc = self.find_document(ref)
        if doc is None and ref.startswith(("http://", "https://")):
            # A file ingested from disk whose manifest gives its public URL.
            row = self.one(f"SELECT {_DOC_FULL} FROM documents d WHERE d.url = %s ORDER BY d.id LIMIT 1", (ref,))
            doc = _full_document(row) if row else None
        elif doc is None and ref:
            doc = self.find_document(str(Path(ref).expanduser().resolve()))
        return doc

    def find_by_text_hash(self, text_hash: str) -> Document | None:
        row = self.one(f"SELECT {_DOC_FULL} FROM documents d WHERE d.text_hash = %s LIMIT 1", (text_hash,))
        return _full_document(row) if row else None

    def get_document(self, doc_id: int) -> Document | None:
        if not -2**63 <= int(doc_id) < 2**63:
            return None
        row = self.one(f"SELECT {_DOC_FULL} FROM documents d WHERE d.id = %s", (int(doc_id),))
        return _full_document(row) if row else None

    def document_text(self, doc_id: int) -> str:
        return self.scalar("SELECT text FROM documents WHERE id = %s", (doc_id,), "")

    def document_meta(self, doc_id: int) -> dict:
        """The free-form metadata of a document (ETag, Last-Modified, source notes...)."""
        return self.scalar("SELECT meta FROM documents WHERE id = %s", (doc_id,), {})

    def document_blocks(self, doc_id: int) -> list[list]:
        """The stored provenance rows of a document (see :attr:`NewDocument.blocks`)."""
        return self.scalar("SELECT blocks FROM documents WHERE id = %s", (doc_id,), [])

    def documents(self) -> list[Document]:
        """All documents with chunk counts, newest first."""
        rows = self.execute(
            f"SELECT {_DOC_COLUMNS}, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) AS n "
            "FROM documents d ORDER BY d.added_at COLLATE \"C\" DESC, d.id DESC")
        alias_map: dict[int, list[str]] = {}
        for uri, doc_id in self.execute("SELECT uri, doc_id FROM aliases ORDER BY uri COLLATE \"C\""):
            alias_map.setdefault(doc_id, []).append(uri)
        return [_row_to_document(r, r[14], alias_map.get(r[0], ())) for r in rows]

    def passage_count(self) -> int:
        return int(self.scalar("SELECT count(*) FROM chunks", default=0))

    def kind_counts(self) -> dict[str, int]:
        """Documents of each kind."""
        return {k: int(n) for k, n in self.execute(
            "SELECT kind, count(*) FROM documents GROUP BY kind ORDER BY kind COLLATE \"C\"")}

    def titles(self) -> list[tuple[int, str]]:
        """(document id, title) of every document: cheap, no chunk counts."""
        return [(r[0], r[1] or "") for r in self.execute("SELECT id, title FROM documents ORDER BY id")]

    def chunk_counts(self, doc_ids: Iterable[int]) -> dict[int, int]:
        """Passages of each document."""
        return {d: int(n) for d, n in self.execute(
            "SELECT doc_id, count(*) FROM chunks WHERE doc_id = ANY(%s) GROUP BY doc_id", (_ids(doc_ids),))}

    def documents_by_ids(self, ids: Iterable[int]) -> dict[int, Document]:
        ids = _ids(set(ids))
        if not ids:
            return {}
        return {r[0]: _row_to_document(r) for r in self.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.id = ANY(%s)", (ids,))}

    # -- passages --------------------------------------------------------
    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, Chunk]:
        ids = _ids(ids)
        if not ids:
            return {}
        return {r[0]: _row_to_chunk(r) for r in self.execute(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id = ANY(%s)", (ids,))}

    def chunks_of(self, doc_id: int) -> list[Chunk]:
        return [_row_to_chunk(r) for r in self.execute(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE doc_id = %s ORDER BY ord", (doc_id,))]

    def iter_chunks(self, batch: int = 5000) -> Iterator[Chunk]:
        """Every passage of a stored document, in chunk id order (read in batches)."""
        last = -1
        while True:
            rows = self.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id > %s ORDER BY id LIMIT %s",
                                (last, batch))
            if not rows:
                return
            for row in rows:
                yield _row_to_chunk(row)
            last = rows[-1][0]

    def find_passage(self, doc_id: int, text: str) -> int | None:
        """The id of the document's first passage whose text is exactly ``text``."""
        return self.scalar("SELECT id FROM chunks WHERE doc_id = %s AND text = %s ORDER BY ord LIMIT 1",
                           (doc_id, _clean(text)))

    def chunk_ids_of(self, doc_ids: Iterable[int]) -> np.ndarray:
        ids = _ids(doc_ids)
        if not ids:
            return np.zeros(0, dtype=np.int64)
        rows = self.execute("SELECT id FROM chunks WHERE doc_id = ANY(%s)", (ids,))
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def chunk_text_hashes(self, doc_id: int) -> dict[int, str]:
        """Chunk id -> the hash its vector was made from, for one document."""
        return dict(self.execute("SELECT id, text_hash FROM chunks WHERE doc_id = %s", (doc_id,)))

    def doc_ids_of(self, chunk_ids: Sequence[int]) -> dict[int, int]:
        """Chunk id -> its document id."""
        ids = _ids(chunk_ids)
        if not ids:
            return {}
        return dict(self.execute("SELECT id, doc_id FROM chunks WHERE id = ANY(%s)", (ids,)))

    # -- filters ---------------------------------------------------------
    def _filter_where(self, filters: Filters | None, alias: str = "d", *, named: bool = False) -> tuple[str, list | dict]:
        """A SQL condition over ``documents`` (as ``alias``) and its parameters: SQLite's ``filter_sql`` rules.

        ``TRUE`` and no parameters when nothing is filtered. Placeholders are
        ``%s`` with a list of parameters, or with ``named`` ``%(f_0)s``... with
        a dict, for statements that use named placeholders themselves.
        """
        params: list = []

        def mark(value) -> str:
            params.append(value)
            return f"%(f_{len(params) - 1})s" if named else "%s"

        if filters is None or filters.is_empty():
            return "TRUE", ({} if named else [])
        parts = []
        if filters.kinds:
            parts.append(f"{alias}.kind = ANY({mark(list(filters.kinds))}::text[])")
        if filters.sites:
            parts.append(f"{alias}.site = ANY({mark(list(filters.sites))}::text[])")
        if filters.date_from:
            parts.append(f"{alias}.date <> '' AND {alias}.date COLLATE \"C\" >= {mark(filters.date_from)}")
        if filters.date_to:
            # "2020" as an upper bound includes all of 2020.
            parts.append(f"{alias}.date <> '' AND substr({alias}.date, 1, {mark(len(filters.date_to))})"
                         f" COLLATE \"C\" <= {mark(filters.date_to)}")
        if filters.tags:
            # Every tag asked for (SQLite's one EXISTS per tag).
            parts.append(f"{alias}.tags @> {mark(list(filters.tags))}::text[]")
        sql = " AND ".join(parts)
        return sql, ({f"f_{i}": v for i, v in enumerate(params)} if named else params)

    def chunk_ids_matching(self, filters: Filters) -> np.ndarray:
        where, params = self._filter_where(filters)
        rows = self.execute(f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def integrity(self) -> dict:
        """Counts a health check compares (used by stats and doctor)."""
        row = self.one(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks),"
            " (SELECT count(*) FROM chunks WHERE vector IS NOT NULL), (SELECT count(*) FROM postings)")
        return {"documents": int(row[0]), "chunks": int(row[1]), "vectors": int(row[2]), "postings": int(row[3])}

    # -- vectors ---------------------------------------------------------
    def _vector_rows(self, sql: str, params=None) -> list[tuple]:
        """Rows whose last column is a halfvec, read in binary (other columns as usual)."""
        with self.connection() as conn, self._errors():
            cur = conn.cursor(binary=True)
            cur.execute(sql, params)
            return cur.fetchall()

    def vectors_by_text_hash(self, doc_id: int) -> dict[str, np.ndarray]:
        """Vectors of a document's chunks keyed by chunk text hash (for reuse)."""
        rows = self._vector_rows("SELECT text_hash, vector FROM chunks WHERE doc_id = %s AND vector IS NOT NULL",
                                 (doc_id,))
        return {h: decode_vector(v) for h, v in rows}

    def vectors_by_ids(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Stored vectors (float32) of these chunk ids."""
        ids = _ids(ids)
        if not ids:
            return {}
        rows = self._vector_rows("SELECT id, vector FROM chunks WHERE id = ANY(%s) AND vector IS NOT NULL", (ids,))
        return {cid: decode_vector(v) for cid, v in rows}

    def document_vectors(self, doc_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Each document's passage vectors averaged and normalised (its topic as one vector).

        Summed in float32 here, as the SQLite backend does (pgvector's avg()
        of halfvecs would round the mean to float16).
        """
        ids = _ids(doc_ids)
        if not ids:
            return {}
        sums: dict[int, np.ndarray] = {}
        for doc_id, data in self._vector_rows(
                "SELECT doc_id, vector FROM chunks WHERE doc_id = ANY(%s) AND vector IS NOT NULL", (ids,)):
            vec = decode_vector(data)
            if doc_id in sums:
                sums[doc_id] += vec
            else:
                sums[doc_id] = vec.copy()
        out = {}
        for doc_id, v in sums.items():
            n = float(np.linalg.norm(v))
            out[doc_id] = v / n if n else v
        return out

    def iter_vectors(self, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, vectors) in batches, in chunk id order."""
        last = -1
        while True:
            rows = self._vector_rows(
                "SELECT id, vector FROM chunks WHERE id > %s AND vector IS NOT NULL ORDER BY id LIMIT %s",
                (last, batch))
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.stack([decode_vector(r[1]) for r in rows])
            last = int(ids[-1])
            yield ids, vecs

    def vector_count(self) -> int:
        return int(self.scalar("SELECT count(*) FROM chunks WHERE vector IS NOT NULL", default=0))

    # -- writes ----------------------------------------------------------
    def _lock_keys(self, conn, *keys: str) -> None:
        """Transaction-scoped advisory locks on these names, in one order (two writers never deadlock)."""
        conn.execute(
            "SELECT pg_advisory_xact_lock(k) FROM"
            " (SELECT DISTINCT hashtextextended(x, 0) AS k FROM unnest(%s::text[]) x ORDER BY k OFFSET 0) s",
            (list(keys),))

    def _builder_check(self, conn, model: str, dim: int, chunking: str, *, exclusive: bool = False) -> None:
        """Take the builder lock (shared; exclusive for a rebuild or an empty store's first write) and
        refuse a write from another model, dimension or chunking (the one rule, :func:`mismatch`).

        Reads only ``meta`` before the lock: the first write may change the
        vector column, which must not wait on a lock this transaction holds.
        """
        def recorded() -> StoreInfo:
            meta = dict(conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('model', 'dim', 'chunking')").fetchall())
            return StoreInfo(schema_version=0, model=meta.get("model", ""), dim=int(meta.get("dim") or 0),
                             chunking=meta.get("chunking", ""))

        if exclusive or not recorded().model:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (BUILDER_LOCK,))
        else:
            conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (BUILDER_LOCK,))
        if not exclusive:
            problem = mismatch(self.display, recorded(), model, dim, chunking)
            if problem:
                raise StoreMismatch(problem)

    def _corpus_lock(self, conn) -> None:
        """The builder lock, shared: this write may not interleave with a rebuild."""
        conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (BUILDER_LOCK,))

    def write_document(
        self,
        doc: NewDocument,
        chunks: Sequence[NewChunk],
        vectors: np.ndarray,
        *,
        model: str,
        dim: int,
        chunking: str,
        replace_id: int | None = None,
        aliases: Sequence[str] = (),
    ) -> WriteResult:
        """Insert ``doc`` (or replace document ``replace_id``) in one transaction.

        The document, its passages with their vectors, tsvectors and
        postings, and its aliases are written together or not at all; a
        replace deletes the old passages in the same transaction, so a
        reader's consistent view sees the old version or the new one.

        Locked on the uri and the text hash, then checked again: when another
        writer stored ``doc.uri`` meanwhile with the same text, nothing is
        written (outcome ``unchanged``); with other text it is replaced
        (``updated``); when another document holds this text, ``doc.uri``
        (and ``aliases``) become its aliases (``duplicate``; a replaced
        document whose new text another one holds is removed in favour of
        it). ``doc_id`` is then the document that holds the text.
        """
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if vectors.ndim != 2 or (len(vectors) and vectors.shape[1] != dim):
            raise ValueError(f"vectors must be (n, {dim})")
        now = now_iso()
        values = {**_document_values(doc), "now": now}
        # Encoded before the transaction: the locks are held for the writes only.
        rows = self._chunk_rows(chunks, vectors, values["title"])
        others = [a for a in dict.fromkeys(aliases) if a != doc.uri]
        with self.transaction() as conn:
            self._builder_check(conn, model, dim, chunking)
            self._lock_keys(conn, "uri:" + doc.uri, "text:" + doc.text_hash, *("uri:" + a for a in others))
            outcome = ""
            target = None
            if replace_id is not None:
                target = conn.execute("SELECT id FROM documents WHERE id = %s FOR UPDATE", (replace_id,)).fetchone()
                target = target[0] if target else None  # removed meanwhile: stored anew below
            if target is None:
                found = conn.execute("SELECT id, text_hash FROM documents WHERE uri = %s FOR UPDATE",
                                     (doc.uri,)).fetchone()
                if found is not None and found[1] == doc.text_hash:
                    self._add_aliases(conn, found[0], others)
                    return WriteResult(found[0], (), (), outcome="unchanged")
                if found is not None:
                    target, outcome = found[0], "updated"
                else:
                    held = conn.execute("SELECT d.id, d.text_hash FROM aliases a JOIN documents d ON d.id = a.doc_id"
                                        " WHERE a.uri = %s", (doc.uri,)).fetchone()
                    if held is not None and held[1] == doc.text_hash:
                        self._add_aliases(conn, held[0], others)
                        return WriteResult(held[0], (), (), outcome="unchanged")
                    if held is not None:  # an alias whose text has changed: a document of its own now
                        conn.execute("DELETE FROM aliases WHERE uri = %s", (doc.uri,))
            twin = conn.execute("SELECT id FROM documents WHERE text_hash = %s AND id IS DISTINCT FROM %s"
                                " FOR KEY SHARE", (doc.text_hash, target)).fetchone()
            if twin is not None:
                removed: list[int] = []
                if target is not None:
                    conn.execute("UPDATE aliases SET doc_id = %s WHERE doc_id = %s", (twin[0], target))
                    removed = [r[0] for r in conn.execute("DELETE FROM chunks WHERE doc_id = %s RETURNING id",
                                                          (target,))]
                    conn.execute("DELETE FROM documents WHERE id = %s", (target,))
                    self._bump_generation(conn)
                self._add_aliases(conn, twin[0], [doc.uri, *others])
                return WriteResult(twin[0], (), tuple(removed), outcome="duplicate")
            self._ensure_dimension(conn, dim)
            removed = []
            if target is not None:
                removed = [r[0] for r in conn.execute("DELETE FROM chunks WHERE doc_id = %s RETURNING id", (target,))]
                conn.execute(f"UPDATE documents SET {_DOC_SETS}, updated_at = %(now)s WHERE id = %(id)s",
                             {**values, "id": target})
                doc_id = target
            else:
                doc_id = conn.execute(_DOC_INSERT, values).fetchone()[0]
                if replace_id is not None:
                    outcome = "added"  # the document to replace was removed meanwhile
            self._add_aliases(conn, doc_id, others)
            added = self._insert_chunks(conn, doc_id, rows)
            self._record_builder(conn, model, dim, chunking)
            self._bump_generation(conn)
        return WriteResult(doc_id, tuple(added), tuple(removed), outcome=outcome)

    def _add_aliases(self, conn, doc_id: int, uris: Iterable[str]) -> None:
        uris = list(uris)
        if uris:
            conn.cursor().executemany(
                "INSERT INTO aliases (uri, doc_id) VALUES (%s, %s) ON CONFLICT (uri) DO UPDATE SET doc_id = excluded.doc_id",
                [(u, doc_id) for u in uris])

    @staticmethod
    def _chunk_rows(chunks: Sequence[NewChunk], vectors: np.ndarray, title: str) -> list[dict]:
        return [
            {"ord": i, "text": _clean(ch.text), "char_start": ch.char_start, "char_end": ch.char_end,
             "page_start": ch.page_start, "page_end": ch.page_end, "t_start": ch.t_start, "t_end": ch.t_end,
             "speaker": _clean(ch.speaker), "section": _clean(ch.section), "text_hash": ch.text_hash,
             "vector": vector_literal(vectors[i]), "title": title}
            for i, ch in enumerate(chunks)
        ]

    def _insert_chunks(self, conn, doc_id: int, rows: list[dict]) -> list[int]:
        """A document's passages (one pipelined executemany) and their postings; ids in ord order."""
        if not rows:
            return []
        cur = conn.cursor()
        cur.executemany(_INSERT_CHUNK, [{**r, "doc_id": doc_id} for r in rows], returning=True)
        ids = []
        while True:
            ids.append(cur.fetchone()[0])
            if not cur.nextset():
                break
        self._write_postings(conn, ids)
        return ids

    def remove_document(self, doc_id: int) -> WriteResult:
        """Delete a document with its passages, postings and aliases (the foreign keys cascade)."""
        with self.transaction() as conn:
            self._corpus_lock(conn)
            removed = [r[0] for r in conn.execute("DELETE FROM chunks WHERE doc_id = %s RETURNING id", (doc_id,))]
            conn.execute("DELETE FROM documents WHERE id = %s", (doc_id,))
            self._bump_generation(conn)
        return WriteResult(doc_id, (), tuple(removed))

    def replace_passages(
        self,
        passages: Iterable[tuple[int, Sequence[NewChunk], np.ndarray]],
        *,
        model: str,
        dim: int,
        chunking: str,
    ) -> int:
        """Delete every passage and write ``passages`` instead, in ONE transaction.

        ``passages`` yields (document id, its new chunks, their vectors); it
        is consumed inside the transaction, so it may embed as it goes.
        Readers keep seeing the old passages until the commit (a model of
        another dimension changes the vector column, which holds readers back
        until then), and an error part-way leaves the store as it was.
        Holds the builder lock exclusively: other writers wait, then find the
        new builder. A document added after the caller listed the documents
        would be left without passages: the rebuild then fails, to be run
        again. Returns the number of passages written.
        """
        n = 0
        done: set[int] = set()
        with self.transaction() as conn:
            # Maintenance, not a page waiting: the statement timeout does not apply.
            conn.execute("SET LOCAL statement_timeout = 0")
            self._builder_check(conn, model, dim, chunking, exclusive=True)
            conn.execute("DELETE FROM chunks")
            self._ensure_dimension(conn, dim)
            for doc_id, chunks, vectors in passages:
                row = conn.execute("SELECT title FROM documents WHERE id = %s FOR KEY SHARE", (doc_id,)).fetchone()
                if row is None:  # removed after the caller listed it
                    continue
                self._insert_chunks(conn, doc_id, self._chunk_rows(chunks, vectors, row[0]))
                done.add(doc_id)
                n += len(chunks)
            left = [r[0] for r in conn.execute(
                "SELECT d.uri FROM documents d WHERE NOT (d.id = ANY(%s))"
                " AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.doc_id = d.id) LIMIT 3", (list(done),))]
            if left:
                raise StoreError(f"{left[0]} was added while rebuilding and has no passages now: nothing was changed,"
                                 " run `equisearch rebuild` again")
            self.record_builder(conn, model, dim, chunking)
        return n

    def add_alias(self, doc_id: int, uri: str) -> None:
        with self.transaction() as conn:
            self._add_aliases(conn, doc_id, [uri])

    def remove_alias(self, uri: str) -> None:
        """Forget that ``uri`` is another location of some document."""
        self.execute("DELETE FROM aliases WHERE uri = %s", (uri,))

    def update_metadata(self, doc_id: int, **fields) -> None:
        """Change descriptive fields (title, site, kind, date, ...) without re-embedding.

        A new title re-indexes the document's passages (their tsvectors and
        postings hold it) in the same transaction.
        """
        allowed = {"title", "site", "kind", "date", "author", "url", "language", "tags", "content_hash"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        if not fields:
            return
        values = {k: (_clean(v) if isinstance(v, str) else v) for k, v in fields.items()}
        if "tags" in values:
            values["tags"] = [_clean(str(t)) for t in values["tags"]]
        sets = ", ".join(f"{k} = %({k})s" for k in values)
        with self.transaction() as conn:
            self._corpus_lock(conn)
            old = conn.execute("SELECT title FROM documents WHERE id = %s FOR UPDATE", (doc_id,)).fetchone()
            conn.execute(f"UPDATE documents SET {sets}, updated_at = %(now)s WHERE id = %(id)s",
                         {**values, "now": now_iso(), "id": doc_id})
            if old is not None and "title" in values and values["title"] != old[0]:
                self._retitle(conn, doc_id)
            self._bump_generation(conn)

    def record_extraction(self, doc_id: int, content_hash: str, pipeline_version: str,
                          meta: dict | None = None) -> None:
        """Record that a document's source was read again and gave the same passages.

        Only the new content hash and pipeline version (and the free-form
        ``meta``) are written: the passages keep their ids, and readers see no
        new generation.
        """
        if meta is None:
            self.execute("UPDATE documents SET content_hash = %s, pipeline_version = %s WHERE id = %s",
                         (content_hash, pipeline_version, doc_id))
        else:
            self.execute("UPDATE documents SET content_hash = %s, pipeline_version = %s, meta = %s::jsonb WHERE id = %s",
                         (content_hash, pipeline_version, _json(meta), doc_id))


def _ids(values: Iterable) -> list[int]:
    """Ids as a list of Python ints (numpy arrays and sets included) for an ``= ANY(%s)`` parameter."""
    if isinstance(values, np.ndarray):
        return values.astype(np.int64).tolist()
    return [int(v) for v in values]
