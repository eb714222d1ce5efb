"""Settings: one place, environment overrides, every setting documented."""
from __future__ import annotations

import pytest

from search.errors import EquisearchError
from search.settings import Settings

from .conftest import ROOT


def test_env_overrides_and_keyword_wins():
    env = {"EQUISEARCH_TOP_K": "9", "EQUISEARCH_MODEL": "/models/x", "EQUISEARCH_DENSE_WEIGHT": "0.5"}
    s = Settings.from_env(env)
    assert (s.top_k, s.model, s.dense_weight) == (9, "/models/x", 0.5)
    assert Settings.from_env(env, top_k=3).top_k == 3


def test_bad_env_value_is_a_clear_error():
    with pytest.raises(EquisearchError, match="EQUISEARCH_TOP_K"):
        Settings.from_env({"EQUISEARCH_TOP_K": "many"})


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [env for _name, env, _d, _h in Settings.describe() if env not in readme]
    assert not missing, f"README does not document {missing}"


def test_location_is_a_database_url_or_a_directory(monkeypatch, tmp_path):
    """--store / EQUISEARCH_HOME win; EQUISEARCH_DATABASE_URL applies when no directory is named."""
    monkeypatch.delenv("EQUISEARCH_HOME", raising=False)
    monkeypatch.setenv("EQUISEARCH_DATABASE_URL", "postgresql://u:secret@db.example/equi")
    assert Settings.from_env().location == "postgresql://u:secret@db.example/equi"
    assert Settings.from_env(home=str(tmp_path)).location == tmp_path
    assert Settings.from_env(home=" postgres://h/x ").location == "postgres://h/x"
    monkeypatch.delenv("EQUISEARCH_DATABASE_URL")
    assert Settings.from_env(home=str(tmp_path)).location == tmp_path


def test_a_database_url_is_shown_without_its_password():
    from search.store import describe_location

    assert describe_location("postgresql://alice:s3cret@db:5432/equi") == "postgresql://alice:***@db:5432/equi"
    assert "s3cret" not in describe_location("postgresql://db/equi?password=s3cret&sslmode=require")
    assert describe_location("/srv/store") == "/srv/store"
