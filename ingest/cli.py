"""The ``equisearch`` command line.

Thin on purpose: each command parses options, calls the library, and turns
domain errors (:class:`search.errors.EquisearchError`) into one-line
``Error: ...`` messages with exit code 1. Nothing heavy is imported at module
level, so ``equisearch --help`` answers at once.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from functools import wraps
from pathlib import Path

import click

from search.errors import EquisearchError
from search.settings import Settings

log = logging.getLogger("equisearch")


class Context:
    """Options shared by every command (global --store / --model)."""

    def __init__(self, store: str | None, model: str | None):
        overrides = {}
        if store:
            overrides["home"] = store
        if model:
            overrides["model"] = model
        self.settings = Settings.from_env(**overrides)
        self.model_given = bool(model) or bool(os.environ.get("EQUISEARCH_MODEL"))

    @property
    def home(self) -> Path:
        return self.settings.home_path

    def engine(self):
        from search.api import Engine
        from search.errors import StoreMismatch

        engine = Engine.open(self.home, self.settings)
        recorded = engine.store.get_meta("model")
        if self.model_given and recorded and recorded != self.settings.model:
            raise StoreMismatch(
                f"store {self.home} was built with model {recorded!r}, not {self.settings.model!r}: "
                "drop --model to use the store's model, or run `equisearch rebuild` with the new one"
            )
        return engine


def friendly_errors(func):
    """Turn library errors into ``Error: ...`` lines; never show a traceback."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except EquisearchError as exc:
            raise click.ClickException(" ".join(str(exc).split())) from exc
        except KeyboardInterrupt:
            raise click.Abort() from None
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": ")) from exc

    return wrapper


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--store", type=click.Path(file_okay=False), envvar="EQUISEARCH_HOME", show_envvar=True,
              help="Store directory (default: ./data when it holds a store, as `make run` builds it; else the user data dir).")
@click.option("--model", help="Sentence-transformers model name or path (env EQUISEARCH_MODEL).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.version_option(package_name="equisearch")
@click.pass_context
def main(ctx: click.Context, store: str | None, model: str | None, verbose: int) -> None:
    """equisearch: offline search and cited answers over education-equity sources.

    \b
    Typical use:
      equisearch ingest corpus/ reports/          # add files and folders
      equisearch ask "what works for PLAC pupils?"
      equisearch search "pupil premium" --json
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose == 0:
        # The CLI reports ingest failures itself; library warnings would repeat them.
        logging.getLogger("ingest").setLevel(logging.ERROR)
        # Parsers complain about bad input in their own words (and a parser bug
        # is logged with its traceback); the failure line already says what
        # went wrong and what to do. -v shows them all.
        for noisy in ("ingest", "trafilatura", "htmldate", "courlan", "justext", "pypdf"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        ctx.obj = Context(store, model)
    except EquisearchError as exc:
        raise click.ClickException(str(exc)) from exc


# -- ingest -------------------------------------------------------------------
@main.command()
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

    PATHS may be files, folders or http(s) URLs. Reads .txt .md .gs .html .htm
    .pdf .vtt .srt; other files in folders are skipped. Unchanged sources cost
    nothing on re-ingest. Exit code 1 when any source failed; the others are
    stored all the same.
    """
    from search.store import Store

    from .pipeline import IngestReport, Ingestor, one_line

    if not (paths or sitemaps or feeds or crawls or url_files):
        raise click.UsageError("give at least one PATH or URL, or --sitemap/--feed/--crawl/--from-file")
    overrides = {k: v for k, v in {"kind": kind, "site": site, "title": title, "url": url}.items() if v}
    if tags:
        overrides["tags"] = list(tags)
    store = Store.open(c.home)
    ingestor = Ingestor(store, c.settings)
    urls = [p for p in paths if p.startswith(("http://", "https://"))]
    local = [p for p in paths if p not in urls]
    report = IngestReport()
    show = not quiet and sys.stderr.isatty()
    if local:
        with _bar(show, "Files") as progress:
            report.results += ingestor.ingest_paths(local, overrides=overrides, progress=progress).results
    if urls or sitemaps or feeds or crawls or url_files:
        from .fetch import FetchPolicy, Fetcher, read_url_list
        from .pipeline import ItemResult
        from .web import WebIngest

        web = WebIngest(ingestor, Fetcher(FetchPolicy(host_delay=delay, timeout=timeout,
                                                     respect_robots=not ignore_robots)))
        for f in url_files:
            good, bad = read_url_list(Path(f).read_text(encoding="utf-8", errors="replace"))
            urls += good
            report.results += [ItemResult(f"{f}:{n}", "failed", f"not a valid http(s) URL: {line[:80]!r}")
                               for n, line in bad]
        for label, finder, sources in (("sitemap", web.sitemap_urls, sitemaps), ("feed", web.feed_urls, feeds),
                                       ("crawl", lambda u: web.crawl_urls(u, max_pages), crawls)):
            for src in sources:
                try:
                    found = finder(src)
                except EquisearchError as exc:
                    report.results.append(ItemResult(src, "failed", one_line(exc, src)))
                    continue
                if not quiet:
                    click.echo(f"{label} {src}: {len(found)} pages", err=True)
                urls += found
        with _bar(show, "Web pages") as progress:
            report.results += web.ingest_urls(urls, overrides=overrides, progress=progress).results
    _print_summary(report, c.home, show)


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


@main.command()
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
    from search.store import Store

    from .fetch import FetchPolicy, Fetcher
    from .pipeline import Ingestor
    from .web import WebIngest

    store = Store.open(c.home, create=False)
    web = WebIngest(Ingestor(store, c.settings), Fetcher(FetchPolicy(host_delay=delay)))
    show = not quiet and sys.stderr.isatty()
    with _bar(show, "Refreshing") as progress:
        report = web.refresh(sources, progress=progress)
    _print_summary(report, c.home, show)


# -- search / ask ---------------------------------------------------------------
def _filters(kind, site, tag, date_from, date_to):
    from search.types import Filters

    return Filters(tuple(kind), tuple(site), tuple(tag), date_from or "", date_to or "")


def _filter_options(func):
    for opt in reversed([
        click.option("--kind", multiple=True, help="Only these kinds (repeatable)."),
        click.option("--site", multiple=True, help="Only these sites (repeatable)."),
        click.option("--tag", multiple=True, help="Only sources with this tag (repeatable)."),
        click.option("--from", "date_from", help="Only sources dated on/after (YYYY or YYYY-MM-DD)."),
        click.option("--to", "date_to", help="Only sources dated on/before (YYYY or YYYY-MM-DD)."),
    ]):
        func = opt(func)
    return func


#: A query may start with "-" ("-pupil premium"): pass unknown "options" on as the query.
_QUERY_ARGS = {"ignore_unknown_options": True}


def hit_json(rank: int, hit) -> dict:
    ch, cit = hit.chunk, hit.citation
    return {
        "rank": rank,
        "chunk_id": ch.id,
        "doc_id": ch.doc_id,
        "score": round(hit.score, 6),
        "dense": None if hit.dense is None else round(hit.dense, 4),
        "title": cit.title,
        "site": cit.site,
        "kind": cit.kind,
        "date": cit.date,
        "uri": cit.uri,
        "link": cit.link,
        "location": cit.location,
        "page_start": ch.page_start,
        "page_end": ch.page_end,
        "t_start": ch.t_start,
        "t_end": ch.t_end,
        "speaker": ch.speaker,
        "section": ch.section,
        "char_start": ch.char_start,
        "char_end": ch.char_end,
        "text": ch.text,
    }


def _nothing_found(engine, filters) -> str:
    """Why a search came back empty: an empty store, the filters, or the words."""
    n = engine.store.info().documents
    if n == 0:
        return f"The store {engine.store.path} has no sources yet: run `equisearch ingest PATH` first."
    if not filters.is_empty():
        return (f"No passage matches the filters ({filters.describe()}); the store has {n} sources: "
                "widen or drop the filters (`equisearch sources` lists kinds and sites).")
    return f"No passage matches these words in the store's {n} sources: try other words."


def _source_line(n: int, hit) -> str:
    cit = hit.citation
    bits = [b for b in (cit.site, cit.kind, cit.date, cit.location) if b]
    return f"[{n}] {cit.title}" + (f" ({', '.join(bits)})" if bits else "") + f"\n    {cit.link}"


def _excerpt(text: str, width: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rsplit(" ", 1)[0] + "…"


@main.command(context_settings=_QUERY_ARGS)
@click.argument("query")
@click.option("-k", "--k", "k", type=click.IntRange(1, 100), help="Number of passages (default 5).")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (keys in the README).")
@pass_ctx
@friendly_errors
def search(c: Context, query, k, kind, site, tag, date_from, date_to, as_json) -> None:
    """Hybrid (vector + keyword) search; prints cited passages."""
    engine = c.engine()
    filters = _filters(kind, site, tag, date_from, date_to)
    result = engine.search(query, k=k, filters=filters)
    if as_json:
        click.echo(json.dumps({
            "query": result.query,
            "elapsed_ms": round(result.elapsed_ms, 2),
            "also_searched": list(result.also_searched),
            "results": [hit_json(i, h) for i, h in enumerate(result.hits, start=1)],
        }, ensure_ascii=False, indent=2))
        return
    if not result.hits:
        click.echo(_nothing_found(engine, filters))
        return
    for i, hit in enumerate(result.hits, start=1):
        click.echo(_source_line(i, hit))
        click.echo(f"    {_excerpt(hit.chunk.text)}\n")


@main.command(context_settings=_QUERY_ARGS)
@click.argument("question")
@click.option("-k", "--k", "k", type=click.IntRange(1, 20), help="Passages to draw the answer from (default 5).")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (keys in the README).")
@pass_ctx
@friendly_errors
def ask(c: Context, question, k, kind, site, tag, date_from, date_to, as_json) -> None:
    """Answer a question with sentences from the sources, each cited [n]."""
    engine = c.engine()
    filters = _filters(kind, site, tag, date_from, date_to)
    answer = engine.ask(question, k=k, filters=filters)
    if as_json:
        click.echo(json.dumps({
            "question": answer.question,
            "answer": answer.text,
            "abstained": answer.abstained,
            "confidence": round(answer.confidence, 4),
            "missing": list(answer.missing),
            "also_searched": list(answer.also_searched),
            "sentences": [{"text": s.text, "ref": s.ref} for s in answer.sentences],
            "sources": [hit_json(i, h) for i, h in enumerate(answer.passages, start=1)],
        }, ensure_ascii=False, indent=2))
        return
    if not answer.passages:
        click.echo(_nothing_found(engine, filters))
        return
    click.echo(answer.text)
    if answer.also_searched:
        click.echo(f"(also searched: {', '.join(answer.also_searched)})")
    click.echo("\nClosest passages:" if answer.abstained else "\nSources:")
    for i, hit in enumerate(answer.passages, start=1):
        click.echo(_source_line(i, hit))
        click.echo(f"    {_excerpt(hit.chunk.text, 240)}")


# -- store management -----------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
@friendly_errors
def sources(c: Context, as_json) -> None:
    """List stored documents (newest first)."""
    from search.store import Store

    docs = Store.open(c.home, create=False).documents()
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


@main.command()
@click.argument("source", nargs=-1, required=True)
@pass_ctx
@friendly_errors
def remove(c: Context, source) -> None:
    """Remove documents by id, path or URL (with their passages)."""
    from search.store import Store
    from search.vectors import VectorIndex

    store = Store.open(c.home, create=False)
    store.acquire_write_lock()
    index = VectorIndex(store, c.settings)
    missing = []
    try:
        for s in source:
            doc = store.find_source(s)
            if doc is None:
                missing.append(s)
                continue
            index.ensure_current()
            index.apply(store.remove_document(doc.id), None)
            click.echo(f"removed {doc.id}: {doc.title}")
    finally:
        index.save()
        store.release_write_lock()
    for s in missing:
        click.echo(f"not found: {s} (see `equisearch sources` for ids)", err=True)
    if missing:
        sys.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
@friendly_errors
def stats(c: Context, as_json) -> None:
    """Counts and what built the store."""
    from search.store import Store

    store = Store.open(c.home, create=False)
    info = store.info()
    integrity = store.integrity()
    kinds = dict(store.conn.execute("SELECT kind, count(*) FROM documents GROUP BY kind ORDER BY kind").fetchall())
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


@main.command()
@click.option("--index-only", is_flag=True, help="Only rebuild the FAISS index from stored vectors (no re-embedding).")
@pass_ctx
@friendly_errors
def rebuild(c: Context, index_only) -> None:
    """Re-cut and re-embed every document with the current model and chunking.

    Needed after changing --model / EQUISEARCH_MODEL or the chunking settings.
    Works from the stored text (sources are not re-read) in one transaction:
    an interrupted rebuild leaves the store as it was.
    """
    from search.store import Store
    from search.vectors import VectorIndex

    from .pipeline import rebuild_store

    store = Store.open(c.home, create=False)
    if index_only:
        store.acquire_write_lock()
        try:
            n = VectorIndex(store, c.settings).rebuild()
        finally:
            store.release_write_lock()
        click.echo(f"rebuilt vector index: {n} vectors")
        return
    report = rebuild_store(store, c.settings)
    click.echo(f"rebuilt {report.documents} documents, {report.chunks} passages with {report.model} ({report.chunking})")


# -- doctor (reliability) -------------------------------------------------------
@main.command()
@click.option("--repair", is_flag=True, help="Rebuild what is derived (FTS5, FAISS), delete orphans; never re-embeds.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report (keys in the README).")
@pass_ctx
@friendly_errors
def doctor(c: Context, repair, as_json) -> None:
    """Check the store's health; exit 0 only when it is healthy.

    Runs SQLite's integrity checks and compares documents, passages, vectors,
    the FTS5 keyword index and the FAISS file. --repair fixes what is derived
    from stored rows (no model is loaded) and checks again.
    """
    from search import doctor as doc
    from search.store import Store

    store = Store.open(c.home, create=False)
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


@main.command(name="eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-k", "--k", "k", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Full report with per-question results.")
@pass_ctx
@friendly_errors
def eval_(c: Context, file, k, as_json) -> None:
    """Measure answers (useful, exact), recall@k, MRR, abstention and latency on a question file (JSONL)."""
    from search.evaluate import evaluate, load_eval

    report = evaluate(c.engine(), load_eval(file), k=k)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    for p in report["per_question"]:
        mark = "ok " if p["hit"] else "MISS"
        extra = f"rank {p['rank']}" if p["rank"] else ("abstained" if p["abstained"] else "answered")
        click.echo(f"{mark} {p['id']:>6}  {extra:<10} {p['question']}")
    click.echo(
        f"\nn={report['n']}  useful={report['useful']}  exact={report['exact']}  "
        f"recall@{k}={report['recall_at_k']}  mrr={report['mrr']}  "
        f"abstain_correct={report['abstain_correct']}  abstain_wrong={report['abstain_wrong']}  "
        f"search p50={report['latency_ms']['p50']} ms  ask p50={report['ask_latency_ms']['p50']} ms"
    )


@main.command(name="eval-beir")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--mode", "modes", multiple=True, type=click.Choice(["hybrid", "dense", "bm25"]),
              help="Retrieval mode(s) to score (repeatable; default hybrid).")
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to score against.")
@click.option("--max-queries", type=int, help="Score only this many judged queries (a fixed subset).")
@click.option("--extra-docs", type=int, default=0, help="With --max-queries: distractor documents kept besides the relevant ones.")
@click.option("--count-identical-ids", is_flag=True,
              help="Score the query's own document if it is ranked (BEIR and MTEB leave it out; so do we by default).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
@friendly_errors
def eval_beir(c: Context, folder, modes, split, max_queries, extra_docs, count_identical_ids, as_json) -> None:
    """nDCG@10 and recall@100 on a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/).

    The corpus is ingested into a temporary store with the current model and
    chunking; your own store is not touched. As BEIR's evaluator does, a
    document with the query's own id is left out of its ranking (ArguAna's
    queries are arguments of its corpus).
    """
    from .beir import run_beir

    def progress(done, total):
        if not as_json:
            click.echo(f"\ringested {done}/{total} documents", err=True, nl=False)

    report = run_beir(folder, tuple(modes) or ("hybrid",), settings=c.settings, split=split,
                      max_queries=max_queries, extra_docs=extra_docs, progress=progress,
                      ignore_identical_ids=not count_identical_ids)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"\n{report['dataset']} ({report['split']}): {report['documents']} documents, "
               f"{report['queries']} queries, ingest {report['ingest_seconds']} s")
    for mode, r in report["modes"].items():
        own = (f"  (query's own document left out of {r['own_document_ranked']} rankings)"
               if report["ignore_identical_ids"] and r["own_document_ranked"] else "")
        click.echo(f"{mode:>7}: nDCG@10 {r['ndcg_at_10']:.4f}  recall@100 {r['recall_at_100']:.4f}  "
                   f"p50 {r['latency_ms_p50']} ms{own}")
    for line in report["skipped_lines"]:
        click.echo(f"skipped {line}", err=True)


#: The UI's port when none is given; the next free one is taken when it is busy.
DEFAULT_PORT = 8501


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@main.command()
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help=f"Port to serve on (default {DEFAULT_PORT}, or the next free one when it is busy).")
@click.option("--host", default="127.0.0.1", show_default=True)
@pass_ctx
@friendly_errors
def ui(c: Context, port, host) -> None:
    """Serve the browser UI (Streamlit) on this store and print its address."""
    if port is not None and not _port_free(host, port):
        raise click.ClickException(
            f"port {port} on {host} is already in use (another equisearch UI?): stop it, or choose "
            "another port with --port N (`make run PORT=N`)")
    if port is None:
        port = next((p for p in range(DEFAULT_PORT, DEFAULT_PORT + 50) if _port_free(host, p)), None)
        if port is None:
            raise click.ClickException(f"ports {DEFAULT_PORT}-{DEFAULT_PORT + 49} on {host} are all in use: "
                                       "choose one with --port N")
        if port != DEFAULT_PORT:
            click.echo(f"port {DEFAULT_PORT} is in use: serving on {port} instead", err=True)
    app = Path(__file__).resolve().parent.parent / "ui" / "app.py"
    env = {**os.environ, "EQUISEARCH_HOME": str(c.home)}
    if c.settings.model:
        env.setdefault("EQUISEARCH_MODEL", c.settings.model)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"equisearch UI: http://{shown}:{port}  (store {c.home}; open it in a browser, Ctrl+C stops it)")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", host,
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    try:
        sys.exit(subprocess.call(cmd, env=env))
    except KeyboardInterrupt:  # Ctrl+C reaches both processes; Streamlit says goodbye itself
        sys.exit(0)


# Reading lists live in their own module; imported last because it imports
# this one (friendly_errors) when a command runs.
from .cli_lists import lists as _lists_group  # noqa: E402

main.add_command(_lists_group)


if __name__ == "__main__":  # pragma: no cover
    main()
