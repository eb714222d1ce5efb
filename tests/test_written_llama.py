"""Written answers from a real model server: llama.cpp's OpenAI-compatible
server on loopback with SmolLM2-135M-Instruct (tests/llm_server.py).

The model is weak on purpose. These tests do not judge its prose: they show
that whatever it writes, nothing reaches the reader that the check would
refuse, no citation points outside the passages, and a question is answered
(written or extractive) within the timeout.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from search.api import Engine
from search.settings import Settings
from search.written import Claim
from tests.llm_server import MODEL_NAME, start_server, stop_server, unavailable

#: CI builds the server and sets this: there the tests fail instead of skipping.
REQUIRED = os.environ.get("EQUISEARCH_REQUIRE_LLM") == "1"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(unavailable()) and not REQUIRED, reason=unavailable() or "ok")]

QUESTIONS = [
    "what works for PLAC pupils?",
    "What is the role of the designated teacher?",
    "How can schools reduce low-level disruption?",
    "What is the pupil premium for?",
    "What does the virtual school head do for previously looked-after children?",
    "How should schools support pupils with SEND?",
]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    if unavailable():
        pytest.fail(f"EQUISEARCH_REQUIRE_LLM=1 but {unavailable()}")
    url, proc = start_server(Path(tmp_path_factory.mktemp("llama")) / "server.log")
    yield url
    stop_server(proc)


def test_nothing_unsupported_reaches_the_reader(llama, starter_store, real_embedder):
    timeout = 60.0
    settings = Settings(home=str(starter_store), writer_url=llama, writer_model=MODEL_NAME, writer_timeout=timeout)
    engine = Engine.open(starter_store, settings, embedder=real_embedder)
    check = engine.support_check()
    replies = 0
    for q in QUESTIONS:
        started = time.perf_counter()
        answer = engine.ask(q)
        assert time.perf_counter() - started < timeout + 30, q
        assert "cannot be reached" not in answer.note and "HTTP" not in answer.note, answer.note
        if answer.abstained:
            continue
        replies += 1
        assert answer.note, q  # written, or why not: always said
        for s in answer.sentences:
            assert all(1 <= n <= len(answer.passages) for n in s.cited), (q, s)
            if answer.written:
                assert check.check(Claim(s.text, s.cited), answer.passages).supported, (q, s.text)
            else:
                assert s.text in " ".join(answer.passages[s.ref - 1].chunk.text.split()) or s.start >= 0
        for text, _why in answer.unsupported:
            assert text not in answer.text
    assert replies >= 3, "most of these questions are answered by the starter store"
