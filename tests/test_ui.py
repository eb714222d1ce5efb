"""The Streamlit page through AppTest: question in, cited answer out."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from .conftest import ROOT

pytestmark = pytest.mark.slow
APP = str(ROOT / "ui" / "app.py")


@pytest.fixture
def app(starter_store, monkeypatch):
    monkeypatch.setenv("EQUISEARCH_HOME", str(starter_store))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def test_question_gives_cited_answer(app):
    app.text_input(key="question").input("How many pupils have SEND?").run()
    assert not app.exception
    body = " ".join(m.value for m in app.markdown)
    assert "1.5 million" in body and "[1]" in body
    assert any("Sources" in s.value for s in app.subheader)


def test_unanswerable_shows_closest_passages(app):
    app.text_input(key="question").input("What is the boiling point of liquid nitrogen?").run()
    assert any("don't answer" in w.value for w in app.warning)
    assert any("Closest passages" in s.value for s in app.subheader)


def test_missing_store_is_a_friendly_message(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUISEARCH_HOME", str(tmp_path / "none"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert at.error and "could not be opened" in at.error[0].value
