"""Every README example runs as written on the starter store.

The ``sh`` blocks' ``equisearch`` lines run in one bash, in a folder laid out
like a checkout after ``make run`` (``data/`` holding the starter store,
``corpus/``), with the venv's commands on PATH; the ``python`` blocks run
there too. Lines that read ``../shared`` (the team's shared data) or serve
the UI are left out; the README says which need ``../shared``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _blocks(lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(README) if kind == lang]


def _cli_lines() -> list[str]:
    out = []
    for body in _blocks("sh"):
        for line in body.splitlines():
            cmd = line.split("#", 1)[0].strip() if not line.lstrip().startswith("id=") else line.strip()
            if not re.match(r"(id=\$\()?equisearch\b", cmd):
                continue
            if "../shared" in line or re.search(r"\bui\b", cmd.split("#")[0]):
                continue
            out.append(cmd)
    return out


@pytest.fixture
def checkout(starter_store, tmp_path):
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copytree(starter_store, work / "data")
    (work / "corpus").symlink_to(ROOT / "corpus")
    return work


def _env(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EQUISEARCH_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_readme_cli_examples_run_as_written(checkout):
    lines = _cli_lines()
    assert len(lines) >= 15, lines  # the quick start, examples and reading lists
    script = "set -ex\n" + "\n".join(lines) + "\n"  # -x: the failing line is in stderr
    r = subprocess.run(["bash", "-c", script], cwd=checkout, env=_env(checkout), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    assert "Traceback" not in r.stdout + r.stderr
    assert "No passage matches the filters (kind inspection)" in r.stdout
    assert "@techreport{" in (checkout / "plac.bib").read_text()


@pytest.mark.parametrize("n", range(len(_blocks("python"))))
def test_readme_python_examples_run_as_written(checkout, n):
    r = subprocess.run([sys.executable, "-c", _blocks("python")[n]], cwd=checkout, env=_env(checkout),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
