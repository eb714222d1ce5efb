"""Reading lists: named, ordered lists of passages and whole sources, with notes.

CPD leads build them from the Ask page (or ``equisearch lists``) and export
them as Markdown, CSV, BibTeX or RIS for Zotero, Mendeley or a handout (the
formats are written by search/exports.py).

Lists live in the store (in SQLite: tables ``reading_lists`` and
``reading_list_items``, schema version 3, queried by search/store/lists.py);
every write is one transaction. List writes do not bump the store
generation: they never touch passages or vectors, so other processes'
vector indexes stay valid.

What an item keeps, and why: an item stores a snapshot of everything a
citation needs (title, site, kind, date, author, URL/URI, deep link, page or
time span, the passage text and its word count). Chunk ids change when a
changed file is re-ingested (its passages are re-cut), and a source can be
removed, so the ids alone would lose the citation. When items are read:

- ``current``: the passage (or source) is in the store as listed. Live
  metadata (a corrected title, say) is copied into the snapshot.
- a passage whose chunk was re-cut is looked up again by its exact text in the
  same document (found by id, else by URI); if found it is relinked and stays
  ``current``, otherwise it becomes ``changed``: the source is still there but
  no longer contains this passage word for word. The snapshot is kept.
- ``removed``: the source is no longer in the store (removed, or never
  re-ingested after a rebuild elsewhere). The snapshot is kept, so the item
  still exports with its full citation; a later re-ingest of the same URI
  relinks it.

Who may see and change a list: each list has an owner and may be shared.
``ReadingLists(store)`` (no user: the CLI, and the UI without sign-in) is the
single user, who sees and changes every list and makes lists owned by ''.
``ReadingLists(store, user=identity)`` (a signed-in UI user) sees their own
lists and the shared ones, makes lists owned by them, and may change, share
or unshare only their own: anyone else's shared list is read-only (reading
it may still relink its items' snapshots, as above, which changes no choice
of its owner). A list that is not visible is reported as not found.

Reading time is estimated at :data:`WORDS_PER_MINUTE` (200) words a minute:
a careful pace for reports and research read to be discussed, below the
~240 words a minute measured for silent reading of non-fiction.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import ListError, ListNotFound
from .types import Citation

if TYPE_CHECKING:  # the CLI imports this module (through search.exports) at start-up: keep numpy out
    from .store import StoreBackend

log = logging.getLogger(__name__)

WORDS_PER_MINUTE = 200
MAX_NAME = 120
MAX_NOTE = 10_000


@dataclass(frozen=True)
class ReadingList:
    id: int
    name: str
    created_at: str
    updated_at: str
    n_items: int = 0
    words: int = 0
    #: The identity that made it ('' for the single user).
    owner: str = ""
    #: Readable by every signed-in user (only its owner changes it).
    shared: bool = False

    @property
    def reading_minutes(self) -> int:
        return reading_minutes(self.words)


@dataclass(frozen=True)
class ListItem:
    """One passage or whole source in a list, with its citation snapshot.

    ``position`` is 1-based and contiguous. ``status`` is ``current``,
    ``changed`` (passage no longer in its source word for word) or
    ``removed`` (source gone); see the module docstring.
    """

    id: int
    list_id: int
    position: int
    item_type: str  # "passage" or "source"
    doc_id: int | None
    chunk_id: int | None
    uri: str
    title: str
    site: str
    kind: str
    date: str
    author: str
    url: str
    link: str
    location: str
    page_start: int | None
    page_end: int | None
    t_start: float | None
    t_end: float | None
    text: str
    words: int
    note: str
    added_at: str
    status: str = "current"

    @property
    def reading_minutes(self) -> int:
        return reading_minutes(self.words)

    @property
    def year(self) -> str:
        m = re.match(r"(\d{4})", self.date or "")
        return m.group(1) if m else ""

    @property
    def web_url(self) -> str:
        """The http(s) address to cite ('' for local files)."""
        for u in (self.link if self.item_type == "passage" else "", self.url, self.uri):
            if u.startswith(("http://", "https://")):
                return u
        return ""


def reading_minutes(n_words: int) -> int:
    """Whole minutes at :data:`WORDS_PER_MINUTE`; anything non-empty is at least 1."""
    return math.ceil(n_words / WORDS_PER_MINUTE) if n_words > 0 else 0


def _row_to_item(row: dict, status: str = "current") -> ListItem:
    return ListItem(**row, status=status)


class ReadingLists:
    """Reading lists stored in one store (rows and transactions are the store's).

    Lists are named by ``ref``: a name (case-insensitive) or a numeric id.
    Items are addressed by their item id (see :meth:`item_at` to go from a
    1-based position to an item). ``user`` None is the single user; an
    identity limits what is seen and changed (module docstring).
    """

    def __init__(self, store: StoreBackend, user: str | None = None):
        if user is not None and not user.strip():
            # '' would be the single user's owner: never let a sign-in without an identity become it.
            raise ValueError("a signed-in user needs a non-empty identity")
        self.store = store
        self.user = user.strip() if user is not None else None

    # -- lists -----------------------------------------------------------
    def lists(self) -> list[ReadingList]:
        """The lists this user sees, by name."""
        return [ReadingList(r["id"], r["name"], r["created_at"], r["updated_at"], r["n"], r["w"],
                            r["owner"], bool(r["shared"]))
                for r in self.store.reading_lists(visible_to=self.user)]

    def get(self, ref: str | int) -> ReadingList:
        """The list named ``ref`` (or with that id); :class:`ListNotFound` otherwise (or when not visible)."""
        list_id = self.store.reading_list_id(ref, visible_to=self.user)
        if list_id is None:
            raise ListNotFound(f"no reading list {str(ref)!r}: see `equisearch lists ls` for the names")
        return next(rl for rl in self.lists() if rl.id == list_id)

    def can_change(self, rl: ReadingList) -> bool:
        """True when this user may change ``rl`` (the single user may change every list)."""
        return self.user is None or rl.owner == self.user

    def _own(self, ref: str | int) -> ReadingList:
        """The list ``ref`` if this user may change it; :class:`ListError` for someone else's shared list."""
        rl = self.get(ref)
        if not self.can_change(rl):
            raise ListError(f"{rl.name!r} is {rl.owner}'s shared list: you can read and export it, not change it")
        return rl

    @staticmethod
    def _clean_name(name: str) -> str:
        name = " ".join((name or "").split())
        if not name:
            raise ListError("a reading list needs a name: type one")
        if len(name) > MAX_NAME:
            raise ListError(f"list names are at most {MAX_NAME} characters: shorten it")
        return name

    def create(self, name: str) -> ReadingList:
        """A new empty list owned by this user (names are unique per owner)."""
        name = self._clean_name(name)
        list_id = self.store.create_reading_list(name, owner=self.user or "")
        if list_id is None:
            raise ListError(f"a reading list called {name!r} already exists: choose another name")
        return self.get(list_id)

    def rename(self, ref: str | int, new_name: str) -> ReadingList:
        rl = self._own(ref)
        new_name = self._clean_name(new_name)
        if not self.store.rename_reading_list(rl.id, new_name):
            raise ListError(f"a reading list called {new_name!r} already exists: choose another name")
        return self.get(rl.id)

    def delete(self, ref: str | int) -> ReadingList:
        """Delete a list and its items (the sources stay in the store)."""
        rl = self._own(ref)
        self.store.delete_reading_list(rl.id)
        return rl

    def share(self, ref: str | int, shared: bool = True) -> ReadingList:
        """Let every signed-in user read the list (``shared``), or only its owner again."""
        rl = self._own(ref)
        if rl.shared != bool(shared):
            self.store.share_reading_list(rl.id, bool(shared))
        return self.get(rl.id)

    # -- items -----------------------------------------------------------
    def items(self, ref: str | int) -> list[ListItem]:
        """The list's items in order, relinked to the store where possible."""
        rl = self.get(ref)
        items, updates = [], []
        for row in self.store.reading_list_items(rl.id):
            item, changes = self._resolve(row)
            items.append(item)
            if changes:
                updates.append((item.id, changes))
        self.store.update_reading_list_items(updates)
        return items

    def _resolve(self, row: dict) -> tuple[ListItem, dict]:
        """The item with its status, and the snapshot columns to update."""
        store = self.store
        item = _row_to_item(row)
        doc = store.get_document(item.doc_id) if item.doc_id is not None else None
        if doc is None:
            doc = store.find_document(item.uri)
        if doc is None:
            return replace(item, status="removed"), ({"doc_id": None, "chunk_id": None} if item.doc_id else {})
        changes: dict = {}
        if item.doc_id != doc.id:
            changes["doc_id"] = doc.id
        for key in ("title", "site", "kind", "date", "author", "url"):
            if getattr(doc, key) != getattr(item, key):
                changes[key] = getattr(doc, key)
        status = "current"
        if item.item_type == "passage":
            chunk = None
            if item.chunk_id is not None:
                chunk = store.chunks_by_ids([item.chunk_id]).get(item.chunk_id)
                if chunk is not None and chunk.doc_id != doc.id:
                    chunk = None  # an id reused by another document
            if chunk is None and item.text:
                found = store.find_passage(doc.id, item.text)
                chunk = store.chunks_by_ids([found]).get(found) if found is not None else None
            if chunk is None:
                status = "changed"
                if item.chunk_id is not None:
                    changes["chunk_id"] = None
            else:
                if chunk.id != item.chunk_id:
                    changes["chunk_id"] = chunk.id
                cit = Citation.for_chunk(doc, chunk)
                if cit.link != item.link:
                    changes["link"] = cit.link
                if cit.location != item.location:
                    changes["location"] = cit.location
        else:
            link = doc.url or doc.uri
            if link != item.link:
                changes["link"] = link
        return replace(item, **changes, status=status), changes

    def item_at(self, ref: str | int, position: int) -> ListItem:
        """The item at 1-based ``position``; :class:`ListNotFound` otherwise."""
        items = self.items(ref)
        if not 1 <= position <= len(items):
            raise ListNotFound(
                f"list {self.get(ref).name!r} has {len(items)} items, no item {position}: "
                "see `equisearch lists show`"
            )
        return items[position - 1]

    def _item(self, item_id: int) -> dict:
        row = self.store.reading_list_item(item_id)
        if row is None or (self.user is not None
                           and self.store.reading_list_id(row["list_id"], visible_to=self.user) is None):
            raise ListNotFound(f"no reading-list item {item_id}: it may have been removed")
        return row

    def _own_item(self, item_id: int) -> dict:
        """The item's row if this user may change its list."""
        row = self._item(item_id)
        self._own(row["list_id"])
        return row

    def _insert(self, rl: ReadingList, values: dict) -> tuple[ListItem, bool]:
        """Append an item unless the same passage/source is already listed.

        Returns (item, added). Adding twice is not an error: the one-click
        "add" in the UI is then idempotent.
        """
        item_id, added = self.store.add_reading_list_item(rl.id, values)
        return _row_to_item(self._item(item_id)), added

    def add_passage(self, ref: str | int, chunk_id: int, note: str = "") -> tuple[ListItem, bool]:
        """Add passage ``chunk_id`` (a ``chunk_id`` from search/ask) to the list."""
        rl = self._own(ref)
        chunk = self.store.chunks_by_ids([int(chunk_id)]).get(int(chunk_id))
        if chunk is None:
            raise ListNotFound(
                f"no passage {chunk_id} in the store: passage ids come from `equisearch search --json` (chunk_id)"
            )
        doc = self.store.get_document(chunk.doc_id)
        cit = Citation.for_chunk(doc, chunk)
        values = dict(
            item_type="passage", doc_id=doc.id, chunk_id=chunk.id, uri=doc.uri, title=doc.title, site=doc.site,
            kind=doc.kind, date=doc.date, author=doc.author, url=doc.url, link=cit.link, location=cit.location,
            page_start=chunk.page_start, page_end=chunk.page_end, t_start=chunk.t_start, t_end=chunk.t_end,
            text=chunk.text, words=len(chunk.text.split()), note=_clean_note(note),
        )
        return self._insert(rl, values)

    def add_source(self, ref: str | int, source: str | int, note: str = "") -> tuple[ListItem, bool]:
        """Add a whole source, by document id, URI/URL or alias."""
        rl = self._own(ref)
        doc = self.store.find_source(source)
        if doc is None:
            raise ListNotFound(f"no source {str(source)!r} in the store: see `equisearch sources` for ids")
        text = self.store.document_text(doc.id)
        values = dict(
            item_type="source", doc_id=doc.id, chunk_id=None, uri=doc.uri, title=doc.title, site=doc.site,
            kind=doc.kind, date=doc.date, author=doc.author, url=doc.url, link=doc.url or doc.uri, location="",
            text="", words=len(text.split()), note=_clean_note(note),
        )
        return self._insert(rl, values)

    def set_note(self, item_id: int, note: str) -> ListItem:
        self._own_item(item_id)
        self.store.set_reading_list_note(item_id, _clean_note(note))
        return _row_to_item(self._item(item_id))

    def move(self, item_id: int, position: int) -> None:
        """Move an item to 1-based ``position`` (clamped to the list); others shift."""
        self._own_item(item_id)
        self.store.move_reading_list_item(item_id, position)

    def remove_item(self, item_id: int) -> None:
        self._own_item(item_id)
        self.store.remove_reading_list_item(item_id)

    # -- export ----------------------------------------------------------
    def export(self, ref: str | int, fmt: str) -> str:
        """The list as text in ``fmt`` (one of :data:`search.exports.FORMATS`)."""
        # Imported here: search.exports renders ListItems, so it imports this module.
        from .exports import FORMATS, render

        if fmt not in FORMATS:
            raise ListError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
        rl = self.get(ref)
        return render(fmt, rl, self.items(rl.id))


def _clean_note(note: str) -> str:
    note = (note or "").replace("\x00", "").strip()
    if len(note) > MAX_NOTE:
        raise ListError(f"notes are at most {MAX_NOTE} characters: shorten it")
    return note
