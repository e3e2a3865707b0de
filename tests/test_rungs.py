"""Rung evaluations: every Trainer search scores its trials at 1/9 and 1/3 of their training, for
pruning only, whatever the user's `eval_strategy`; values keyed by progress; successive halving by
default on every backend, the user's own rule winning."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import torch
from ray import tune
from transformers import AutoModelForSequenceClassification, TrainerCallback

import hpsearch
from hpsearch import TrialState
from hpsearch.loop.halving import PeerHalvingPruner
from hpsearch.space import Categorical, Float


def lr_space(trial):
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True)}


class NeverPrune(optuna.pruners.BasePruner):
    """Looks at every intermediate value and stops nothing (so the rungs run, and every trial ends)."""

    def prune(self, study, trial):
        return False


class PruneTrialOne(optuna.pruners.BasePruner):
    """Stops trial 1 at its second intermediate value."""

    def prune(self, study, trial):
        return trial.number == 1 and len(trial.intermediate_values) >= 2


class Seen(TrainerCallback):
    """Per trial: the steps at which anything was evaluated, the user's evaluations, the max steps."""

    def __init__(self):
        self.trials = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.trials.append({"max_steps": state.max_steps, "eval_steps": set(), "evaluations": []})

    def on_prediction_step(self, args, state, control, **kwargs):
        self.trials[-1]["eval_steps"].add(state.global_step)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.trials[-1]["evaluations"].append(metrics["eval_loss"])


def search_two_trials_seen(make_trainer, **args):
    """Two trials, every rung run (nothing pruned), the loss minimised: the trainer, its trials, what they ran."""
    trainer = make_trainer(**args)
    seen = Seen()
    trainer.add_callback(seen)
    trainer.hyperparameter_search(
        hp_space=lr_space, n_trials=2, compute_objective=lambda m: m["eval_loss"], pruner=NeverPrune(), seed=0
    )
    return trainer, hpsearch.load_trials(trainer.args.output_dir), seen.trials


@pytest.mark.parametrize(
    ("strategy", "user_evaluations"),
    [({"eval_strategy": "no"}, 1), ({"eval_strategy": "epoch"}, 2), ({"eval_strategy": "steps", "eval_steps": 5}, 5)],
)
def test_rungs_happen_whatever_the_eval_strategy_and_the_objective_stays_the_users(
    make_trainer, strategy, user_evaluations
):
    trainer, trials, runs = search_two_trials_seen(make_trainer, **strategy)  # 96 examples, batch 8, 2 epochs: 24 steps
    for t, run in zip(trials, runs):
        assert sorted(t.intermediate) == [111, 333]
        assert {math.ceil(24 / 9), math.ceil(24 / 3)} <= run["eval_steps"]  # the rungs' own evaluations
        assert len(run["evaluations"]) == user_evaluations  # the user's schedule, untouched (+ the final one)
        assert t.objective == pytest.approx(run["evaluations"][-1])  # the user's last evaluation, not a rung's
        assert t.objective not in t.intermediate.values()
    logged = [e for e in trainer.state.log_history if "eval_loss" in e]
    assert len(logged) == user_evaluations  # the last trial's logs hold the user's evaluations only


def test_trials_with_different_batch_sizes_report_at_the_same_progress_points(make_trainer):
    seen = Seen()
    space = {"learning_rate": Float(1e-3, 3e-2, log=True), "per_device_train_batch_size": Categorical([4, 8, 16])}

    def search(evals_per_trial, **args):
        trainer = make_trainer(**args)
        trainer.add_callback(seen)
        trainer.hyperparameter_search(
            hp_space=space,
            n_trials=3,
            sampler=_batch_sizes_in_turn(),
            pruner=NeverPrune(),
            evals_per_trial=evals_per_trial,
            show_progress=False,
        )
        return hpsearch.load_trials(trainer.args.output_dir)

    trials = search(None, output_dir=str(Path(make_trainer().args.output_dir) / "rungs"))
    assert sorted(run["max_steps"] for run in seen.trials) == [12, 24, 48]
    assert all(sorted(t.intermediate) == [111, 333] for t in trials)  # at different steps, the same progress
    seen.trials.clear()
    trials = search(0, output_dir=str(Path(make_trainer().args.output_dir) / "own"), eval_strategy="epoch")
    assert all(sorted(t.intermediate) == [500, 1000] for t in trials)  # rungs off: the user's, at their progress


def _batch_sizes_in_turn():
    """A sampler trying batch sizes 4, 8, 16 in turn (a random learning rate)."""

    class InTurn(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, name, distribution):
            if name == "per_device_train_batch_size":
                return [4, 8, 16][trial.number % 3]
            return super().sample_independent(study, trial, name, distribution)

    return InTurn(seed=0)


class Recording(torch.utils.data.Dataset):
    """An evaluation set that records which examples are read, and when (in training or not)."""

    def __init__(self, dataset):
        self.dataset, self.read, self.training = dataset, [], False

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        if self.training:
            self.read[-1].add(i)
        return self.dataset[i]


def test_a_rung_scores_the_same_fixed_subset_for_every_trial(make_trainer, eval_dataset):
    recording = Recording(eval_dataset)

    class Phases(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            recording.training = True
            recording.read.append(set())

        def on_train_end(self, args, state, control, **kwargs):
            recording.training = False

    trainer = make_trainer()
    trainer.eval_dataset = recording
    trainer.add_callback(Phases())
    for n_trials in (3, 4):  # a rerun continues the study: the same subset again
        trainer.hyperparameter_search(
            hp_space=lr_space, n_trials=n_trials, pruner=NeverPrune(), rung_eval_size=8, seed=0, show_progress=False
        )
    assert len(recording.read) == 4 and len(recording.read[0]) == 8  # 8 of the 32 examples
    assert all(read == recording.read[0] for read in recording.read)


def test_by_default_worse_trials_stop_at_a_rung_and_a_pruned_trials_model_is_never_kept(make_trainer, tiny_model_dir):
    """Successive halving is the default; trial 1, the best by its objective, is pruned: its model is not kept."""
    current = {}

    def model_init(trial):
        current["trial"] = None if trial is None else trial.number
        return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)

    trainer = make_trainer(model_init=model_init, eval_strategy="steps", eval_steps=2)
    best = trainer.hyperparameter_search(
        hp_space=lr_space,
        n_trials=3,
        # trial 1 scores best at each of the user's evaluations, so it offers its model before its rung says prune
        compute_objective=lambda m: m["eval_loss"] - (100 if current["trial"] == 1 else 0),
        objective_at="best",
        pruner=PruneTrialOne(),
        seed=0,
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert trials[1].state is TrialState.PRUNED
    best_dir = Path(best.run_summary.best_model_dir)
    assert json.loads((best_dir / "hpsearch_trial.json").read_text())["trial"] != 1
    kept = [p.name for p in best_dir.resolve().parent.iterdir() if p.name != ".lock"]
    assert kept == [best_dir.resolve().name]  # nothing else staged

    trainer = make_trainer(output_dir=str(best_dir.parent.parent / "default"))
    trainer.hyperparameter_search(
        hp_space={"learning_rate": Float(1e-6, 1.0, log=True)},
        n_trials=6,
        compute_objective=lambda m: m["eval_loss"],
        sampler=optuna.samplers.RandomSampler(0),
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert pruned and all(max(t.intermediate) < 1000 for t in pruned)


@pytest.mark.parametrize(
    ("backend", "space", "own", "rule"),
    [
        ("optuna", {"x": Float(0.0, 1.0)}, {"pruner": optuna.pruners.MedianPruner()}, lambda s: s.study.pruner),
        ("sigopt", {"x": Float(0.0, 1.0)}, {"pruner": optuna.pruners.MedianPruner()}, lambda s: s.study.pruner),
        ("ray", {"x": tune.uniform(0.0, 1.0)}, {"scheduler": tune.schedulers.MedianStoppingRule()}, None),
    ],
)
def test_the_users_pruning_rule_wins_over_the_default_successive_halving(backend, space, own, rule, tmp_path):
    def rule_of(**kwargs):
        search = hpsearch.Search(space, backend=backend, rungs=(111, 333), show_progress=False, **kwargs)
        return rule(search) if rule else search.backend.tune_scheduler()

    default = rule_of()
    if backend == "ray":
        assert isinstance(default, tune.schedulers.ASHAScheduler)
        assert default._time_attr == "hpsearch_step"  # the trial's progress
        assert [milestone for milestone, _ in default._brackets[0]._rungs] == [999, 333, 111]
    else:  # at the rungs, halving that waits for peers, which only the Trainer's search (it resumes trials) pauses
        assert isinstance(default, PeerHalvingPruner) and not default.pause
        assert (default.rungs, default.reduction_factor) == ((111, 333), 3)
    (users,) = own.values()
    assert rule_of(**own) is users


def test_a_wandb_sweep_gets_hyperband_unless_it_has_a_rule_or_none():
    def sweep(**extra):
        config = {"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}, **extra}
        return hpsearch.Search(config, backend="wandb", show_progress=False).backend

    assert sweep().config["early_terminate"] == {"type": "hyperband", "min_iter": 1, "eta": 2} and sweep().can_prune
    own = {"type": "hyperband", "max_iter": 27, "s": 2}
    assert sweep(early_terminate=own).config["early_terminate"] == own
    off = sweep(early_terminate=None)
    assert "early_terminate" not in off.config and not off.can_prune


def test_with_checkpoints_and_load_best_model_at_end_the_rungs_change_nothing(make_trainer):
    """The best checkpoint is chosen among the user's evaluations only, and it is the objective."""
    _, trials, runs = search_two_trials_seen(
        make_trainer, eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True
    )
    for t, run in zip(trials, runs):
        assert sorted(t.intermediate) == [111, 333]
        # the user's two evaluations (one an epoch); the model kept is the best one's, and so is the objective
        assert len(run["evaluations"]) == 2 and t.objective == pytest.approx(min(run["evaluations"]))


@pytest.mark.parametrize("backend", ["optuna", "sigopt", "wandb", "ray"])
def test_by_default_successive_halving_stops_worse_trials_on_every_backend(backend, tmp_path, ray_on_cluster):
    """With each backend's real library, and no rule given: trials worse at a rung stop there."""
    from tests.reliability.spaces import native_space

    def flat_curve(trial):  # the same value at every step: a trial worse early is worse at the end
        for step in range(1, 10):
            if trial.report(step, trial.params["x"]):
                return None
        return trial.params["x"]

    options = {"max_concurrent_trials": 1} if backend == "ray" else {}
    best = hpsearch.search(
        flat_curve, native_space(backend), n_trials=8, backend=backend, seed=0, output_dir=str(tmp_path), **options
    )
    trials = best.run_summary.trials
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert len(trials) == 8 and pruned and all(len(t.intermediate) < 9 for t in pruned)
    assert all(t.params["x"] > best.objective for t in pruned)


class LossAtRungs(TrainerCallback):
    """The evaluation loss and accuracy at the rungs' steps, computed as a rung does (just before it)."""

    def __init__(self):
        self.trainer, self.at = None, []

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in (math.ceil(state.max_steps / 9), math.ceil(state.max_steps / 3)):
            output = self.trainer.evaluation_loop(self.trainer.get_eval_dataloader(), description="check")
            self.at.append((output.metrics["eval_loss"], output.metrics["eval_accuracy"]))


@pytest.mark.parametrize("rung_metric", [None, "objective"])
def test_rungs_report_the_evaluation_loss_by_default_or_the_objective(make_trainer, rung_metric):
    """By default a rung reports the evaluation loss, negated when maximising (the pruner keeps the higher);
    with rung_metric='objective' it reports the objective of the rung's metrics."""
    trainer = make_trainer()
    seen = LossAtRungs()
    seen.trainer = trainer
    trainer.add_callback(seen)
    option = {} if rung_metric is None else {"rung_metric": rung_metric}
    trainer.hyperparameter_search(
        hp_space=lr_space,
        n_trials=1,
        direction="maximize",
        compute_objective=lambda m: m["eval_accuracy"],
        show_progress=False,
        **option,
    )
    (trial,) = hpsearch.load_trials(trainer.args.output_dir)
    expected = [-loss if rung_metric is None else accuracy for loss, accuracy in seen.at]
    assert [trial.intermediate[p] for p in (111, 333)] == pytest.approx(expected, rel=1e-5)


def test_by_default_a_rung_scores_a_twentieth_of_what_a_trial_trains_on_from_128_to_1000(train_dataset):
    from transformers import TrainingArguments

    from hpsearch.trainer.rungs import auto_subset_size

    def size(dataset=train_dataset, **args):
        return auto_subset_size(TrainingArguments(output_dir="unused", use_cpu=True, **args), dataset)

    assert size(num_train_epochs=30) == 96 * 30 // 20  # 96 examples, 30 epochs
    assert size(num_train_epochs=1) == 128  # never fewer: fewer examples rank trials on noise (test_rung_noise)
    assert size(max_steps=100, per_device_train_batch_size=16, gradient_accumulation_steps=2) == 160
    assert size(num_train_epochs=1000) == 1000
    assert size(dataset=iter(()), num_train_epochs=1) == 1000  # no length: the most
