"""What every command shares: the global options' :class:`Context` and the
translation of library errors into ``Error: ...`` lines.

Command modules import this one; it imports none of them (and nothing heavy),
so there is no cycle and ``equisearch --help`` answers at once.
"""
from __future__ import annotations

import os
from functools import wraps
from pathlib import Path

import click

from search.errors import EquisearchError
from search.settings import Settings


class Context:
    """Options shared by every command (global --store / --model)."""

    def __init__(self, store: str | None, model: str | None):
        overrides = {}
        if store:
            overrides["home"] = store  # a directory or a postgresql:// URL; wins over EQUISEARCH_DATABASE_URL
        if model:
            overrides["model"] = model
        self.settings = Settings.from_env(**overrides)
        self.model_given = bool(model) or bool(os.environ.get("EQUISEARCH_MODEL"))

    @property
    def home(self) -> str | Path:
        """The store: its directory, or a PostgreSQL URL (``--store URL``, ``EQUISEARCH_DATABASE_URL``)."""
        return self.settings.location

    @property
    def shown_home(self) -> str:
        """The store as printed: a database URL without its password."""
        from search.store import describe_location

        return describe_location(self.home)

    @property
    def asked_model(self) -> str | None:
        """The model named by --model or EQUISEARCH_MODEL; None when the store's own is wanted."""
        return self.settings.model if self.model_given else None

    def engine(self):
        from search.api import Engine

        # Engine.open refuses a store built by another model than the one asked for.
        return Engine.open(self.home, self.settings, model=self.asked_model)


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
