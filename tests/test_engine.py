"""The engine through the function API (`hpsearch.search`): no torch, real optuna on SQLite."""

from __future__ import annotations

import math
import re

import optuna
import pytest

import hpsearch
from hpsearch import TrialPruned, TrialState, default_compute_objective
from hpsearch.space import Categorical, Float, Int


def quadratic(trial):
    return (trial.params["x"] - 2) ** 2 + trial.params["n"]


SPACE = {"x": Float(-5, 5), "n": Int(0, 3), "kind": Categorical(["a", "b"])}


def test_search_finds_the_minimum_and_samples_inside_the_space(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    best = hpsearch.search(quadratic, SPACE, n_trials=30, storage=storage, sampler=optuna.samplers.TPESampler(seed=0))
    assert best.objective < 1.0 and best.hyperparameters["n"] == 0
    for t in hpsearch.load_trials(storage=storage):
        assert isinstance(t.params["x"], float) and -5 <= t.params["x"] <= 5
        assert isinstance(t.params["n"], int) and 0 <= t.params["n"] <= 3
        assert t.params["kind"] in ("a", "b")


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path):
    def sometimes_fails(trial):
        if trial.number == 1:
            raise RuntimeError("out of memory (simulated)")
        if trial.number == 2:
            return float("nan")
        return trial.params["x"]

    storage = f"sqlite:///{tmp_path / 's.db'}"
    hpsearch.search(sometimes_fails, SPACE, n_trials=4, storage=storage)
    trials = hpsearch.load_trials(storage=storage)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAILED, TrialState.FAILED, TrialState.COMPLETE]
    assert "out of memory (simulated)" in trials[1].error
    assert "not a finite number" in trials[2].error


def test_every_trial_failing_raises_the_first_error():
    def always_fails(trial):
        raise KeyError(f"bad {trial.number}")

    with pytest.raises(RuntimeError, match="All 3 trials") as info:
        hpsearch.search(always_fails, SPACE, n_trials=3, show_progress=False)
    assert isinstance(info.value.__cause__, KeyError) and "bad 0" in str(info.value.__cause__)


def test_an_objective_that_is_not_a_number_stops_the_search_at_its_first_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ValueError, match="must be a number. Received: 'high'"):
        hpsearch.search(lambda trial: "high", SPACE, n_trials=3, storage=storage)
    (trial,) = hpsearch.load_trials(storage=storage)  # a mistake in the code: no second trial tried
    assert "must be a number" in trial.error and "'high'" in trial.error


def test_median_pruner_prunes_trials_reported_worse_than_the_median(tmp_path):
    def curve(trial):
        for step in range(10):
            if trial.report(step, trial.params["x"] + 10 - step):
                return None
        return trial.params["x"]

    storage = f"sqlite:///{tmp_path / 's.db'}"
    hpsearch.search(
        curve,
        {"x": Float(0, 10)},
        n_trials=20,
        storage=storage,
        sampler=optuna.samplers.RandomSampler(0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    trials = hpsearch.load_trials(storage=storage)
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert pruned and all(len(t.intermediate) < 10 for t in pruned)


def test_raising_trial_pruned_marks_the_trial_pruned():
    def objective(trial):
        if trial.number == 0:
            raise TrialPruned()
        return 1.0

    best = hpsearch.search(objective, SPACE, n_trials=2, show_progress=False)
    assert [t.state for t in best.run_summary.trials] == [TrialState.PRUNED, TrialState.COMPLETE]


def test_rerun_continues_the_study_up_to_n_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    hpsearch.search(quadratic, SPACE, n_trials=3, storage=storage)
    first = hpsearch.load_trials(storage=storage)
    hpsearch.search(quadratic, SPACE, n_trials=5, storage=storage)
    trials = hpsearch.load_trials(storage=storage)
    assert len(trials) == 5 and [t.params for t in trials[:3]] == [t.params for t in first]


def test_rerun_with_another_direction_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    hpsearch.search(quadratic, SPACE, n_trials=1, storage=storage)
    with pytest.raises(ValueError, match="direction"):
        hpsearch.search(quadratic, SPACE, n_trials=2, storage=storage, direction="maximize")


def test_timeout_stops_asking_for_trials():
    import time

    def slow(trial):
        time.sleep(0.2)
        return 0.0

    best = hpsearch.search(slow, SPACE, n_trials=100, timeout=0.5, show_progress=False)
    assert 1 <= len(best.run_summary.trials) <= 4


def test_several_directions_return_the_pareto_front():
    front = hpsearch.search(
        lambda t: [t.params["x"], -t.params["x"]],
        {"x": Float(0, 1)},
        n_trials=5,
        direction=["minimize", "minimize"],
        show_progress=False,
    )
    assert isinstance(front, list) and len(front) == 5  # x and -x: every trial is on the front


def test_default_compute_objective_follows_transformers():
    assert default_compute_objective({"eval_loss": 0.5, "epoch": 1.0, "eval_runtime": 3.0}) == 0.5
    metrics = {"eval_loss": 0.5, "eval_f1": 0.25, "eval_accuracy": 0.5, "eval_samples_per_second": 9.0}
    assert default_compute_objective(metrics) == 0.75


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trials": 0}, "n_trials"),
        ({"n_trials": -3}, "n_trials"),
        ({"n_trials": 2.5}, "n_trials"),
        ({"n_trials": True}, "n_trials"),
        ({"direction": "max"}, "direction"),
        ({"direction": ["minimize", "up"]}, "direction"),
        ({"n_jobs": 2}, "n_jobs"),
        ({"timeout": -1}, "timeout"),
        ({"backend": "hyperopt"}, "'optuna', 'sigopt', 'ray', 'wandb'"),
        ({"samplr": None}, "Unknown argument"),
    ],
)
def test_bad_search_arguments_fail_before_any_trial(kwargs, message):
    ran = []
    with pytest.raises(ValueError, match=message):
        hpsearch.search(lambda t: ran.append(t) or 0.0, SPACE, **{"n_trials": 2, **kwargs})
    assert ran == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Float(1.0, 1.0), "low < high"),
        (lambda: Float(0.0, 1.0, log=True), "low > 0"),
        (lambda: Int(1, 5.5), "must be ints"),
        (lambda: Categorical([]), "non-empty"),
        (lambda: Float(0, math.inf), "finite"),
    ],
)
def test_bad_dimensions_say_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    ("hp_space", "hint"),
    [
        ([{"name": "learning_rate", "type": "double", "bounds": {"min": 1e-6, "max": 1e-4}}], "SigOpt"),
        ({"method": "random", "parameters": {"lr": {"min": 0.1, "max": 1.0}}}, "W&B"),
        ({"learning_rate": object()}, "Ray Tune"),
    ],
)
def test_optuna_rejects_other_backends_formats(hp_space, hint):
    with pytest.raises(ValueError, match=hint):
        hpsearch.search(lambda t: 0.0, hp_space, n_trials=1)


def test_load_trials_of_a_directory_without_a_study_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="No hpsearch study"):
        hpsearch.load_trials(tmp_path)


def test_ctrl_c_records_the_trial_as_interrupted_and_says_how_to_resume(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"

    def interrupted_at_trial_1(trial):
        if trial.number == 1:
            raise KeyboardInterrupt
        return trial.params["x"]

    with pytest.raises(hpsearch.SearchInterrupted, match="during trial 1; rerun the same call to resume"):
        hpsearch.search(interrupted_at_trial_1, SPACE, n_trials=3, storage=storage)
    trials = hpsearch.load_trials(storage=storage)
    assert [(t.state, t.interrupted) for t in trials] == [(TrialState.COMPLETE, False), (TrialState.FAILED, True)]
    hpsearch.search(quadratic, SPACE, n_trials=3, storage=storage)
    assert sum(t.counts for t in hpsearch.load_trials(storage=storage)) == 3


def test_an_output_dir_that_cannot_be_written_fails_before_any_trial(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    ran = []
    with pytest.raises(ValueError, match="`output_dir` .* is not writable"):
        hpsearch.search(lambda t: ran.append(1) or 0.0, SPACE, n_trials=1, output_dir=str(blocked / "out"))
    assert ran == []


def test_define_by_run_objective_suggests_on_the_optuna_trial(tmp_path):
    def objective(trial):  # no hp_space parameters: the objective suggests its own, as optuna users do
        return (trial.native.suggest_float("x", -5, 5) - 2) ** 2

    storage = f"sqlite:///{tmp_path / 's.db'}"
    best = hpsearch.search(objective, lambda trial: {}, n_trials=5, storage=storage, show_progress=False)
    assert all(set(t.params) == {"x"} for t in hpsearch.load_trials(storage=storage))
    assert set(best.hyperparameters) == {"x"}


def test_an_empty_space_and_an_objective_that_suggests_nothing_stop_at_the_first_trial():
    with pytest.raises(ValueError, match="Trial 0 has no parameters to search: `hp_space` gave none and the objective"):
        hpsearch.search(lambda trial: 0.0, lambda trial: {}, n_trials=3, show_progress=False)


def test_the_progress_line_shows_the_running_trial_its_latest_value_the_best_and_the_time_left(tmp_path, capsys):
    def objective(trial):
        for step in (1, 2):
            trial.report(step, trial.params["x"] + step)
        return trial.params["x"]

    hpsearch.search(
        objective,
        {"x": Float(0.0, 1.0)},
        n_trials=3,
        output_dir=str(tmp_path),
        seed=0,
        pruner=optuna.pruners.NopPruner(),
    )
    bar = capsys.readouterr().err
    best_after_two = min(t.objective for t in hpsearch.load_trials(tmp_path)[:2])
    last = hpsearch.load_trials(tmp_path)[2]
    # while trial 2 runs: its number, its latest intermediate value, the best of the first two, an ETA
    line = re.search(
        r"hpsearch:\s+67%.*\| 2/3 \[\d\d:\d\d<(\d\d:\d\d), [^,]+, trial 2 at 2: ([^,]+), best=([^\]\s]+)\]", bar
    )
    assert line is not None, bar
    assert float(line.group(2)) == pytest.approx(last.intermediate[2], rel=1e-3)
    assert float(line.group(3)) == pytest.approx(best_after_two, rel=1e-3)
