"""The keywords transformers 5.24's own search takes for W&B (`name`, `metric`) and optuna (`optuna.create_study`'s and
`Study.optimize`'s), written as a user of transformers writes them, with the meaning transformers gives them."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

import hpsearch
from hpsearch import TrialState
from hpsearch.errors import ConfigError, ObjectiveError
from tests.wandb_helpers import offline_runs


def wandb_hp_space(trial):  # the transformers docs' W&B space
    return {
        "method": "random",
        "metric": {"name": "objective", "goal": "minimize"},
        "parameters": {
            "learning_rate": {"distribution": "uniform", "min": 1e-6, "max": 1e-4},
            "per_device_train_batch_size": {"values": [16, 32, 64, 128]},
        },
    }


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))


def test_wandb_name_is_the_sweeps_and_metric_the_evaluation_metric_it_optimises(make_trainer, offline, caplog):
    """transformers sets the sweep config's `name` and its metric's name; its sweep optimises that metric as its
    W&B logging names it (`eval/loss`, transformers' default): here the objective is that metric."""
    trainer = make_trainer(num_train_epochs=1)
    with caplog.at_level("WARNING", logger="hpsearch"):
        best = trainer.hyperparameter_search(
            direction="minimize",
            backend="wandb",
            hp_space=wandb_hp_space,
            n_trials=3,
            name="lr-sweep",
            metric="eval/loss",
        )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    runs = {run["name"]: run for run in offline_runs(Path(trainer.args.output_dir))}
    assert {run["group"] for run in runs.values()} == {"lr-sweep"}  # the sweep's runs, as W&B groups them
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    for t in complete:  # the objective is the loss (the default objective here: the accuracy, a multiple of 1/32)
        summary = runs[f"trial-{t.number}"]["summary"]
        assert summary["eval/loss"] == pytest.approx(t.objective) and "objective" not in summary
        assert (t.objective * 32) % 1 != 0
    assert best.objective == min(t.objective for t in complete)
    renamed = [r.getMessage() for r in caplog.records if "metric=" in r.getMessage()]
    assert renamed == [
        "The sweep's metric is named 'objective' but metric='eval/loss': the sweep will optimise 'eval/loss' "
        "(the `metric` argument wins)."
    ]


def test_wandb_metric_with_compute_objective_is_refused_before_any_trial(make_trainer, offline):
    trainer = make_trainer()
    ran = []
    with pytest.raises(ConfigError, match=r"Pass `metric` or `compute_objective`, not both.*metric='eval/accuracy'"):
        trainer.hyperparameter_search(
            direction="maximize",
            backend="wandb",
            hp_space=wandb_hp_space,
            metric="eval/accuracy",
            compute_objective=lambda metrics: ran.append(metrics) or metrics["eval_accuracy"],
        )
    assert ran == [] and not Path(trainer.args.output_dir, "hpsearch.db").exists()


def test_a_wandb_metric_the_evaluation_lacks_stops_the_search_naming_those_it_has(make_trainer, offline):
    trainer = make_trainer(num_train_epochs=1)
    with pytest.raises(ObjectiveError, match=r"`metric='eval/f1'` names no metric .*'eval_accuracy'"):
        trainer.hyperparameter_search(direction="maximize", backend="wandb", hp_space=wandb_hp_space, metric="eval/f1")


def test_optuna_catch_takes_one_exception_class_as_optuna_does(make_trainer, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    def model_init(trial):
        if trial is not None and trial.number == 0:
            raise ValueError("no model for the first trial")
        return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)

    trainer = make_trainer(model_init=model_init, num_train_epochs=1)
    best = trainer.hyperparameter_search(
        direction="minimize",
        backend="optuna",
        hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True)},
        n_trials=2,
        catch=ValueError,
    )
    states = [t.state for t in hpsearch.load_trials(trainer.args.output_dir)]
    assert states == [TrialState.FAILED, TrialState.COMPLETE] and best.run_id == "1"
    with pytest.raises(ConfigError, match=r"`catch` must be an exception class or a tuple of them.*catch='ValueError'"):
        trainer.hyperparameter_search(backend="optuna", n_trials=1, catch="ValueError")


def test_optuna_load_if_exists_false_runs_on_workers_and_refuses_an_existing_study(make_trainer):
    """`create_study(load_if_exists=False)`: a new study, also with `n_jobs` (whose workers join it), and optuna's
    own error for a study of that name already in the storage, before any trial."""
    trainer = make_trainer(num_train_epochs=1)
    search = dict(
        direction="minimize",
        backend="optuna",
        hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True)},
        study_name="fresh",
        load_if_exists=False,
    )
    trainer.hyperparameter_search(n_trials=2, n_jobs=2, **search)
    trials = [t for t in hpsearch.load_trials(trainer.args.output_dir) if t.counts]  # a worker late for the last
    assert len(trials) == 2 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}  # slot: not run
    recorded = len(hpsearch.load_trials(trainer.args.output_dir))
    with pytest.raises(optuna.exceptions.DuplicatedStudyError, match="study_name='fresh' already exists"):
        trainer.hyperparameter_search(n_trials=3, **search)
    assert len(hpsearch.load_trials(trainer.args.output_dir)) == recorded
