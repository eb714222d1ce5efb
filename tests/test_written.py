"""Written answers (search/written.py): every sentence checked, every failure falls back.

The endpoint here is a real HTTP server on loopback that replies what each
test tells it to (a good reply, bad citations, made-up claims, errors,
silence), so each failure is exercised exactly; the answers are checked with
the bundled model. tests/test_written_llama.py runs the same path against
llama.cpp's server with a real (small) model.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from search.api import Engine
from search.settings import Settings
from search.written import Claim, SupportCheck, parse_reply

QUESTION = "what works for PLAC pupils?"


class Canned:
    """What the fake endpoint does next, and what it was sent."""

    def __init__(self):
        self.status = 200
        self.content = ""
        self.raw = None
        self.delay = 0.0
        self.requests: list[dict] = []
        self.headers: list[dict] = []


@pytest.fixture(scope="module")
def endpoint():
    canned = Canned()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            canned.requests.append(json.loads(body))
            canned.headers.append(dict(self.headers))
            time.sleep(canned.delay)
            if canned.raw is not None:
                data = canned.raw.encode()
            else:
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": canned.content}}]}).encode()
            try:
                self.send_response(canned.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    canned.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield canned
    server.shutdown()


@pytest.fixture()
def canned(endpoint):
    endpoint.status, endpoint.content, endpoint.raw, endpoint.delay = 200, "", None, 0.0
    endpoint.requests.clear()
    endpoint.headers.clear()
    return endpoint


@pytest.fixture(scope="module")
def writer_engine(starter_store, real_embedder, endpoint):
    settings = Settings(home=str(starter_store), writer_url=endpoint.url, writer_model="test-model", writer_timeout=3)
    return Engine.open(starter_store, settings, embedder=real_embedder)


def _reply(*sentences) -> str:
    return json.dumps({"sentences": [{"text": t, "passages": list(refs)} for t, refs in sentences]})


def _true_sentence(engine) -> tuple[str, int]:
    """A sentence of the answer's passages (so its cited passage supports it) and that passage's number."""
    plain = engine.ask(QUESTION, written=False)
    s = plain.sentences[0]
    return s.text, s.ref


def test_off_by_default_sends_nothing(starter_engine, canned):
    assert Settings().writer_url == ""
    answer = starter_engine.ask(QUESTION)
    assert not answer.written and answer.note == "" and canned.requests == []


def test_supported_sentences_are_shown_with_their_citations(writer_engine, canned, monkeypatch):
    monkeypatch.setenv("EQUISEARCH_WRITER_API_KEY", "sekret")
    text, ref = _true_sentence(writer_engine)
    canned.content = _reply((text, [ref]))
    answer = writer_engine.ask(QUESTION)
    assert answer.written and [s.text for s in answer.sentences] == [text]
    assert answer.sentences[0].cited == (ref,) and f"[{ref}]" in answer.text
    # What is sent: the question and the numbered passages, nothing else.
    sent = canned.requests[0]
    assert sent["model"] == "test-model" and sent["temperature"] == 0
    # A fixed instruction and worked example (made-up passages), then the question and the passages.
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert "Attendance guidance" in sent["messages"][1]["content"]
    user = sent["messages"][-1]["content"]
    assert user.endswith(f"Question: {QUESTION}")
    for n, hit in enumerate(answer.passages, start=1):
        assert f"[{n}] {hit.document.title}:" in user
    assert canned.headers[0]["Authorization"] == "Bearer sekret"


def test_citations_to_passages_not_given_are_removed(writer_engine, canned):
    text, ref = _true_sentence(writer_engine)
    canned.content = _reply((text, [ref, 9, 0]))
    answer = writer_engine.ask(QUESTION)
    assert answer.written and answer.removed_citations == 2
    assert answer.sentences[0].cited == (ref,)
    assert "[9]" not in answer.text and "[0]" not in answer.text


def test_made_up_claims_are_left_out(writer_engine, canned):
    text, ref = _true_sentence(writer_engine)
    canned.content = _reply(
        (text, [ref]),
        ("Kent schools raised PLAC attainment by 47% in 2019.", [ref]),  # numbers and a name not in the passage
        ("Virtual school heads do not need to give advice about previously looked-after children.", [ref]),
        ("Pupils enjoy swimming lessons on Fridays.", [ref]),  # off the passage
        (text, []),  # no citation
    )
    answer = writer_engine.ask(QUESTION)
    assert answer.written and [s.text for s in answer.sentences] == [text]
    dropped = dict(answer.unsupported)
    assert len(answer.unsupported) == 4
    assert "47" in dropped["Kent schools raised PLAC attainment by 47% in 2019."]
    assert "Virtual school heads do not need to give advice about previously looked-after children." in dropped
    for shown in answer.sentences:
        assert "Kent" not in shown.text and "swimming" not in shown.text


def test_too_little_support_falls_back_to_the_extractive_answer(writer_engine, canned):
    plain = writer_engine.ask(QUESTION, written=False)
    canned.content = _reply(("Pupils enjoy swimming lessons on Fridays.", [1]))
    answer = writer_engine.ask(QUESTION)
    assert not answer.written and answer.sentences == plain.sentences
    assert "0 of its 1 sentences" in answer.note and answer.unsupported


@pytest.mark.parametrize("status, raw, content, expected", [
    (500, None, "x", "HTTP 500"),
    (429, None, "x", "rate limited"),
    (200, "<html>not json</html>", None, "not a chat completion"),
    (200, json.dumps({"choices": []}), None, "not a chat completion"),
    (200, None, "   ", "empty"),
    (200, None, '{"sentences": [{"text": "broken', "not the JSON asked for"),
    (200, None, "Pupils need support from the virtual school head and the designated teacher.", "no sentence citing"),
    (200, None, "Los alumnos adoptados necesitan apoyo de la escuela virtual y del profesor designado [1].",
     "another language"),
])
def test_endpoint_failures_give_the_extractive_answer_and_a_note(writer_engine, canned, status, raw, content, expected):
    plain = writer_engine.ask(QUESTION, written=False)
    canned.status, canned.raw, canned.content = status, raw, content or ""
    answer = writer_engine.ask(QUESTION)
    assert not answer.written and answer.sentences == plain.sentences
    assert expected in answer.note and answer.note.startswith("Written answer not available")


def test_a_slow_endpoint_never_holds_the_question_past_the_timeout(writer_engine, canned):
    canned.delay = 6.0
    engine = Engine.open(writer_engine.store.location if hasattr(writer_engine.store, "location") else
                         writer_engine.settings.home, replace(writer_engine.settings, writer_timeout=1.0),
                         embedder=writer_engine.embedder)
    engine.ask(QUESTION, written=False)  # warm: the clock below is the endpoint's
    started = time.perf_counter()
    answer = engine.ask(QUESTION)
    assert time.perf_counter() - started < 3.0
    assert not answer.written and "within 1 s" in answer.note


def test_an_unreachable_endpoint_falls_back(starter_store, real_embedder):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(home=str(starter_store), writer_url=f"http://127.0.0.1:{port}/v1", writer_timeout=3)
    answer = Engine.open(starter_store, settings, embedder=real_embedder).ask(QUESTION)
    assert not answer.written and "cannot be reached" in answer.note and answer.sentences


def test_an_abstention_is_never_sent(writer_engine, canned):
    answer = writer_engine.ask("What did the Surrey inspection in 1987 say about the swimming pool?")
    assert answer.abstained and canned.requests == []


def test_parse_reply_reads_json_and_cited_text():
    assert parse_reply(_reply(("A b c [2].", [1]))) == [Claim("A b c.", (1, 2))]
    assert parse_reply("```json\n" + _reply(("One two.", [3])) + "\n```") == [Claim("One two.", (3,))]
    text = "Schools should share plans [1]. Carers help too [2, 3]."
    assert parse_reply(text) == [Claim("Schools should share plans.", (1,)), Claim("Carers help too.", (2, 3))]
    assert parse_reply("No markers at all.") == []
    assert parse_reply('{"answer": "wrong shape"}') == []
    assert parse_reply('[{"text": "broken') == []
    # A reply cut off by max_tokens keeps its whole sentence objects (each is checked as usual).
    cut = _reply(("One whole sentence.", [1]), ("Cut off", [2]))[:-25]
    assert parse_reply(cut) == [Claim("One whole sentence.", (1,))]
    # Several sentences in one item are checked one by one, each with the item's passages.
    assert parse_reply(_reply(("First point here. Second point there.", [2]))) == [
        Claim("First point here.", (2,)), Claim("Second point there.", (2,))]
    # Plain text that opens with its marker is cited text, not broken JSON.
    assert parse_reply("[1] Schools should share plans.") == [Claim("Schools should share plans.", (1,))]


def test_a_question_or_a_bare_title_is_no_answer(writer_engine):
    plain = writer_engine.ask(QUESTION, written=False)
    check = SupportCheck(writer_engine._sentences, writer_engine.settings)
    hit = plain.passages[0]
    title = hit.document.title
    verdict = check.check(Claim(f"{title}: {title}.", (1,)), plain.passages)
    assert not verdict.supported and "title" in verdict.reason
    # A title's topic words are not the passage's words: a sentence built from them is unsupported.
    from search.lexical import query_terms
    from search.text import words

    for n, h in enumerate(plain.passages, start=1):
        body = set(words(h.chunk.text.lower()))
        extra = [w for w in query_terms(h.document.title) if w not in body and not w.isdigit()]
        if len(extra) >= 3:
            verdict = check.check(Claim(" ".join(extra[:4]).capitalize() + ".", (n,)), plain.passages)
            assert not verdict.supported and "words" in verdict.reason, verdict
            break
    else:
        pytest.fail("no passage's title has three words its text lacks")
    s = plain.sentences[0]
    question = s.text.rstrip(".") + "?"
    verdict = check.check(Claim(question, (s.ref,)), plain.passages)
    assert not verdict.supported and "question" in verdict.reason


def test_the_check_needs_the_cited_passage_not_another(writer_engine):
    plain = writer_engine.ask(QUESTION, written=False)
    s = plain.sentences[0]
    check = SupportCheck(writer_engine._sentences, writer_engine.settings)
    assert check.check(Claim(s.text, (s.ref,)), plain.passages).supported
    others = [n for n in range(1, len(plain.passages) + 1) if s.text not in plain.passages[n - 1].chunk.text]
    assert not check.check(Claim(s.text, (others[0],)), plain.passages).supported


def test_a_negated_copy_of_a_passage_sentence_is_left_out(writer_engine):
    plain = writer_engine.ask(QUESTION, written=False)
    check = SupportCheck(writer_engine._sentences, writer_engine.settings)
    from search.answer import candidate_sentences

    plain_ones = [c for c in candidate_sentences(plain.passages)
                  if " should " in c.text and not set(c.text.lower().split()) & {"not", "no", "never"}]
    assert plain_ones, "the starter store's PLAC passages have 'should' sentences"
    c = plain_ones[0]
    assert check.check(Claim(c.text, (c.ref,)), plain.passages).supported, c.text
    flipped = c.text.replace(" should ", " should not ", 1)
    assert not check.check(Claim(flipped, (c.ref,)), plain.passages).supported, flipped


def test_a_copy_that_drops_a_condition_is_left_out(writer_engine):
    from search.answer import candidate_sentences

    check = SupportCheck(writer_engine._sentences, writer_engine.settings)
    found = None
    for question in (QUESTION, "Who counts as a previously looked-after child for school admissions?",
                     "When can a school exclude a pupil?", "When should a school arrange alternative provision?"):
        plain = writer_engine.ask(question, written=False)
        for c in candidate_sentences(plain.passages):
            word = next((w for w in (" only ", " unless ", " if ") if w in c.text), None)
            if word and check.check(Claim(c.text, (c.ref,)), plain.passages).supported:
                found = (c, word, plain)
                break
        if found:
            break
    assert found, "no supported passage sentence with 'only', 'unless' or 'if' in the starter store's answers"
    c, word, plain = found
    verdict = check.check(Claim(c.text.replace(word, " ", 1), (c.ref,)), plain.passages)
    assert not verdict.supported and "condition" in verdict.reason, (c.text, verdict)


def test_a_copy_that_changes_whose_or_how_binding_is_left_out(writer_engine):
    """"his" for "the", "must" for "should": every other test passes such a sentence."""
    from search.answer import candidate_sentences

    plain = writer_engine.ask(QUESTION, written=False)
    check = SupportCheck(writer_engine._sentences, writer_engine.settings)
    copies = [c for c in candidate_sentences(plain.passages)
              if " should " in c.text and " the " in c.text and " must " not in c.text
              and not set(c.text.lower().split()) & {"his", "its"}
              and check.check(Claim(c.text, (c.ref,)), plain.passages).supported]
    assert copies, "the starter store's PLAC answer has a supported 'should' sentence"
    c = copies[0]
    for changed, word in ((c.text.replace(" should ", " must ", 1), "must"),
                          (c.text.replace(" the ", " his ", 1), "his")):
        verdict = check.check(Claim(changed, (c.ref,)), plain.passages)
        assert not verdict.supported and repr(word) in verdict.reason, (changed, verdict)


def test_cli_ask_json_and_extractive_flag(starter_store, canned, monkeypatch):
    from cli.app import main

    monkeypatch.setenv("EQUISEARCH_WRITER_URL", canned.url)
    monkeypatch.setenv("EQUISEARCH_WRITER_TIMEOUT", "3")
    canned.content = _reply(("Pupils enjoy swimming lessons on Fridays.", [1]))
    runner = CliRunner()
    res = runner.invoke(main, ["--store", str(starter_store), "ask", "--json", QUESTION])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["written"] is False and "Written answer not used" in data["note"]
    assert data["unsupported"][0]["text"].startswith("Pupils enjoy swimming")
    canned.requests.clear()
    res = runner.invoke(main, ["--store", str(starter_store), "ask", "--extractive", QUESTION])
    assert res.exit_code == 0 and canned.requests == [] and "[" in res.output


@pytest.mark.slow
def test_ui_marks_written_answers_and_shows_fallbacks(ui_store_copy, canned, monkeypatch, real_embedder):
    """The Ask page through AppTest: the info box, [n] links, the left-out expander; a failure's note."""
    from .test_ui import ask, html, open_app

    monkeypatch.setenv("EQUISEARCH_WRITER_URL", canned.url)
    monkeypatch.setenv("EQUISEARCH_WRITER_MODEL", "test-model")
    monkeypatch.setenv("EQUISEARCH_WRITER_TIMEOUT", "3")
    engine = Engine.open(ui_store_copy, Settings(home=str(ui_store_copy)), embedder=real_embedder)
    text, ref = _true_sentence(engine)
    canned.content = _reply((text, [ref]), ("Every school must pay 4,000 pounds to each PLAC pupil.", [ref]))
    at = open_app(ui_store_copy, monkeypatch)
    assert any("Written answers come from the language model" in c.value for c in at.caption)
    ask(at, QUESTION)
    assert len(canned.requests) == 1
    assert any(i.value.startswith("Written answer:") for i in at.info)
    answer_html = next(h for h in html(at).split("\n") if 'class="eq-answer"' in h)
    assert text.split()[0] in answer_html and f'href="#source-{ref}"' in answer_html
    assert "4,000 pounds" not in answer_html
    assert [e.label for e in at.expander] == ["Left out of the written answer (1)"]
    assert "4,000 pounds" in at.expander[0].markdown[0].value
    # The endpoint fails: the extractive answer, no info box, the one-line note as a caption.
    canned.status = 500
    ask(at, "Who counts as a previously looked-after child for school admissions?")
    assert not any(i.value.startswith("Written answer:") for i in at.info)
    assert any("HTTP 500" in c.value and "showing sentences from the sources" in c.value for c in at.caption)
    assert not at.expander and 'class="eq-answer"' in html(at)
