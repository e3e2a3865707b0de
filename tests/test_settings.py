"""`hpsearch.settings`: one search's settings, one frozen object the engine and the backends read."""

from __future__ import annotations

import dataclasses

import pytest

from hpsearch.settings import DEFAULT_STUDY_NAME, SearchSettings


def test_settings_are_frozen_and_default_as_transformers_search_does():
    settings = SearchSettings(directions=("minimize",))
    assert settings.n_trials == 20 and settings.study_name == DEFAULT_STUDY_NAME and settings.single_objective
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.n_trials = 3


def test_several_directions_are_several_objectives():
    assert not SearchSettings(directions=("minimize", "maximize")).single_objective
