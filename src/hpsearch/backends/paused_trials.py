"""Paused trials, as optuna's samplers learn from them.

A trial paused at a rung (`hpsearch.loop.halving`) is optuna's WAITING trial, and optuna's samplers learn from complete
and pruned trials only: the trials that led their rung, waiting there for peers, were hidden from TPE while the
worse ones, pruned, were not, so it drew its next points from the poorer trials. `SeesPausedTrials` shows the
sampler each paused trial as pruned at its rung, what it is until resumed: TPE ranks it as it ranks pruned trials,
by the step reached, then the value there.
"""

from __future__ import annotations

import copy
from collections.abc import Container
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from hpsearch.study import schema


def _paused(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.WAITING and bool(schema.fact(trial, schema.PAUSED)) and trial.last_step is not None


def _as_pruned(trial: FrozenTrial) -> FrozenTrial:
    shown = copy.copy(trial)
    shown.state = TrialState.PRUNED
    return shown


class StudyWithPaused:
    """A view of `study` in which each paused trial is pruned at its rung; everything else is `study`'s."""

    def __init__(self, study: optuna.Study):
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy, states)

    def _get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None, use_cache: bool = False
    ) -> list[FrozenTrial]:
        every = self._study._get_trials(deepcopy=False, states=None, use_cache=use_cache)
        shown = [_as_pruned(t) if _paused(t) else t for t in every]
        shown = shown if states is None else [t for t in shown if t.state in states]
        return copy.deepcopy(shown) if deepcopy else shown


class SeesPausedTrials(optuna.samplers.BaseSampler):
    """`base`, shown the study through `StudyWithPaused`; everything else is `base`'s."""

    def __init__(self, base: optuna.samplers.BaseSampler):
        self.base = base

    def __getattr__(self, name: str) -> Any:  # `base`'s own settings (`_n_startup_trials`, ...)
        if name == "base":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.base, name)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(StudyWithPaused(study), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.base.sample_relative(StudyWithPaused(study), trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        return self.base.sample_independent(StudyWithPaused(study), trial, name, distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
