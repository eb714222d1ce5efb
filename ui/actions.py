"""What the UI's pages do to a store, without Streamlit (so tests call it directly).

"Add sources" runs the same use-case as the CLI (:func:`ingest.sources.add_sources`),
with two differences that matter for a server other people type into:

- URLs are fetched with ``FetchPolicy(allow_private=False)`` unless the
  operator set ``EQUISEARCH_ALLOW_PRIVATE_URLS=1``: a browser user must not
  make the server fetch its own loopback, private network or cloud-metadata
  addresses. Only http(s) URLs are accepted.
- Uploaded files are written under ``<store>/uploads/<sha256 prefix>/<name>``
  with a sanitised name (no directories, no NULs or control characters, no
  leading dots), checked to resolve inside that folder, and capped at
  ``max_file_mb``. The content-hash folder makes the same upload idempotent
  and keeps two different files called ``notes.txt`` apart.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ingest.extract import SUPPORTED_SUFFIXES
from search.errors import EquisearchError, StoreLocked
from search.files import atomic_write
from search.settings import Settings

log = logging.getLogger(__name__)

UPLOAD_DIR = "uploads"
#: What "Add sources" accepts for upload: every suffix the extractors read,
#: so a new source type is offered here without a second list.
UPLOAD_TYPES = tuple(sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES))
MAX_NAME_CHARS = 120

#: One writer per server process: Streamlit sessions are threads sharing the
#: process, and the store's file lock is per open file, so two sessions could
#: otherwise both think they hold it.
_WRITE_LOCK = threading.Lock()

Progress = Callable[[object, int, int], None]


@dataclass(frozen=True)
class Row:
    """One line of the result table shown after "Add sources"."""

    source: str
    status: str  # added, updated, unchanged, duplicate, skipped, failed
    title: str = ""
    passages: int = 0
    reason: str = ""


def sanitise_filename(name: str) -> str:
    """A safe single path component for an uploaded file's name.

    Directories (``/`` and ``\\``), NULs and control characters, leading dots
    and characters outside letters, digits, space, ``.-_()`` are dropped or
    replaced, so the result can never name a parent directory or a hidden file.
    Raises :class:`EquisearchError` when no usable name with a supported
    suffix is left.
    """
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKC", base)
    base = "".join(ch for ch in base if ch.isprintable() and ch not in "\x00")
    base = re.sub(r"[^\w .()\-]", "_", base, flags=re.UNICODE).strip(" .")
    base = re.sub(r"\.{2,}", ".", base)
    stem, dot, suffix = base.rpartition(".")
    if not dot or suffix.lower() not in UPLOAD_TYPES:
        raise EquisearchError(
            f"{name!r}: not a file type equisearch reads; upload {', '.join('.' + t for t in UPLOAD_TYPES)}"
        )
    stem = stem.strip(" .")[: MAX_NAME_CHARS] or "upload"
    return f"{stem}.{suffix.lower()}"


def save_upload(store_dir: str | os.PathLike, name: str, data: bytes, max_file_mb: int) -> Path:
    """Write an uploaded file under the store's uploads folder (atomically); return its path."""
    if len(data) > max_file_mb * 1024 * 1024:
        raise EquisearchError(
            f"{name}: {len(data) / (1024 * 1024):.1f} MiB is over the {max_file_mb} MiB limit "
            "(EQUISEARCH_MAX_FILE_MB): split the file or ask the operator to raise the limit"
        )
    safe = sanitise_filename(name)
    from search.store import local_folder

    root = (local_folder(store_dir) / UPLOAD_DIR).resolve()
    folder = root / hashlib.sha256(data).hexdigest()[:16]
    target = (folder / safe).resolve()
    if target.parent != folder or root not in target.parents:
        raise EquisearchError(f"{name!r}: refusing a file name that points outside the uploads folder")
    folder.mkdir(parents=True, exist_ok=True)
    if target.exists() and target.read_bytes() == data:
        return target
    return atomic_write(target, data)


def split_urls(text: str) -> tuple[list[str], list[Row]]:
    """(http(s) URLs, failure rows for every other non-empty line)."""
    from ingest.fetch import read_url_list

    good, bad = read_url_list(text or "")
    rows = [Row(line[:200], "failed", reason="not an http(s) URL: paste web addresses starting with https://")
            for _n, line in bad]
    return good, rows


def add_sources(
    home: str | os.PathLike,
    settings: Settings,
    *,
    urls_text: str = "",
    uploads: Sequence[tuple[str, bytes]] = (),
    overrides: dict | None = None,
    embedder=None,
    progress: Progress | None = None,
    fetch_delay: float = 1.0,
) -> list[Row]:
    """Ingest pasted URLs and uploaded files into the store at ``home``.

    Never raises for one bad source: each gets a row with its reason. Raises
    :class:`StoreLocked` when another ingest (here or from the CLI) is running
    and :class:`~search.errors.StoreMismatch` for a store built by another model.
    """
    from ingest.fetch import FetchPolicy
    from ingest.sources import Progress as SourceProgress, SourceRequest, add_sources as add

    urls, rows = split_urls(urls_text)
    paths: list[str] = []
    names: dict[str, str] = {}  # saved path -> the name the user uploaded
    for name, data in uploads:
        try:
            saved = str(save_upload(home, name, data, settings.max_file_mb))
            paths.append(saved)
            names[saved] = name
        except EquisearchError as exc:
            rows.append(Row(name, "failed", reason=" ".join(str(exc).split())))
    if not urls and not paths:
        return rows
    request = SourceRequest(paths=tuple(paths), urls=tuple(urls), overrides=dict(overrides or {}))
    policy = FetchPolicy(allow_private=bool(settings.allow_private_urls), host_delay=fetch_delay)
    if not _WRITE_LOCK.acquire(blocking=False):
        raise StoreLocked("another upload or removal is running on this server: wait for it and try again")
    try:
        report = add(home, settings, request, policy=policy, progress=SourceProgress(progress), embedder=embedder)
    finally:
        _WRITE_LOCK.release()
    return rows + [Row(names.get(r.source, r.source), r.status, r.title, r.chunks, r.reason) for r in report.results]


def remove_source(home: str | os.PathLike, doc_id: int) -> str:
    """Remove one document (as ``equisearch remove``); returns its title.

    Reading-list items that point at it keep their citation (search/lists.py).
    """
    from search.errors import StoreError
    from search.maintenance import remove_sources
    from search.store import open_store

    if not _WRITE_LOCK.acquire(blocking=False):
        raise StoreLocked("another upload or removal is running on this server: wait for it and try again")
    try:
        store = open_store(home, create=False)
        try:
            removed, _missing = remove_sources(store, [int(doc_id)])
            if not removed:
                raise StoreError(f"source {doc_id} is no longer in the store (removed elsewhere?)")
            return removed[0].title
        finally:
            store.close()
    finally:
        _WRITE_LOCK.release()


def rows_table(rows: Iterable[Row]) -> list[dict]:
    """Rows as plain dicts for ``st.dataframe`` (column order as shown)."""
    return [{"source": r.source, "result": r.status, "title": r.title, "passages": r.passages, "reason": r.reason}
            for r in rows]
