"""Successive halving that waits for peers (`hpsearch.loop.halving`): the rule, and a Trainer search in which the first
trials pause at their rungs, are resumed from their checkpoints when their peers rank them best, and are pruned
when not."""

from __future__ import annotations

import collections
import math
import time
from pathlib import Path

import optuna
import pytest
from transformers import TrainerCallback

import hpsearch
from hpsearch import TrialState
from hpsearch.loop.decision import leads_clearly, peers_to_wait_for, verdict
from hpsearch.loop.fidelity import step_at
from hpsearch.loop.halving import PeerHalvingPruner
from hpsearch.study import schema, store
from hpsearch.study.disk import PAUSED_DIR
from hpsearch.trial import Decision


@pytest.mark.parametrize(
    ("peers", "value", "maximize", "wait_for", "expected"),
    [
        ([0.5], 0.5, False, 3, Decision.PAUSE),  # the first trial at a rung has nothing to be compared with
        ([0.5, 0.4], 0.4, False, 3, Decision.PAUSE),
        ([0.5, 0.4], 0.4, False, 0, Decision.CONTINUE),  # nothing left to wait for: the best of two goes on
        ([0.5, 0.4], 0.5, False, 0, Decision.PRUNE),
        ([0.5, 0.4, 0.3], 0.3, False, 3, Decision.CONTINUE),  # three peers: the best third goes on
        ([0.5, 0.4, 0.3], 0.4, False, 3, Decision.PRUNE),
        ([0.5, 0.4, 0.3], 0.5, True, 3, Decision.CONTINUE),  # maximising: the highest is the best
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 0.2, False, 3, Decision.CONTINUE),  # six peers: the best two
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 0.3, False, 3, Decision.PRUNE),
        ([0.3, 0.3, 0.9], 0.3, False, 3, Decision.CONTINUE),  # tied with the best: goes on too
        ([0.3, 0.2, math.nan], math.nan, False, 3, Decision.PRUNE),  # a diverged trial never waits
        ([0.5, 0.4, 0.3, 0.2], 0.2, False, 9, Decision.PAUSE),  # the last rung: the best of four waits for nine peers
        ([0.5, 0.4, 0.3, 0.2], 0.3, False, 9, Decision.PRUNE),  # and one below the best third is pruned at once
        ([0.9] * 8 + [0.2], 0.2, False, 9, Decision.CONTINUE),
        ([0.1, 0.2, 0.25] + [0.9] * 5 + [0.3], 0.3, False, 9, Decision.PRUNE),  # nine peers: the best three go on
    ],
)
def test_a_rung_pauses_a_trial_until_it_has_peers_then_keeps_the_best_third(peers, value, maximize, wait_for, expected):
    assert verdict(peers, value, maximize, 3, wait_for) == expected


def test_the_last_rung_waits_for_the_square_of_the_reduction_factor():
    """The promotion to a trial's last stretch of training, the costliest one, is judged among more peers."""
    assert [peers_to_wait_for(step, (37, 111, 333), 3) for step in (37, 111, 333)] == [3, 3, 9]
    assert peers_to_wait_for(333, (333,), 3) == 9 and peers_to_wait_for(111, (111, 333), 2) == 2


@pytest.mark.parametrize(
    ("mine", "others", "maximize", "expected"),
    [
        ((0.2, 0.05), [(0.5, 0.05), (0.6, 0.05)], False, True),  # 0.3 ahead of each; the difference's error 0.07
        ((0.2, 0.05), [(0.25, 0.05), (0.6, 0.05)], False, False),  # 0.05 ahead of one: within the noise
        ((0.2, 0.01), [(0.25, 0.01), (0.6, 0.01)], False, True),  # the same lead, measured on more examples
        ((0.5, 0.05), [(0.2, 0.05)], False, False),  # behind
        ((-0.2, 0.05), [(-0.5, 0.05)], True, True),  # maximising (a rung's negated loss)
        ((0.2, None), [(0.5, 0.05)], False, False),  # an error not measured: no lead is clear
        ((0.2, 0.05), [(0.5, None)], False, False),
    ],
)
def test_a_clear_leader_beats_each_peer_by_more_than_the_standard_error_of_the_difference(
    mine, others, maximize, expected
):
    assert leads_clearly(mine, others, maximize) is expected


def at_last_rung(scores):
    """A study whose trials scored (value, standard error) at the last rung (1/3), as a Trainer search records them;
    the pruner's word on its last trial, with and without the promotion of a clear leader."""
    study = optuna.create_study()
    for value, error in scores:
        trial = study.ask()
        trial.report(value, 333)
        trial.set_user_attr(f"{schema.RUNG_ERROR}333", error)
    last = study.trials[-1]
    words = {}
    for promote in (True, False):
        pruner = PeerHalvingPruner((111, 333), promote_leaders=promote)
        words[promote] = pruner.verdicts.get(last.number, Decision.CONTINUE) if pruner.prune(study, last) else None
    return words


def test_a_clear_leader_at_the_last_rung_goes_on_without_waiting_for_nine_peers():
    """PASHA's idea: the first final result comes early where the ranking is clear, not after nine peers."""
    assert at_last_rung([(0.9, 0.02), (0.8, 0.02), (0.3, 0.02)]) == {True: None, False: Decision.PAUSE}
    assert at_last_rung([(0.9, 0.02), (0.32, 0.02), (0.3, 0.02)])[True] is Decision.PAUSE  # within the noise
    assert at_last_rung([(0.9, 0.02), (0.3, 0.02)])[True] is Decision.PAUSE  # two peers: it waits
    assert at_last_rung([(0.9, 0.02), (0.8, 0.02), (0.85, 0.02)])[True] is Decision.PRUNE  # not the best third


class Starts(TrainerCallback):
    """Per training run: its directory, the step it started from (above 0 for a resumed one), its max steps."""

    def __init__(self):
        self.runs = []
        self.trained = collections.Counter()  # run directory -> seconds spent training, over its runs

    def on_train_begin(self, args, state, control, **kwargs):
        self.runs.append((Path(args.output_dir).name, state.global_step, state.max_steps))
        self.began = time.monotonic()

    def on_train_end(self, args, state, control, **kwargs):
        self.trained[Path(args.output_dir).name] += time.monotonic() - self.began


def lr_space(trial):
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-2, log=True)}


def search(make_trainer, **options):
    trainer = make_trainer(
        report_to=["tensorboard"],
        save_strategy="epoch",
        load_best_model_at_end=True,
        eval_strategy="epoch",
        metric_for_best_model="accuracy",
    )
    starts = Starts()
    trainer.add_callback(starts)
    best = trainer.hyperparameter_search(
        hp_space=lr_space, n_trials=5, direction="maximize", seed=0, show_progress=False, **options
    )
    return trainer, best, best.run_summary.trials, starts


def rung_values(trials, point):
    return {t.number: t.intermediate[point] for t in trials if point in t.intermediate}


def test_the_first_trials_pause_at_a_rung_and_only_those_their_peers_rank_best_go_on(make_trainer):
    """As users run it (checkpoints each epoch, the best one loaded at the end, TensorBoard): trials 0 and 1 pause at
    1/9, then the best of the first three goes on from its checkpoint; one trial runs to the end, the best at 1/3,
    once no trial is left to start."""
    trainer, best, trials, starts = search(make_trainer)
    runs = starts.runs
    assert sorted(t.state for t in trials) == [TrialState.COMPLETE] + [TrialState.PRUNED] * 4  # none left paused
    at_1_9, at_1_3 = rung_values(trials, 111), rung_values(trials, 333)
    first_three = {n: at_1_9[n] for n in (0, 1, 2)}
    assert set(at_1_3) & {0, 1, 2} == {max(first_three, key=first_three.get)}  # of the first three, the best only
    (complete,) = [t for t in trials if t.state is TrialState.COMPLETE]
    assert complete.intermediate[333] == max(at_1_3.values())  # the one that ended: the best at 1/3
    max_steps = runs[0][2]  # it paused there too: the last rung waits for nine peers, five trials are all there are
    assert (f"run-{complete.number}", step_at(333, max_steps), max_steps) in runs
    assert best.run_id == str(complete.number) and len(set(at_1_9.values())) == 5  # five distinct points searched
    resumed = [(name, step, max_steps) for name, step, max_steps in runs if step > 0]
    assert resumed, "no trial was resumed from the checkpoint it paused at"
    assert all(step in (step_at(111, max_steps), step_at(333, max_steps)) for _, step, max_steps in resumed)
    assert len(runs) == 5 + len(resumed)  # a resumed trial continues its training: it never starts over
    for trial in trials:  # a trial's duration sums its runs, before its pause and after (or none, pruned while paused)
        assert trial.duration >= starts.trained[f"run-{trial.number}"], trial
    output = Path(trainer.args.output_dir)
    assert not list(output.glob("run-*/checkpoint-*"))  # every checkpoint of a paused trial is gone at the end
    assert (output / "best_model" / "config.json").is_file()
    for trial in store.load_study(output).trials:  # each rung's loss with its standard error, from its 4 batches
        errors = {step: trial.user_attrs.get(f"{schema.RUNG_ERROR}{step}") for step in trial.intermediate_values}
        assert errors and all(0 < error < 1 for error in errors.values()), errors


def test_without_pausing_the_first_trial_runs_to_the_end_as_optunas_halving_does(make_trainer):
    _, _, trials, starts = search(make_trainer, pause_trials=False)
    assert trials[0].state is TrialState.COMPLETE and all(step == 0 for _, step, _ in starts.runs)


class InterruptThirdRun(TrainerCallback):
    """Ctrl-C as the third training run starts, once."""

    def __init__(self):
        self.runs = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.runs += 1
        if self.runs == 3:
            raise KeyboardInterrupt


def test_trials_paused_when_the_search_is_stopped_are_judged_on_its_rerun(make_trainer):
    trainer = make_trainer(report_to="none")
    trainer.add_callback(InterruptThirdRun())

    def run():
        return trainer.hyperparameter_search(hp_space=lr_space, n_trials=4, direction="maximize", seed=0)

    with pytest.raises(hpsearch.SearchInterrupted):
        run()
    stopped = hpsearch.load_trials(trainer.args.output_dir)
    assert [t.state for t in stopped] == [TrialState.PAUSED, TrialState.PAUSED, TrialState.FAILED]
    output = Path(trainer.args.output_dir)
    assert len(list(output.glob(f"{PAUSED_DIR}/hpsearch/trial-*"))) == 2  # hpsearch's own, where they resume from
    best = run()
    trials = [t for t in best.run_summary.trials if t.counts]
    assert sorted(t.state for t in trials) == [TrialState.COMPLETE] + [TrialState.PRUNED] * 3
    assert not list(output.glob("run-*/checkpoint-*")) and not (output / PAUSED_DIR).exists()
