"""Paused trials, as optuna's samplers learn from them (`hpsearch.backends.paused_trials`): a trial waiting at a rung
is shown to the sampler as pruned there, so that TPE draws near the trials that led their rung."""

from __future__ import annotations

import statistics

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpsearch.backends.paused_trials import SeesPausedTrials, StudyWithPaused
from hpsearch.study import schema

X = {"x": FloatDistribution(0.0, 1.0)}


def study_with_paused_leaders() -> optuna.Study:
    """Trials pruned at 1/9 of training across x, the best of them at x 0.2-0.3; three paused at 1/3 at x 0.8-0.9,
    the best so far; one queued, never run."""
    study = optuna.create_study(direction="maximize")
    worse = [(x, 0.1) for x in (0.05, 0.12, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.97)]
    for x, score in worse + [(0.2, 0.6), (0.25, 0.6), (0.3, 0.6)]:
        study.add_trial(
            create_trial(state=TrialState.PRUNED, params={"x": x}, distributions=X, intermediate_values={111: score})
        )
    for x in (0.8, 0.85, 0.9):
        study.add_trial(
            create_trial(
                state=TrialState.WAITING,
                params={"x": x},
                distributions=X,
                intermediate_values={111: 0.5, 333: 0.8},
                user_attrs={schema.PAUSED: True},
            )
        )
    study.enqueue_trial({"x": 0.5})
    return study


def test_a_paused_trial_is_shown_pruned_at_its_rung_and_a_queued_one_is_not():
    study = study_with_paused_leaders()
    shown = StudyWithPaused(study).get_trials(states=(TrialState.PRUNED,))
    assert [t.params["x"] for t in shown][-4:] == [0.3, 0.8, 0.85, 0.9] and len(shown) == 16
    assert [t.last_step for t in shown][-4:] == [111, 333, 333, 333]
    assert [t.state for t in study.trials][-4:] == [TrialState.WAITING] * 4  # the store is unchanged
    assert [t.number for t in StudyWithPaused(study).get_trials(states=(TrialState.WAITING,))] == [16]


def draws(sampler: optuna.samplers.BaseSampler, study: optuna.Study, n: int = 8) -> list[float]:
    """`n` draws of x by `sampler` from the same trials (`study.ask` would take the waiting trials as queued)."""
    probe = study.trials[0]
    return [sampler.sample_independent(study, probe, "x", X["x"]) for _ in range(n)]


def test_tpe_draws_near_the_paused_leaders_only_when_it_sees_paused_trials():
    seen = draws(SeesPausedTrials(optuna.samplers.TPESampler(seed=0, n_startup_trials=3)), study_with_paused_leaders())
    hidden = draws(optuna.samplers.TPESampler(seed=0, n_startup_trials=3), study_with_paused_leaders())
    assert 0.75 < statistics.median(seen) < 0.95 and statistics.median(hidden) < 0.5, (seen, hidden)  # not near them
