"""Commands that read the store: ``search`` (cited passages) and ``ask``
(an extractive answer with [n] citations)."""
from __future__ import annotations

import json

import click

from .common import Context, friendly_errors, pass_ctx


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


@click.command(context_settings=_QUERY_ARGS)
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


@click.command(context_settings=_QUERY_ARGS)
@click.argument("question")
@click.option("-k", "--k", "k", type=click.IntRange(1, 20), help="Passages to draw the answer from (default 5).")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (keys in the README).")
@click.option("--extractive", is_flag=True,
              help="Sentences copied from the sources only, even when a writer model is set (EQUISEARCH_WRITER_URL).")
@pass_ctx
@friendly_errors
def ask(c: Context, question, k, kind, site, tag, date_from, date_to, as_json, extractive) -> None:
    """Answer a question with sentences from the sources, each cited [n]."""
    engine = c.engine()
    filters = _filters(kind, site, tag, date_from, date_to)
    answer = engine.ask(question, k=k, filters=filters, written=False if extractive else None)
    if as_json:
        click.echo(json.dumps({
            "question": answer.question,
            "answer": answer.text,
            "abstained": answer.abstained,
            "confidence": round(answer.confidence, 4),
            "missing": list(answer.missing),
            "also_searched": list(answer.also_searched),
            "sentences": [{"text": s.text, "ref": s.ref, "refs": list(s.cited)} for s in answer.sentences],
            "written": answer.written,
            "note": answer.note,
            "unsupported": [{"text": t, "why": why} for t, why in answer.unsupported],
            "removed_citations": answer.removed_citations,
            "sources": [hit_json(i, h) for i, h in enumerate(answer.passages, start=1)],
        }, ensure_ascii=False, indent=2))
        return
    if not answer.passages:
        click.echo(_nothing_found(engine, filters))
        return
    click.echo(answer.text)
    if answer.note:
        click.echo(f"({answer.note})")
    for text, why in answer.unsupported:
        click.echo(f"  left out: {text} ({why})")
    if answer.also_searched:
        click.echo(f"(also searched: {', '.join(answer.also_searched)})")
    click.echo("\nClosest passages:" if answer.abstained else "\nSources:")
    for i, hit in enumerate(answer.passages, start=1):
        click.echo(_source_line(i, hit))
        click.echo(f"    {_excerpt(hit.chunk.text, 240)}")
