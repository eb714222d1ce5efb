"""Writing files so that readers see the old or the new content, never half."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike, data: bytes | str, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``.

    Text is written as UTF-8 exactly as given (no newline translation, so a
    CSV's or RIS file's CRLF survive). The temp file is ``.<name>.*.tmp`` and
    is removed if anything fails; the result is readable by everyone who can
    read the folder (mkstemp alone would make it 0600).
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
