"""Commands that measure retrieval and answers: ``eval`` (a question file on
this store) and ``eval-beir`` (a BEIR folder in a temporary store)."""
from __future__ import annotations

import json

import click

from .common import Context, friendly_errors, pass_ctx


@click.command(name="eval")
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


@click.command(name="eval-beir")
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
    from ingest.beir import run_beir

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
