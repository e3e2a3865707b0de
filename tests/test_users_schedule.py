"""Rungs and pauses never cost the user an evaluation, a checkpoint, their disk or a result: a trial paused at a rung
runs the user's schedule as transformers' own search would (every evaluation and checkpoint at its step, the best
checkpoint chosen among them all), keeps a checkpoint of its own that no callback of the user's sees, and a trial
leaves nothing on disk but what the user's arguments keep; the paused trials' disk stays under `pause_disk`; a
`timeout` returns the best trial it can."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from transformers import TrainerCallback

from hpsearch import TrialState
from hpsearch.errors import ConfigError, SearchFailed
from hpsearch.loop.decision import pause_pays
from hpsearch.loop.failures import nothing_completed
from hpsearch.study import schema
from hpsearch.study.disk import PAUSED_DIR, check_cap
from hpsearch.trial import TrialRecord


class Schedule(TrainerCallback):
    """What the user's own callback sees of each trial: its evaluations, saves (with the checkpoints then in its
    directory) and training runs (the step each starts from, the best checkpoint at each end)."""

    def __init__(self):
        self.evaluated, self.saved, self.began, self.best = {}, {}, {}, {}
        self.checkpoints_at_save = []

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.evaluated.setdefault(Path(args.output_dir).name, []).append((state.global_step, metrics["eval_accuracy"]))

    def on_save(self, args, state, control, **kwargs):
        self.saved.setdefault(Path(args.output_dir).name, []).append(state.global_step)
        self.checkpoints_at_save.append(len(list(Path(args.output_dir).glob("checkpoint-*"))))

    def on_train_begin(self, args, state, control, **kwargs):
        self.began.setdefault(Path(args.output_dir).name, []).append(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.best[Path(args.output_dir).name] = state.best_global_step


SCHEDULES = {
    "steps": dict(max_steps=30, eval_strategy="steps", eval_steps=10, save_strategy="steps", save_steps=10),
    # 96 examples in batches of 10: three epochs of 10 steps, the rung at 1/3 on the first epoch's last step
    "epochs": dict(num_train_epochs=3, per_device_train_batch_size=10, eval_strategy="epoch", save_strategy="epoch"),
}


def lr_space(trial):
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)}


def search(make_trainer, schedule, n_trials=6, show_progress=False, **options):
    trainer = make_trainer(
        **SCHEDULES[schedule],
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        save_total_limit=2,
        report_to=["tensorboard"],
    )
    seen = Schedule()
    trainer.add_callback(seen)
    best = trainer.hyperparameter_search(
        hp_space=lr_space, n_trials=n_trials, direction="maximize", seed=0, show_progress=show_progress, **options
    )
    return trainer, best, seen


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_a_paused_trial_runs_every_evaluation_and_checkpoint_of_the_users_schedule(make_trainer, schedule):
    """The trial that ended paused at 1/3 (step 10, where the user evaluates and saves) and resumed there: it was
    evaluated and saved at 10, 20 and 30 as without hpsearch, its best checkpoint chosen among all three (ties keep
    the first, as the Trainer's strict comparison does), and no callback of the user's saw the pause checkpoints."""
    trainer, best, seen = search(make_trainer, schedule)
    trials = best.run_summary.trials
    (complete,) = [t for t in trials if t.state is TrialState.COMPLETE]
    name = f"run-{complete.number}"
    assert 10 in seen.began[name], f"the winner never paused at 1/3: {seen.began}"
    steps = [step for step, _ in seen.evaluated[name]]
    assert steps == [10, 20, 30] and seen.saved[name] == [10, 20, 30]
    accuracies = dict(seen.evaluated[name])
    assert seen.best[name] == min(s for s, a in accuracies.items() if a == max(accuracies.values()))
    assert best.objective == max(accuracies.values())
    for run, saved in seen.saved.items():  # the user's checkpoints only: at their steps, none at a pause
        assert set(saved) <= {10, 20, 30}, (run, saved)
    assert max(seen.checkpoints_at_save) <= 2  # save_total_limit counts the user's checkpoints alone
    assert any(len(began) > 1 for began in seen.began.values())  # trials did pause and resume
    assert_nothing_left(Path(trainer.args.output_dir))


def assert_nothing_left(output: Path, runs_kept: tuple[str, ...] = ()) -> None:
    """Nothing of the trials' runs left in `output` but the best model (and the run directories `runs_kept`)."""
    assert sorted(run.name for run in output.glob("run-*")) == sorted(runs_kept)
    assert not (output / PAUSED_DIR).exists(), list((output / PAUSED_DIR).rglob("*"))
    assert (output / "best_model" / "config.json").is_file()


def test_a_trial_pruned_while_paused_keeps_only_what_the_user_keeps(make_trainer):
    """One rung, at 1/3 (step 10): every trial waits there for its peers, and those not among the best third are pruned
    while they wait. With `keep_checkpoints=True` such a trial keeps its run directory, as every trial that saved one
    does, holding the user's checkpoints as `save_total_limit` left them, and no pause checkpoint; with
    `objective_at='best'`, the model its evaluation at the pause offered is not left staged."""
    trainer, best, seen = search(make_trainer, "steps", keep_checkpoints=True, evals_per_trial=2, objective_at="best")
    output = Path(trainer.args.output_dir)
    study = best.run_summary.study
    pruned_while_paused = [t for t in study.trials if t.state.name == "PRUNED" and schema.fact(t, schema.PAUSE_FILES)]
    assert pruned_while_paused and all(seen.saved[f"run-{t.number}"] == [10] for t in pruned_while_paused)
    assert all(10 in dict(seen.evaluated[f"run-{t.number}"]) for t in pruned_while_paused)
    assert_nothing_left(output, runs_kept=tuple(seen.saved))
    for run in output.glob("run-*"):
        saved, best_step = seen.saved[run.name], seen.best.get(run.name)
        kept = sorted({best_step, saved[-1]}) if best_step in saved[:-2] else saved[-2:]  # the Trainer keeps the best
        assert sorted(int(c.name.split("-")[1]) for c in run.glob("checkpoint-*")) == kept, run
    assert not (output / ".staging").exists() and len(list((output / ".models").iterdir())) == 2  # its lock, one model


def test_the_paused_trials_disk_is_recorded_said_and_stays_under_pause_disk(make_trainer, caplog, capsys):
    trainer, best, _ = search(make_trainer, "steps", show_progress=True)
    study = best.run_summary.study
    sizes = [schema.fact(t, schema.PAUSE_FILES)["bytes"] for t in study.trials if schema.fact(t, schema.PAUSE_FILES)]
    assert sizes and best.run_summary.peak_pause_bytes >= max(sizes) > 10_000  # the tiny model, its optimizer state
    assert best.run_summary.peak_pause_bytes <= sum(sizes)
    assert "Paused trials' checkpoints took at most" in capsys.readouterr().out  # the search's summary says it

    cap = max(sizes) + 1  # room for one paused trial at a time
    with caplog.at_level(logging.WARNING, logger="hpsearch"):
        trainer, best, seen = search(make_trainer, "steps", study_name="capped", pause_disk=cap)
    assert 0 < best.run_summary.peak_pause_bytes <= cap
    assert "past pause_disk" in caplog.text
    assert not [t for t in best.run_summary.trials if t.state is TrialState.PAUSED]

    _, best, seen = search(make_trainer, "steps", n_trials=4, study_name="no-disk", pause_disk=0)
    assert best.run_summary.peak_pause_bytes == 0  # nothing may pause: each trial judged by the peers it has
    assert all(len(began) == 1 for name, began in seen.began.items() if name.startswith("run-"))


@pytest.mark.parametrize("given", [-1, "lots", 1.5, True])
def test_a_bad_pause_disk_fails_before_any_training(given):
    with pytest.raises(ConfigError, match="pause_disk"):
        check_cap(given)


def test_pause_disk_takes_sizes_as_people_write_them():
    assert check_cap("20GB") == 20 * 10**9 and check_cap("500 MB") == 500 * 10**6 and check_cap(1024) == 1024
    assert check_cap(None) is None and check_cap("auto") == "auto"


@pytest.mark.parametrize(
    ("pause_seconds", "ran_seconds", "step", "next_step", "pays"),
    [
        (2.0, 10.0, 111, 333, True),  # 20 s of training to the next rung, 2/3 of it lost if pruned there: 13 s
        (15.0, 10.0, 111, 333, False),  # a checkpoint slower to save and load than what running on wastes
        (2.0, 30.0, 333, 1000, True),
        (70.0, 30.0, 333, 1000, False),  # 60 s to the end, 40 s wasted: a 70-s pause is not worth it
    ],
)
def test_a_trial_pauses_only_where_its_pause_costs_less_than_running_on(
    pause_seconds, ran_seconds, step, next_step, pays
):
    assert pause_pays(pause_seconds, ran_seconds, step, next_step, 3) is pays


def test_a_timeout_judges_the_paused_trials_by_their_peers_and_returns_the_best_that_completed(make_trainer):
    """With a timeout shorter than a trial, the first trials pause at their first rung, then the timeout stops the
    search: the paused trials are judged by the peers they have, the best at its rung runs to the end and is
    returned (it raised `SearchFailed`, the trials left paused)."""
    trainer = make_trainer(report_to="none", num_train_epochs=3)
    best = trainer.hyperparameter_search(
        hp_space=lr_space, n_trials=10, direction="maximize", seed=0, show_progress=False, timeout=0.5
    )
    trials = best.run_summary.trials
    assert len(trials) < 10 and not [t for t in trials if t.state is TrialState.PAUSED]
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    first_rung = {t.number: t.intermediate[111] for t in trials}
    assert complete and max(first_rung, key=first_rung.get) in {t.number for t in complete}
    assert best.run_id == str(max(complete, key=lambda t: t.values[0]).number)


def test_when_nothing_completed_within_the_timeout_the_error_names_it_and_the_paused_trials():
    records = [TrialRecord(0, TrialState.PAUSED, {}), TrialRecord(1, TrialState.PRUNED, {})]
    with pytest.raises(SearchFailed) as raised:
        nothing_completed(records, timeout=5)
    message = str(raised.value)
    assert "timeout=5 s" in message and "Trials [0] wait at a rung" in message and "rerun the same call" in message
