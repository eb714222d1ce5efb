"""Reading lists in PostgreSQL: every query on ``reading_lists`` and ``reading_list_items``.

The same methods, rules and row shapes as the SQLite backend's
(search/store/lists.py); :class:`search.lists.ReadingLists` holds the rules
(names, statuses, relinking, who may change a list). What differs:

- names are unique per owner, case-insensitive, by the unique index on
  ``(owner, lower(name))`` (schema.py); a clash is caught inside a savepoint,
  so it is a ``None``/``False`` answer and never an aborted transaction;
- every write that reads an item order first locks the list's row
  (``SELECT ... FOR UPDATE``): two sessions appending to one list at once get
  positions n+1 and n+2, never the same one (SQLite serialises all writers);
- readers may run all of these: ``equisearch_reader`` has SELECT, INSERT,
  UPDATE and DELETE on the two list tables and only SELECT on the corpus.

List writes do not bump the generation (no passage or vector changes).
Rows come back as plain dicts keyed by column name, ``shared`` a bool.
"""
from __future__ import annotations

from typing import Sequence

from ...types import now_iso
from ..lists import _ITEM_COLUMNS, _check_columns


class PgListsMixin:
    """Reading-list rows (PostgreSQL backend)."""

    def _dict_rows(self, sql: str, params=None) -> list[dict]:
        from psycopg.rows import dict_row

        with self.connection() as conn, self._errors():
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(sql, params)
                return cur.fetchall()

    def reading_lists(self, visible_to: str | None = None) -> list[dict]:
        """Every list (or those ``visible_to`` may see) with its item count ``n`` and word total ``w``, by name."""
        where, args = ("", ()) if visible_to is None else (" WHERE l.owner = %s OR l.shared", (visible_to,))
        return self._dict_rows(
            "SELECT l.id, l.name, l.owner, l.shared, l.created_at, l.updated_at, count(i.id)::int AS n,"
            " coalesce(sum(i.words), 0)::int AS w"
            f" FROM reading_lists l LEFT JOIN reading_list_items i ON i.list_id = l.id{where}"
            " GROUP BY l.id ORDER BY lower(l.name), l.id", args)

    def reading_list_id(self, ref: str | int, visible_to: str | None = None) -> int | None:
        """The id of the list named ``ref`` (case-insensitive), else with id ``ref``; None if neither.

        Among lists of the same name, the caller's own wins (``visible_to``,
        or the single user's '' when None), then the oldest.
        """
        vis, vargs = ("", ()) if visible_to is None else (" AND (owner = %s OR shared)", (visible_to,))
        found = None
        if isinstance(ref, str):
            found = self.scalar(
                f"SELECT id FROM reading_lists WHERE lower(name) = lower(%s){vis}"
                " ORDER BY owner = %s DESC, id LIMIT 1", (ref.strip(), *vargs, visible_to or ""))
        if found is None and str(ref).strip().isdigit():
            found = self.scalar(f"SELECT id FROM reading_lists WHERE id = %s{vis}", (int(ref), *vargs))
        return int(found) if found is not None else None

    def create_reading_list(self, name: str, owner: str = "") -> int | None:
        """A new empty list's id; None when ``owner`` has a list of that name."""
        now = now_iso()
        found = self.scalar(
            "INSERT INTO reading_lists(name, owner, created_at, updated_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING id", (name, owner, now, now))
        return int(found) if found is not None else None

    def rename_reading_list(self, list_id: int, name: str) -> bool:
        """Rename a list; False when its owner has another list of that name."""
        from psycopg import errors as pge

        with self.transaction() as conn:
            try:
                with conn.transaction():  # a savepoint: the clash must not abort a caller's transaction
                    conn.execute("UPDATE reading_lists SET name = %s, updated_at = %s WHERE id = %s",
                                 (name, now_iso(), list_id))
            except pge.UniqueViolation:
                return False
        return True

    def share_reading_list(self, list_id: int, shared: bool) -> None:
        """Let every signed-in user read the list (``shared``), or only its owner."""
        self.execute("UPDATE reading_lists SET shared = %s, updated_at = %s WHERE id = %s",
                     (bool(shared), now_iso(), list_id))

    def delete_reading_list(self, list_id: int) -> None:
        """Delete a list and its items (the sources stay)."""
        self.execute("DELETE FROM reading_lists WHERE id = %s", (list_id,))

    def reading_list_items(self, list_id: int) -> list[dict]:
        """A list's item rows in order."""
        return self._dict_rows(
            f"SELECT {_ITEM_COLUMNS} FROM reading_list_items WHERE list_id = %s ORDER BY position, id", (list_id,))

    def reading_list_item(self, item_id: int) -> dict | None:
        rows = self._dict_rows(f"SELECT {_ITEM_COLUMNS} FROM reading_list_items WHERE id = %s", (item_id,))
        return rows[0] if rows else None

    def add_reading_list_item(self, list_id: int, values: dict) -> tuple[int, bool]:
        """Append an item unless the list already has it; (item id, added).

        The same passage is the same chunk id, or the same text from the same
        URI (its chunk re-cut since); the same source is the same document
        id or URI. Checked and appended in one transaction, the list locked.
        """
        _check_columns(values)
        if values["item_type"] == "passage":
            same, args = "item_type = 'passage' AND (chunk_id = %s OR (uri = %s AND text = %s))", (
                values["chunk_id"], values["uri"], values["text"])
        else:
            same, args = "item_type = 'source' AND (doc_id = %s OR uri = %s)", (values["doc_id"], values["uri"])
        with self.transaction() as conn:
            _lock_list(conn, list_id)
            existing = conn.execute(
                f"SELECT id FROM reading_list_items WHERE list_id = %s AND {same} ORDER BY id LIMIT 1",
                (list_id, *args)).fetchone()
            if existing is not None:
                return int(existing[0]), False
            pos = conn.execute(
                "SELECT coalesce(max(position), 0) + 1 FROM reading_list_items WHERE list_id = %s", (list_id,)
            ).fetchone()[0]
            now = now_iso()
            values = {**values, "list_id": list_id, "position": pos, "added_at": now}
            item_id = conn.execute(
                f"INSERT INTO reading_list_items({', '.join(values)}) VALUES ({', '.join(['%s'] * len(values))})"
                " RETURNING id", tuple(values.values())).fetchone()[0]
            conn.execute("UPDATE reading_lists SET updated_at = %s WHERE id = %s", (now, list_id))
            return int(item_id), True

    def update_reading_list_items(self, updates: Sequence[tuple[int, dict]]) -> None:
        """Write (item id, {column: value}) changes in one transaction (list times unchanged)."""
        if not updates:
            return
        with self.transaction() as conn:
            for item_id, changes in updates:
                _check_columns(changes)
                sets = ", ".join(f"{k} = %s" for k in changes)
                conn.execute(f"UPDATE reading_list_items SET {sets} WHERE id = %s", (*changes.values(), item_id))

    def set_reading_list_note(self, item_id: int, note: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE reading_list_items SET note = %s WHERE id = %s", (note, item_id))
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
            conn.execute("DELETE FROM reading_list_items WHERE id = %s", (item_id,))
            _renumber(conn, _item_ids(conn, list_id))


def _lock_list(conn, list_id: int) -> None:
    """Hold the list's row until commit: its item order is read and rewritten by one writer at a time."""
    conn.execute("SELECT 1 FROM reading_lists WHERE id = %s FOR UPDATE", (list_id,))


def _touch(conn, item_id: int) -> int:
    """Lock the item's list and mark it changed now; returns the list id."""
    list_id = conn.execute("SELECT list_id FROM reading_list_items WHERE id = %s", (item_id,)).fetchone()[0]
    _lock_list(conn, list_id)
    conn.execute("UPDATE reading_lists SET updated_at = %s WHERE id = %s", (now_iso(), list_id))
    return int(list_id)


def _item_ids(conn, list_id: int) -> list[int]:
    return [int(r[0]) for r in conn.execute(
        "SELECT id FROM reading_list_items WHERE list_id = %s ORDER BY position, id", (list_id,))]


def _renumber(conn, ids: list[int]) -> None:
    """Positions 1..n in the order of ``ids``, in one statement."""
    if ids:
        conn.execute(
            "UPDATE reading_list_items i SET position = v.pos"
            " FROM unnest(%s::bigint[], %s::int[]) AS v(id, pos) WHERE i.id = v.id",
            (ids, list(range(1, len(ids) + 1))))
