"""No rung on noise: a rung scores at least `MIN_RUNG_EXAMPLES` evaluation examples (bench/rung_signals.py --steps:
fewer did not tell trials apart); where the evaluation set has fewer, the search has no rungs, said once before the
first trial, and trials are judged on the user's own evaluations only (the README's Quickstart: every trial runs to
its end)."""

from __future__ import annotations

import logging

from hpsearch import TrialState
from hpsearch.trainer.rungs import MIN_RUNG_EXAMPLES, auto_subset_size, rungs_that_fit
from tests.conftest import ListDataset, make_sentences


class Sized:
    """What the rule reads of a Trainer: its evaluation set(s)."""

    def __init__(self, eval_dataset):
        self.eval_dataset = eval_dataset


def test_an_evaluation_set_too_small_to_tell_trials_apart_has_no_rungs_unless_the_user_sized_them():
    fit, why = rungs_that_fit((111, 333), Sized(list(range(100))), "auto")  # the Quickstart's 100 held-out reviews
    assert fit == () and "100 examples" in why and str(MIN_RUNG_EXAMPLES) in why
    assert rungs_that_fit((111, 333), Sized(list(range(MIN_RUNG_EXAMPLES))), "auto") == ((111, 333), "")
    assert rungs_that_fit((111, 333), Sized(list(range(100))), 32)[0] == (111, 333)  # the user's own size holds
    several = Sized({"a": list(range(500)), "b": list(range(50))})  # the smallest set decides
    assert rungs_that_fit((111, 333), several, "auto")[0] == ()


def test_a_rung_scores_at_least_the_examples_that_tell_trials_apart():
    from transformers import TrainingArguments

    args = TrainingArguments("out", num_train_epochs=1, report_to="none", use_cpu=True)
    assert auto_subset_size(args, list(range(200))) == MIN_RUNG_EXAMPLES  # a twentieth would be 10
    assert auto_subset_size(args, list(range(10_000))) == 500


def test_the_quickstarts_search_has_no_rung_and_runs_every_trial_to_the_end_said_once(make_trainer, tokenizer, caplog):
    """The README's Quickstart shape (one evaluation an epoch, one epoch, batch 16 or 32, 100 held out): each trial is
    scored by its own final evaluation, none is pruned on a rung of a few examples."""
    trainer = make_trainer(num_train_epochs=1, eval_strategy="epoch")
    trainer.eval_dataset = ListDataset(tokenizer, make_sentences(100, seed=3))
    space = lambda trial: {  # noqa: E731
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [16, 32]),
    }
    with caplog.at_level(logging.WARNING, logger="hpsearch"):
        best = trainer.hyperparameter_search(hp_space=space, n_trials=4, direction="maximize", seed=0)
    trials = best.run_summary.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert all(list(t.intermediate) == [1000] for t in trials)  # the user's evaluation at the end, no rung
    said = [r.getMessage() for r in caplog.records if "No rung evaluations" in r.getMessage()]
    assert len(said) == 1 and "100 examples" in said[0]
