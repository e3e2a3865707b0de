"""`hpsearch.objective`: transformers' default objective, the names a study's objectives are given, the checks of
directions and of a trial's values (a mistake in the code stops the search; a diverged trial only fails), which
value is better, and naming a stored study's objectives once."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import optuna
import pytest

from hpsearch.errors import ConfigError, ObjectiveError
from hpsearch.objective import (
    check_directions,
    check_values,
    default_compute_objective,
    is_better,
    name_objectives,
    objective_names,
    run_objective,
)
from hpsearch.trial import Decision, Trial, TrialPruned, TrialSink, TrialState


def test_the_default_objective_is_the_loss_when_only_speed_metrics_and_the_epoch_are_beside_it():
    metrics = {"eval_loss": 0.4, "epoch": 3.0, "eval_runtime": 2.0, "eval_samples_per_second": 50.0}
    assert default_compute_objective(metrics | {"eval_steps_per_second": 5.0, "train_runtime": 9.0}) == 0.4


def test_the_default_objective_sums_every_other_metric_whatever_its_sign_and_without_the_loss():
    metrics = {"eval_loss": 10.0, "eval_accuracy": 0.75, "eval_neg_mse": -0.25, "eval_runtime_note": 1.0}
    assert default_compute_objective(metrics) == pytest.approx(1.5)  # "_runtime" only counts as a suffix


def test_the_default_objective_of_no_metrics_at_all_is_none():
    assert default_compute_objective({}) is None
    assert default_compute_objective({"epoch": 1.0}) is None


def test_an_objective_two_metrics_equal_is_not_named_after_either():
    metrics = {"eval_accuracy": 0.5, "eval_recall": 0.5, "eval_loss": -0.5}
    assert objective_names(lambda m: m["eval_accuracy"], metrics, 0.5) == ["objective"]  # not "-eval_loss" either
    assert objective_names(lambda m: -m["eval_accuracy"], metrics, -0.5) == ["eval_loss"]  # the one equal wins


def test_a_zero_objective_is_named_after_a_zero_metric_never_after_its_negation():
    assert objective_names(lambda m: m["eval_mae"], {"eval_mae": 0.0, "eval_f1": 0.8}, 0.0) == ["eval_mae"]
    assert objective_names(lambda m: 0.0, {"eval_a": 0.0, "eval_b": -0.0}, 0.0) == ["objective"]


def test_metrics_that_are_no_numbers_name_nothing_and_several_objectives_are_named_each_by_position():
    metrics = {"eval_label": "0.5", "eval_f1": 0.5, "eval_loss": 0.25}
    names = objective_names(lambda m: [m["eval_f1"], 7.0, -m["eval_loss"]], metrics, [0.5, 7.0, -0.25])
    assert names == ["eval_f1", "objective_1", "-eval_loss"]
    assert objective_names(lambda m: (1.0,), metrics, (1.0,)) == ["objective"]  # one value in a tuple: one name


def test_the_default_objective_is_named_after_what_it_sums_whatever_the_result():
    metrics = {"eval_loss": 0.5, "eval_f1": 0.5, "epoch": 1.0}
    assert objective_names(default_compute_objective, metrics, 0.5) == ["eval_f1"]  # not ambiguous with the loss


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("minimize", ["minimize"]),
        ("maximize", ["maximize"]),
        (("maximize", "minimize"), ["maximize", "minimize"]),
        (["minimize", "minimize", "maximize"], ["minimize", "minimize", "maximize"]),
    ],
)
def test_a_direction_or_several_come_back_as_a_list(direction, expected):
    assert check_directions(direction) == expected


@pytest.mark.parametrize("direction", ["maximise", "MINIMIZE", "", [], (), None, ["minimize", "up"], ["max"]])
def test_a_direction_that_is_not_minimize_or_maximize_is_a_config_error_naming_it(direction):
    with pytest.raises(ConfigError, match=rf"`direction` must be .* Received: direction={re.escape(repr(direction))}"):
        check_directions(direction)


@pytest.mark.parametrize(
    ("result", "n_objectives", "expected"),
    [
        (0.5, 1, [0.5]),
        (3, 1, [3.0]),
        ([0.5], 1, [0.5]),
        ((1, -2.5), 2, [1.0, -2.5]),
        (np.float32(0.25), 1, [0.25]),
        ([np.int64(2), np.float64(1e-3)], 2, [2.0, 1e-3]),
    ],
)
def test_a_trials_values_come_back_as_a_list_of_floats(result, n_objectives, expected):
    values = check_values(result, n_objectives)
    assert values == expected and all(type(v) is float for v in values)


@pytest.mark.parametrize(
    ("result", "n_objectives", "says"),
    [
        (0.5, 2, r"returned 1 value\(s\) for 2 direction\(s\): 0.5"),
        ((0.5, 0.25), 1, r"returned 2 value\(s\) for 1 direction\(s\): \(0.5, 0.25\)"),
        ([], 1, r"returned 0 value\(s\) for 1 direction\(s\)"),
        (None, 1, r"must be a number. Received: None \(of type NoneType\)"),
        ({"eval_loss": 0.5}, 1, r"Received: \{'eval_loss': 0.5\} \(of type dict\)"),
        ((0.5, "high"), 2, r"Received: 'high' \(of type str\)"),
    ],
)
def test_a_wrong_count_or_something_that_is_no_number_is_an_objective_error(result, n_objectives, says):
    with pytest.raises(ObjectiveError, match=says):
        check_values(result, n_objectives)


def test_a_string_is_no_number_even_when_it_reads_as_one():
    """docs/reliability.md: an objective that is a string is a mistake in the code, and stops the search."""
    for result in ("0.5", "1e-3", "nan"):
        with pytest.raises(ObjectiveError, match="must be a number"):
            check_values(result, 1)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_a_nan_or_infinite_value_is_a_diverged_trial_not_a_mistake_in_the_code(bad):
    with pytest.raises(ValueError, match="not a finite number; the trial diverged") as info:
        check_values([0.5, bad], 2)
    assert not isinstance(info.value, ObjectiveError)  # the trial fails; the search goes on


def test_better_is_higher_when_maximizing_lower_when_minimizing_and_a_tie_is_not_better():
    assert is_better(0.9, 0.8, "maximize") and not is_better(0.8, 0.9, "maximize")
    assert is_better(0.1, 0.2, "minimize") and not is_better(0.2, 0.1, "minimize")
    assert not is_better(0.5, 0.5, "maximize") and not is_better(0.5, 0.5, "minimize")
    assert is_better(-math.inf, None, "maximize") and is_better(math.inf, None, "minimize")  # nothing to beat
    assert not is_better(0.0, -0.0, "maximize")  # equal, whatever the sign of zero


@pytest.fixture
def storage(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_a_studys_objectives_are_named_once_in_its_storage_without_an_experimental_warning(storage):
    study = optuna.create_study(storage=storage, study_name="s", directions=["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", optuna.exceptions.ExperimentalWarning)
        name_objectives(study, ["eval_accuracy", "eval_loss"])
    name_objectives(study, ["objective_0", "objective_1"])  # a later search's names do not replace them
    assert optuna.load_study(storage=storage, study_name="s").metric_names == ["eval_accuracy", "eval_loss"]


def test_names_that_do_not_match_the_number_of_objectives_name_nothing(storage):
    study = optuna.create_study(storage=storage, study_name="s", direction="minimize")
    name_objectives(study, ["eval_loss", "eval_f1"])
    assert optuna.load_study(storage=storage, study_name="s").metric_names is None
    name_objectives(study, ["eval_loss"])
    assert optuna.load_study(storage=storage, study_name="s").metric_names == ["eval_loss"]


class Verdict(TrialSink):
    def __init__(self, verdict: Decision) -> None:
        self.verdict = verdict

    def report(self, trial: Trial, step: int, value: float) -> Decision:
        return self.verdict


def _trial(verdict=Decision.CONTINUE):
    return Trial(0, {"x": 1.0}, sink=Verdict(verdict))


def test_how_a_trial_ended_is_decided_once_for_every_path():
    assert run_objective(lambda t: [0.5, 2], _trial(), 2, (Exception,)).values == [0.5, 2.0]

    def reports(trial):
        trial.report(1, 0.3)
        return 0.3  # returned as if finished: a trial told to stop is pruned all the same

    assert run_objective(reports, _trial(verdict=Decision.PRUNE), 1, (Exception,)).state is TrialState.PRUNED
    assert run_objective(reports, _trial(verdict=Decision.PAUSE), 1, (Exception,)).state is TrialState.PAUSED

    def raises(error):
        def objective(trial):
            raise error

        return objective

    assert run_objective(raises(TrialPruned()), _trial(), 1, (Exception,)).state is TrialState.PRUNED
    failed = run_objective(raises(KeyError("k")), _trial(), 1, (KeyError,))
    assert (
        failed.state is TrialState.FAILED and isinstance(failed.failure, KeyError) and "KeyError: 'k'" in failed.error
    )
    for stops, catch in (
        (ValueError("v"), (KeyError,)),
        (ObjectiveError("o"), (Exception,)),
        (KeyboardInterrupt(), ()),
    ):
        with pytest.raises(type(stops)):
            run_objective(raises(stops), _trial(), 1, catch)
    with pytest.raises(ObjectiveError, match="has no parameters to search"):
        run_objective(lambda t: 1.0, Trial(0, {}), 1, (Exception,))
