"""Trials that ran out of memory, as optuna's samplers learn from them.

A trial that fails with out-of-memory is recorded as failed for the user, and to optuna as pruned and infeasible
(its `out_of_memory` constraint is 1, `Trial.set_constraint`): TPE and the other samplers that read constraints
rank it below every feasible trial. TPE's random start-up trials learn nothing, so the default sampler also never
draws again a combination of discrete values (a batch size, or a batch size with a sequence length) that ran out of
memory and never ran (`AvoidOutOfMemory`). Continuous values (a learning rate) do not change what a trial needs, so
they are not part of the combination.
"""

from __future__ import annotations

from typing import Any

import numpy
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from hpsearch.backends.paused_trials import SeesPausedTrials
from hpsearch.study import schema

_RESAMPLES = 10  # the sampler's own tries for another value, before one is drawn among those left


def _discrete(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    discrete = (CategoricalDistribution, IntDistribution)
    return {name: trial.params[name] for name, dist in trial.distributions.items() if isinstance(dist, discrete)}


class AvoidOutOfMemory(SeesPausedTrials):
    """`base`, except that a discrete value completing a combination that ran out of memory (and never ran) is drawn
    again: by `base` up to `_RESAMPLES` times, then among the values left. Everything else is `base`'s, shown the
    paused trials too (`SeesPausedTrials`)."""

    def __init__(self, base: optuna.samplers.BaseSampler, seed: int | None = None):
        super().__init__(base)
        self._rng = numpy.random.RandomState(seed)

    def _failed_combinations(self, study: optuna.Study) -> list[dict[str, Any]]:
        ended = study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        )
        ran = [_discrete(t) for t in ended if not t.constraints.get(schema.OUT_OF_MEMORY)]
        failed = [_discrete(t) for t in ended if t.constraints.get(schema.OUT_OF_MEMORY)]
        return [combination for combination in failed if combination and combination not in ran]

    def _completes_a_failure(self, failures: list[dict[str, Any]], chosen: dict[str, Any], name: str) -> bool:
        return any(name in f and all(k in chosen and chosen[k] == v for k, v in f.items()) for f in failures)

    def sample_relative(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, search_space: dict) -> dict:
        """`base`'s joint draw, less the discrete values that complete a failed combination (drawn one by one)."""
        sampled = super().sample_relative(study, trial, search_space)
        failures = self._failed_combinations(study) if sampled else []
        chosen = {**trial.params, **sampled}
        return {k: v for k, v in sampled.items() if not self._completes_a_failure(failures, chosen, k)}

    def sample_independent(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        value = super().sample_independent(study, trial, name, distribution)
        if not isinstance(distribution, (CategoricalDistribution, IntDistribution)):
            return value
        failures = self._failed_combinations(study)
        for _ in range(_RESAMPLES):
            if not self._completes_a_failure(failures, {**trial.params, name: value}, name):
                return value
            value = super().sample_independent(study, trial, name, distribution)
        choices = (
            distribution.choices
            if isinstance(distribution, CategoricalDistribution)
            else range(distribution.low, distribution.high + 1, distribution.step)
        )
        left = [c for c in choices if not self._completes_a_failure(failures, {**trial.params, name: c}, name)]
        return left[self._rng.randint(len(left))] if left else value

    def reseed_rng(self) -> None:
        super().reseed_rng()
        self._rng.seed()
