"""The ``equisearch`` group: global options, logging, and every command.

The one place commands are registered: this module imports :mod:`cli.common`
and the command modules, and none of them imports it back. Thin on purpose:
each command parses options, calls the library, and turns domain errors
(:class:`search.errors.EquisearchError`) into one-line ``Error: ...``
messages with exit code 1. Nothing heavy is imported at module level (the
commands import the library inside their bodies), so ``equisearch --help``
answers at once.
"""
from __future__ import annotations

import logging

import click

from search.errors import EquisearchError

from . import evaluate, lists, query, serve, sources
from . import store as store_commands  # not `store`: main() has a --store option
from .common import Context


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--store", envvar="EQUISEARCH_HOME", show_envvar=True,
              help="Store directory, or a PostgreSQL URL postgresql://user@host/db (also EQUISEARCH_DATABASE_URL). "
                   "Default: ./data when it holds a store, as `make run` builds it; else the user data dir.")
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


for _command in (
    sources.ingest, sources.refresh, query.search, query.ask, sources.sources, sources.remove,
    store_commands.stats, store_commands.rebuild, store_commands.doctor, store_commands.migrate, evaluate.eval_, evaluate.eval_beir, serve.ui, lists.lists,
):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
