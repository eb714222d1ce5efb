"""SQLite errors that mean "the file is damaged", raised as :class:`~search.errors.StoreDamaged`.

Health checks (``equisearch doctor``) run on stores that may be corrupt;
their callers catch one library error instead of ``sqlite3``'s.
"""
from __future__ import annotations

import functools
import sqlite3

from ..errors import StoreDamaged


def reports_damage(func):
    """Raise a database error inside ``func`` as :class:`StoreDamaged` ("SQLite error: ...")."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise StoreDamaged(f"SQLite error: {exc}") from exc

    return wrapper
