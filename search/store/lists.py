"""Reading lists in SQLite: their tables (schema versions 3 and 5) and every query on them.

:class:`search.lists.ReadingLists` holds the rules (names, statuses,
relinking, who may change a list; search/exports.py writes the files) and
calls these methods; each write here is one transaction. List writes do not
bump the store generation: they never touch passages or vectors, so other
processes' vector indexes stay valid.
Rows are returned as plain dicts keyed by column name.

Every list has an ``owner`` (the signed-in identity that made it; '' on a
single-user store) and a ``shared`` flag. ``visible_to`` (a method argument)
None means everything; an identity means that identity's lists and the
shared ones.
"""
from __future__ import annotations

import sqlite3
from typing import Sequence

from ..types import now_iso

# The item columns after list_id, as schema 3 made them (schema 5 rebuilds the
# table with the same ones).
_ITEM_COLUMNS_DDL = """    position   INTEGER NOT NULL,
    item_type  TEXT NOT NULL CHECK (item_type IN ('passage', 'source')),
    doc_id     INTEGER REFERENCES documents(id) ON DELETE SET NULL,
    chunk_id   INTEGER REFERENCES chunks(id) ON DELETE SET NULL,
    uri        TEXT NOT NULL,
    title      TEXT NOT NULL DEFAULT '',
    site       TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL DEFAULT 'other',
    date       TEXT NOT NULL DEFAULT '',
    author     TEXT NOT NULL DEFAULT '',
    url        TEXT NOT NULL DEFAULT '',
    link       TEXT NOT NULL DEFAULT '',
    location   TEXT NOT NULL DEFAULT '',
    page_start INTEGER,
    page_end   INTEGER,
    t_start    REAL,
    t_end      REAL,
    text       TEXT NOT NULL DEFAULT '',
    words      INTEGER NOT NULL DEFAULT 0,
    note       TEXT NOT NULL DEFAULT '',
    added_at   TEXT NOT NULL
"""
_ITEM_INDEXES = """
CREATE INDEX IF NOT EXISTS reading_list_items_list ON reading_list_items(list_id, position);
CREATE INDEX IF NOT EXISTS reading_list_items_doc ON reading_list_items(doc_id);
CREATE INDEX IF NOT EXISTS reading_list_items_chunk ON reading_list_items(chunk_id);
"""

# Schema version 3: reading lists (their logic is search/lists.py). An older
# store gains these tables on open (all IF NOT EXISTS, in the migration
# transaction).
# Items keep a snapshot of their citation and passage text, so a list survives
# its source being re-ingested or removed: re-chunking deletes the old chunk
# rows, which sets chunk_id (and on removal doc_id) to NULL, never the item.
LISTS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS reading_lists (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reading_list_items (
    id         INTEGER PRIMARY KEY,
    list_id    INTEGER NOT NULL REFERENCES reading_lists(id) ON DELETE CASCADE,
{_ITEM_COLUMNS_DDL});{_ITEM_INDEXES}"""

_ITEM_COLUMNS = (
    "id, list_id, position, item_type, doc_id, chunk_id, uri, title, site, kind, date, author, url, link,"
    " location, page_start, page_end, t_start, t_end, text, words, note, added_at"
)
#: Item columns a caller may write (everything but the keys and the order).
_WRITABLE = frozenset(_ITEM_COLUMNS.replace(" ", "").split(",")) - {"id", "list_id", "position", "added_at"}

# Schema version 5: lists have an owner and can be shared, and a name is
# unique per owner (case-insensitive) instead of in the whole store, so two
# signed-in users may both keep a "PLAC CPD". SQLite cannot drop a column's
# UNIQUE constraint, so both tables are rebuilt, keeping every id and item.
# The new items table points at the new lists table until the old ones are
# gone: dropping the old lists table while items still referenced it would,
# with foreign keys on, cascade-delete every item. Renaming the new lists
# table then renames the reference in the new items table with it (SQLite
# 3.26+, legacy_alter_table off, the default). Lists that existed before get
# owner '' (the single user) and are not shared.
LISTS_OWNERS_SCHEMA = f"""
CREATE TABLE reading_lists_v5 (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL COLLATE NOCASE,
    owner      TEXT NOT NULL DEFAULT '',
    shared     INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (owner, name)
);
INSERT INTO reading_lists_v5(id, name, created_at, updated_at)
    SELECT id, name, created_at, updated_at FROM reading_lists;
CREATE TABLE reading_list_items_v5 (
    id         INTEGER PRIMARY KEY,
    list_id    INTEGER NOT NULL REFERENCES reading_lists_v5(id) ON DELETE CASCADE,
{_ITEM_COLUMNS_DDL});
INSERT INTO reading_list_items_v5({_ITEM_COLUMNS}) SELECT {_ITEM_COLUMNS} FROM reading_list_items;
DROP TABLE reading_list_items;
DROP TABLE reading_lists;
ALTER TABLE reading_lists_v5 RENAME TO reading_lists;
ALTER TABLE reading_list_items_v5 RENAME TO reading_list_items;{_ITEM_INDEXES}"""


class ListsMixin:
    """Reading-list rows (SQLite backend)."""

    def reading_lists(self, visible_to: str | None = None) -> list[dict]:
        """Every list (or those ``visible_to`` may see) with its item count ``n`` and word total ``w``, by name."""
        where, args = ("", ()) if visible_to is None else (" WHERE l.owner = ? OR l.shared", (visible_to,))
        rows = self.conn.execute(
            "SELECT l.id, l.name, l.owner, l.shared, l.created_at, l.updated_at, count(i.id) AS n,"
            " coalesce(sum(i.words), 0) AS w"
            f" FROM reading_lists l LEFT JOIN reading_list_items i ON i.list_id = l.id{where}"
            " GROUP BY l.id ORDER BY l.name COLLATE NOCASE, l.id", args
        ).fetchall()
        return [{**dict(r), "shared": bool(r["shared"])} for r in rows]

    def reading_list_id(self, ref: str | int, visible_to: str | None = None) -> int | None:
        """The id of the list named ``ref`` (case-insensitive), else with id ``ref``; None if neither.

        Among lists of the same name, the caller's own wins (``visible_to``,
        or the single user's '' when None), then the oldest.
        """
        conn = self.conn
        vis, vargs = ("", ()) if visible_to is None else (" AND (owner = ? OR shared)", (visible_to,))
        row = None
        if isinstance(ref, str):
            row = conn.execute(
                f"SELECT id FROM reading_lists WHERE name = ?{vis} ORDER BY owner = ? DESC, id LIMIT 1",
                (ref.strip(), *vargs, visible_to or ""),
            ).fetchone()
        if row is None and str(ref).strip().isdigit():
            row = conn.execute(f"SELECT id FROM reading_lists WHERE id = ?{vis}", (int(ref), *vargs)).fetchone()
        return row["id"] if row is not None else None

    def create_reading_list(self, name: str, owner: str = "") -> int | None:
        """A new empty list's id; None when ``owner`` has a list of that name."""
        now = now_iso()
        try:
            with self.transaction() as conn:
                cur = conn.execute(
                    "INSERT INTO reading_lists(name, owner, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    (name, owner, now, now),
                )
        except sqlite3.IntegrityError:
            return None
        return cur.lastrowid

    def rename_reading_list(self, list_id: int, name: str) -> bool:
        """Rename a list; False when its owner has another list of that name."""
        try:
            with self.transaction() as conn:
                conn.execute("UPDATE reading_lists SET name = ?, updated_at = ? WHERE id = ?",
                             (name, now_iso(), list_id))
        except sqlite3.IntegrityError:
            return False
        return True

    def share_reading_list(self, list_id: int, shared: bool) -> None:
        """Let every signed-in user read the list (``shared``), or only its owner."""
        with self.transaction() as conn:
            conn.execute("UPDATE reading_lists SET shared = ?, updated_at = ? WHERE id = ?",
                         (int(bool(shared)), now_iso(), list_id))

    def delete_reading_list(self, list_id: int) -> None:
        """Delete a list and its items (the sources stay)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM reading_lists WHERE id = ?", (list_id,))

    def reading_list_items(self, list_id: int) -> list[dict]:
        """A list's item rows in order."""
        rows = self.conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM reading_list_items WHERE list_id = ? ORDER BY position, id", (list_id,)
        ).fetchall()
        return [dict(r) for r in rows]

    def reading_list_item(self, item_id: int) -> dict | None:
        row = self.conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM reading_list_items WHERE id = ?", (item_id,)
        ).fetchone()
        return dict(row) if row is not None else None

    def add_reading_list_item(self, list_id: int, values: dict) -> tuple[int, bool]:
        """Append an item unless the list already has it; (item id, added).

        The same passage is the same chunk id, or the same text from the same
        URI (its chunk re-cut since); the same source is the same document
        id or URI. Checked and appended in one transaction.
        """
        _check_columns(values)
        if values["item_type"] == "passage":
            same, args = "item_type = 'passage' AND (chunk_id = ? OR (uri = ? AND text = ?))", (
                values["chunk_id"], values["uri"], values["text"])
        else:
            same, args = "item_type = 'source' AND (doc_id = ? OR uri = ?)", (values["doc_id"], values["uri"])
        with self.transaction() as conn:
            existing = conn.execute(
                f"SELECT id FROM reading_list_items WHERE list_id = ? AND {same}", (list_id, *args)
            ).fetchone()
            if existing is not None:
                return existing[0], False
            pos = conn.execute(
                "SELECT coalesce(max(position), 0) + 1 FROM reading_list_items WHERE list_id = ?", (list_id,)
            ).fetchone()[0]
            values = {**values, "list_id": list_id, "position": pos, "added_at": now_iso()}
            cols = ", ".join(values)
            cur = conn.execute(
                f"INSERT INTO reading_list_items({cols}) VALUES ({','.join('?' * len(values))})",
                tuple(values.values()),
            )
            conn.execute("UPDATE reading_lists SET updated_at = ? WHERE id = ?", (now_iso(), list_id))
            return cur.lastrowid, True

    def update_reading_list_items(self, updates: Sequence[tuple[int, dict]]) -> None:
        """Write (item id, {column: value}) changes in one transaction (list times unchanged)."""
        if not updates:
            return
        with self.transaction() as conn:
            for item_id, changes in updates:
                _check_columns(changes)
                sets = ", ".join(f"{k} = ?" for k in changes)
                conn.execute(f"UPDATE reading_list_items SET {sets} WHERE id = ?", (*changes.values(), item_id))

    def set_reading_list_note(self, item_id: int, note: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE reading_list_items SET note = ? WHERE id = ?", (note, item_id))
            _touch(conn, item_id)

    def move_reading_list_item(self, item_id: int, position: int) -> None:
        """Move an item to 1-based ``position`` (clamped to the list); the others shift."""
        with self.transaction() as conn:
            list_id = _touch(conn, item_id)
            ids = _item_ids(conn, list_id)
            ids.remove(item_id)
            position = max(1, min(int(position), len(ids) + 1))
            ids.insert(position - 1, item_id)
            _renumber(conn, ids)

    def remove_reading_list_item(self, item_id: int) -> None:
        """Delete an item; the rest of its list is renumbered 1..n."""
        with self.transaction() as conn:
            list_id = _touch(conn, item_id)
            conn.execute("DELETE FROM reading_list_items WHERE id = ?", (item_id,))
            _renumber(conn, _item_ids(conn, list_id))


def _check_columns(values: dict) -> None:
    # Column names go into the SQL text: only known ones.
    bad = set(values) - _WRITABLE
    if bad:
        raise ValueError(f"not reading-list item columns: {sorted(bad)}")


def _touch(conn: sqlite3.Connection, item_id: int) -> int:
    """Mark the item's list as changed now; returns the list id."""
    list_id = conn.execute("SELECT list_id FROM reading_list_items WHERE id = ?", (item_id,)).fetchone()[0]
    conn.execute("UPDATE reading_lists SET updated_at = ? WHERE id = ?", (now_iso(), list_id))
    return list_id


def _item_ids(conn: sqlite3.Connection, list_id: int) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT id FROM reading_list_items WHERE list_id = ? ORDER BY position, id", (list_id,))]


def _renumber(conn: sqlite3.Connection, ids: list[int]) -> None:
    conn.executemany("UPDATE reading_list_items SET position = ? WHERE id = ?",
                     [(i, iid) for i, iid in enumerate(ids, start=1)])
