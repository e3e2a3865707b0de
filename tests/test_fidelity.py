"""`hpsearch.loop.fidelity`: the rungs' progress points (a geometric ladder by the reduction factor), progress in
thousandths of training, the first step that reaches a point, and which optuna pruners may stop a trial."""

from __future__ import annotations

import optuna
import pytest

from hpsearch.loop.fidelity import (
    DEFAULT_EVALS_PER_TRIAL,
    MAX_EVALS_PER_TRIAL,
    PROGRESS_END,
    progress,
    prunes,
    rung_points,
    step_at,
)
from hpsearch.loop.halving import PeerHalvingPruner


@pytest.mark.parametrize(
    ("evals_per_trial", "points"),
    [(-1, ()), (0, ()), (1, ()), (2, (333,)), (3, (111, 333)), (4, (37, 111, 333)), (5, (12, 37, 111, 333))],
)
def test_rungs_are_a_ladder_of_thirds_below_the_trials_own_final_evaluation(evals_per_trial, points):
    assert rung_points(evals_per_trial) == points


def test_by_default_a_trial_is_scored_at_a_ninth_and_a_third_of_its_training_before_its_end():
    assert rung_points(DEFAULT_EVALS_PER_TRIAL) == (111, 333)


@pytest.mark.parametrize("evals_per_trial", range(2, MAX_EVALS_PER_TRIAL + 1))
def test_every_rung_is_a_point_of_its_own_after_some_training_and_before_the_end(evals_per_trial):
    """However many evaluations a trial is given (up to `MAX_EVALS_PER_TRIAL`, which a Trainer search checks), each
    rung is its own progress point, above 0 (Ray's ASHA, built on these points, asserts `grace_period > 0`) and below
    the end."""
    points = rung_points(evals_per_trial)
    assert points
    assert all(0 < point < PROGRESS_END for point in points), points
    assert list(points) == sorted(set(points)), points  # rising, no two rungs at one point


@pytest.mark.parametrize(
    ("step", "max_steps", "expected"),
    [(0, 10, 0), (10, 10, 1000), (5, 10, 500), (1, 3, 333), (2, 3, 667), (1, 9, 111), (7, 24, 292), (24, 24, 1000)],
)
def test_progress_is_the_part_of_training_done_in_rounded_thousandths(step, max_steps, expected):
    assert progress(step, max_steps) == expected


def test_progress_with_no_steps_to_take_counts_each_step_as_the_whole_training():
    assert progress(0, 0) == 0
    assert progress(1, 0) == PROGRESS_END  # no division by zero


@pytest.mark.parametrize(("point", "max_steps", "step"), [(111, 24, 3), (333, 24, 8), (1000, 24, 24), (500, 10, 5)])
def test_the_step_of_a_point_is_the_first_at_which_that_much_training_is_done(point, max_steps, step):
    assert step_at(point, max_steps) == step


def test_a_rung_is_never_before_the_first_step():
    assert step_at(0, 100) == 1
    assert step_at(111, 1) == 1  # a one-step trial scores every rung at its only step
    assert step_at(1, 5) == 1


def test_the_step_of_a_point_is_exactly_the_first_that_reaches_it_for_any_length_of_training():
    for max_steps in range(1, 301):
        for point in (*rung_points(5), PROGRESS_END):
            step = step_at(point, max_steps)
            assert step * PROGRESS_END >= point * max_steps, (point, max_steps)  # reached there
            assert step == 1 or (step - 1) * PROGRESS_END < point * max_steps, (point, max_steps)  # not before
            assert progress(step, max_steps) >= point  # and progress there reads as at least the point
    assert step_at(PROGRESS_END, 37) == 37  # the end is the last step, not one past it


def test_only_optunas_nop_pruner_never_stops_a_trial():
    class NeverEither(optuna.pruners.NopPruner):
        pass

    assert not prunes(optuna.pruners.NopPruner())
    assert not prunes(NeverEither())
    assert prunes(optuna.pruners.MedianPruner())
    assert prunes(optuna.pruners.SuccessiveHalvingPruner())
    assert prunes(PeerHalvingPruner(rung_points(DEFAULT_EVALS_PER_TRIAL)))
