"""The UK-education vocabulary: acronyms <-> full forms, both ways, plurals."""
from __future__ import annotations

import pytest

from search.vocabulary import load_vocabulary


@pytest.fixture(scope="module")
def vocab():
    return load_vocabulary()


@pytest.mark.parametrize("query, expected", [
    ("How good are EHCPs in Bexley?", "education, health and care plan"),
    ("Do SENCOs get time off timetable?", "special educational needs co-ordinator"),
    ("How do children take part in their PEPs?", "personal education plan"),
    ("what works for PLAC pupils?", "previously looked-after children"),
    ("support for CYP with SEMH needs", "children and young people"),
    ("PP+ funding for adopted children", "pupil premium plus"),
])
def test_acronyms_expand_to_full_forms_including_plurals(vocab, query, expected):
    assert expected in vocab.expand(query).synonyms


def test_full_forms_expand_to_acronyms(vocab):
    exp = vocab.expand("support for previously looked-after children")
    assert "PLAC" in exp.synonyms
    # The longest match wins: PLAC, not also LAC inside it.
    assert "LAC" not in exp.synonyms
    assert "adoption" in exp.related


def test_teachers_shorthand_expands_one_way(vocab):
    """Shorthand no source writes ("uni", "Y10", "kids", "HT") expands to its full form; the
    full form in a query is not also searched as the shorthand: every question about children
    would otherwise be searched for "kids" too."""
    assert {"university", "Year 10", "children", "headteacher"} <= set(vocab.expand("HT: Y10 kids off to uni").synonyms)
    expansion = vocab.expand("the headteacher of Year 10 children going to university")
    assert not {"uni", "Y10", "kids", "HT"} & set(expansion.synonyms + expansion.related)


@pytest.mark.parametrize("query", ["send the letter home", "a pep talk before exams", "the la la land film"])
def test_ordinary_words_are_not_acronyms(vocab, query):
    assert not vocab.expand(query).synonyms
