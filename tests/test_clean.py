"""Page-furniture removal on the starter corpus and on general cases."""
from __future__ import annotations

import pytest

from ingest.clean import clean, remove_cross_document_boilerplate
from ingest.extract import extract_file
from ingest.segments import Extracted, Segment

from .conftest import CORPUS

FURNITURE = [
    "This site uses cookies", "welcome to the TES Community", "Dismiss Notice", "Leave a Reply",
    "You can use these tags", "Share This Page", "Sign up to our associate membership", "eNewsletter",
    "provided for general information purposes only", "Please click here for full Terms and Conditions",
    "do not necessarily reflect the views", "Select a video from the YouTube menu", "3 May 2022",
    "Establishing and embedding a precedent", "likes this",
]
CONTENT = [
    "literacy and numeracy", "intelligent targeting of resources", "using income, as the primary measure, is not enough",
    "strengthening the collaboration within and amongst schools",
    "fragmentation that further disadvantages learners from poorer backgrounds",
    "trios to plan and observe research lessons", "Evidence can create the catalyst of change", "74% of parents",
    "1.5 million pupils with Special Educational Needs and Disabilities", "Professor Andy Hargreaves",
    "Professor Mel Ainscow will be delivering", "barriers to those routes are simply far too high",
    "a system with children at its heart", "around groups of schools", "25 November, 2021",
    "Closing the Attainment Gap in Scottish Education",
]


@pytest.fixture(scope="module")
def seeds():
    return {p.name[:3]: clean(extract_file(p)) for p in sorted(CORPUS.glob("*.txt"))}


def _text(ex: Extracted) -> str:
    return "\n".join(s.text for s in ex.segments)


def test_seed_furniture_removed(seeds):
    everything = " ".join(_text(e) for e in seeds.values()).lower()
    left = [p for p in FURNITURE if p.lower() in everything]
    assert not left


def test_seed_content_kept(seeds):
    everything = " ".join(_text(e) for e in seeds.values())
    missing = [p for p in CONTENT if p not in everything]
    assert not missing


def test_page_that_repeats_itself_is_kept_once(seeds):
    text = _text(seeds["002"])
    assert text.count("strengthening the collaboration within and amongst schools") == 1
    assert text.count("Collaborative practice") == 1


def test_forum_posts_carry_their_author(seeds):
    forum = seeds["001"]
    assert forum.meta["kind"] == "forum"
    posts = [s for s in forum.segments if s.speaker]
    assert {s.speaker for s in posts} >= {"christineryan1", "AndrewFIS"}
    for s in posts:
        assert s.text.startswith(s.speaker + ": ")
        assert "New commenter" not in s.text and "Occasional commenter" not in s.text


def _ex(*paras, **seg_kw):
    return Extracted([Segment(p, **seg_kw) for p in paras], {})


def test_repeated_structure_is_content_not_a_second_copy():
    """An interview's standing questions and a timetable's repeated rows are
    writing; only a run of repeats holding a quarter of the words is a copy."""
    q = "What did the school change first to support disadvantaged pupils?"
    paras = []
    for school, answer in (("Oak Primary", "Breakfast club attendance was tracked every week by the pastoral lead."),
                           ("Elm Academy", "Tutoring moved into the school day so that no pupil missed it."),
                           ("Ash School", "Every teacher planned reading lessons with the vocabulary list.")):
        paras += [school, q, answer, "Pupil premium: 30% of pupils"]
    ex = clean(_ex(*paras))
    assert _text(ex).count(q) == 3 and _text(ex).count("Pupil premium: 30% of pupils") == 3
    copied = clean(_ex(*paras, *paras[:8]))  # the first two schools printed again
    assert _text(copied).count(q) == 3 and _text(copied).count("Oak Primary") == 1


def test_blog_share_like_and_related_lists():
    ex = clean(_ex("Why tutoring works", "Small-group tutoring helped our disadvantaged pupils catch up in reading.",
                   "Share this:", "Twitter", "Like this:", "Like Loading...", "Related",
                   "Tutoring in practice", "12 March 2023", "What the EEF says about tutoring", "4 April 2023"))
    assert _text(ex).split("\n") == ["Why tutoring works",
                                     "Small-group tutoring helped our disadvantaged pupils catch up in reading."]


def test_council_cookie_banner_variants():
    ex = clean(_ex("We use cookies to make this site work. Accept all cookies", "Reject optional cookies",
                   "The local authority publishes its local offer for children with SEND."))
    assert _text(ex) == "The local authority publishes its local offer for children with SEND."


def test_newsletter_box_and_its_heading():
    ex = clean(_ex("Attendance matters because pupils who miss school fall behind their peers.",
                   "Stay in touch", "Sign up to our newsletter to get the latest updates in your inbox."))
    assert _text(ex) == "Attendance matters because pupils who miss school fall behind their peers."


def test_content_that_mentions_cookies_or_newsletters_is_kept():
    para = ("In the lesson, pupils baked cookies to practise measuring, and the school newsletter reported how much "
            "their confidence with fractions grew over the term, especially for pupils eligible for free school meals.")
    assert _text(clean(_ex(para))) == para


def test_transcript_calls_to_action_are_kept():
    ex = clean(_ex("So click here in your mind: what would you do next?", transcript=True))
    assert "click here" in _text(ex)


def test_cross_document_boilerplate_only_within_a_site():
    footer = "Council offices, High Street. Open 9 to 5."
    docs = [Extracted([Segment(f"Unique content number {i} about school admissions."), Segment(footer)],
                      {"site": "council.example"}) for i in range(3)]
    other = Extracted([Segment("Different site content about exclusions."), Segment(footer)], {"site": "other.example"})
    out = remove_cross_document_boilerplate(docs + [other], min_docs=3)
    assert all(footer not in _text(d) for d in out[:3])
    assert footer in _text(out[3])


def test_link_teasers_follow_prompts_and_donation_banners():
    body = "Schools that tracked attendance weekly closed the gap for disadvantaged pupils within a year."
    ex = clean(_ex(body, "Related: How one trust cut persistent absence", "Read more: Attendance guidance explained",
                   "Related", "Breakfast clubs and attendance", "Five myths about persistent absence",
                   "Follow us on Twitter @EquityBlog and on Facebook.", "Tell us what you think...", "5 min read",
                   "We rely on readers like you. Donate today to help us continue our work.",
                   "Subscribe to our newsletters for weekly updates."))
    assert _text(ex) == body


def test_read_more_teasers_in_other_languages():
    """"<label>: <linked headline>" between a newspaper's paragraphs, and the
    label alone above a list of headlines, in the languages ingest meets."""
    body = ["Ostatecznie 290 posłów głosowało za rządowym projektem ustawy w tej sprawie.",
            "Wynik głosowania był jednak jasny już wcześniej, bo Lewica głosowała z rządem."]
    teasers = ["Dowiedz się więcej: Kto jak głosował ws. unijnych funduszy?", "Czytaj także: Sejm przyjął ustawę",
               "Lesen Sie auch: Killer- oder Grippevirus", "À lire aussi : Le bac change encore",
               "Leggi anche", "I Cavalieri dello Zodiaco diventeranno un film", "Lea también: Las becas"]
    assert _text(clean(_ex(body[0], *teasers, body[1]))).split("\n") == body


def test_read_more_words_inside_sentences_are_kept():
    paras = ["Wer mehr zum Thema Inklusion wissen will, findet im Anhang die Studien der Länder.",
             "Lesen Sie auch die Hinweise der Schulbehörde, bevor Sie den Antrag stellen.",
             "Uczniowie chcą się dowiedzieć więcej o egzaminach: szkoła organizuje spotkania."]
    assert _text(clean(_ex(*paras))).split("\n") == paras


def test_lists_and_follow_words_in_content_are_kept():
    paras = ["Related reading for designated teachers",
             "- Promoting the education of looked-after children (DfE, 2018)",
             "Pupils follow the phonics programme daily; teachers follow up with parents on Twitter-free evenings.",
             "More able pupils were stretched with reading for pleasure."]
    assert _text(clean(_ex(*paras))).split("\n") == paras
