"""Turning sources (files, folders, web pages, sitemaps, feeds, crawls) into store rows.

``ingest`` depends on ``search`` (records, store, embedder), never on ``cli``
or ``ui``. Both edges add sources through :func:`ingest.sources.add_sources`;
the pipeline is extract -> clean -> chunk -> embed -> store, see
:mod:`ingest.pipeline`.
"""
