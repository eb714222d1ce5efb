"""Real-model quality: recall floors, boilerplate never answers, citations real."""
from __future__ import annotations

import re

import pytest

from search.evaluate import evaluate, load_eval

from .conftest import DATA, shared_path

pytestmark = pytest.mark.slow

BOILERPLATE = [
    "This site uses cookies", "welcome to the TES Community", "Dismiss Notice", "Leave a Reply",
    "You can use these tags", "Share This Page", "Sign up to our associate membership", "eNewsletter",
    "provided for general information purposes only", "Please click here for full Terms and Conditions",
    "do not necessarily reflect the views", "Select a video from the YouTube menu",
]


def test_dev_eval_recall_at_5(starter_engine):
    """The project's dev questions over the starter corpus (target: all of them).

    The learned ranker (search/ltr.py) puts 1 of these 12 below rank 5 (its
    answer sits in a passage that covers fewer of the question's words than
    its neighbours) while it lifts recall@5 on the held-out sets by 4 to 10
    points (bench/QUALITY.md): the floor follows the held-out figures, not
    this tuning set."""
    items = load_eval(shared_path("dev-eval", "seeds.jsonl"))
    report = evaluate(starter_engine, items, k=5)
    misses = [p["id"] for p in report["per_question"] if not p["hit"]]
    assert report["recall_at_k"] >= 0.91, misses


def test_own_starter_questions_recall(starter_engine):
    """Our own questions over the seeds (written independently of the dev file)."""
    report = evaluate(starter_engine, load_eval(DATA / "starter_questions.jsonl"), k=5)
    misses = [(p["id"], p["question"]) for p in report["per_question"] if p["answerable"] and not p["hit"]]
    assert report["recall_at_k"] >= 0.93, misses
    # One answerable question abstains on this five-document store: its answer
    # says "Scottish", the question names "Scotland" (bench/QUALITY.md).
    assert report["abstain_correct"] == 1.0 and report["abstain_wrong"] <= 0.07


def test_boilerplate_is_never_stored(starter_engine):
    store = starter_engine.store
    texts = [c.text.lower() for d in store.documents() for c in store.chunks_of(d.id)]
    for phrase in BOILERPLATE:
        assert not any(phrase.lower() in t for t in texts), phrase


@pytest.mark.parametrize("question", [
    "How do I sign up to the newsletter?",
    "Which HTML tags can I use in a comment?",
    "Does this site use cookies?",
    "Who is responsible for the content of the webchat and is there a warranty?",
])
def test_boilerplate_never_answers(starter_engine, question):
    answer = starter_engine.ask(question)
    shown = " ".join(s.text for s in answer.sentences) + " ".join(h.chunk.text for h in answer.passages)
    for phrase in BOILERPLATE:
        assert phrase.lower() not in shown.lower()


def test_answer_sentences_are_verbatim_and_cited(starter_engine):
    answer = starter_engine.ask("What share of parents say their child's special educational needs are not fully met?")
    assert not answer.abstained
    assert 1 <= len(answer.sentences) <= 4
    for s in answer.sentences:
        assert s.text in answer.passages[s.ref - 1].chunk.text
    assert "74%" in answer.text
    assert answer.passages[answer.sentences[0].ref - 1].citation.site == "Challenge Partners"


#: What the statutory guidance says works for previously looked-after children:
#: the virtual school head's and designated teacher's roles, pupil premium plus,
#: personal education plans, admissions priority, the children themselves.
PLAC_TOPICS = re.compile(
    r"previously looked|looked.after|plac\b|adopt|special guardianship|child arrangements|virtual school|\bvsh\b|"
    r"designated teacher|pupil premium|pp\+|personal education plan|\bpep\b", re.I)


def test_flagship_plac_question_is_answered_from_the_guidance(starter_engine):
    """The UI's own example question, on the starter store: points from the
    statutory guidance on looked-after and previously looked-after children, no
    sentence from the seed web pages (one is a biography that once answered it)."""
    answer = starter_engine.ask("what works for PLAC pupils?")
    assert not answer.abstained, answer.reason
    assert answer.intent == "what-works" and answer.is_list and len(answer.sentences) >= 2
    cited = [answer.passages[s.ref - 1] for s in answer.sentences]
    titles = {h.document.title for h in cited}
    assert any(t.startswith("Promoting the education of looked-after children and previously looked-after children")
               for t in titles), titles
    for s, hit in zip(answer.sentences, cited):
        assert hit.document.kind == "guidance" and hit.document.uri.endswith(".pdf"), (s.text, hit.document.title)
        assert PLAC_TOPICS.search(s.text + " " + hit.chunk.text), s.text
        assert not re.match(r"[•\d]", s.text), "no bullet or paragraph number starts an answer sentence"


def test_unrelated_question_abstains(starter_engine):
    answer = starter_engine.ask("What is the boiling point of liquid nitrogen in kelvin?")
    assert answer.abstained
    assert answer.passages, "closest passages are still listed"


def _combined(reports):
    ans = [p for r in reports for p in r["per_question"] if p["answerable"]]
    una = [p for r in reports for p in r["per_question"] if not p["answerable"]]
    return (
        sum(p["hit"] for p in ans) / len(ans),
        sum(p["abstained"] for p in una) / len(una),
        sum(p["abstained"] for p in ans) / len(ans),
        [(p["id"], p["question"]) for p in ans if not p["hit"]],
    )


def test_teacher_questions_over_edu_and_seeds(edu_engine):
    """Quality floor on the teachers' store (starter + shared/data/edu): our own
    question sets, one written blind to the system's results by another team member.
    Measured values are in bench/QUALITY.md; the floors sit a little below."""
    reports = [evaluate(edu_engine, load_eval(DATA / name), k=5)
               for name in ("edu_questions.jsonl", "teacher_questions.jsonl", "starter_questions.jsonl")]
    reports.append(evaluate(edu_engine, load_eval(shared_path("dev-eval", "seeds.jsonl")), k=5))
    recall, abstained, wrongly, misses = _combined(reports)
    assert recall >= 0.86, misses
    # abstain_threshold 1.10 trades abstentions for answers: at most 5% of
    # answerable questions abstain on the tuning sets (measured 0.61 / 0.02
    # here with the learned ranker; 0.043 wrongly with the reranker, whose top
    # 5 the word confidence reads as weaker support for 4 of 93 questions).
    assert abstained >= 0.58
    assert wrongly <= 0.05


# -- held-out sets (tests/data/blind/: written from the documents before tuning, never tuned on) --
def test_held_out_starter_questions_floor(starter_engine):
    """Floors a little below what bench/bench_answers.py measured (2026-12-04, learned ranker +
    reranker: useful 0.74, exact 0.65, recall@5 0.89; 0.72 / 0.65 / 0.89 with the shorthand of 23:00; the ranker alone, 2026-12-03: 0.70 / 0.61 /
    0.76): a regression on questions nobody tuned for fails here. Totals only, never per-question
    output."""
    report = evaluate(starter_engine, load_eval(DATA / "blind" / "starter.jsonl"), k=5)
    assert report["useful"] >= 0.69 and report["exact"] >= 0.60 and report["recall_at_k"] >= 0.84, {
        k: report[k] for k in ("useful", "exact", "recall_at_k", "abstain_wrong", "abstain_correct")}


def test_held_out_plac_questions_floor(plac_engine):
    """Starter + shared/data/edu_plac (2026-12-04, with teachers' chat words and shorthand no longer held
    against the question and abstain_threshold 1.15: useful 0.62, exact 0.52, recall@5 0.79, wrongly
    abstained 0.05; with more shorthand in the vocabulary 0.64 / 0.55 / 0.79 / 0.02; before: 0.55 / 0.45 / 0.79 / 0.12; the ranker alone: 0.57 / 0.45 / 0.76)."""
    report = evaluate(plac_engine, load_eval(DATA / "blind" / "plac.jsonl"), k=5)
    assert report["useful"] >= 0.57 and report["exact"] >= 0.47 and report["recall_at_k"] >= 0.74, {
        k: report[k] for k in ("useful", "exact", "recall_at_k", "abstain_wrong", "abstain_correct")}


def test_held_out_edu_questions_floor(edu_engine):
    """Starter + shared/data/edu (2026-12-04, after the chat-word change: useful 0.59, exact 0.43, recall@5
    0.80: three fewer useful answers than before it (0.65 / 0.43 / 0.80), the one set that lost; with
    more shorthand in the vocabulary 0.57 / 0.43 / 0.78; the ranker alone: 0.54 / 0.35 / 0.78)."""
    report = evaluate(edu_engine, load_eval(DATA / "blind" / "edu.jsonl"), k=5)
    assert report["useful"] >= 0.54 and report["exact"] >= 0.39 and report["recall_at_k"] >= 0.76, {
        k: report[k] for k in ("useful", "exact", "recall_at_k", "abstain_wrong", "abstain_correct")}


# -- second blind pair (tests/data/blind2/: written 2026-12-04 from the documents by a helper that
# never ran the system; measured once per engine change, never read per question) --
def _blind2(engine, name):
    report = evaluate(engine, load_eval(DATA / "blind2" / name), k=5)
    return report, {k: report[k] for k in ("useful", "exact", "recall_at_k", "abstain_wrong", "abstain_correct")}


def test_second_blind_plac_questions_floor(plac_engine):
    """Starter + shared/data/edu_plac. First measurement (f4e0d3c): useful 0.35, exact 0.30,
    recall@5 0.70, 0.45 of answerable questions wrongly abstained; second (chat words and shorthand no
    longer held against the question, abstain_threshold 1.15): 0.40 / 0.35 / 0.70 / 0.40, and 0.40 of
    the unanswerable ones abstained (0.00 before); third (more shorthand in the vocabulary, one way):
    0.45 / 0.40 / 0.70 / 0.30. The floors sit one question (0.05) below: this set is where the
    answerer is weakest, and the floor keeps it from slipping."""
    report, totals = _blind2(plac_engine, "plac.jsonl")
    assert report["useful"] >= 0.40 and report["exact"] >= 0.35 and report["recall_at_k"] >= 0.65, totals


def test_second_blind_edu_questions_floor(edu_engine):
    """Starter + shared/data/edu. First measurement (f4e0d3c): useful 0.60, exact 0.55, recall@5 0.80,
    0.15 wrongly abstained; second: 0.70 / 0.65 / 0.80 / 0.00."""
    report, totals = _blind2(edu_engine, "edu.jsonl")
    assert report["useful"] >= 0.65 and report["exact"] >= 0.60 and report["recall_at_k"] >= 0.75, totals
