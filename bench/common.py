"""Helpers shared by the benchmark scripts: machine description, percentiles,
and rewriting one named section of a results file in place."""
from __future__ import annotations

import datetime as dt
import os
import platform
import re
from importlib import metadata
from pathlib import Path


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "-"


def machine_line() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(f"{p} {_version(p)}" for p in ("torch", "sentence-transformers", "onnxruntime", "faiss-cpu", "numpy"))
    # The machine is shared: the load average says how much the figures
    # were squeezed by other work (2 cores: anything above 2 means waiting).
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"Measured {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on {os.cpu_count()} cores "
            f"({cpu or platform.machine()}), load average {load}, "
            f"Python {platform.python_version()}; {versions}.")


def write_section(path: Path, name: str, body: str) -> None:
    """Replace (or append) the ``## name`` section of ``path`` with ``body``."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\nWritten by the scripts in bench/; do not edit by hand.\n"
    section = f"## {name}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text.rstrip() + "\n")
