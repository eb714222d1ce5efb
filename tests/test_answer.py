"""Answer composition without a model: intents, sentence cleaning, the verbatim check, missing terms."""
from __future__ import annotations

import dataclasses

import pytest

from search import intent
from search.answer import Question, candidate_sentences, display_text, question_coverage, verbatim_in
from search.types import Chunk, Citation, Document, Hit
from search.vocabulary import load_vocabulary


def hit(text: str, doc_id: int = 1, title: str = "Guidance", kind: str = "guidance") -> Hit:
    doc = Document(id=doc_id, uri=f"/srv/{doc_id}.pdf", title=title, kind=kind)
    chunk = Chunk(id=doc_id * 100, doc_id=doc_id, ord=0, text=text, char_start=0, char_end=len(text))
    return Hit(chunk=chunk, document=doc, citation=Citation.for_chunk(doc, chunk), score=1.0)


@pytest.mark.parametrize("question, kind", [
    ("what works for PLAC pupils?", intent.WHAT_WORKS),
    ("waht works for LAC", intent.WHAT_WORKS),
    ("how should the DT use pupil premium plus", intent.WHAT_WORKS),
    ("any examples of a school turning this round?", intent.WHAT_WORKS),
    ("who counts as a previously looked-after child?", intent.DEFINITION),
    ("what does PP+ mean", intent.DEFINITION),
    ("what does Surrey still need to improve?", intent.NEEDS_IMPROVE),
    ("what are the areas for improvment in Solihull", intent.NEEDS_IMPROVE),
    ("what are Greenwich's strengths for care leavers", intent.STRENGTHS),
    ("how long does an EHC needs assessment take?", intent.HOW_LONG),
    ("when must a PEP be reviewed?", intent.WHEN),
    ("who is responsible for PP+?", intent.WHO),
    ("Who is leading the session on collaboration as a strategy for equity?", intent.WHO),  # not what-works
    ("ofsted findings for wolverhampton", intent.FACTUAL),
    # Found on the tuning questions: "what are good ways" is not a question about strengths, and
    # "what should the VSH do" is one about what to do.
    ("what are good ways to reintegrate a pupil after a suspension?", intent.WHAT_WORKS),
    ("what is good about Leeds virtual school?", intent.STRENGTHS),
    ("CiC pupil at risk of being excluded - what should the VSH do?", intent.WHAT_WORKS),
])
def test_intent_of_teacher_questions(question, kind):
    assert intent.detect(question).kind == kind


def test_layout_marks_are_dropped_and_the_check_holds():
    passage = "Approaches that are:\n•  Individually tailored to the needs of each pupil.\n69 If the pupil is\nadopted, the VSH advises."
    assert display_text("•  Individually tailored to the needs of each pupil.") == "Individually tailored to the needs of each pupil."
    assert display_text("69 If the pupil is\nadopted, the VSH advises.") == "If the pupil is adopted, the VSH advises."
    assert verbatim_in("If the pupil is adopted, the VSH advises.", passage)
    assert not verbatim_in("If the pupil is adopted, the school advises.", passage)
    assert not verbatim_in("", passage)


def test_fragments_headings_and_questions_are_not_candidates():
    # Blocks of a PDF (list items, lead-ins, paragraphs) are stored a blank line apart.
    text = ("Supporting pupil transition (e.g. primary-secondary/KS3-4)\n\n"
            "So what is the role of the designated teacher?\n\n"
            "Approaches that are:\n\n"
            "[^2]: EUniWell Teacher Education Team. (n.d.). Inclusion standards for teachers.\n\n"
            "The designated teacher should work with the virtual school head to agree how pupil premium plus is used.")
    shown = [c.text for c in candidate_sentences([hit(text)])]
    assert shown == ["The designated teacher should work with the virtual school head to agree how pupil premium plus is used."]


def test_a_missing_vocabulary_term_is_named_whole():
    vocab = load_vocabulary()
    question = "how long does an EHC plan take in Kent?"
    cov = question_coverage(Question.of(question, known=vocab.acronyms, spans=tuple(vocab.spans(question))),
                            [hit("Pupils with special educational needs are supported by the SENCO.")])
    assert "EHC" not in cov.missing and "Kent" in cov.missing
    assert all(m in ("EHC plan", "Kent") for m in cov.missing), cov.missing


def test_the_sentence_after_the_best_one_is_read_with_it(real_embedder):
    """The sentence closest to a question often restates it; the next one answers. Real model."""
    from search.answer import compose_answer
    from search.settings import Settings

    restates = "Proactive strategies are things that teachers can do to prevent low-level disruption."
    answers = ("They include clear routines and instructions, naming the positive behaviour that will help "
               "learning, and acknowledging it when it occurs.")
    other = "Reactive strategies are what a teacher does after the behaviour has happened, such as a reminder."
    hits = [hit(f"{restates} {answers}"), hit(other, doc_id=2)]
    question = "Which proactive strategies can a teacher use to prevent low-level disruption?"
    qvec = real_embedder.encode([question])[0]
    answer = compose_answer(Question.of(question, vector=qvec, asked=intent.Intent(intent.FACTUAL)), hits,
                            real_embedder, Settings(abstain_threshold=0.0))
    texts = [s.text for s in answer.sentences]
    assert texts[:2] == [restates, answers]
    assert len(texts) <= Settings().answer_sentences + 1  # the follower does not take another sentence's place


def test_coverage_matches_inflections_not_derivations():
    """Plurals and possessives meet; a related word of another sense does
    not, or a question about inclusion would look covered by "inclusive"."""
    from search.answer import _stem

    for a, b in (("pupils", "pupil"), ("children’s", "children"), ("studies", "study"), ("EHCPs", "EHCP")):
        assert _stem(a) == _stem(b), (a, b)
    for a, b in (("inclusion", "inclusive"), ("difference", "different"), ("integration", "integrated")):
        assert _stem(a) != _stem(b), (a, b)
    covered = question_coverage(Question.of("difference between integration and inclusion"),
                                [hit("Inclusive schools are different: pupils are integrated in every lesson.")])
    assert covered.share < 0.5


def test_informal_contractions_are_not_missing_words():
    # Typed without the apostrophe ("wont") or as "it'll", they are function words, not a missing name:
    # before, an answerable question lost 0.2 of confidence for "wont" and abstained.
    question = "can the LA direct an academy that wont admit a child, and will it'll matter"
    cov = question_coverage(Question.of(question, weights={"wont": 5.0, "it'll": 5.0}, unseen_weight=5.0),
                            [hit("The local authority (LA) can direct an academy to admit a child; it will matter.")])
    assert cov.missing == () and cov.share == 1.0


def test_teachers_shorthand_is_in_the_vocabulary():
    vocab = load_vocabulary()
    expansion = vocab.expand("HT has suspended a CLA pupil; uni bursary; KS2 RWM gap")
    assert {"headteacher", "university", "reading, writing and maths"} <= set(expansion.synonyms)
    expansion = vocab.expand("funded 3 yo in care")
    assert "year old" in expansion.synonyms


def test_lower_case_shorthand_counts_as_found_when_the_passage_spells_it_out():
    vocab = load_vocabulary()
    question = "care leaver going to uni - is there a bursary"
    expansion = vocab.expand(question)
    passage = [hit("A care leaver going into higher education at university gets a bursary of £2,000.")]
    weights = {"uni": 5.0, "care": 1.0, "leaver": 2.0, "bursary": 3.0, "going": 1.0}
    cov = question_coverage(Question.of(question, weights=weights, unseen_weight=5.0, known=vocab.acronyms,
                                        alternatives=expansion.synonyms), passage)
    assert cov.share == 1.0 and cov.missing == ()
    # Without the spelled-out form the shorthand is not covered (and, a vocabulary term, not a missing name).
    cov = question_coverage(Question.of(question, weights=weights, unseen_weight=5.0, known=vocab.acronyms,
                                        alternatives=expansion.synonyms), [hit("A care leaver gets a bursary.")])
    assert cov.share < 0.6 and cov.missing == ()


def test_numbers_meet_their_words_and_a_report_s_year_its_date():
    cov = question_coverage(Question.of("must a 3 year old have lived with the carer",
                                        weights={"3": 5.0}, unseen_weight=5.0),
                            [hit("A three year old must have lived with the carer for one month.")])
    assert cov.share == 1.0 and cov.missing == ()
    report = hit("The PEPs are not fit for purpose.", title="Surrey: inspection of children's services")
    dated = Hit(chunk=report.chunk, document=dataclasses.replace(report.document, date="2018-05-16"),
                citation=report.citation, score=1.0)
    question = Question.of("surrey 2018 ofsted PEPs", weights={"2018": 5.0}, unseen_weight=5.0)
    assert question_coverage(question, [report]).missing == ("2018",)
    assert "2018" not in question_coverage(question, [dated]).missing


def test_a_lone_letter_is_not_a_question_word():
    cov = question_coverage(Question.of("KCSIE q: should the DSL work with the DT", weights={"q": 5.0}, unseen_weight=5.0),
                            [hit("Under KCSIE the DSL should work with the DT.")])
    assert cov.share == 1.0 and cov.missing == ()


def test_a_year_group_in_shorthand_is_found_as_the_year_and_is_no_missing_number():
    # "Y1" has a digit, so it read as a specific number no passage held; the guidance says "Year 1".
    vocab = load_vocabulary()
    question = "Y1 child in care on a part time timetable"
    expansion = vocab.expand(question)
    assert "Year 1" in expansion.synonyms
    cov = question_coverage(Question.of(question, weights={"y1": 5.0}, unseen_weight=5.0, known=vocab.acronyms,
                                        alternatives=expansion.synonyms),
                            [hit("A child in care in Year 1 on a part time timetable needs a plan.")])
    assert cov.share == 1.0 and cov.missing == ()
