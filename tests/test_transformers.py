"""The Trainer integration on the tiny task: parameters, pruning, best model, memory, Pareto front."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import torch
from accelerate.state import AcceleratorState
from transformers import AutoModelForSequenceClassification, TrainerCallback

import hpsearch
from hpsearch import TrialState
from hpsearch.space import Categorical, Float
from hpsearch.study import schema, store


def lr_space(low=1e-3, high=3e-2):
    return lambda trial: {"learning_rate": trial.suggest_float("learning_rate", low, high, log=True)}


class TrainingSeen(TrainerCallback):
    """Records what each trial's training really ran with."""

    def __init__(self):
        self.runs = []
        self.train_ends = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.runs.append({"batch_size": state.train_batch_size, "max_steps": state.max_steps, "lr": args.learning_rate})

    def on_train_end(self, args, state, control, **kwargs):
        self.train_ends += 1
        self.runs[-1]["last_step"] = state.global_step


def test_training_arguments_are_applied_and_cast(make_trainer):
    trainer = make_trainer()
    seen = TrainingSeen()
    trainer.add_callback(seen)

    def hp_space(trial):  # SigOpt-style string batch sizes must reach training as ints
        return {
            "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", ["8", "32"]),
            "num_train_epochs": trial.suggest_int("num_train_epochs", 1, 2),
        }

    best = trainer.hyperparameter_search(hp_space=hp_space, n_trials=4, sampler=optuna.samplers.RandomSampler(3))
    trials = hpsearch.load_trials(trainer.args.output_dir)
    expected = set()
    for trial in trials:
        batch = int(trial.params["per_device_train_batch_size"])
        expected.add((batch, math.ceil(len(trainer.train_dataset) / batch) * trial.params["num_train_epochs"]))
    # a trial paused at a rung runs again from its checkpoint, with the same arguments
    assert len(trials) == 4 and {(run["batch_size"], run["max_steps"]) for run in seen.runs} == expected
    assert trainer.args.per_device_train_batch_size == 8  # the user's arguments are back after the search
    # what the backend gave, typed as the fields take it: the categorical's "8" an int, suggest_int's epochs an int
    epochs, batch = best.hyperparameters["num_train_epochs"], best.hyperparameters["per_device_train_batch_size"]
    assert type(epochs) is int and epochs == trials[int(best.run_id)].params["num_train_epochs"]
    assert type(batch) is int and str(batch) == trials[int(best.run_id)].params["per_device_train_batch_size"]


def test_searching_the_epochs_under_a_fixed_max_steps_fails_before_any_training(make_trainer):
    trainer = make_trainer(max_steps=5)
    space = {"num_train_epochs": hpsearch.space.Int(1, 3)}
    with pytest.raises(hpsearch.ConfigError, match=r"searches 'num_train_epochs', but the Trainer's `max_steps=5`"):
        trainer.hyperparameter_search(hp_space=space, n_trials=2)
    assert not list(Path(trainer.args.output_dir).glob("*"))  # nothing trained, nor any study recorded
    searched_too = {**space, "max_steps": hpsearch.space.Categorical([-1, 5])}  # each trial sets both: fine
    trainer.hyperparameter_search(hp_space=searched_too, n_trials=1, study_name="both")


def test_model_hyperparameter_reaches_model_init(make_trainer, tiny_model_dir):
    seen = []

    def model_init(trial):
        dropout = trial.params["hidden_dropout_prob"] if trial is not None else 0.1
        model = AutoModelForSequenceClassification.from_pretrained(
            tiny_model_dir, num_labels=2, hidden_dropout_prob=dropout
        )
        if trial is not None:
            seen.append((trial.number, model.config.hidden_dropout_prob))
        return model

    trainer = make_trainer(model_init=model_init)
    space = {"hidden_dropout_prob": Categorical([0.0, 0.3]), "learning_rate": Float(1e-3, 1e-2, log=True)}
    trainer.hyperparameter_search(hp_space=space, n_trials=3, sampler=optuna.samplers.RandomSampler(0))
    trials = hpsearch.load_trials(trainer.args.output_dir)
    # a trial paused at a rung re-creates its model, with its own parameters, when it resumes
    assert sorted(set(seen)) == [(t.number, t.params["hidden_dropout_prob"]) for t in trials]


class PruneSecondTrial(optuna.pruners.BasePruner):
    """An optuna pruner that stops trial 1 at its second intermediate value, whatever the values."""

    def prune(self, study, trial):
        return trial.number == 1 and len(trial.intermediate_values) >= 2


def test_pruning_stops_a_trial_at_the_rung_that_says_so(make_trainer):
    trainer = make_trainer()
    seen = TrainingSeen()
    trainer.add_callback(seen)
    trainer.hyperparameter_search(hp_space=lr_space(), n_trials=3, pruner=PruneSecondTrial())
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE]
    assert all(sorted(t.intermediate) == [111, 333] for t in trials)  # rungs at 1/9 and 1/3 of training
    assert seen.runs[1]["last_step"] == math.ceil(seen.runs[1]["max_steps"] / 3)  # training stopped at the rung
    assert seen.runs[0]["last_step"] == seen.runs[0]["max_steps"]
    assert seen.train_ends == 3  # the pruned trial still ran its callbacks' on_train_end


def test_best_model_reloads_and_scores_what_its_trial_scored(make_trainer):
    trainer = make_trainer()
    best = trainer.hyperparameter_search(
        hp_space=lr_space(),
        n_trials=3,
        compute_objective=lambda metrics: metrics["eval_loss"],
        sampler=optuna.samplers.RandomSampler(1),
    )
    best_dir = Path(best.run_summary.best_model_dir)
    info = json.loads((best_dir / "hpsearch_trial.json").read_text())
    assert str(info["trial"]) == best.run_id
    assert (best_dir / "tokenizer_config.json").is_file()  # the processing class is kept with the model
    kept = store.load_study(trainer.args.output_dir).user_attrs[schema.BEST_MODEL]  # what the dashboard shows
    assert kept == {"trial": int(best.run_id), "path": str(best_dir.absolute())}

    reloaded = make_trainer(model_init=lambda: AutoModelForSequenceClassification.from_pretrained(best_dir))
    metrics = reloaded.evaluate()
    assert metrics["eval_loss"] == pytest.approx(best.objective, rel=1e-5)
    assert not list(best_dir.parent.glob("run-*"))  # per-trial dirs do not pile up


def test_with_load_best_model_at_end_the_objective_is_the_kept_models_score(make_trainer):
    """The trial ends on its best checkpoint's model, which is the model kept: its score is the objective."""
    trainer = make_trainer(
        num_train_epochs=4, eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True
    )
    best = trainer.hyperparameter_search(
        hp_space=lr_space(3e-2, 8e-2),
        n_trials=2,
        compute_objective=lambda metrics: metrics["eval_loss"],
        seed=0,
        pruner=optuna.pruners.NopPruner(),
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert all(t.objective == min(t.intermediate.values()) for t in trials)  # the best checkpoint's loss
    assert any(t.objective != t.intermediate[max(t.intermediate)] for t in trials)  # not the last evaluation's
    reloaded = make_trainer(
        model_init=lambda: AutoModelForSequenceClassification.from_pretrained(best.run_summary.best_model_dir)
    )
    assert reloaded.evaluate()["eval_loss"] == pytest.approx(best.objective, rel=1e-5)


def test_objective_at_best_keeps_the_best_evaluation_and_its_model(make_trainer):
    trainer = make_trainer(num_train_epochs=3, learning_rate=5e-2, eval_strategy="steps", eval_steps=1 / 5)
    best = trainer.hyperparameter_search(
        hp_space=lr_space(2e-2, 5e-2),
        n_trials=2,
        direction="maximize",
        compute_objective=lambda m: m["eval_accuracy"] - m["eval_loss"],
        objective_at="best",
        pruner=optuna.pruners.NopPruner(),  # no pruning, so no rungs: the user's evaluations are recorded
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    for t in trials:
        assert len(t.intermediate) == 5
        assert t.objective == max(t.intermediate.values())
    reloaded = make_trainer(
        model_init=lambda: AutoModelForSequenceClassification.from_pretrained(best.run_summary.best_model_dir)
    )
    metrics = reloaded.evaluate()
    assert metrics["eval_accuracy"] - metrics["eval_loss"] == pytest.approx(best.objective, rel=1e-5)


def test_multi_objective_returns_the_pareto_front(make_trainer):
    trainer = make_trainer()
    front = trainer.hyperparameter_search(
        hp_space=lr_space(1e-5, 1e-2),
        n_trials=4,
        direction=["minimize", "maximize"],
        compute_objective=lambda m: [m["eval_loss"], m["eval_accuracy"]],
        sampler=optuna.samplers.RandomSampler(0),
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert isinstance(front, list) and front
    values = [t.values for t in trials]

    def dominated(v):
        return any(o[0] <= v[0] and o[1] >= v[1] and o != v for o in values)

    assert sorted(b.run_id for b in front) == sorted(str(t.number) for t in trials if not dominated(t.values))
    assert all(len(b.objective) == 2 for b in front)


def test_each_trial_trains_under_a_deepspeed_config_of_its_own_arguments(make_trainer, monkeypatch, free_port):
    """`"auto"` values are the trial's learning rate and batch size, as in transformers' own search."""
    for name, value in {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port),
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
    }.items():
        monkeypatch.setenv(name, value)
    config = {
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "train_batch_size": "auto",
        "optimizer": {"type": "AdamW", "params": {"lr": "auto", "torch_adam": True}},
        "zero_optimization": {"stage": 0},
    }
    trainer = make_trainer(deepspeed=config, max_steps=2)

    class DeepSpeedSeen(TrainerCallback):
        def __init__(self):
            self.runs = []

        def on_train_begin(self, args, state, control, **kwargs):
            used = args.hf_deepspeed_config.config
            self.runs.append((used["optimizer"]["params"]["lr"], used["train_micro_batch_size_per_gpu"]))

    seen = DeepSpeedSeen()
    trainer.add_callback(seen)
    space = {"learning_rate": Float(1e-4, 1e-2, log=True), "per_device_train_batch_size": Categorical([4, 16])}
    try:
        trainer.hyperparameter_search(hp_space=space, n_trials=2, seed=1, show_progress=False)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)  # its DeepSpeed plugin is process-wide
        if torch.distributed.is_initialized():  # DeepSpeed's process group of one, or later tests see it
            torch.distributed.destroy_process_group()
    trials = hpsearch.load_trials(trainer.args.output_dir)
    # every training run under its trial's own config (a trial paused at a rung and resumed runs twice)
    assert set(seen.runs) == {(t.params["learning_rate"], t.params["per_device_train_batch_size"]) for t in trials}
    assert len(trials) == 2 and len(seen.runs) >= 2


def test_the_trainer_keeps_nothing_of_the_last_trial(make_trainer):
    """Its model, optimizer and scheduler are released (RSS over many trials: tests/reliability/test_soak.py)."""
    trainer = make_trainer()
    trainer.hyperparameter_search(hp_space=lr_space(), n_trials=2, show_progress=False)
    assert trainer.model is None and trainer.optimizer is None and trainer.lr_scheduler is None
    assert trainer.callback_handler.model is None and not trainer.accelerator._models


def test_the_collector_scans_only_the_trials_and_is_left_as_the_search_found_it(make_trainer):
    """During the search what existed before it is frozen out of the collector's scans; after, that is
    undone. A freeze the process made itself (this test session's, conftest.py) is left as it is."""
    import gc

    class FreezeSeen(TrainerCallback):
        def __init__(self):
            self.counts = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.counts.append(gc.get_freeze_count())

    trainer = make_trainer(max_steps=2)
    seen = FreezeSeen()
    trainer.add_callback(seen)
    gc.unfreeze()
    try:
        trainer.hyperparameter_search(hp_space=lr_space(), n_trials=1, show_progress=False)
        assert seen.counts[0] > 10_000 and gc.get_freeze_count() == 0  # the libraries' objects, then none
        gc.freeze()
        frozen = gc.get_freeze_count()
        trainer.hyperparameter_search(hp_space=lr_space(), n_trials=2, show_progress=False)
        # nothing frozen on top of it, nor unfrozen after (the count only falls as frozen objects are freed)
        assert 0 < seen.counts[1] <= frozen and 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.freeze()  # the session's own freeze


def test_keep_checkpoints_keeps_each_finished_trials_run_directory(make_trainer):
    trainer = make_trainer(save_strategy="epoch")
    trainer.hyperparameter_search(
        hp_space=lr_space(), n_trials=2, keep_checkpoints=True, evals_per_trial=0, show_progress=False
    )
    runs = sorted(Path(trainer.args.output_dir).glob("run-*"))
    assert [run.name for run in runs] == ["run-0", "run-1"]
    assert all(sorted(c.name for c in run.glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-24"] for run in runs)
