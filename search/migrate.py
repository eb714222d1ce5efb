"""Move a store to another backend or directory without re-embedding: ``equisearch migrate``.

:func:`migrate_store` copies what a store holds from one location to another
(a SQLite store directory or a ``postgresql://`` database, in any direction),
through :class:`~search.store.base.StoreBackend` only, so it works for any
pair of backends:

- every document with its text, provenance blocks, free-form meta and
  aliases, and its passages with their citation fields, the hash of what the
  model read for each and the stored vector (no model is loaded). Documents
  are written oldest first, each in one transaction of the destination's
  :class:`~search.store.Writer` (a SQLite destination gets its FAISS file);
- the builder record (model, dimension, chunking), carried by those writes;
- every reading list with its items in order and their notes; an item's
  document and passage ids become the destination's (ids are never kept:
  the destination numbers its own rows); each list keeps its owner (names
  are unique per owner) and whether it is shared;
- the store's own ``vocabulary.json`` and its exported query encoder, from
  the source's local folder to the destination's (the encoder is derived,
  but copying it spares the first search an export).

Not copied: the dates rows were added or changed (the destination stamps
its own), the files of the UI's uploads folder (their documents keep the
paths they were read from), and anything derived (keyword and vector
indexes are the destination's, built as it writes).

The source is read in one consistent view, so an ingest running meanwhile
cannot hand over half of a document. The destination must be empty, or
hold only documents and lists of this same source, unchanged: then only
what is missing is copied, so an interrupted migration is finished by
running it again (documents already there are kept; re-adding a list item
that is there is a no-op), and a finished one has nothing to do. Anything
else in the destination is refused, before anything is written.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np

from .errors import EquisearchError, StoreError
from .store import (VECTOR_DTYPES, NewChunk, NewDocument, StoreBackend, Writer, describe_location, is_database_url,
                    open_store)
from .text import content_hash
from .types import Chunk, Document

log = logging.getLogger(__name__)

#: ``progress(documents done, documents in the source)``, after each document.
MigrationProgress = Callable[[int, int], None]

#: The item columns a list item is re-created from (ids remapped; position and added_at are the destination's).
ITEM_FIELDS = ("item_type", "doc_id", "chunk_id", "uri", "title", "site", "kind", "date", "author", "url", "link",
               "location", "page_start", "page_end", "t_start", "t_end", "text", "words", "note")
#: Files of a store's local folder that go with it (the rest is derived or the backend's own).
LOCAL_FILES = ("vocabulary.json", "query-encoder")
#: Passages read per round of batched source reads (documents go in whole).
GROUP_PASSAGES = 2000


@dataclass(frozen=True)
class MigrationReport:
    """What one :func:`migrate_store` run did; counts are of what this run wrote."""

    source: str  # as shown to people (a database URL without its password)
    destination: str
    documents: int
    passages: int
    aliases: int
    reading_lists: int
    items: int
    #: Documents the destination held already (a migration run again).
    kept: int = 0
    model: str = ""
    dim: int = 0
    chunking: str = ""
    #: Local files copied (names from :data:`LOCAL_FILES`).
    files: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def nothing_to_do(self) -> bool:
        """The destination already held all of it."""
        return not (self.documents or self.aliases or self.reading_lists or self.items or self.files)


def migrate_store(source: str | os.PathLike, destination: str | os.PathLike, settings=None,
                  progress: MigrationProgress | None = None) -> MigrationReport:
    """Copy the store at ``source`` to ``destination`` (see the module docstring).

    Both are store directories or database URLs; the destination is created
    when missing (a database must exist: the server's ``createdb``). Raises
    :class:`~search.errors.StoreError` with one line saying what to do when
    the source holds nothing, the two are the same store, or the destination
    holds something else.
    """
    from .settings import Settings

    settings = settings or Settings.from_env()
    names = describe_location(source), describe_location(destination)
    if same_store(source, destination):
        raise StoreError(f"{names[0]} is both the source and the destination: give another destination")
    started = time.perf_counter()
    src = open_store(source, create=False, settings=settings)
    try:
        if not src.info().documents:
            raise StoreError(f"{names[0]} holds no documents: nothing to migrate")
        dest = open_store(destination, create=True, settings=settings)
        try:
            report = _Migration(src, dest, settings, names, progress).run()
        finally:
            dest.close()
    finally:
        src.close()
    return replace(report, seconds=time.perf_counter() - started)


def same_store(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Do two locations name one store (one directory, or one database whatever the login)?"""
    if is_database_url(a) != is_database_url(b):
        return False
    if is_database_url(a):
        def key(url: str) -> tuple:
            parts = urlsplit(url.strip())
            return ((parts.hostname or "localhost").lower(), parts.port or 5432, (parts.path or "/").strip("/"))

        return key(str(a)) == key(str(b))
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def document_signature(doc: Document) -> tuple:
    """What must agree for a destination's document to be the source's (ids and dates aside)."""
    return (doc.uri, doc.title, doc.site, doc.kind, doc.date, doc.author, doc.url, doc.language, tuple(doc.tags),
            doc.content_hash, doc.pipeline_version, doc.n_chunks)


def _list_key(row: dict) -> tuple[str, str]:
    # Names are unique per owner, case-insensitively.
    return str(row.get("owner") or ""), str(row["name"]).lower()


class _Migration:
    """One run: read the source in one view, write what the destination lacks."""

    def __init__(self, src: StoreBackend, dest: StoreBackend, settings, names: tuple[str, str],
                 progress: MigrationProgress | None):
        self.src, self.dest, self.settings, self.progress = src, dest, settings, progress
        self.src_name, self.dest_name = names
        self.doc_map: dict[int, int] = {}  # source document id -> destination id
        self.chunk_map: dict[int, int] = {}  # source passage id -> destination id (those list items cite)
        self.cited: set[int] = set()  # source passage ids list items cite
        self.cited_docs: set[int] = set()  # and their documents

    def run(self) -> MigrationReport:
        src, dest = self.src, self.dest
        with src.consistent_view():
            info = src.info()
            docs = list(reversed(src.documents()))  # oldest first: listed newest first in the destination too
            lists = [(row, src.reading_list_items(row["id"])) for row in src.reading_lists()]
            kept = self._check_destination(info, docs, lists)
            self.cited = {it["chunk_id"] for _, items in lists for it in items if it.get("chunk_id") is not None}
            if self.cited:
                self.cited_docs = set(src.doc_ids_of(sorted(self.cited)).values())
            recorded = src.get_meta("vector_dtype")
            if recorded in VECTOR_DTYPES and not dest.info().documents:
                dest.new_vector_dtype = recorded  # float32 stays float32 where the destination can keep it
            written = passages = aliases = 0
            total = len(docs)
            with Writer.open(dest, self.settings) as writer:
                done = 0
                for group in _groups(docs):
                    read = self._read([d for d in group if d.uri not in kept], info.dim)
                    for d in group:
                        if d.uri in kept:
                            aliases += self._follow_kept(d, kept[d.uri])
                        else:
                            doc, chunks, vectors = next(read)
                            self._write(writer, doc, chunks, vectors, info)
                            written += 1
                            passages += len(chunks)
                            aliases += len(doc.aliases)
                        done += 1
                        if self.progress is not None:
                            self.progress(done, total)
            made, items = self._copy_lists(lists)
        files = copy_local_files(src.path, dest.path)
        if kept:
            log.info("%s already held %d of the %d documents: copied the rest", self.dest_name, len(kept), total)
        return MigrationReport(self.src_name, self.dest_name, written, passages, aliases, made, items, len(kept),
                               info.model, info.dim, info.chunking, files)

    # -- the destination ---------------------------------------------------
    def _check_destination(self, info, docs: list[Document], lists) -> dict[str, Document]:
        """The destination's documents that are the source's (uri -> document); refuse anything else."""
        dest = self.dest
        there = dest.info()
        if there.model and (there.model, there.dim, there.chunking) != (info.model, info.dim, info.chunking):
            raise StoreError(
                f"{self.dest_name} was built with {there.model} ({there.dim} dimensions, {there.chunking}), the"
                f" source with {info.model} ({info.dim} dimensions, {info.chunking}): migrate into an empty store"
                " (a new directory, or a new database)")
        mine = {d.uri: document_signature(d) for d in docs}
        theirs = dest.documents()
        foreign = [d for d in theirs if mine.get(d.uri) != document_signature(d)]
        source_lists = {_list_key(row) for row, _ in lists}
        foreign_lists = [row for row in dest.reading_lists() if _list_key(row) not in source_lists]
        if foreign or foreign_lists:
            what = " and ".join(part for part in (
                f"{len(foreign)} document(s)" if foreign else "",
                f"{len(foreign_lists)} reading list(s)" if foreign_lists else "") if part)
            example = foreign[0].uri if foreign else foreign_lists[0]["name"]
            raise StoreError(
                f"{self.dest_name} already holds {what} that are not the source's (e.g. {example!r}): migrate into"
                " an empty store (a new directory, or a new database), or remove what it holds first")
        return {d.uri: d for d in theirs}

    def _follow_kept(self, doc: Document, there: Document) -> int:
        """A document the destination holds already: map its ids, add aliases it lacks; returns aliases added."""
        self.doc_map[doc.id] = there.id
        if doc.id in self.cited_docs:
            theirs = {c.ord: c.id for c in self.dest.chunks_of(there.id)}
            for c in self.src.chunks_of(doc.id):
                if c.id in self.cited and c.ord in theirs:
                    self.chunk_map[c.id] = theirs[c.ord]
        missing = [a for a in doc.aliases if a not in there.aliases]
        for alias in missing:
            self.dest.add_alias(there.id, alias)
        return len(missing)

    def _write(self, writer: Writer, doc: Document, chunks: list[tuple[Chunk, str]], vectors: np.ndarray,
               info) -> None:
        src = self.src
        text = src.document_text(doc.id)
        new = NewDocument(
            uri=doc.uri, title=doc.title, text=text, content_hash=doc.content_hash, text_hash=content_hash(text),
            site=doc.site, kind=doc.kind, date=doc.date, author=doc.author, url=doc.url, language=doc.language,
            tags=tuple(doc.tags), meta=src.document_meta(doc.id),
            blocks=tuple(tuple(b) for b in src.document_blocks(doc.id)), pipeline_version=doc.pipeline_version,
        )
        passages = [NewChunk(text=c.text, char_start=c.char_start, char_end=c.char_end, text_hash=h,
                             page_start=c.page_start, page_end=c.page_end, t_start=c.t_start, t_end=c.t_end,
                             speaker=c.speaker, section=c.section) for c, h in chunks]
        try:
            result = writer.write_document(new, passages, vectors, model=info.model, dim=info.dim,
                                           chunking=info.chunking, aliases=doc.aliases)
        except EquisearchError as exc:
            # Documents written so far are kept: running the command again goes on from here.
            raise type(exc)(f"{exc} (copying {doc.uri}: run the same migrate again to go on from there)") from exc
        self.doc_map[doc.id] = result.doc_id
        for (c, _), new_id in zip(chunks, result.added_ids):
            if c.id in self.cited:
                self.chunk_map[c.id] = new_id

    # -- the source --------------------------------------------------------
    def _read(self, docs: list[Document], dim: int) -> Iterator[tuple[Document, list[tuple[Chunk, str]], np.ndarray]]:
        """Each document's passages (with the hash of what the model read) and vectors, read in batches."""
        if not docs:
            return
        src = self.src
        ids = [int(i) for i in src.chunk_ids_of([d.id for d in docs])]
        chunks = src.chunks_by_ids(ids)
        vectors = src.vectors_by_ids(ids)
        by_doc: dict[int, list[Chunk]] = {}
        for c in chunks.values():
            by_doc.setdefault(c.doc_id, []).append(c)
        for doc in docs:
            mine = sorted(by_doc.get(doc.id, ()), key=lambda c: c.ord)
            missing = [c for c in mine if c.id not in vectors]
            if missing:
                raise StoreError(
                    f"{self.src_name}: {doc.uri} has {len(missing)} passage(s) without a vector: run"
                    " `equisearch doctor` on the source (and `equisearch rebuild` if it says so) first")
            hashes = src.chunk_text_hashes(doc.id)
            vecs = (np.stack([vectors[c.id] for c in mine]).astype(np.float32, copy=False) if mine
                    else np.zeros((0, dim), dtype=np.float32))
            yield doc, [(c, hashes[c.id]) for c in mine], vecs

    # -- reading lists -----------------------------------------------------
    def _copy_lists(self, lists) -> tuple[int, int]:
        """Each list (owner and sharing too) and its items in order, ids remapped; returns (lists made, items added)."""
        dest = self.dest
        there = {_list_key(row): row for row in dest.reading_lists()}
        made = added = 0
        for row, items in lists:
            found = there.get(_list_key(row))
            if found is None:
                list_id = dest.create_reading_list(row["name"], owner=row.get("owner") or "")
                if list_id is None:
                    raise StoreError(f"could not create the reading list {row['name']!r} in {self.dest_name}")
                made += 1
            else:  # there already (a migration run again): add what it lacks
                list_id = found["id"]
            if bool(row.get("shared")) != bool(found and found.get("shared")):
                dest.share_reading_list(list_id, bool(row.get("shared")))
            for item in items:
                values = {k: item[k] for k in ITEM_FIELDS if k in item}
                values["doc_id"] = self.doc_map.get(item["doc_id"]) if item.get("doc_id") is not None else None
                values["chunk_id"] = self.chunk_map.get(item["chunk_id"]) if item.get("chunk_id") is not None else None
                _, new = dest.add_reading_list_item(list_id, values)
                added += bool(new)
        return made, added


def _groups(docs: Sequence[Document]) -> Iterator[list[Document]]:
    """Documents in order, a few thousand passages at a time."""
    group: list[Document] = []
    size = 0
    for d in docs:
        if group and size + d.n_chunks > GROUP_PASSAGES:
            yield group
            group, size = [], 0
        group.append(d)
        size += d.n_chunks
    if group:
        yield group


def copy_local_files(src: Path, dest: Path) -> tuple[str, ...]:
    """Copy :data:`LOCAL_FILES` the source's folder has and the destination's lacks; returns their names.

    Each lands whole or not at all (copied beside, then renamed into place).
    """
    copied = []
    if Path(src).resolve() == Path(dest).resolve():
        return ()
    for name in LOCAL_FILES:
        there, here = Path(src) / name, Path(dest) / name
        if not there.exists() or here.exists():
            continue
        if there.is_dir():
            tmp = Path(tempfile.mkdtemp(dir=dest, prefix=f".{name}."))
            try:
                shutil.copytree(there, tmp, dirs_exist_ok=True)
                os.replace(tmp, here)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        else:
            fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{name}.", suffix=".tmp")
            os.close(fd)
            try:
                shutil.copyfile(there, tmp_name)
                os.replace(tmp_name, here)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        copied.append(name)
    return tuple(copied)
