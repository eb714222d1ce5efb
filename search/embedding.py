"""Sentence embeddings: the bundled all-MiniLM-L6-v2 by default, any
sentence-transformers model by name or path otherwise.

Two encoders give the same vectors (cosine >= 0.9999, tested):

* :class:`SentenceTransformerEmbedder` (torch): used to ingest. On CPUs with
  native bf16 (:mod:`search.cpu`) it can run the model in bfloat16, about 2x
  the passage throughput (setting ``ingest_bf16``).
* :class:`~search.onnx.OnnxEmbedder` (onnxruntime, no torch): used for
  queries; :func:`query_embedder` picks it when the store has one.

torch and sentence_transformers are imported inside the loaders, never at
module import: the CLI's ``--help`` and the UI's first paint do not pay for
them. No model is ever downloaded (:mod:`search.models`).
"""
from __future__ import annotations

import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .cpu import cpu_has_bf16  # noqa: F401  (ingest/rerank_train.py imports it from here)
from .errors import ModelError
from .models import DEFAULT_MODEL, offline_env, resolve_model
from .onnx import export_onnx, load_onnx_embedder

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """What the store and search need from a model."""

    name: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use, thread-safe.

    ``bf16=True`` casts the model to bfloat16 (inputs and outputs stay as
    usual; vectors come back as float32, re-normalised).
    """

    def __init__(self, name: str = DEFAULT_MODEL, *, device: str = "cpu", bf16: bool = False):
        self.name = name
        self.device = device
        self.bf16 = bf16
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is not None:
                return self._model
            offline_env()
            target = resolve_model(self.name)
            try:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(target, device=self.device)
                if self.bf16:
                    import torch

                    model = model.to(torch.bfloat16)
            except Exception as exc:  # the library raises many unrelated types
                raise ModelError(
                    f"cannot load model {self.name!r} offline ({type(exc).__name__}: {exc}): "
                    "pass a local sentence-transformers folder with --model or EQUISEARCH_MODEL"
                ) from exc
            log.info("loaded model %s from %s%s", self.name, target, " (bf16)" if self.bf16 else "")
            self._model = model
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_tokens(self) -> int:
        return int(self._load().max_seq_length)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_tensor=self.bf16,
            convert_to_numpy=not self.bf16,
            show_progress_bar=False,
        )
        if self.bf16:
            # numpy has no bfloat16: widen on the torch side, then re-normalise
            # in float32 so inner product is still exactly cosine.
            vecs = vecs.float().cpu().numpy()
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vecs, dtype=np.float32)


@lru_cache(maxsize=4)
def load_embedder(name: str = DEFAULT_MODEL, bf16: bool = False) -> SentenceTransformerEmbedder:
    """One embedder per model name (and precision) per process (models are large)."""
    return SentenceTransformerEmbedder(name, bf16=bf16)


def query_embedder(
    store_path: str | Path, model: str, mode: str = "auto", *, dim: int = 0, fallback=None
) -> Embedder:
    """The fastest encoder that gives the store's vectors for queries.

    ``mode`` (setting ``query_encoder``): ``auto``/``onnx`` use the store's
    ONNX encoder, exporting it first if missing (a few seconds, once), and
    fall back to sentence-transformers with a log line when onnxruntime or the
    export is unavailable; ``torch`` always uses sentence-transformers.
    ``dim`` (the store's dimension) guards against an encoder of another
    shape; ``fallback`` builds the torch encoder (default :func:`load_embedder`).
    """
    fallback = fallback or (lambda: load_embedder(model))
    if mode == "torch":
        return fallback()
    enc = load_onnx_embedder(store_path, model)
    if enc is None:
        try:
            export_onnx(model, store_path)
            enc = load_onnx_embedder(store_path, model)
        except (ModelError, OSError) as exc:
            log.warning("ONNX query encoder unavailable (%s); using sentence-transformers", exc)
    if enc is not None and dim and enc.dim != dim:
        log.warning("ONNX encoder in %s gives %d dimensions, the store %d; using sentence-transformers",
                    enc.folder, enc.dim, dim)
        enc = None
    return enc if enc is not None else fallback()
