"""A search killed with SIGKILL in the middle of a trial, then rerun: nothing lost, nothing run twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification

import hpsearch
from hpsearch import TrialState

SCRIPT = Path(__file__).with_name("resumable_trainer_search.py")


def run_search(output_dir: Path, model_dir: Path, n_trials: int, kill_at: int | None = None, **env_vars: int):
    env = dict(os.environ, KILL_AT_TRIAL=str(kill_at if kill_at is not None else -1))
    env.update({name: str(value) for name, value in env_vars.items()})
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(output_dir), str(model_dir), str(n_trials)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sigkill_mid_trial_then_rerun_finishes_exactly_n_trials(tiny_model_dir, tmp_path):
    killed = run_search(tmp_path, tiny_model_dir, n_trials=4, kill_at=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    before = hpsearch.load_trials(tmp_path)
    ended = {TrialState.COMPLETE, TrialState.PRUNED}  # run to the end, or stopped at a rung
    assert [t.state in ended for t in before] == [True, True, False] and before[2].state is TrialState.RUNNING

    resumed = run_search(tmp_path, tiny_model_dir, n_trials=4)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = hpsearch.load_trials(tmp_path)

    assert sum(t.counts for t in after) == 4
    assert after[2].state is TrialState.FAILED and after[2].interrupted  # the killed trial, its slot run again
    assert len(after) == 5 and all(t.state in ended for t in after[3:])
    assert [(t.params, t.values) for t in after[:2]] == [(t.params, t.values) for t in before[:2]]
    started = (tmp_path / "started.log").read_text().split()
    assert started == ["0", "1", "2", "3", "4"]  # no finished trial ran again
    assert (tmp_path / "best_model" / "model.safetensors").is_file()


def steps(output_dir: Path) -> list[int]:
    return [int(line.split()[1]) for line in (output_dir / "steps.log").read_text().splitlines()]


def test_a_trial_killed_after_a_checkpoint_resumes_there_on_the_rerun(tiny_model_dir, tmp_path):
    """96 examples in batches of 16 for 3 epochs: 18 steps, an evaluation and a checkpoint every 4, the kill
    at step 10; the trial ends on its "best" checkpoint (`load_best_model_at_end`), its first one, from
    before the crash: its objective is that checkpoint's evaluation, as without the crash."""
    whole, crashed = tmp_path / "uninterrupted", tmp_path / "crashed"
    for directory in (whole, crashed):
        directory.mkdir()
    uninterrupted = run_search(whole, tiny_model_dir, n_trials=1, SAVE_STEPS=4)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]

    killed = run_search(crashed, tiny_model_dir, n_trials=1, kill_at=0, KILL_AT_STEP=10, SAVE_STEPS=4)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (before,) = hpsearch.load_trials(crashed)
    assert before.state is TrialState.RUNNING and sorted(before.intermediate) == [111, 333]
    assert steps(crashed) == list(range(1, 11))

    resumed = run_search(crashed, tiny_model_dir, n_trials=1, SAVE_STEPS=4)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    (after,) = hpsearch.load_trials(crashed)
    (reference,) = hpsearch.load_trials(whole)
    assert after.number == 0 and after.state is TrialState.COMPLETE and after.params == before.params
    # it went on from checkpoint-8, to the uninterrupted run's last step: steps 9 and 10 trained again
    assert steps(crashed) == list(range(1, 11)) + list(range(9, 19)) and steps(whole) == list(range(1, 19))
    assert after.intermediate == before.intermediate  # its rungs, reported once, before the crash
    assert "already reported" not in resumed.stderr
    assert after.objective == pytest.approx(reference.objective, rel=1e-3)  # the same training, resumed
    assert (crashed / "started.log").read_text().split() == ["0", "0"]  # its model built again, to resume
    assert not list(crashed.glob("run-*"))  # a finished trial's checkpoints are deleted, as ever
    assert (crashed / "best_model" / "model.safetensors").is_file()


def test_rerunning_a_finished_search_runs_nothing(make_trainer, tiny_model_dir):
    started = []

    def model_init(trial):
        if trial is not None:
            started.append(trial.number)
        return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)

    def hp_space(trial):
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2)}

    trainer = make_trainer(model_init=model_init, max_steps=2)
    trainer.hyperparameter_search(hp_space=hp_space, n_trials=2, show_progress=False)
    first = list(started)  # each training run (a paused trial resumed is a second run of it)
    trainer.hyperparameter_search(hp_space=hp_space, n_trials=2, show_progress=False)  # its n_trials have finished
    assert started == first and set(first) == {0, 1}
    assert len(hpsearch.load_trials(trainer.args.output_dir)) == 2
