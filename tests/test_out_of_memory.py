"""A trial that runs out of memory: recorded as failed with its error, infeasible to optuna's sampler, and its
discrete values (the batch size) not drawn again; the search goes on. `auto_find_batch_size=True` keeps finding a
batch size that fits, and such a trial completes."""

from __future__ import annotations

import optuna
import pytest
import torch
from transformers import TrainerCallback

import hpsearch
from hpsearch import TrialState
from hpsearch.space import Categorical, Float

OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.77 GiB total capacity; 13.1 GiB already allocated)"
SPACE = {"learning_rate": Float(1e-6, 1e-4, log=True), "per_device_train_batch_size": Categorical([16, 32, 64, 128])}


def out_of_memory_at_16(trial):
    if trial.params["per_device_train_batch_size"] == 16:
        raise torch.OutOfMemoryError(OOM)
    return trial.params["learning_rate"] * trial.params["per_device_train_batch_size"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_batch_size_that_ran_out_of_memory_is_drawn_once_and_the_search_goes_on(seed, tmp_path):
    """20 trials, TPE's 10 random start-up trials included: batch size 16 runs once, out of memory."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    best = hpsearch.search(
        out_of_memory_at_16, SPACE, n_trials=20, direction="maximize", seed=seed, storage=storage, show_progress=False
    )
    trials = hpsearch.load_trials(storage=storage)
    at_16 = [t for t in trials if t.params["per_device_train_batch_size"] == 16]
    assert len(at_16) <= 1 and sum(t.counts for t in trials) == 20
    assert all(t.state is TrialState.FAILED and "OutOfMemoryError: CUDA out of memory" in t.error for t in at_16)
    assert best.hyperparameters["per_device_train_batch_size"] != 16
    frozen = optuna.load_study(study_name="hpsearch", storage=storage).trials
    for t in at_16:  # to optuna, pruned with no score and infeasible (a constraint > 0): ranked below every trial
        assert frozen[t.number].state is optuna.trial.TrialState.PRUNED
        assert frozen[t.number].constraints == {"out_of_memory": 1.0}
    assert all(not frozen[t.number].constraints for t in trials if t.state is TrialState.COMPLETE)


def test_a_combination_that_ran_out_of_memory_is_avoided_not_its_values_alone(tmp_path):
    """Batch size 64 with 256 tokens runs out of memory; 64 with 128 tokens fits, and is drawn again."""

    def objective(trial):
        if trial.params["per_device_train_batch_size"] == 64 and trial.params["max_length"] == 256:
            raise torch.OutOfMemoryError(OOM)
        return trial.params["learning_rate"]

    space = {**SPACE, "max_length": Categorical([128, 256])}
    storage = f"sqlite:///{tmp_path / 's.db'}"
    hpsearch.search(objective, space, n_trials=24, seed=0, storage=storage, show_progress=False)
    trials = hpsearch.load_trials(storage=storage)
    combinations = [(t.params["per_device_train_batch_size"], t.params["max_length"]) for t in trials]
    assert combinations.count((64, 256)) <= 1 and (64, 128) in combinations


class OutOfMemoryAbove8(TrainerCallback):
    """A GPU that holds 8 examples a step: a larger batch runs out of memory, as torch says it."""

    def on_step_begin(self, args, state, control, **kwargs):
        if state.train_batch_size > 8:
            raise torch.OutOfMemoryError(OOM)


@pytest.mark.parametrize("auto_find_batch_size", [False, True])
def test_a_trainer_trial_out_of_memory_fails_unless_auto_find_batch_size_finds_one_that_fits(
    auto_find_batch_size, make_trainer
):
    trainer = make_trainer(max_steps=2, auto_find_batch_size=auto_find_batch_size)
    trainer.add_callback(OutOfMemoryAbove8())
    space = lambda trial: {  # noqa: E731
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [8, 16])
    }
    trainer.hyperparameter_search(hp_space=space, n_trials=4, show_progress=False, evals_per_trial=0)
    trials = hpsearch.load_trials(trainer.args.output_dir)
    at_16 = [t for t in trials if t.params["per_device_train_batch_size"] == 16]
    if auto_find_batch_size:  # transformers halves the batch until it fits: nothing failed
        assert {t.state for t in trials} == {TrialState.COMPLETE}
    else:
        assert len(at_16) <= 1 and all(t.state is TrialState.FAILED and "out of memory" in t.error for t in at_16)
        assert sum(t.state is TrialState.COMPLETE for t in trials) >= 3
