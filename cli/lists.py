"""``equisearch lists ...``: reading lists from the command line.

Registered on the main group by :mod:`cli.app`. Items are addressed by
their 1-based position in the list (as ``lists show`` prints them); lists by
name (case-insensitive) or id. The library (:mod:`search.lists`, and
:mod:`search.exports` for the file formats) does the work; this module only
parses options and prints.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from search.files import atomic_write
from search.exports import FORMAT_FILES, FORMATS

from .common import friendly_errors


def _lists(c):
    from search.lists import ReadingLists
    from search.store import open_store

    return ReadingLists(open_store(c.home, create=False))


def _list_json(rl) -> dict:
    return {"id": rl.id, "name": rl.name, "items": rl.n_items, "words": rl.words,
            "reading_minutes": rl.reading_minutes, "created_at": rl.created_at, "updated_at": rl.updated_at,
            "owner": rl.owner, "shared": rl.shared}


def _whose(rl) -> str:
    """'' for the single user's private list, else who owns it and whether it is shared."""
    bits = ([f"owner {rl.owner}"] if rl.owner else []) + (["shared"] if rl.shared else [])
    return f"  [{', '.join(bits)}]" if bits else ""


def _item_json(i) -> dict:
    return {"position": i.position, "item_id": i.id, "type": i.item_type, "status": i.status,
            "doc_id": i.doc_id, "chunk_id": i.chunk_id, "title": i.title, "site": i.site, "kind": i.kind,
            "date": i.date, "author": i.author, "uri": i.uri, "url": i.url, "link": i.link,
            "location": i.location, "text": i.text, "words": i.words, "reading_minutes": i.reading_minutes,
            "note": i.note, "added_at": i.added_at}


@click.group(name="lists")
def lists() -> None:
    """Reading lists: named lists of passages and sources, with notes and exports.

    \b
      equisearch lists create "PLAC CPD"
      equisearch lists add "PLAC CPD" --passage 42 --note "read before session 2"
      equisearch lists add "PLAC CPD" --source https://example.org/report
      equisearch lists show "PLAC CPD"
      equisearch lists export "PLAC CPD" --format bibtex -o plac.bib
      equisearch lists share "PLAC CPD"     # readable by everyone signed in to the UI

    The command line is the single user: it sees and changes every list,
    whoever made it in the UI.
    """


@lists.command(name="ls")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@friendly_errors
def ls_(c, as_json) -> None:
    """List the reading lists with item counts and reading time."""
    found = _lists(c).lists()
    if as_json:
        click.echo(json.dumps([_list_json(rl) for rl in found], ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo('No reading lists yet: equisearch lists create "NAME"')
    for rl in found:
        click.echo(f"{rl.id:>4}  {rl.name}  ({rl.n_items} items, about {rl.reading_minutes} min){_whose(rl)}")


@lists.command()
@click.argument("name")
@click.pass_obj
@friendly_errors
def create(c, name) -> None:
    """Create an empty list called NAME."""
    rl = _lists(c).create(name)
    click.echo(f"created list {rl.id}: {rl.name}")


@lists.command()
@click.argument("list_ref", metavar="LIST")
@click.argument("new_name")
@click.pass_obj
@friendly_errors
def rename(c, list_ref, new_name) -> None:
    """Rename LIST (a name or id) to NEW_NAME."""
    rl = _lists(c).rename(list_ref, new_name)
    click.echo(f"renamed list {rl.id}: {rl.name}")


@lists.command()
@click.argument("list_ref", metavar="LIST")
@click.pass_obj
@friendly_errors
def share(c, list_ref) -> None:
    """Let everyone signed in to the UI read LIST (its owner still alone changes it)."""
    rl = _lists(c).share(list_ref, True)
    click.echo(f"shared list {rl.id}: {rl.name} (signed-in UI users can read and export it)")


@lists.command()
@click.argument("list_ref", metavar="LIST")
@click.pass_obj
@friendly_errors
def unshare(c, list_ref) -> None:
    """Make LIST private to its owner again."""
    rl = _lists(c).share(list_ref, False)
    click.echo(f"unshared list {rl.id}: {rl.name}")


@lists.command()
@click.argument("list_ref", metavar="LIST")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@friendly_errors
def delete(c, list_ref, yes) -> None:
    """Delete LIST and its items (the sources stay in the store)."""
    rls = _lists(c)
    rl = rls.get(list_ref)
    if not yes and not click.confirm(f"Delete list {rl.name!r} with {rl.n_items} items?", default=False):
        raise click.Abort()
    rls.delete(rl.id)
    click.echo(f"deleted list {rl.id}: {rl.name}")


@lists.command()
@click.argument("list_ref", metavar="LIST")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@friendly_errors
def show(c, list_ref, as_json) -> None:
    """Show the items of LIST in order, with notes and reading time."""
    rls = _lists(c)
    rl = rls.get(list_ref)
    items = rls.items(rl.id)
    if as_json:
        click.echo(json.dumps({**_list_json(rl), "items": [_item_json(i) for i in items]},
                              ensure_ascii=False, indent=2))
        return
    click.echo(f"{rl.name}: {len(items)} items, about {rl.reading_minutes} min of reading")
    for i in items:
        bits = ", ".join(b for b in (i.site, i.kind, i.date, i.location) if b)
        flag = "" if i.status == "current" else f" [{i.status}]"
        click.echo(f"{i.position:>3}. {i.title} ({bits}) - {i.item_type}, {i.reading_minutes} min{flag}")
        click.echo(f"     {i.link}")
        if i.item_type == "passage":
            text = " ".join(i.text.split())
            click.echo(f"     \"{text[:200]}{'…' if len(text) > 200 else ''}\"")
        if i.note:
            click.echo(f"     note: {' '.join(i.note.split())}")


@lists.command()
@click.argument("list_ref", metavar="LIST")
@click.option("--passage", "chunk_ids", multiple=True, type=int, metavar="CHUNK_ID",
              help="A passage id (chunk_id in `search --json` / `ask --json`); repeatable.")
@click.option("--source", "sources", multiple=True, metavar="ID_OR_URI",
              help="A whole source by id, path or URL (see `equisearch sources`); repeatable.")
@click.option("--note", default="", help="A note for the added item(s).")
@click.option("--create", "create_list", is_flag=True, help="Create LIST if it does not exist.")
@click.pass_obj
@friendly_errors
def add(c, list_ref, chunk_ids, sources, note, create_list) -> None:
    """Add passages and/or whole sources to LIST (already listed ones are kept once)."""
    from search.errors import ListNotFound

    if not chunk_ids and not sources:
        raise click.UsageError("give --passage CHUNK_ID or --source ID_OR_URI")
    rls = _lists(c)
    try:
        rl = rls.get(list_ref)
    except ListNotFound:
        if not create_list:
            raise
        rl = rls.create(list_ref)
    for cid in chunk_ids:
        item, added = rls.add_passage(rl.id, cid, note)
        click.echo(f"{'added' if added else 'already listed'}: {item.position}. passage from {item.title}")
    for src in sources:
        item, added = rls.add_source(rl.id, src, note)
        click.echo(f"{'added' if added else 'already listed'}: {item.position}. {item.title}")


@lists.command()
@click.argument("list_ref", metavar="LIST")
@click.argument("position", type=int)
@click.argument("text")
@click.pass_obj
@friendly_errors
def note(c, list_ref, position, text) -> None:
    """Set the note of item POSITION of LIST (an empty TEXT clears it)."""
    rls = _lists(c)
    item = rls.set_note(rls.item_at(list_ref, position).id, text)
    click.echo(f"note set on {item.position}. {item.title}")


@lists.command()
@click.argument("list_ref", metavar="LIST")
@click.argument("position", type=int)
@click.argument("new_position", type=int)
@click.pass_obj
@friendly_errors
def move(c, list_ref, position, new_position) -> None:
    """Move item POSITION of LIST to NEW_POSITION (the others shift)."""
    rls = _lists(c)
    item = rls.item_at(list_ref, position)
    rls.move(item.id, new_position)
    click.echo(f"moved {item.title} to {max(1, min(new_position, rls.get(list_ref).n_items))}")


@lists.command(name="remove")
@click.argument("list_ref", metavar="LIST")
@click.argument("position", type=int)
@click.pass_obj
@friendly_errors
def remove_item(c, list_ref, position) -> None:
    """Remove item POSITION from LIST (the source stays in the store)."""
    rls = _lists(c)
    item = rls.item_at(list_ref, position)
    rls.remove_item(item.id)
    click.echo(f"removed {position}. {item.title}")


@lists.command()
@click.argument("list_ref", metavar="LIST")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True,
              help="md (Markdown), csv, bibtex (.bib) or ris (Zotero, Mendeley, EndNote).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file (atomically) instead of standard output.")
@click.pass_obj
@friendly_errors
def export(c, list_ref, fmt, output) -> None:
    """Export LIST as Markdown, CSV, BibTeX or RIS."""
    text = _lists(c).export(list_ref, fmt)
    if not output:
        click.echo(text, nl=False)
        return
    path = Path(output).expanduser()
    if not path.suffix:
        path = path.with_suffix(FORMAT_FILES[fmt][0])
    # Written as given: the CRLF the CSV and RIS writers chose survives.
    atomic_write(path, text, fsync=False)
    click.echo(f"wrote {path}")
