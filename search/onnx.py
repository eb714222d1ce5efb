"""The ONNX query encoder: exported once from the store's model, run without torch.

``import sentence_transformers`` alone costs 5-7 s in a fresh process;
onnxruntime loads in well under a second, so ``equisearch search`` answers
quickly. :func:`export_onnx` writes the store's own model (transformer, mean
pooling and L2 normalisation in one graph) to ``<store>/query-encoder/``
with torch's exporter, once, from the local model folder: nothing is
downloaded. :class:`OnnxEmbedder` runs it with onnxruntime and
``tokenizers`` and gives the sentence-transformers vectors (cosine >= 0.9999,
tested). :func:`onnx_session` is shared with the reranker.

(``search.onnx`` is this module; ``import onnx`` inside it is the ONNX
package, which the exporter writes through.)
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ModelError
from .models import offline_env, resolve_model

log = logging.getLogger(__name__)

#: Folder inside a store directory holding the exported query encoder.
ONNX_DIR = "query-encoder"
#: Bump when the export changes what the ONNX graph computes.
ONNX_FORMAT = 1


class OnnxEmbedder:
    """The same model run by onnxruntime, tokenised by ``tokenizers``: no torch.

    Reads a folder written by :func:`export_onnx`: ``model.onnx`` (transformer
    + mean pooling + L2 normalisation in one graph), ``tokenizer.json`` and
    ``encoder.json`` (model name, dimension, token limit).
    """

    def __init__(self, folder: str | Path, *, threads: int = 0):
        self.folder = Path(folder)
        try:
            info = json.loads((self.folder / "encoder.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"no usable ONNX encoder in {self.folder}: {exc}") from exc
        self.name = info["model"]
        self._dim = int(info["dim"])
        self.max_tokens = int(info["max_tokens"])
        self.info = info
        try:
            import onnxruntime  # noqa: F401  (missing: the clear error below)
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelError(f"onnxruntime/tokenizers not installed ({exc})") from exc
        tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # The model's tokenizer.json pads and truncates to 128 tokens; the
        # sentence-transformers model reads up to max_seq_length (256) and
        # pads only to the longest text of a batch. Anything else changes the
        # vectors (cosine 0.36 seen with the file's own settings).
        tok.no_padding()
        tok.enable_truncation(self.max_tokens)
        tok.enable_padding(pad_id=int(info.get("pad_id", 0)), pad_token=info.get("pad_token", "[PAD]"))
        self._tok = tok
        self._session = onnx_session(self.folder / "model.onnx", threads)
        self._inputs = {i.name for i in self._session.get_inputs()}

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        # Sort by length so each batch pads little (what sentence-transformers does).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            encs = self._tok.encode_batch([texts[i] for i in idx])
            ids = np.asarray([e.ids for e in encs], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.asarray([e.attention_mask for e in encs], dtype=np.int64)}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.asarray([e.type_ids for e in encs], dtype=np.int64)
            out[idx] = self._session.run(None, feeds)[0]
        return out


def onnx_session(path: Path, threads: int = 0):
    """A CPU onnxruntime session for ``path``: ``threads`` intra-op threads (0: up to 4), quiet logs.

    Shared by the query encoder and the reranker; a file onnxruntime cannot
    load is a :class:`ModelError` naming it.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"cannot load {path}: {exc}") from exc


#: Loaded ONNX encoders by (folder, file mtime): a UI or test process opening
#: the same store twice loads the session once.
_ONNX_CACHE: dict[tuple[str, int], OnnxEmbedder] = {}


def onnx_folder(store_path: str | Path) -> Path:
    return Path(store_path) / ONNX_DIR


def load_onnx_embedder(store_path: str | Path, model: str) -> OnnxEmbedder | None:
    """The store's exported encoder if it exists and was made from ``model``."""
    folder = onnx_folder(store_path)
    if not (folder / "encoder.json").exists():
        return None
    try:
        info = json.loads((folder / "encoder.json").read_text())
        if info.get("model") != model or info.get("format") != ONNX_FORMAT:
            log.info("ONNX encoder in %s is for %r (format %s), not %r", folder, info.get("model"),
                     info.get("format"), model)
            return None
        key = (str(folder.resolve()), (folder / "model.onnx").stat().st_mtime_ns)
        if key not in _ONNX_CACHE:
            _ONNX_CACHE[key] = OnnxEmbedder(folder)
        return _ONNX_CACHE[key]
    except (ModelError, OSError, ValueError, KeyError) as exc:
        log.warning("ignoring ONNX encoder in %s: %s", folder, exc)
        return None


def export_onnx(model: str, store_path: str | Path) -> Path:
    """Export ``model`` (a local sentence-transformers folder or the bundled
    default) to ``<store>/query-encoder/`` for :class:`OnnxEmbedder`.

    Needs torch, transformers and onnx (the exporter writes through it); takes
    a few seconds. Only Transformer + mean Pooling (+ Normalize) models are
    supported, which covers MiniLM and most sentence-transformers models;
    anything else raises :class:`ModelError` and callers keep using torch.
    Written to a temporary folder first and renamed, so a reader never sees a
    half-written encoder.
    """
    offline_env()
    src = Path(resolve_model(model))
    if not src.is_dir():
        raise ModelError(f"model {model!r} is not a local folder: cannot export it to ONNX")
    try:
        modules = json.loads((src / "modules.json").read_text())
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = json.loads((src / pooling_dir / "config.json").read_text())
        st_config = json.loads((src / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise ModelError(f"{src} does not look like a sentence-transformers folder ({exc})") from exc
    if types[:2] != ["Transformer", "Pooling"] or any(t != "Normalize" for t in types[2:]):
        raise ModelError(f"ONNX export supports Transformer+Pooling(+Normalize) models, not {types}")
    if not pooling.get("pooling_mode_mean_tokens") or any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
    ):
        raise ModelError("ONNX export supports mean pooling only")
    try:
        import onnx  # noqa: F401  (the TorchScript exporter writes through it)
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise ModelError(f"cannot export to ONNX: {exc}") from exc

    class _Encoder(torch.nn.Module):
        """Transformer, then mean pooling over real tokens, then L2 norm."""

        def __init__(self, transformer):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    transformer = AutoModel.from_pretrained(str(src)).eval().float()
    dim = int(transformer.config.hidden_size)
    max_tokens = int(st_config.get("max_seq_length") or 256)
    dest = onnx_folder(store_path)
    tmp = Path(tempfile.mkdtemp(dir=Path(store_path), prefix=".query-encoder."))
    try:
        ids = torch.tensor([[101, 2023, 2003, 102], [101, 2023, 102, 0]])
        mask = (ids > 0).long()
        axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                "token_type_ids": {0: "batch", 1: "tokens"}, "sentence_embedding": {0: "batch"}}
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # dynamo=False: the TorchScript exporter handles BERT's dynamic
            # shapes without onnxscript and takes ~2 s.
            torch.onnx.export(
                _Encoder(transformer), (ids, mask, torch.zeros_like(ids)), str(tmp / "model.onnx"),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["sentence_embedding"], dynamic_axes=axes, opset_version=17, dynamo=False,
            )
        shutil.copy2(src / "tokenizer.json", tmp / "tokenizer.json")
        (tmp / "encoder.json").write_text(json.dumps({
            "model": model, "source": str(src), "dim": dim, "max_tokens": max_tokens, "format": ONNX_FORMAT,
            "pooling": "mean", "normalize": True,
        }, indent=1))
        for p in tmp.iterdir():
            os.chmod(p, 0o644)
        os.chmod(tmp, 0o755)
        if dest.exists():
            old = dest.with_name(dest.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"ONNX export of {model!r} failed ({type(exc).__name__}: {exc})") from exc
    log.info("exported %s to ONNX in %s", model, dest)
    return dest
