"""Commands that change or list what the store holds: ``ingest``, ``refresh``,
``sources``, ``remove``."""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from ingest.sources import FILES, Progress, SourceRequest, add_sources

from .common import Context, friendly_errors, pass_ctx


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--sitemap", "sitemaps", multiple=True, metavar="URL", help="Ingest every page of a sitemap (or sitemap index).")
@click.option("--feed", "feeds", multiple=True, metavar="URL", help="Ingest the entries of an RSS or Atom feed.")
@click.option("--crawl", "crawls", multiple=True, metavar="URL", help="Crawl this site (same host, article links) and ingest what it finds.")
@click.option("--max-pages", type=click.IntRange(1, 100000), default=50, show_default=True, help="Pages per --crawl.")
@click.option("--from-file", "url_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A file of URLs, one per line (# comments allowed).")
@click.option("--kind", type=click.Choice(["article", "report", "transcript", "forum", "guidance",
                                           "inspection", "event", "other"]),
              help="Kind recorded for every source in this batch.")
@click.option("--site", help="Site or publisher recorded for every source.")
@click.option("--title", help="Title (for a single source).")
@click.option("--url", help="URL where the source lives (links in citations; video URL for transcripts).")
@click.option("--tag", "tags", multiple=True, help="Tag added to every source (repeatable).")
@click.option("--delay", type=float, default=1.0, show_default=True, help="Seconds between two requests to one host.")
@click.option("--timeout", type=float, default=20.0, show_default=True, help="Seconds before a request gives up.")
@click.option("--ignore-robots", is_flag=True, help="Fetch pages robots.txt disallows (only for sites you own).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_ctx
@friendly_errors
def ingest(c: Context, paths, sitemaps, feeds, crawls, max_pages, url_files, kind, site, title, url, tags,
           delay, timeout, ignore_robots, quiet) -> None:
    """Add files, folders (recursively) and web pages to the store.

    PATHS may be files, folders or http(s) URLs. Reads .txt .md .gs .rst .html .htm
    .pdf .vtt .srt; other files in folders are skipped. Unchanged sources cost
    nothing on re-ingest. Exit code 1 when any source failed; the others are
    stored all the same.
    """
    from ingest.fetch import FetchPolicy

    if not (paths or sitemaps or feeds or crawls or url_files):
        raise click.UsageError("give at least one PATH or URL, or --sitemap/--feed/--crawl/--from-file")
    overrides = {"kind": kind, "site": site, "title": title, "url": url, "tags": list(tags)}
    request = SourceRequest(
        paths=tuple(paths), sitemaps=tuple(sitemaps), feeds=tuple(feeds), crawls=tuple(crawls),
        max_pages=max_pages, overrides=overrides,
        url_files=tuple((f, Path(f).read_text(encoding="utf-8", errors="replace")) for f in url_files),
    )
    policy = FetchPolicy(host_delay=delay, timeout=timeout, respect_robots=not ignore_robots)
    show = not quiet and sys.stderr.isatty()
    report = add_sources(c.home, c.settings, request, policy=policy, progress=_CliProgress(show, quiet))
    _print_summary(report, c.shown_home, show)


def printable(text: str) -> str:
    """``text`` on one line whatever it holds: a file name with a newline, an
    escape sequence or bytes that are not UTF-8 is shown escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for ch in str(text))


def _print_summary(report, home, already_shown: bool) -> None:
    if not already_shown:
        for r in report.failed:
            click.echo(f"failed: {printable(r.source)}: {printable(r.reason)}", err=True)
    counts = report.counts
    click.echo(
        f"{counts['added']} added, {counts['updated']} updated, {counts['unchanged']} unchanged, "
        f"{counts['duplicate']} duplicate, {counts['skipped']} skipped, {counts['failed']} failed "
        f"({report.passages} passages embedded) -> {home}"
    )
    if report.failed:
        sys.exit(1)


class _CliProgress(Progress):
    """A bar per stage on a terminal; "sitemap URL: N pages" unless --quiet."""

    def __init__(self, show: bool, quiet: bool):
        super().__init__()
        self.show, self.quiet = show, quiet

    def stage(self, name: str):
        return _bar(self.show, "Files" if name == FILES else "Web pages")

    def found(self, how: str, source: str, pages: list[str]) -> None:
        if not self.quiet:
            click.echo(f"{how} {source}: {len(pages)} pages", err=True)


@contextlib.contextmanager
def _bar(show: bool, label: str):
    """A progress callback: a bar with counts and ETA on a terminal, else nothing."""
    if not show:
        yield None
        return
    with click.progressbar(length=1, label=label, file=sys.stderr, show_eta=True, show_pos=True) as bar:
        def progress(result, done, total):
            bar.length = total
            bar.update(1)
            if result.status == "failed":
                click.echo(f"\nfailed: {printable(result.source)}: {printable(result.reason)}", err=True)
        yield progress


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--delay", type=float, default=1.0, show_default=True, help="Seconds between two requests to one host.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_ctx
@friendly_errors
def refresh(c: Context, sources, delay, quiet) -> None:
    """Re-fetch web sources (all, or the ids/URLs given) and replace what changed.

    Sends conditional requests (ETag / Last-Modified) where the server supports
    them and compares content hashes otherwise; unchanged pages cost nothing.
    """
    from ingest.fetch import FetchPolicy, Fetcher
    from ingest.pipeline import Ingestor
    from ingest.web import WebIngest
    from search.store import open_store

    store = open_store(c.home, create=False)
    web = WebIngest(Ingestor(store, c.settings), Fetcher(FetchPolicy(host_delay=delay)))
    show = not quiet and sys.stderr.isatty()
    with _bar(show, "Refreshing") as progress:
        report = web.refresh(sources, progress=progress)
    _print_summary(report, c.shown_home, show)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
@friendly_errors
def sources(c: Context, as_json) -> None:
    """List stored documents (newest first)."""
    from search.store import open_store

    docs = open_store(c.home, create=False).documents()
    if as_json:
        click.echo(json.dumps([{
            "id": d.id, "title": d.title, "uri": d.uri, "url": d.url, "site": d.site, "kind": d.kind,
            "date": d.date, "tags": list(d.tags), "chunks": d.n_chunks, "aliases": list(d.aliases),
            "added_at": d.added_at, "updated_at": d.updated_at,
        } for d in docs], ensure_ascii=False, indent=2))
        return
    if not docs:
        click.echo("No sources yet: run `equisearch ingest PATH`.")
        return
    for d in docs:
        bits = ", ".join(b for b in (d.site, d.kind, d.date) if b)
        click.echo(f"{d.id:>5}  {d.title}  ({bits}; {d.n_chunks} passages)\n       {d.uri}")


@click.command()
@click.argument("source", nargs=-1, required=True)
@pass_ctx
@friendly_errors
def remove(c: Context, source) -> None:
    """Remove documents by id, path or URL (with their passages)."""
    from search.maintenance import remove_sources
    from search.store import open_store

    removed, missing = remove_sources(open_store(c.home, create=False), source, c.settings)
    for doc in removed:
        click.echo(f"removed {doc.id}: {doc.title}")
    for s in missing:
        click.echo(f"not found: {s} (see `equisearch sources` for ids)", err=True)
    if missing:
        sys.exit(1)
