"""Which files a batch reads: paths and folders walked, manifests read.

A folder is walked recursively in name order: hidden files and folders,
symlinked folders (no loops), an equisearch store inside it and the files
its ``manifest.json`` excludes are left out. A folder that cannot be listed,
or holds nothing equisearch reads, is reported rather than silently giving
"0 added". The manifest also carries per-file metadata (title, site, kind,
date, ...) that :class:`Manifests` hands to the pipeline.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from search.store import DB_NAME

from .extract import SUPPORTED_SUFFIXES

log = logging.getLogger(__name__)

#: Per-folder metadata file: {"documents": [{"file": ..., "title": ..., ...}]}.
MANIFEST_NAME = "manifest.json"
#: What a manifest entry (or the command line) may set for a document.
META_FIELDS = ("title", "site", "kind", "date", "author", "url", "language", "tags")


def discover(paths: Iterable[str | os.PathLike]) -> Iterator[tuple[Path, bool]]:
    """Yield (file, explicit) for each path; folders are walked recursively.

    ``explicit`` is true for files named directly (an unsupported type is then
    an error, not a skip). Symlinked folders are not followed (no loops);
    hidden files and folders are ignored.
    """
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            # A folder that cannot be listed is yielded as an explicit item so
            # the batch reports it (os.walk would skip it silently).
            unreadable: list[OSError] = []
            readable_files = 0
            for root, dirs, files in os.walk(p, followlinks=False, onerror=unreadable.append):
                while unreadable:
                    yield Path(unreadable.pop(0).filename), True
                if DB_NAME in files:
                    # An equisearch store inside the folder: never index it.
                    dirs[:] = []
                    continue
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                skip = manifest_excludes(Path(root)) if MANIFEST_NAME in files else set()
                for name in sorted(files):
                    if name.startswith(".") or name == MANIFEST_NAME or name in skip:
                        continue
                    readable_files += Path(name).suffix.lower() in SUPPORTED_SUFFIXES
                    yield Path(root) / name, False
            for err in unreadable:
                yield Path(err.filename), True
            if not readable_files and not any(Path(e.filename) == p for e in unreadable):
                # A readable folder with nothing to read: say so rather than "0 added".
                yield p, True
        else:
            yield p, True


#: A URL-like argument: "scheme://..." (``ingest_paths`` takes files and folders only).
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_address(path: str) -> bool:
    """Whether an argument is a URL of any scheme rather than a local path
    (``Path("ftp://host/x.pdf")`` would collapse it to ``ftp:/host/x.pdf``)."""
    return bool(_SCHEME.match(path))


def address_reason(address: str) -> str:
    """Why a URL given where files are expected is refused, and what to do instead."""
    if address.lower().startswith(("http://", "https://")):
        return "a web address, not a file: ingest it with `equisearch ingest URL` (WebIngest in Python)"
    scheme = address.split(":", 1)[0]
    return f"only http(s) URLs are supported, not {scheme}://: download the file and ingest it from disk"


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable manifest %s: %s", path, exc)
        return {}


def load_manifest(folder: Path) -> dict[str, dict]:
    """Metadata per file name from ``folder/manifest.json`` (empty if none)."""
    docs = _read_manifest(folder).get("documents", [])
    return {d["file"]: d for d in docs if isinstance(d, dict) and "file" in d} if isinstance(docs, list) else {}


def manifest_excludes(folder: Path) -> set[str]:
    """File names ``folder/manifest.json`` lists under ``"exclude"``: files a
    folder walk never ingests (a README or SOURCES.md beside the documents)."""
    names = _read_manifest(folder).get("exclude", [])
    return {str(n) for n in names} if isinstance(names, list) else set()


class Manifests:
    """Manifest metadata per file, each folder's manifest read once per batch."""

    def __init__(self):
        self._folders: dict[Path, dict[str, dict]] = {}

    def metadata(self, path: Path) -> dict:
        """What ``path``'s folder manifest says about it, only the :data:`META_FIELDS`."""
        folder = path.parent
        if folder not in self._folders:
            self._folders[folder] = load_manifest(folder)
        entry = dict(self._folders[folder].get(path.name, {}))
        entry.pop("file", None)
        return {k: v for k, v in entry.items() if k in META_FIELDS}
