"""Commands that look after the store itself: ``stats``, ``rebuild``, ``doctor``, ``migrate``."""
from __future__ import annotations

import contextlib
import json
import shlex
import sys

import click

from .common import Context, friendly_errors, pass_ctx


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
@friendly_errors
def stats(c: Context, as_json) -> None:
    """Counts and what built the store."""
    from search.store import open_store

    store = open_store(c.home, create=False)
    info = store.info()
    integrity = store.integrity()
    kinds = store.kind_counts()
    size = sum(f.stat().st_size for f in store.path.iterdir() if f.is_file())
    data = {
        "store": str(store.path),
        "documents": info.documents,
        "chunks": info.chunks,
        "vectors": integrity["vectors"],
        "model": info.model,
        "dim": info.dim,
        "chunking": info.chunking,
        "schema_version": info.schema_version,
        "generation": info.generation,
        "kinds": kinds,
        "size_bytes": size,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        click.echo(f"{key:>15}: {value}")


@click.command()
@click.option("--index-only", is_flag=True, help="Only rebuild the FAISS index from stored vectors (no re-embedding).")
@pass_ctx
@friendly_errors
def rebuild(c: Context, index_only) -> None:
    """Re-cut and re-embed every document with the current model and chunking.

    Needed after changing --model / EQUISEARCH_MODEL or the chunking settings.
    Works from the stored text (sources are not re-read) in one transaction:
    an interrupted rebuild leaves the store as it was.
    """
    from ingest.pipeline import rebuild_store
    from search.maintenance import rebuild_index
    from search.store import open_store

    store = open_store(c.home, create=False)
    if index_only:
        n = rebuild_index(store, c.settings)
        click.echo(f"rebuilt vector index: {n} vectors")
        return
    report = rebuild_store(store, c.settings)
    click.echo(f"rebuilt {report.documents} documents, {report.chunks} passages with {report.model} ({report.chunking})")


# -- doctor (reliability) -------------------------------------------------------
@click.command()
@click.option("--repair", is_flag=True,
              help="Rebuild what is derived (keyword index, vector index), delete orphans; never re-embeds.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report (keys in the README).")
@pass_ctx
@friendly_errors
def doctor(c: Context, repair, as_json) -> None:
    """Check the store's health; exit 0 only when it is healthy.

    Runs the database's own checks (SQLite's integrity check, or PostgreSQL's
    connection, schema and indexes) and compares documents, passages,
    vectors, the keyword index and the vector index (FAISS file or HNSW).
    --repair fixes what is derived from stored rows (no model is loaded) and
    checks again.
    """
    from search import doctor as doc
    from search.store import open_store

    store = open_store(c.home, create=False)
    report = doc.repair(store) if repair else doc.diagnose(store)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for check in report.checks:
            line = f"{check.status.upper():<8} {check.name}: {check.detail}"
            if check.problem:
                line += f" -- {check.problem}"
            if check.fix and check.status != "ok":
                line += f" (fix: {check.fix})"
            click.echo(line)
        for what in report.repaired:
            click.echo(f"repaired: {what}")
        n = len(report.problems)
        click.echo(f"{report.store}: " + ("healthy" if report.healthy else f"{n} problem(s) found"))
    if not report.healthy:
        sys.exit(1)


# -- migrate (moving between backends) ------------------------------------------
@click.command()
@click.argument("source")
@click.argument("dest")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_ctx
@friendly_errors
def migrate(c: Context, source, dest, quiet) -> None:
    """Copy the store at SOURCE to DEST without re-embedding.

    Each is a store directory or a postgresql:// URL, in any direction.
    Copies documents, passages with their vectors, aliases, reading lists and
    what built the store. DEST must be empty; a migrate that was interrupted
    goes on where it stopped when run again.
    """
    from search.migrate import migrate_store

    show = not quiet and sys.stderr.isatty()
    with _bar(show) as progress:
        report = migrate_store(source, dest, c.settings, progress=progress)
    if report.nothing_to_do:
        click.echo(f"nothing to do: {report.destination} already holds the {report.kept} documents of {report.source}")
        return
    kept = f" ({report.kept} were there already)" if report.kept else ""
    click.echo(
        f"copied {report.documents} documents{kept}, {report.passages} passages with their vectors, "
        f"{report.aliases} aliases, {report.reading_lists} reading lists ({report.items} items) "
        f"from {report.source} to {report.destination} in {report.seconds:.1f} s "
        f"({report.model}, {report.dim} dimensions, {report.chunking})"
    )
    click.echo(f"check it with: equisearch --store {shlex.quote(report.destination)} doctor")


@contextlib.contextmanager
def _bar(show: bool):
    """A bar over the source's documents on a terminal, else no callback."""
    if not show:
        yield None
        return
    with click.progressbar(length=1, label="Documents", file=sys.stderr, show_eta=True, show_pos=True) as bar:
        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)
        yield progress
