"""Source -> extract -> clean -> chunk -> embed -> store, one source at a time.

Which files a batch reads is :mod:`ingest.discover`'s; reading them a window
at a time on a worker thread is :mod:`ingest.windows`'s; this module turns
what was read into documents, embeds their passages in full batches and
writes them.

Each source is written in its own transaction, so a failure (bad file, model
error, full disk) leaves every other source as it was: the failure is recorded
with a one-line reason and the batch goes on. The caller (CLI, UI) decides
what to show and which exit code to use.

Idempotence: a source's ``content_hash`` is the hash of its raw bytes plus
:data:`PIPELINE_VERSION`, and each document records the pipeline version
that made its text. Unchanged bytes read by the current pipeline cost
nothing. Changed bytes, or unchanged bytes last read by an older pipeline,
are read again: when the text, blocks and passages come out the same the
document stays ``unchanged`` (only the new hash and version are recorded, so
passage ids, reading lists and vectors stay as they are); otherwise its
passages are replaced in one transaction (``updated``), re-using the stored
vectors of passages whose text did not change. The same text reached from
two locations is stored once, the second location kept as an alias.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from search.cpu import want_bf16
from search.embedding import Embedder, SentenceTransformerEmbedder, load_embedder
from search.errors import EquisearchError, ExtractionError, StoreMismatch
from search.onnx import export_onnx, onnx_folder
from search.settings import Settings
from search.store import NewDocument, StoreBackend, VectorSearch, Writer
from search.text import content_hash
from search.types import KINDS

from .chunk import chunk_document, embedding_inputs
from .clean import clean
from .discover import META_FIELDS, Manifests, address_reason, discover, is_address
from .extract import SUPPORTED_SUFFIXES, extract_file
from .segments import Extracted, assemble, blocks_to_rows, rows_to_blocks
from .windows import Loaded, read_ahead, remove_site_furniture

log = logging.getLogger(__name__)

#: Bump when extraction, cleaning or chunking changes what a file produces, so
#: re-ingesting unchanged files picks up the improvement (recorded per
#: document as ``pipeline_version``). 4: PDF layout debris (footnote markers,
#: paragraph numbers, bullets, kerning splits, contents pages) and titles
#: from page 1's largest type. 5: HTML menus of links dropped, the <hgroup>
#: subtitle kept, "read more" teasers recognised in eight languages.
PIPELINE_VERSION = "5"

Progress = Callable[["ItemResult", int, int], None]


@dataclass(frozen=True)
class ItemResult:
    """What happened to one source.

    ``status`` is one of: added, updated, unchanged, duplicate (same text as a
    stored document: recorded as an alias), skipped (not a supported type,
    inside a folder), failed (``reason`` says why and what to do).
    """

    source: str
    status: str
    reason: str = ""
    doc_id: int | None = None
    chunks: int = 0
    title: str = ""


@dataclass
class IngestReport:
    results: list[ItemResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def counts(self) -> dict[str, int]:
        keys = ("added", "updated", "unchanged", "duplicate", "skipped", "failed")
        return {k: self.count(k) for k in keys}

    @property
    def failed(self) -> list[ItemResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def passages(self) -> int:
        return sum(r.chunks for r in self.results if r.status in ("added", "updated"))


def _normalise_date(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()[:10]
    return str(value).strip()[:10]


@dataclass
class _Pending:
    """A prepared document waiting for its passages to be embedded."""

    tag: object
    source: str
    doc: NewDocument
    chunks: list
    inputs: list[str]  # what the model reads for each chunk
    existing: object
    aliases: tuple[str, ...]
    reuse: dict


class Ingestor:
    """Writes sources into one store, through its :class:`~search.store.Writer` (lock held while working).

    Passages of several documents are embedded together (``batch_chunks``
    at a time) because the model is several times faster on full batches
    than on one small document at a time; each document is still written in
    its own transaction.
    """

    def __init__(
        self,
        store: StoreBackend,
        settings: Settings,
        embedder: Embedder | None = None,
        index: VectorSearch | None = None,
    ):
        self.store = store
        self.settings = settings
        self._embedder = embedder
        #: The vector index every writer of this ingestor keeps current (one
        #: for the ingestor's life, so a second batch need not reload it).
        self.index = index or store.vector_index(settings)
        store.new_vector_dtype = settings.vector_dtype
        self._manifests = Manifests()
        self._pending: list[_Pending] = []
        self._writer: Writer | None = None
        self.batch_chunks = max(1, settings.batch_size) * 4

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = _ingest_embedder(self.settings)
        return self._embedder

    @property
    def model_name(self) -> str:
        return getattr(self.embedder, "name", self.settings.model)

    def check_store(self) -> None:
        """Refuse early (before any parsing) when the store was built differently.

        The store's one compatibility check, on the model and chunking: the
        dimension is known only once the model loads, and every write checks
        all three again.
        """
        name = self._embedder.name if self._embedder is not None else self.settings.model
        self.store.check_compatible(name, chunking=self.settings.chunking)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Writer]:
        """The store's writer for a batch: opened here (lock taken; on exit the index
        saved and the lock released), or the one already open when batches nest.

        Documents still queued when the batch ends (it failed) are dropped:
        nothing of them was written.
        """
        if self._writer is not None:
            yield self._writer
            return
        with Writer.open(self.store, self.settings, index=self.index) as writer:
            self._writer = writer
            try:
                yield writer
            finally:
                self._writer = None
                self._pending.clear()

    # -- batch -----------------------------------------------------------
    def ingest_paths(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        overrides: dict | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest files and folders; never raises for one bad source.

        Raises only what makes the whole batch impossible: a store built by
        another model (:class:`StoreMismatch`) or held by another writer.
        """
        self.check_store()
        paths = [str(p) for p in paths]
        # "ftp://host/x.pdf" is no local path (Path would collapse it to
        # "ftp:/host/x.pdf" and report "no such file").
        addresses = [p for p in paths if is_address(p)]
        items = list(discover(p for p in paths if p not in addresses))
        results: dict[int, ItemResult] = {}
        done = 0

        def finish(i: int, result: ItemResult) -> None:
            nonlocal done
            results[i] = result
            done += 1
            if result.status == "failed":
                log.warning("%s: %s", result.source, result.reason)
            if progress:
                progress(result, done, total)

        total = len(addresses) + len(items)
        for n, address in enumerate(addresses):
            finish(n, ItemResult(address, "failed", address_reason(address)))
        with self.writing():
            # Files are read and cleaned a window at a time so that furniture
            # repeated across one site's pages can be seen and removed. The
            # next window is read on a worker thread while this one is
            # embedded: parsing (pypdf, trafilatura) overlaps the model.
            # Tags number every input: refused addresses first, then files.
            read_ahead(items, lambda tag, item: self._load_file(*item, overrides or {}, tag=tag),
                       lambda outcomes: self._embed_window(outcomes, finish), first_tag=len(addresses))
            for tag, result in self.flush():
                finish(tag, result)
        self.export_query_encoder()
        return IngestReport([results[i] for i in sorted(results)])

    def _embed_window(self, outcomes: list, finish) -> None:
        """Queue one window's loaded files for embedding (flushing full batches)."""
        loaded = []
        for i, outcome in outcomes:
            if isinstance(outcome, ItemResult):
                finish(i, outcome)
            else:
                loaded.append(outcome)
        for item in remove_site_furniture(loaded):
            result = self.queue(item.uri, item.chash, item.extracted, item.meta, existing=item.existing,
                                source=item.source, tag=item.tag, clean_text=False)
            for tag, res in ([(item.tag, result)] if result is not None else self._drain(None)):
                finish(tag, res)

    def export_query_encoder(self) -> None:
        """Write the store's ONNX query encoder if it is missing (once, ~3 s).

        Done here because torch is already loaded by the ingest; searches
        from a fresh process then never import it. A failure only costs
        search speed: it is logged and searches fall back to torch.
        """
        if self.settings.query_encoder == "torch" or not isinstance(self._embedder, SentenceTransformerEmbedder):
            return
        if (onnx_folder(self.store.path) / "encoder.json").exists():
            return
        try:
            export_onnx(self._embedder.name, self.store.path)
        except (EquisearchError, OSError) as exc:
            log.warning("could not export the ONNX query encoder (%s): searches will load torch", exc)

    def _drain(self, outcome) -> list[tuple[object, ItemResult]]:
        """Results ready now: a final result, or what a full batch flushed."""
        if isinstance(outcome, tuple):
            return [outcome]
        if self._pending_chunks() >= self.batch_chunks:
            return self.flush()
        return []

    def _load_file(self, path: Path, explicit: bool, overrides: dict, tag: object) -> "ItemResult | Loaded":
        """Read, hash, extract and clean one file: a final result, or what to queue."""
        source = str(path)
        suffix = path.suffix.lower()
        if explicit and path.is_dir():  # folders that could not be walked, or held nothing to read
            try:
                os.scandir(path).close()
                reason = (f"no supported files found in this folder (equisearch reads "
                          f"{', '.join(sorted(SUPPORTED_SUFFIXES))}): check the path")
            except OSError as exc:
                reason = f"cannot read folder ({(exc.strerror or str(exc)).lower()}): make it readable and try again"
            return ItemResult(source, "failed", reason)
        if suffix not in SUPPORTED_SUFFIXES:
            if explicit:
                reason = (
                    "no such file or folder: check the path" if not path.exists()
                    else f"unsupported file type {suffix or '(none)'}: convert it to PDF, HTML or text "
                    f"(equisearch reads {', '.join(sorted(SUPPORTED_SUFFIXES))})"
                )
                return ItemResult(source, "failed", reason)
            return ItemResult(source, "skipped", f"unsupported type {suffix or '(none)'}")
        try:
            path = path.resolve(strict=True)
            uri = str(path)
            if not path.is_file():
                # A named pipe would block the batch forever; sockets and
                # devices are not documents either.
                return ItemResult(source, "failed", "not a regular file (a pipe, socket or device): "
                                  "copy the content into a file and ingest that")
            size = path.stat().st_size
            if size > self.settings.max_file_mb * 1024 * 1024:
                return ItemResult(source, "failed", f"file is {size // (1024 * 1024)} MiB, over the "
                                  f"{self.settings.max_file_mb} MiB limit: split it or raise EQUISEARCH_MAX_FILE_MB")
            data = path.read_bytes()
        except FileNotFoundError:
            return ItemResult(source, "failed", "no such file: check the path")
        except PermissionError:
            return ItemResult(source, "failed", "permission denied: make the file readable and try again")
        except OSError as exc:
            return ItemResult(source, "failed", f"cannot read file ({exc.strerror}): check the path")
        except RuntimeError as exc:  # Path.resolve: "Symlink loop from ..." (Python < 3.13)
            return ItemResult(source, "failed", f"cannot read file ({exc}): fix or remove the symbolic link")
        meta = {**self._manifests.metadata(path), **overrides}
        chash = content_hash(PIPELINE_VERSION.encode() + b"\0" + data)
        existing = self.store.find_document(uri)
        if existing is not None and existing.content_hash == chash and existing.pipeline_version == PIPELINE_VERSION:
            self._refresh_metadata(existing.id, existing, meta)
            return ItemResult(source, "unchanged", doc_id=existing.id, chunks=existing.n_chunks, title=existing.title)
        try:
            extracted = extract_file(path, data)
        except ExtractionError as exc:  # includes UnsupportedSource
            return ItemResult(source, "failed", one_line(exc, path))
        except Exception as exc:  # a parser bug must not sink the batch
            log.exception("unexpected error extracting %s", path)
            return ItemResult(source, "failed", f"could not be read ({type(exc).__name__}: {exc}): "
                              "report this file as a bug")
        try:
            cleaned = clean(extracted)
        except Exception as exc:  # cleaning must never lose a document silently
            log.exception("cleaning failed for %s", path)
            return ItemResult(source, "failed", f"cleaning failed ({type(exc).__name__}): report this file as a bug")
        cleaned.meta = {**extracted.meta, **cleaned.meta}
        site_key = str(meta.get("site") or cleaned.meta.get("site") or path.parent)
        return Loaded(tag, source, uri, chash, cleaned, meta, existing, site_key)

    def _refresh_metadata(self, doc_id: int, existing, meta: dict) -> None:
        """Apply manifest/CLI metadata changes to an unchanged document (no re-embedding)."""
        changes = {}
        for key in META_FIELDS:
            if key not in meta or meta[key] in (None, ""):
                continue
            value = tuple(meta[key]) if key == "tags" else (_normalise_date(meta[key]) if key == "date" else str(meta[key]))
            if getattr(existing, key) != value:
                changes[key] = value
        if changes:
            self.store.update_metadata(doc_id, **changes)

    # -- one document ----------------------------------------------------
    def ingest_extracted(
        self,
        uri: str,
        chash: str,
        extracted: Extracted,
        meta: dict | None = None,
        *,
        existing=None,
        source: str | None = None,
        aliases: tuple[str, ...] = (),
        clean_text: bool = True,
    ) -> ItemResult:
        """Clean, chunk, embed and store one already extracted source now.

        Web fetchers call this with the page's URL as ``uri``. Batch callers
        use :meth:`queue` and :meth:`flush` so embedding runs on full batches.
        """
        result = self.queue(uri, chash, extracted, meta, existing=existing, source=source, aliases=aliases,
                            clean_text=clean_text, tag="now")
        if result is not None:
            return result
        outcome = dict(self.flush())
        return outcome["now"]

    def queue(
        self,
        uri: str,
        chash: str,
        extracted: Extracted,
        meta: dict | None = None,
        *,
        existing=None,
        source: str | None = None,
        aliases: tuple[str, ...] = (),
        clean_text: bool = True,
        tag: object = None,
    ) -> ItemResult | None:
        """Prepare a document and queue it for embedding.

        Returns a final :class:`ItemResult` when there is nothing to embed
        (failure, duplicate text) and None when queued; :meth:`flush` then
        embeds every queued passage in full batches and writes each document
        in its own transaction.
        """
        source = source or uri
        if existing is None:
            existing = self.store.find_document(uri)
        if clean_text:
            try:
                cleaned = clean(extracted)
            except Exception as exc:  # cleaning must never lose a document silently
                log.exception("cleaning failed for %s", uri)
                return ItemResult(source, "failed", f"cleaning failed ({type(exc).__name__}): report this file as a bug")
        else:
            cleaned = extracted
        text, blocks = assemble(cleaned.segments)
        if not text.strip():
            return ItemResult(source, "failed", "no text left after removing page furniture (cookie notices, menus...): check it is the article itself")
        merged = {**extracted.meta, **cleaned.meta, **{k: v for k, v in (meta or {}).items() if v not in (None, "")}}
        chunks = chunk_document(
            text, blocks, max_words=self.settings.chunk_words, overlap_words=self.settings.chunk_overlap_words
        )
        if not chunks:
            return ItemResult(source, "failed", "no passages could be made from the text: check the file has sentences to index")
        text_hash = content_hash(text)
        if existing is not None and existing.uri != uri:
            # Found through an alias: this location held the same text as
            # another document when it was first seen. Same text still: nothing
            # to do (replacing the document with it would flip its uri back and
            # forth on every run). Different text now: it is a document of its
            # own and no longer an alias.
            twin = self.store.find_by_text_hash(text_hash)
            if twin is not None and twin.id == existing.id:
                return ItemResult(source, "unchanged", f"same text as {existing.uri}", existing.id,
                                  existing.n_chunks, existing.title)
            self.store.remove_alias(uri)
            existing = None
        if existing is None:
            twin = self.store.find_by_text_hash(text_hash)
            if twin is not None:
                self.store.add_alias(twin.id, uri)
                return ItemResult(source, "duplicate", f"same text as {twin.uri}", twin.id, twin.n_chunks, twin.title)
            queued = next((p for p in self._pending if p.doc.text_hash == text_hash), None)
            if queued is not None:
                queued.aliases += (uri,)
                return ItemResult(source, "duplicate", f"same text as {queued.doc.uri}", None, len(queued.chunks),
                                  queued.doc.title)
        doc = self._new_document(uri, chash, text, text_hash, merged, blocks_to_rows(blocks))
        vector_title = doc.title if self.settings.title_in_vectors else None
        inputs = embedding_inputs(chunks, vector_title)
        chunks = with_embedding_hashes(chunks, inputs)
        if existing is not None and self._stores_the_same(existing, doc, chunks):
            # Read again (new bytes with the same text, or a newer pipeline)
            # and nothing a search sees would change: record the new hash and
            # version, keep the passages (their ids, vectors, list items).
            self.store.record_extraction(existing.id, chash, PIPELINE_VERSION, doc.meta)
            self._refresh_metadata(existing.id, existing, {k: getattr(doc, k) for k in META_FIELDS})
            return ItemResult(source, "unchanged", "read again: same text and passages", existing.id,
                              existing.n_chunks, doc.title or existing.title)
        reuse = self.store.vectors_by_text_hash(existing.id) if existing is not None else {}
        self._pending.append(_Pending(tag, source, doc, chunks, inputs, existing, tuple(aliases), reuse))
        return None

    def _stores_the_same(self, existing, doc: NewDocument, chunks: list) -> bool:
        """Would writing ``doc`` with ``chunks`` change nothing a reader sees?

        Same text, same provenance blocks, and the same passages (offsets,
        pages, times, speaker, section, and what the model read for each:
        the title is part of it when titles go into vectors).
        """
        if self.store.document_text(existing.id) != doc.text:
            return False
        if self.store.document_blocks(existing.id) != [list(b) for b in doc.blocks]:
            return False
        stored = self.store.chunks_of(existing.id)
        hashes = self.store.chunk_text_hashes(existing.id)
        if len(stored) != len(chunks):
            return False
        for old, new in zip(stored, chunks):
            if (old.char_start, old.char_end, old.page_start, old.page_end, old.t_start, old.t_end, old.speaker,
                    old.section, hashes.get(old.id)) != (new.char_start, new.char_end, new.page_start, new.page_end,
                                                         new.t_start, new.t_end, new.speaker, new.section,
                                                         new.text_hash):
                return False
        return True

    def _pending_chunks(self) -> int:
        return sum(len(p.chunks) for p in self._pending)

    def flush(self) -> list[tuple[object, ItemResult]]:
        """Embed every queued passage (in model batches) and write each document.

        A model failure fails the queued documents, never the batch.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return []
        todo = [(p, i) for p in pending for i, c in enumerate(p.chunks) if c.text_hash not in p.reuse]
        try:
            fresh = (
                self.embedder.encode([p.inputs[i] for p, i in todo],
                                     batch_size=self.settings.batch_size)
                if todo else None
            )
        except EquisearchError as exc:
            return [(p.tag, ItemResult(p.source, "failed", one_line(exc))) for p in pending]
        fresh_of = {(id(p), i): fresh[j] for j, (p, i) in enumerate(todo)}
        out = []
        for p in pending:
            dim = fresh.shape[1] if fresh is not None else len(next(iter(p.reuse.values())))
            vectors = np.zeros((len(p.chunks), dim), dtype=np.float32)
            for i, c in enumerate(p.chunks):
                vectors[i] = p.reuse[c.text_hash] if c.text_hash in p.reuse else fresh_of[(id(p), i)]
            out.append((p.tag, self._write(p, vectors)))
        return out

    def _write(self, p: "_Pending", vectors: np.ndarray) -> ItemResult:
        try:
            with self.writing() as writer:  # the batch's writer; one of its own outside a batch
                result = writer.write_document(
                    p.doc,
                    p.chunks,
                    vectors,
                    model=self.model_name,
                    dim=int(vectors.shape[1]),
                    chunking=self.settings.chunking,
                    replace_id=p.existing.id if p.existing else None,
                    aliases=p.aliases,
                )
        except StoreMismatch:
            raise
        except EquisearchError as exc:
            return ItemResult(p.source, "failed", one_line(exc))
        if result.outcome in ("duplicate", "unchanged"):
            # Another writer got there first (a backend without a global write
            # lock): say what is stored, not what this one meant to write.
            held = self.store.get_document(result.doc_id)
            n, title = (held.n_chunks, held.title) if held else (0, p.doc.title)
            reason = (f"same text as {held.uri if held else 'a stored document'}" if result.outcome == "duplicate"
                      else "stored meanwhile by another writer")
            return ItemResult(p.source, result.outcome, reason, result.doc_id, n, title)
        status = result.outcome or ("updated" if p.existing else "added")
        return ItemResult(p.source, status, doc_id=result.doc_id, chunks=len(p.chunks), title=p.doc.title)

    def _new_document(
        self, uri: str, chash: str, text: str, text_hash: str, meta: dict, blocks: tuple = ()
    ) -> NewDocument:
        kind = str(meta.get("kind") or "other").lower()
        if kind not in KINDS:
            kind = "other"
        tags = meta.get("tags") or ()
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",") if t.strip()]
        title = str(meta.get("title") or "").strip() or Path(uri).stem.replace("_", " ").replace("-", " ")
        extra = {k: v for k, v in meta.items() if k not in META_FIELDS and _jsonable(v)}
        return NewDocument(
            uri=uri,
            title=title[:300],
            text=text,
            content_hash=chash,
            text_hash=text_hash,
            site=str(meta.get("site") or ""),
            kind=kind,
            date=_normalise_date(meta.get("date")),
            author=str(meta.get("author") or ""),
            url=str(meta.get("url") or ""),
            language=str(meta.get("language") or ""),
            tags=tuple(str(t) for t in tags),
            meta=extra,
            blocks=blocks,
            pipeline_version=PIPELINE_VERSION,
        )


def _ingest_embedder(settings: Settings) -> Embedder:
    """The passage encoder: bf16 where the CPU computes it natively (setting ingest_bf16)."""
    if want_bf16(settings.ingest_bf16):
        return load_embedder(settings.model, bf16=True)
    return load_embedder(settings.model)


def with_embedding_hashes(chunks: list, inputs: list[str]) -> list:
    """Key each passage by the hash of what the model reads, so a re-ingest
    re-uses a stored vector only when that input is unchanged."""
    return [replace(c, text_hash=content_hash(inp)) for c, inp in zip(chunks, inputs)]


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def one_line(exc: BaseException, path: Path | str | None = None) -> str:
    """The error as one line, without a leading "<path>: " (the caller shows the source)."""
    text = " ".join(str(exc).split())
    if path is not None:
        for prefix in (str(path), Path(path).name):
            if text.startswith(prefix + ": "):
                return text[len(prefix) + 2 :]
    return text


@dataclass(frozen=True)
class RebuildReport:
    documents: int
    chunks: int
    model: str
    chunking: str


def rebuild_store(
    store: StoreBackend,
    settings: Settings,
    embedder: Embedder | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """Re-cut and re-embed every document from its stored text with ``settings``.

    Used after changing the model or chunking (``equisearch rebuild``). Runs
    in ONE transaction (the store's ``replace_passages``): readers keep
    seeing the old passages until the commit, and a crash or error leaves
    the old store exactly as it was. Sources are not re-read, so web pages
    that have since gone still rebuild. The model loads before the store's
    writer lock is taken.
    """
    embedder = embedder or _ingest_embedder(settings)
    with Writer.open(store, settings) as writer:
        docs = store.documents()
        total_chunks = 0

        def passages():
            # Consumed inside the rebuild's transaction: each document is
            # embedded just before its passages are written.
            nonlocal total_chunks
            for i, doc in enumerate(docs, start=1):
                text = store.document_text(doc.id)
                blocks = rows_to_blocks(text, store.document_blocks(doc.id))
                chunks = chunk_document(
                    text, blocks, max_words=settings.chunk_words, overlap_words=settings.chunk_overlap_words
                )
                title = doc.title if settings.title_in_vectors else None
                inputs = embedding_inputs(chunks, title)
                chunks = with_embedding_hashes(chunks, inputs)
                vecs = embedder.encode(inputs,
                                       batch_size=settings.batch_size)
                yield doc.id, chunks, vecs
                total_chunks += len(chunks)
                if progress:
                    progress(i, len(docs))

        writer.replace_passages(passages(), model=embedder.name, dim=embedder.dim, chunking=settings.chunking)
    return RebuildReport(len(docs), total_chunks, embedder.name, settings.chunking)
