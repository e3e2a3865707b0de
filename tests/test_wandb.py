"""The W&B backend with the real `wandb` and `sweeps` libraries, offline, with no API key."""

from __future__ import annotations

from pathlib import Path

import pytest

import hpsearch
from hpsearch import TrialState
from tests.wandb_helpers import StandInAgent, offline_runs


@pytest.fixture(autouse=True)
def no_wandb_account(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))  # nothing under ~/.config


def test_seed_wandb_example_runs_as_written_offline(make_trainer):
    trainer = make_trainer()

    def wandb_hp_space(trial):
        return {
            "method": "random",
            "metric": {"name": "objective", "goal": "minimize"},
            "parameters": {
                "learning_rate": {"distribution": "uniform", "min": 1e-6, "max": 1e-4},
                "per_device_train_batch_size": {"values": [16, 32, 64, 128]},
            },
        }

    best_trial = trainer.hyperparameter_search(
        direction="minimize",
        backend="wandb",
        hp_space=wandb_hp_space,
        n_trials=5,
        compute_objective=lambda metrics: metrics["eval_loss"],
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}  # pruned by the default hyperband
    assert len({t.params["learning_rate"] for t in trials}) == 5  # args.seed fixed, yet 5 points searched
    assert best_trial.objective == min(t.objective for t in trials if t.state is TrialState.COMPLETE)

    runs = offline_runs(Path(trainer.args.output_dir))
    assert len(runs) == 5 and {r["group"] for r in runs} == {"hpsearch"}
    by_name = {r["name"]: r for r in runs}
    for t in trials:
        run = by_name[f"trial-{t.number}"]
        assert {k: run["config"][k] for k in t.params} == t.params
        assert t.state is not TrialState.COMPLETE or run["summary"]["objective"] == pytest.approx(t.objective)
        assert len([h for h in run["history"] if "objective" in h]) == len(t.intermediate)


def quadratic(trial):
    return (trial.params["x"] - 1) ** 2


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_random_and_bayes_run(method, tmp_path):
    config = {"method": method, "parameters": {"x": {"min": -3.0, "max": 3.0}, "n": {"values": [1, 2]}}}
    best = hpsearch.search(quadratic, config, n_trials=6, backend="wandb", output_dir=str(tmp_path))
    trials = best.run_summary.trials
    assert len(trials) == 6 and all(-3 <= t.params["x"] <= 3 and t.params["n"] in (1, 2) for t in trials)
    assert len(offline_runs(tmp_path)) == 6


def test_an_exhausted_grid_ends_the_search(tmp_path):
    config = {"method": "grid", "parameters": {"x": {"values": [0.0, 1.0, 2.0, 3.0]}, "tag": {"value": "v1"}}}
    best = hpsearch.search(quadratic, config, n_trials=10, backend="wandb", output_dir=str(tmp_path))
    assert sorted(t.params["x"] for t in best.run_summary.trials) == [0.0, 1.0, 2.0, 3.0]
    assert best.hyperparameters == {"x": 1.0, "tag": "v1"}


def test_hyperband_early_terminate_stops_worse_trials(tmp_path):
    def flat_curve(trial):  # a trial's loss is x at every step: higher x, worse at every band
        for step in range(1, 9):
            if trial.report(step, trial.params["x"]):
                return None
        return trial.params["x"]

    config = {
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
        "parameters": {"x": {"values": [1.0, 2.0, 3.0, 4.0, 5.0]}},
    }
    best = hpsearch.search(flat_curve, config, n_trials=5, backend="wandb", output_dir=str(tmp_path))
    trials = best.run_summary.trials
    stopped = [t for t in trials if t.state is TrialState.PRUNED]
    assert stopped and all(len(t.intermediate) < 8 for t in stopped)
    assert best.hyperparameters == {"x": 1.0}


def test_server_mode_runs_through_the_agent_and_records_like_local_mode(make_trainer, tmp_path):
    config = {
        "method": "random",
        "metric": {"name": "eval_loss_objective", "goal": "minimize"},
        "parameters": {"learning_rate": {"distribution": "log_uniform_values", "min": 1e-3, "max": 3e-2}},
    }
    trainer = make_trainer()
    agent = StandInAgent(config, tmp_path)
    best = trainer.hyperparameter_search(
        backend="wandb",
        hp_space=config,
        n_trials=3,
        sweep_id="sweep123",
        agent=agent,
        compute_objective=lambda metrics: metrics["eval_loss"],
    )
    assert agent.calls == [{"sweep_id": "sweep123", "count": 3, "project": "hpsearch"}]
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    chosen = [run.config["learning_rate"]["value"] for run in agent.runs]
    assert [t.params["learning_rate"] for t in trials] == pytest.approx(chosen)  # the agent's choices ran
    assert best.run_summary.native == "sweep123"
    assert Path(best.run_summary.best_model_dir, "model.safetensors").is_file()

    # the agent leaves its last run's id and parameters behind (as wandb's does): a local search
    # in the same process still logs each trial's own parameters, each in a run of its own
    local = hpsearch.search(
        lambda trial: trial.params["learning_rate"],
        {"method": "random", "parameters": {"learning_rate": {"min": 5.0, "max": 6.0}}},
        n_trials=2,
        backend="wandb",
        output_dir=str(tmp_path / "local"),
    )
    runs = {r["name"]: r["config"]["learning_rate"] for r in offline_runs(tmp_path / "local")}
    assert runs == {f"trial-{t.number}": t.params["learning_rate"] for t in local.run_summary.trials}


@pytest.mark.parametrize(
    ("hp_space", "direction", "message"),
    [
        (
            {"method": "random", "parameters": {"x": {"distribution": "uniformish", "min": 0, "max": 1}}},
            "minimize",
            "not valid",
        ),
        ({"method": "hyperopt", "parameters": {"x": {"values": [1]}}}, "minimize", "method` must be one of"),
        (lambda trial: {"x": trial.suggest_float("x", 0, 1)}, "minimize", "optuna"),
        ([{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}], "minimize", "SigOpt"),
        ({"x": object()}, "minimize", "Ray Tune"),
    ],
)
def test_bad_sweep_configs_fail_before_any_trial(hp_space, direction, message, tmp_path):
    ran = []
    with pytest.raises(ValueError, match=message):
        hpsearch.search(lambda t: ran.append(1) or 0.0, hp_space, n_trials=1, direction=direction, backend="wandb")
    assert ran == []


def seed_wandb_space(trial):  # the docs' W&B space: its goal says minimize, their call says maximize
    return {
        "method": "random",
        "metric": {"name": "objective", "goal": "minimize"},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }


def test_a_direction_passed_wins_over_the_sweeps_goal_with_one_warning(caplog):
    with caplog.at_level("WARNING", logger="hpsearch"):
        best = hpsearch.search(
            quadratic, seed_wandb_space, n_trials=4, backend="wandb", direction="maximize", show_progress=False
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "'minimize'" in warnings[0] and "direction='maximize'" in warnings[0]
    assert best.objective == max(t.objective for t in best.run_summary.trials)


def test_with_no_direction_the_sweeps_goal_decides():
    space = seed_wandb_space(None)
    space["metric"]["goal"] = "maximize"
    best = hpsearch.search(quadratic, space, n_trials=4, backend="wandb", show_progress=False)
    assert best.run_summary.study.direction.name == "MAXIMIZE"
    assert best.objective == max(t.objective for t in best.run_summary.trials)


def test_wandb_default_space_is_transformers_default():
    from transformers.trainer_utils import default_hp_space_wandb

    from hpsearch.backends.wandb import WandbBackend

    assert WandbBackend.default_space() == default_hp_space_wandb(None)
