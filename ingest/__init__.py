"""Turning sources (files, folders, later URLs) into store rows.

``ingest`` depends on ``search`` (records, store, embedder), never on ``ui``.
The pipeline is extract -> clean -> chunk -> embed -> store; see
:mod:`ingest.pipeline`.
"""
