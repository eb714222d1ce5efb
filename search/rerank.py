"""Second-stage reranking: read the question and each passage together.

The first stage (``Engine.search``) compares a question vector with passage
vectors computed separately; a cross-encoder reads ``[CLS] question [SEP]
passage [SEP]`` in one pass and scores the pair, which is slower (one model
run per passage) but sees which words of the passage answer which words of
the question. It is meant for the first stage's top 20-50 passages.

Two implementations of one small :class:`Reranker` interface:

* :class:`OnnxReranker` (default): the bundled cross-encoder in
  ``search/data/reranker/`` (MiniLM-L6 trained by ``python -m
  ingest.rerank_train`` on pairs mined from documents, int8 ONNX), run by
  onnxruntime and tokenised by ``tokenizers``: no torch import, loaded once.
* :class:`CrossEncoderReranker`: any sentence-transformers ``CrossEncoder``
  by local path or cached name, for users who have one (loaded offline,
  torch; off unless asked for).

Scores: :meth:`Reranker.score` returns one float per passage, higher = more
relevant, comparable between passages of one question. The bundled model's
scores are logits (in practice about -8 .. +8); :meth:`Reranker.probability`
maps them to a calibrated probability that the passage is relevant
(``sigmoid(a * logit + b)``, fitted on held-out mined pairs and recorded in
``reranker.json``), usable as a threshold for abstention. bench/QUALITY.md
("Reranking") has the measurements behind the suggested thresholds.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .errors import ModelError

log = logging.getLogger(__name__)

#: The bundled cross-encoder (int8 ONNX + tokenizer + how it was trained).
BUNDLED_DIR = Path(__file__).resolve().parent / "data" / "reranker"
BUNDLED = "bundled"
#: Bump when the ONNX graph's inputs or output change meaning.
RERANKER_FORMAT = 1


class Reranker(Protocol):
    """What a caller needs from a second stage."""

    name: str

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """One float32 score per passage, higher = more relevant to ``query``."""
        ...

    def probability(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Per passage, a probability in [0, 1] that it is relevant (calibrated where the model says how)."""
        ...


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))).astype(np.float32)


class OnnxReranker:
    """A cross-encoder exported to ONNX, run by onnxruntime (no torch).

    Reads a folder holding ``reranker.json`` (``file``: the ONNX file,
    ``max_length``: word-pieces for question + passage, ``calibration``:
    ``a``/``b`` of the Platt fit), that ONNX file (inputs ``input_ids``,
    ``attention_mask``, ``token_type_ids``; output one logit per row) and
    ``tokenizer.json``. Pairs longer than ``max_length`` lose words from the
    longer side first, as transformers' ``longest_first`` does.
    """

    def __init__(self, folder: str | Path = BUNDLED_DIR, *, threads: int = 0, batch_size: int = 16):
        self.folder = Path(folder)
        try:
            info = json.loads((self.folder / "reranker.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"no usable reranker in {self.folder}: {exc}") from exc
        if info.get("format") != RERANKER_FORMAT:
            raise ModelError(f"{self.folder}: reranker format {info.get('format')!r}, expected {RERANKER_FORMAT}")
        self.info = info
        self.name = str(info.get("model", self.folder.name))
        self.max_length = int(info.get("max_length", 256))
        cal = info.get("calibration") or {}
        self._a, self._b = float(cal.get("a", 1.0)), float(cal.get("b", 0.0))
        self.batch_size = batch_size
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelError(f"onnxruntime/tokenizers not installed ({exc})") from exc
        tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # The file's own settings pad and truncate to 128 (see embedding.py):
        # replace them with what the model was trained with.
        tok.no_padding()
        tok.enable_truncation(self.max_length, strategy="longest_first")
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tok = tok
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        path = self.folder / str(info.get("file", "model.onnx"))
        try:
            self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load {path}: {exc}") from exc
        self._inputs = {i.name for i in self._session.get_inputs()}

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(passages), dtype=np.float32)
        if not len(passages):
            return out
        # Longest first so each batch pads little.
        order = sorted(range(len(passages)), key=lambda i: -len(passages[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            encs = self._tok.encode_batch([(query, passages[i]) for i in idx])
            feeds = {"input_ids": np.asarray([e.ids for e in encs], dtype=np.int64),
                     "attention_mask": np.asarray([e.attention_mask for e in encs], dtype=np.int64)}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.asarray([e.type_ids for e in encs], dtype=np.int64)
            out[idx] = np.asarray(self._session.run(None, feeds)[0], dtype=np.float32).reshape(-1)
        return out

    def probability(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return self.to_probability(self.score(query, passages))

    def to_probability(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for scores already computed by :meth:`score`."""
        return _sigmoid(self._a * np.asarray(scores, dtype=np.float32) + self._b)


class CrossEncoderReranker:
    """Any sentence-transformers ``CrossEncoder`` (local folder or cached name), loaded offline on first use.

    :meth:`score` returns the model's raw output (logits for a one-label
    model); :meth:`probability` applies a sigmoid, which is what such models
    are trained for, but its calibration is the model's own.
    """

    def __init__(self, name_or_path: str, *, device: str = "cpu", max_length: int | None = None, batch_size: int = 16):
        self.name = name_or_path
        self.device = device
        self.max_length = max_length
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                from .embedding import _offline_env

                _offline_env()
                target = str(Path(self.name).expanduser()) if Path(self.name).expanduser().exists() else self.name
                try:
                    from sentence_transformers import CrossEncoder

                    self._model = CrossEncoder(target, device=self.device, max_length=self.max_length)
                except Exception as exc:  # the library raises many unrelated types
                    raise ModelError(
                        f"cannot load cross-encoder {self.name!r} offline ({type(exc).__name__}: {exc}): "
                        "pass a local CrossEncoder folder"
                    ) from exc
                log.info("loaded cross-encoder %s", target)
        return self._model

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not len(passages):
            return np.zeros(0, dtype=np.float32)
        import torch

        model = self._load()
        scores = model.predict([(query, p) for p in passages], batch_size=self.batch_size,
                               activation_fn=torch.nn.Identity(), show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32).reshape(len(passages), -1)[:, -1]

    def probability(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return _sigmoid(self.score(query, passages))


_LOADED: dict[str, Reranker] = {}
_LOAD_LOCK = threading.Lock()


def load_reranker(spec: str = BUNDLED) -> Reranker:
    """One reranker per spec per process.

    ``spec``: ``bundled`` (or empty) for the shipped ONNX model; a folder with
    a ``reranker.json`` for another ONNX export; anything else is loaded as a
    sentence-transformers ``CrossEncoder`` (a local folder or a cached name;
    never downloaded). Raises :class:`ModelError` when it cannot be loaded.
    """
    key = spec or BUNDLED
    with _LOAD_LOCK:
        if key not in _LOADED:
            if key == BUNDLED:
                _LOADED[key] = OnnxReranker(BUNDLED_DIR)
            elif (Path(key).expanduser() / "reranker.json").exists():
                _LOADED[key] = OnnxReranker(Path(key).expanduser())
            else:
                _LOADED[key] = CrossEncoderReranker(key)
        return _LOADED[key]


@lru_cache(maxsize=1)
def bundled_info() -> dict:
    """How the bundled reranker was trained (its ``reranker.json``)."""
    return json.loads((BUNDLED_DIR / "reranker.json").read_text())
