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

and one that needs no new model: :class:`SentenceReranker`, sentence-level
late interaction with the store's own bi-encoder. :func:`fuse` combines a
second-stage score with the first stage's fused score; bench/QUALITY.md
("Reranking") says which combination measured best.

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

    def to_probability(self, scores: np.ndarray) -> np.ndarray:
        """:meth:`probability` for scores already computed by :meth:`score`."""
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

    ``batch_size`` 1 (default) makes a pair's score independent of the other
    passages: dynamic int8 quantises activations with one scale per batch,
    so padding and neighbours moved a logit by up to ~0.12 at batch 16. A
    batch of 16 is ~30% faster (30 passages: 308 vs 445 ms p50 at load ~3).
    """

    def __init__(self, folder: str | Path = BUNDLED_DIR, *, threads: int = 0, batch_size: int = 1):
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
            import onnxruntime  # noqa: F401  (missing: the clear error below)
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelError(f"onnxruntime/tokenizers not installed ({exc})") from exc
        tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # The file's own settings pad and truncate to 128 (see onnx.py):
        # replace them with what the model was trained with.
        tok.no_padding()
        tok.enable_truncation(self.max_length, strategy="longest_first")
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tok = tok
        from .onnx import onnx_session

        self._session = onnx_session(self.folder / str(info.get("file", "model.onnx")), threads)
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
                from .models import offline_env

                offline_env()
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
        return self.to_probability(self.score(query, passages))

    def to_probability(self, scores: np.ndarray) -> np.ndarray:
        return _sigmoid(np.asarray(scores, dtype=np.float32))


class SentenceReranker:
    """Sentence-level late interaction with the store's own bi-encoder: no training, no new model.

    Each passage is split into sentences (:func:`search.text.sentence_spans`),
    every sentence is encoded, and the passage scores the softmax-pooled
    cosine of its sentences to the question, ``tau * log(sum(exp(cos /
    tau)))`` (``tau`` 0.05: close to the best sentence, a little credit for a
    second good one). A passage whose one sentence answers the question is no
    longer diluted by the rest of its 100 words, as it is in a passage
    vector. Scores are cosines, in practice 0 .. 1 (a bit above the best
    sentence's cosine when several sentences match).

    Pass any :class:`search.embedding.Embedder` (the Engine's query encoder:
    ONNX, no torch). ``probability`` is the score clipped to [0, 1]: not
    calibrated; the answer composer's own best-sentence cosine is the same
    quantity.
    """

    def __init__(self, embedder, *, tau: float = 0.05, batch_size: int = 64):
        self.embedder = embedder
        self.name = f"sentences:{getattr(embedder, 'name', 'embedder')}"
        self.tau = tau
        self.batch_size = batch_size

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        from .text import sentence_spans

        if not len(passages):
            return np.zeros(0, dtype=np.float32)
        flat, owner = [], []
        for i, text in enumerate(passages):
            sents = [text[a:b] for a, b in sentence_spans(text)] or [text]
            flat += sents
            owner += [i] * len(sents)
        vecs = self.embedder.encode([query] + flat, batch_size=self.batch_size)
        cos = vecs[1:] @ vecs[0]
        owner_arr = np.asarray(owner)
        out = np.zeros(len(passages), dtype=np.float32)
        for i in range(len(passages)):
            c = cos[owner_arr == i]
            top = float(c.max())
            out[i] = top + self.tau * float(np.log(np.sum(np.exp((c - top) / self.tau))))
        return out

    def probability(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return self.to_probability(self.score(query, passages))

    def to_probability(self, scores: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(scores, dtype=np.float32), 0.0, 1.0)


def fuse(rerank_scores: Sequence[float], first_stage: Sequence[float], weight: float = 1.0) -> np.ndarray:
    """``minmax(rerank) + weight * minmax(first_stage)`` over one question's candidates.

    What bench/bench_rerank.py measures as "+ w x hybrid": the second stage
    decides among passages the first stage found, without throwing away what
    keyword and vector scores knew. Sort by it, highest first.
    """
    def mm(x):
        x = np.asarray(x, dtype=np.float64)
        span = x.max() - x.min() if len(x) else 0.0
        return (x - x.min()) / span if span > 0 else np.ones_like(x)

    return (mm(rerank_scores) + weight * mm(first_stage)).astype(np.float32)


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
