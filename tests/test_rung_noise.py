"""No rung on noise: a rung ranks trials only once they have taken `MIN_RUNG_STEPS` optimizer steps, on at least
`MIN_RUNG_EXAMPLES` evaluation examples; where no rung fits, every trial runs to the end, said once."""

from __future__ import annotations

import logging

from transformers import TrainingArguments

from hpsearch import TrialState
from hpsearch.fidelity import step_at
from hpsearch.rungs import MIN_RUNG_EXAMPLES, MIN_RUNG_STEPS, most_steps, rungs_that_fit, trial_steps
from hpsearch.space import Categorical, Int


def arguments(**fields) -> TrainingArguments:
    return TrainingArguments("out", report_to="none", use_cpu=True, **fields)


def test_a_trials_steps_are_counted_as_the_trainer_counts_them():
    examples = list(range(200))
    assert trial_steps(arguments(per_device_train_batch_size=16), examples) == 13 * 3  # 3 epochs by default
    assert trial_steps(arguments(num_train_epochs=1, per_device_train_batch_size=32), examples) == 7
    two = arguments(num_train_epochs=1, per_device_train_batch_size=16, gradient_accumulation_steps=2)
    assert trial_steps(two, examples) == 7 and trial_steps(arguments(max_steps=50), examples) == 50
    assert trial_steps(arguments(), iter(examples)) is None  # no length: not known


def test_the_most_steps_of_a_space_are_those_of_its_smallest_batch_and_most_epochs():
    space = {"per_device_train_batch_size": Categorical([16, 32]), "num_train_epochs": Int(1, 4)}
    assert most_steps(arguments(), list(range(200)), space) == 13 * 4
    assert most_steps(arguments(), list(range(200)), {"per_device_train_batch_size": None}) is None  # unknown


class Quickstart:
    """The README's Quickstart, as the Trainer the rule reads: 200 reviews, 100 held out, batch 16 or 32, 1 epoch."""

    def __init__(self, train: int = 200, held_out: int = 100, **fields):
        self.args = arguments(num_train_epochs=1, **fields)
        self.train_dataset, self.eval_dataset = list(range(train)), list(range(held_out))


def test_the_quickstarts_trials_are_too_short_for_any_rung():
    space = {"per_device_train_batch_size": Categorical([16, 32])}
    fit, why = rungs_that_fit((111, 333), Quickstart(), space, "auto")
    assert fit == () and "at most 13 optimizer steps" in why and str(MIN_RUNG_STEPS) in why


def test_longer_trials_keep_the_rungs_at_which_they_have_taken_enough_steps():
    steps_at_one_ninth = MIN_RUNG_STEPS * 9  # a trial just long enough for a rung at 1/9
    trainer = Quickstart(train=16 * steps_at_one_ninth, per_device_train_batch_size=16)
    assert rungs_that_fit((111, 333), trainer, {}, "auto") == ((111, 333), "")
    shorter = Quickstart(train=16 * (steps_at_one_ninth - 9), per_device_train_batch_size=16)
    assert rungs_that_fit((111, 333), shorter, {}, "auto")[0] == (333,)


def test_too_few_evaluation_examples_to_tell_trials_apart_leave_no_rung_unless_the_user_sized_it():
    trainer = Quickstart(train=16 * 200, held_out=MIN_RUNG_EXAMPLES - 1, per_device_train_batch_size=16)
    fit, why = rungs_that_fit((111, 333), trainer, {}, "auto")
    assert fit == () and f"{MIN_RUNG_EXAMPLES - 1} examples" in why
    assert rungs_that_fit((111, 333), trainer, {}, 16)[0] == (111, 333)  # the user's own `rung_eval_size` holds


def test_a_search_whose_trials_are_too_short_runs_every_trial_to_the_end_and_says_so_once(make_trainer, caplog):
    trainer = make_trainer(num_train_epochs=1)  # 96 examples in batches of 16 or 32: 6 or 3 steps
    space = lambda trial: {  # noqa: E731
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [16, 32]),
    }
    with caplog.at_level(logging.WARNING, logger="hpsearch"):
        best = trainer.hyperparameter_search(
            hp_space=space, n_trials=4, direction="maximize", seed=0, show_progress=False
        )
    assert [t.state for t in best.run_summary.trials] == [TrialState.COMPLETE] * 4
    assert all(set(t.intermediate) <= {1000} for t in best.run_summary.trials)  # the user's evaluation only
    said = [r.getMessage() for r in caplog.records if "every trial runs to the end" in r.getMessage()]
    assert len(said) == 1 and "at most 6 optimizer steps" in said[0]


def test_a_trial_shorter_than_the_others_skips_the_rungs_it_reaches_too_soon(make_trainer):
    """Batch sizes 8 and 96 in one search of 6 epochs: a trial of batch 8 takes 72 steps, long enough for its rungs;
    one of batch 96 takes 6, and has none."""
    trainer = make_trainer(num_train_epochs=6)
    space = lambda trial: {  # noqa: E731
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [8, 96]),
    }
    best = trainer.hyperparameter_search(
        hp_space=space, n_trials=4, direction="maximize", seed=0, show_progress=False, pause_trials=False
    )
    sizes = {trial.params["per_device_train_batch_size"] for trial in best.run_summary.trials}
    assert sizes == {8, 96}, sizes
    for trial in best.run_summary.trials:
        steps = 72 if trial.params["per_device_train_batch_size"] == 8 else 6
        fitting = {point for point in (111, 333) if step_at(point, steps) >= MIN_RUNG_STEPS}
        assert set(trial.intermediate) - {1000} <= fitting, (steps, trial)
        assert steps == 6 or fitting & set(trial.intermediate), trial  # a long trial was scored at a rung
