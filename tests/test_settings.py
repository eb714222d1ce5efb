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
