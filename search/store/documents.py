"""Documents, passages, aliases, vector blobs and filters in SQLite.

Every write is one transaction that bumps the generation (except
:meth:`DocumentsMixin.record_extraction`, which changes nothing a reader
sees). Vectors are blobs in the store's ``vector_dtype`` (float16 for new
stores), decoded to float32 on read. Batched lookups go 500 ids at a time,
below SQLite's bound-parameter limit.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..types import Chunk, Document, Filters, now_iso
from .base import NewChunk, NewDocument, WriteResult
from .damage import reports_damage

_DOC_COLUMNS = (
    "d.id, d.uri, d.title, d.site, d.kind, d.date, d.author, d.url, d.language, d.tags, "
    "d.content_hash, d.added_at, d.updated_at, d.pipeline_version"
)


def _row_to_document(row: sqlite3.Row, n_chunks: int = 0, aliases: Sequence[str] = ()) -> Document:
    return Document(
        id=row["id"],
        uri=row["uri"],
        title=row["title"],
        site=row["site"],
        kind=row["kind"],
        date=row["date"],
        author=row["author"],
        url=row["url"],
        language=row["language"],
        tags=tuple(json.loads(row["tags"] or "[]")),
        content_hash=row["content_hash"],
        pipeline_version=row["pipeline_version"],
        added_at=row["added_at"],
        updated_at=row["updated_at"],
        n_chunks=n_chunks,
        aliases=tuple(aliases),
    )


def _row_to_chunk(row: sqlite3.Row) -> Chunk:
    return Chunk(
        id=row["id"],
        doc_id=row["doc_id"],
        ord=row["ord"],
        text=row["text"],
        char_start=row["char_start"],
        char_end=row["char_end"],
        page_start=row["page_start"],
        page_end=row["page_end"],
        t_start=row["t_start"],
        t_end=row["t_end"],
        speaker=row["speaker"],
        section=row["section"],
    )


class DocumentsMixin:
    """Documents and their passages and vectors (SQLite backend)."""

    def _decode(self, blob: bytes, dtype: str) -> np.ndarray:
        return np.frombuffer(blob, dtype=np.float16 if dtype == "float16" else np.float32).astype(np.float32)


    # -- documents -------------------------------------------------------
    def find_document(self, uri: str) -> Document | None:
        """The document stored for ``uri`` (its canonical uri or an alias)."""
        row = self.conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.uri = ? "
            f"UNION ALL SELECT {_DOC_COLUMNS} FROM documents d JOIN aliases a ON a.doc_id = d.id WHERE a.uri = ? "
            "LIMIT 1",
            (uri, uri),
        ).fetchone()
        return self._complete_document(row) if row else None

    def find_source(self, ref: str | int) -> Document | None:
        """The document a user means by ``ref``: its id, URI (or an alias), its
        public URL, or a local path as typed (relative to the working directory)."""
        ref = str(ref).strip()
        doc = self.get_document(int(ref)) if ref.isdigit() else None
        if doc is None:
            doc = self.find_document(ref)
        if doc is None and ref.startswith(("http://", "https://")):
            # A file ingested from disk whose manifest gives its public URL.
            row = self.conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.url = ? ORDER BY d.id LIMIT 1",
                                    (ref,)).fetchone()
            doc = self._complete_document(row) if row else None
        elif doc is None and ref:
            doc = self.find_document(str(Path(ref).expanduser().resolve()))
        return doc

    def find_by_text_hash(self, text_hash: str) -> Document | None:
        row = self.conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.text_hash = ? LIMIT 1", (text_hash,)
        ).fetchone()
        return self._complete_document(row) if row else None

    def _complete_document(self, row: sqlite3.Row) -> Document:
        n = self.conn.execute("SELECT count(*) FROM chunks WHERE doc_id = ?", (row["id"],)).fetchone()[0]
        aliases = [r[0] for r in self.conn.execute("SELECT uri FROM aliases WHERE doc_id = ? ORDER BY uri", (row["id"],))]
        return _row_to_document(row, n, aliases)

    def get_document(self, doc_id: int) -> Document | None:
        row = self.conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.id = ?", (doc_id,)).fetchone()
        return self._complete_document(row) if row else None

    def document_text(self, doc_id: int) -> str:
        row = self.conn.execute("SELECT text FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return row[0] if row else ""

    def document_meta(self, doc_id: int) -> dict:
        """The free-form metadata of a document (ETag, Last-Modified, source notes...)."""
        row = self.conn.execute("SELECT meta FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return json.loads(row[0]) if row else {}

    def document_blocks(self, doc_id: int) -> list[list]:
        """The stored provenance rows of a document (see :attr:`NewDocument.blocks`)."""
        row = self.conn.execute("SELECT blocks FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return json.loads(row[0]) if row else []

    def documents(self) -> list[Document]:
        """All documents with chunk counts, newest first."""
        rows = self.conn.execute(
            f"SELECT {_DOC_COLUMNS}, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) AS n "
            "FROM documents d ORDER BY d.added_at DESC, d.id DESC"
        ).fetchall()
        alias_map: dict[int, list[str]] = {}
        for uri, doc_id in self.conn.execute("SELECT uri, doc_id FROM aliases ORDER BY uri"):
            alias_map.setdefault(doc_id, []).append(uri)
        return [_row_to_document(r, r["n"], alias_map.get(r["id"], ())) for r in rows]

    def passage_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def kind_counts(self) -> dict[str, int]:
        """Documents of each kind."""
        return dict(self.conn.execute("SELECT kind, count(*) FROM documents GROUP BY kind ORDER BY kind").fetchall())

    def titles(self) -> list[tuple[int, str]]:
        """(document id, title) of every document: cheap, no chunk counts."""
        return [(r[0], r[1] or "") for r in self.conn.execute("SELECT id, title FROM documents")]


    def chunk_counts(self, doc_ids: Iterable[int]) -> dict[int, int]:
        """Passages of each document."""
        out: dict[int, int] = {}
        for part in _batches(list(doc_ids), 500):
            marks = ",".join("?" * len(part))
            out.update(self.conn.execute(
                f"SELECT doc_id, count(*) FROM chunks WHERE doc_id IN ({marks}) GROUP BY doc_id", part).fetchall())
        return out

    def chunk_ids_of(self, doc_ids: Iterable[int]) -> np.ndarray:
        ids = list(doc_ids)
        out: list[int] = []
        for part in _batches(ids, 500):
            marks = ",".join("?" * len(part))
            out += [r[0] for r in self.conn.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", part)]
        return np.asarray(out, dtype=np.int64)

    def documents_by_ids(self, ids: Iterable[int]) -> dict[int, Document]:
        ids = list(set(ids))
        if not ids:
            return {}
        out = {}
        for part in _batches(ids, 500):
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.id IN ({marks})", part):
                out[row["id"]] = _row_to_document(row)
        return out

    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, Chunk]:
        out: dict[int, Chunk] = {}
        for part in _batches(list(ids), 500):
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(f"SELECT * FROM chunks WHERE id IN ({marks})", part):
                out[row["id"]] = _row_to_chunk(row)
        return out

    def chunks_of(self, doc_id: int) -> list[Chunk]:
        rows = self.conn.execute("SELECT * FROM chunks WHERE doc_id = ? ORDER BY ord", (doc_id,))
        return [_row_to_chunk(r) for r in rows]

    def iter_chunks(self, batch: int = 5000) -> Iterator[Chunk]:
        """Every passage of a stored document, in chunk id order (read in batches)."""
        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT c.* FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id > ? ORDER BY c.id LIMIT ?",
                (last, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield _row_to_chunk(row)
            last = rows[-1]["id"]

    def find_passage(self, doc_id: int, text: str) -> int | None:
        """The id of the document's first passage whose text is exactly ``text``."""
        row = self.conn.execute(
            "SELECT id FROM chunks WHERE doc_id = ? AND text = ? ORDER BY ord LIMIT 1", (doc_id, text)
        ).fetchone()
        return row[0] if row else None

    def chunk_text_hashes(self, doc_id: int) -> dict[int, str]:
        """Chunk id -> the hash its vector was made from, for one document."""
        return dict(self.conn.execute("SELECT id, text_hash FROM chunks WHERE doc_id = ?", (doc_id,)).fetchall())

    def vectors_by_text_hash(self, doc_id: int) -> dict[str, np.ndarray]:
        """Vectors of a document's chunks keyed by chunk text hash (for reuse)."""
        rows = self.conn.execute(
            "SELECT c.text_hash, v.vec FROM chunks c JOIN vectors v ON v.chunk_id = c.id WHERE c.doc_id = ?",
            (doc_id,),
        )
        dtype = self.vector_dtype()
        return {h: self._decode(b, dtype) for h, b in rows}

    def vectors_by_ids(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Stored vectors (float32) of these chunk ids."""
        dtype = self.vector_dtype()
        out: dict[int, np.ndarray] = {}
        for part in _batches(list(ids), 500):
            marks = ",".join("?" * len(part))
            for cid, blob in self.conn.execute(f"SELECT chunk_id, vec FROM vectors WHERE chunk_id IN ({marks})", part):
                out[cid] = self._decode(blob, dtype)
        return out

    def doc_ids_of(self, chunk_ids: Sequence[int]) -> dict[int, int]:
        """Chunk id -> its document id."""
        out: dict[int, int] = {}
        for part in _batches(list(chunk_ids), 500):
            marks = ",".join("?" * len(part))
            out.update(self.conn.execute(f"SELECT id, doc_id FROM chunks WHERE id IN ({marks})", part).fetchall())
        return out

    def document_vectors(self, doc_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Each document's passage vectors averaged and normalised (its topic as one vector)."""
        dtype = self.vector_dtype()
        sums: dict[int, np.ndarray] = {}
        for part in _batches(list(doc_ids), 200):
            marks = ",".join("?" * len(part))
            for doc_id, blob in self.conn.execute(
                    f"SELECT c.doc_id, v.vec FROM chunks c JOIN vectors v ON v.chunk_id = c.id "
                    f"WHERE c.doc_id IN ({marks})", part):
                vec = self._decode(blob, dtype)
                if doc_id in sums:
                    sums[doc_id] += vec
                else:
                    sums[doc_id] = vec.copy()
        out = {}
        for doc_id, v in sums.items():
            n = float(np.linalg.norm(v))
            out[doc_id] = v / n if n else v
        return out

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

        The chunks, their vectors and FTS rows are written together; if
        anything fails nothing of this document is stored and the previous
        version (if any) is left as it was.
        """
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if vectors.ndim != 2 or (len(vectors) and vectors.shape[1] != dim):
            raise ValueError(f"vectors must be (n, {dim})")
        now = now_iso()
        with self.transaction() as conn:
            # Re-check inside the write transaction: another writer may have
            # recorded a model since we last looked.
            self.check_compatible(model, dim, chunking)
            removed: list[int] = []
            if replace_id is not None:
                removed = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (replace_id,))]
                conn.execute("DELETE FROM chunks WHERE doc_id = ?", (replace_id,))
                conn.execute(
                    "UPDATE documents SET uri=?, title=?, site=?, kind=?, date=?, author=?, url=?, language=?,"
                    " tags=?, meta=?, content_hash=?, text_hash=?, text=?, blocks=?, pipeline_version=?, updated_at=?"
                    " WHERE id=?",
                    (*_document_values(doc), now, replace_id),
                )
                doc_id = replace_id
            else:
                cur = conn.execute(
                    "INSERT INTO documents(uri, title, site, kind, date, author, url, language, tags, meta,"
                    " content_hash, text_hash, text, blocks, pipeline_version, added_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (*_document_values(doc), now, now),
                )
                doc_id = cur.lastrowid
            for alias in aliases:
                if alias != doc.uri:
                    conn.execute(
                        "INSERT INTO aliases(uri, doc_id) VALUES (?, ?) ON CONFLICT(uri) DO UPDATE SET doc_id = excluded.doc_id",
                        (alias, doc_id),
                    )
            added = self.insert_chunks(conn, doc_id, chunks, vectors)
            self._record_builder(conn, model, dim, chunking)
            self._bump_generation(conn)
        return WriteResult(doc_id, tuple(added), tuple(removed))

    def insert_chunks(
        self, conn: sqlite3.Connection, doc_id: int, chunks: Sequence[NewChunk], vectors: np.ndarray
    ) -> list[int]:
        """Insert passages and their vectors inside the caller's transaction.

        Vectors are encoded in the store's :meth:`vector_dtype`, recorded in
        ``meta`` by the first write; all rows of one document go in with one
        ``executemany`` per table.
        """
        dtype = self.vector_dtype()
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('vector_dtype', ?)", (dtype,))
        vecs = np.ascontiguousarray(vectors, dtype=np.float16 if dtype == "float16" else np.float32)
        added = []
        for i, ch in enumerate(chunks):
            cur = conn.execute(
                "INSERT INTO chunks(doc_id, ord, text, char_start, char_end, page_start, page_end,"
                " t_start, t_end, speaker, section, text_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    doc_id, i, ch.text, ch.char_start, ch.char_end, ch.page_start, ch.page_end,
                    ch.t_start, ch.t_end, ch.speaker, ch.section, ch.text_hash,
                ),
            )
            added.append(cur.lastrowid)
        conn.executemany("INSERT INTO vectors(chunk_id, vec) VALUES (?, ?)",
                         [(cid, vecs[i].tobytes()) for i, cid in enumerate(added)])
        return added


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
        Readers keep seeing the old passages until the commit, and an error
        or a crash part-way leaves the old store exactly as it was. Records
        ``model``/``dim``/``chunking`` as the new builder. Returns the number
        of passages written.
        """
        n = 0
        with self.transaction() as conn:
            conn.execute("DELETE FROM chunks")
            for doc_id, chunks, vectors in passages:
                self.insert_chunks(conn, doc_id, chunks, vectors)
                n += len(chunks)
            self.record_builder(conn, model, dim, chunking)
        return n

    def add_alias(self, doc_id: int, uri: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO aliases(uri, doc_id) VALUES (?, ?) ON CONFLICT(uri) DO UPDATE SET doc_id = excluded.doc_id",
                (uri, doc_id),
            )

    def remove_alias(self, uri: str) -> None:
        """Forget that ``uri`` is another location of some document."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM aliases WHERE uri = ?", (uri,))

    def update_metadata(self, doc_id: int, **fields) -> None:
        """Change descriptive fields (title, site, kind, date, ...) without re-embedding."""
        allowed = {"title", "site", "kind", "date", "author", "url", "language", "tags", "content_hash"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        if not fields:
            return
        if "tags" in fields:
            fields["tags"] = json.dumps(list(fields["tags"]))
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE documents SET {sets}, updated_at = ? WHERE id = ?", (*fields.values(), now_iso(), doc_id)
            )
            self._bump_generation(conn)

    def record_extraction(self, doc_id: int, content_hash: str, pipeline_version: str,
                          meta: dict | None = None) -> None:
        """Record that a document's source was read again and gave the same passages.

        Re-ingesting with a newer pipeline re-reads every source; when the
        text, blocks and passages come out the same, only the new content
        hash and pipeline version (and the free-form ``meta``, e.g. a new
        ETag) are written: the passages keep their ids, so reading-list
        items and the vector index stay as they are, and readers see no new
        generation.
        """
        with self.transaction() as conn:
            if meta is None:
                conn.execute("UPDATE documents SET content_hash = ?, pipeline_version = ? WHERE id = ?",
                             (content_hash, pipeline_version, doc_id))
            else:
                conn.execute("UPDATE documents SET content_hash = ?, pipeline_version = ?, meta = ? WHERE id = ?",
                             (content_hash, pipeline_version, json.dumps(meta), doc_id))

    def remove_document(self, doc_id: int) -> WriteResult:
        """Delete a document with its chunks, vectors, FTS rows and aliases."""
        with self.transaction() as conn:
            removed = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))]
            conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            conn.execute("DELETE FROM aliases WHERE doc_id = ?", (doc_id,))
            conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            self._bump_generation(conn)
        return WriteResult(doc_id, (), tuple(removed))

    # -- vectors ---------------------------------------------------------
    def iter_vectors(self, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, vectors) in batches, in chunk id order."""
        dim = int(self.get_meta("dim", "0") or 0)
        dtype = np.float16 if self.vector_dtype() == "float16" else np.float32
        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT chunk_id, vec FROM vectors WHERE chunk_id > ? ORDER BY chunk_id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=dtype).reshape(len(rows), dim)
            vecs = np.ascontiguousarray(vecs, dtype=np.float32)
            last = int(ids[-1])
            yield ids, vecs

    def vector_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM vectors").fetchone()[0]

    # -- filters ---------------------------------------------------------
    def filter_sql(self, filters: Filters | None, alias: str = "d") -> tuple[str, list]:
        """A SQL condition over ``documents`` (as ``alias``) and its parameters."""
        if filters is None or filters.is_empty():
            return "1", []
        parts, params = [], []
        if filters.kinds:
            parts.append(f"{alias}.kind IN ({','.join('?' * len(filters.kinds))})")
            params += list(filters.kinds)
        if filters.sites:
            parts.append(f"{alias}.site IN ({','.join('?' * len(filters.sites))})")
            params += list(filters.sites)
        if filters.date_from:
            parts.append(f"{alias}.date != '' AND {alias}.date >= ?")
            params.append(filters.date_from)
        if filters.date_to:
            # "2020" as an upper bound includes all of 2020.
            parts.append(f"{alias}.date != '' AND substr({alias}.date, 1, ?) <= ?")
            params += [len(filters.date_to), filters.date_to]
        for tag in filters.tags:
            parts.append(f"EXISTS (SELECT 1 FROM json_each({alias}.tags) WHERE json_each.value = ?)")
            params.append(tag)
        return " AND ".join(parts), params

    def chunk_ids_matching(self, filters: Filters) -> np.ndarray:
        where, params = self.filter_sql(filters)
        rows = self.conn.execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params
        ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    @reports_damage
    def integrity(self) -> dict:
        """Counts a health check compares (used by stats and doctor)."""
        c = self.conn
        return {
            "documents": c.execute("SELECT count(*) FROM documents").fetchone()[0],
            "chunks": c.execute("SELECT count(*) FROM chunks").fetchone()[0],
            "vectors": c.execute("SELECT count(*) FROM vectors").fetchone()[0],
            "fts_rows": c.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()[0],
        }



def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _document_values(doc: NewDocument) -> tuple:
    """A document's columns from uri to pipeline_version, in the order both writes name them."""
    return (
        doc.uri, doc.title, doc.site, doc.kind, doc.date, doc.author, doc.url, doc.language,
        json.dumps(list(doc.tags)), json.dumps(doc.meta or {}), doc.content_hash,
        doc.text_hash, doc.text, json.dumps([list(b) for b in doc.blocks]), doc.pipeline_version,
    )
