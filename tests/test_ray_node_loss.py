"""A Ray node lost mid-search loses no trial: on a real two-node cluster on 127.0.0.1, the worker node's raylet and
its children are killed while its trials run; Ray runs those trials again (`max_failures`) from their last
checkpoint, and the study ends with `n_trials` finished trials, each recorded once; so does a rerun after the search
itself was killed. A Trainer trial whose worker dies resumes from its own checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ray import tune
from ray.tune.schedulers import FIFOScheduler
from transformers import AutoModelForSequenceClassification, TrainerCallback

import hpsearch
from hpsearch import TrialState

STEPS = 4
ROOT = Path(__file__).resolve().parents[1]


def sleeping_objective(marks: Path, checkpoints: Path):
    """A trial that reports STEPS steps, a checkpoint noted before each report; it resumes from the one it is given.
    Each start leaves a mark: the trial's number, the node it ran on, the step it started from."""

    def objective(trial):
        start = 0
        if trial.resume_from is not None:
            start = json.loads((Path(trial.resume_from) / "state.json").read_text())["step"]
        node = os.environ.get("HPSEARCH_TEST_NODE", "head")
        (marks / f"{trial.number}-{node}-{start}-{os.getpid()}").touch()
        for step in range(start + 1, STEPS + 1):
            time.sleep(0.5)
            checkpoint = checkpoints / f"{trial.number}-{step}"
            checkpoint.mkdir(parents=True, exist_ok=True)
            (checkpoint / "state.json").write_text(json.dumps({"step": step}))
            trial.note_checkpoint(str(checkpoint))
            trial.report(step, trial.params["x"] + step)
        return trial.params["x"]

    return objective


def lose_the_node_once_a_trial_there_has_a_checkpoint(cluster, marks: Path, checkpoints: Path) -> set[int]:
    """Kill the worker node as soon as one of its trials noted its second checkpoint (mid-trial, with a checkpoint
    reported to resume from), from a thread; the set it fills with the trials lost there (started, not finished)."""
    lost: set[int] = set()

    def watch() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            on_worker = {int(m.name.split("-")[0]) for m in marks.iterdir() if m.name.split("-")[1] == "worker"}
            if any((checkpoints / f"{number}-2").is_dir() for number in on_worker):
                lost.update(n for n in on_worker if not (checkpoints / f"{n}-{STEPS}").is_dir())
                cluster.lose_worker_node()
                return
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return lost


def test_a_lost_ray_node_loses_no_trial_its_trials_run_again_from_their_checkpoints(ray_two_nodes, tmp_path):
    marks, checkpoints = tmp_path / "marks", tmp_path / "checkpoints"
    marks.mkdir()
    lost = lose_the_node_once_a_trial_there_has_a_checkpoint(ray_two_nodes, marks, checkpoints)
    best = hpsearch.search(
        sleeping_objective(marks, checkpoints),
        {"x": tune.uniform(0, 1)},
        n_trials=6,
        backend="ray",
        address=ray_two_nodes.address,
        output_dir=str(tmp_path / "out"),
        show_progress=False,
        scheduler=FIFOScheduler(),  # no trial stopped early: each one must complete
    )
    assert lost, "the worker node was not lost mid-trial"
    trials = hpsearch.load_trials(tmp_path / "out")
    assert sorted(t.number for t in trials) == list(range(6))  # each trial recorded once, none added
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6, [(t.number, t.state, t.error) for t in trials]
    assert len(best.run_summary.trials) == 6
    again = {}  # the lost trials' starts on the node left: the step each resumed from
    for number, node, start, _ in (m.name.split("-") for m in marks.iterdir()):
        if node == "head" and int(number) in lost:
            again[int(number)] = max(again.get(int(number), 0), int(start))
    assert set(again) == lost
    assert max(again.values()) >= 1  # the one lost with a checkpoint reported went on from it, not from its start


DRIVER = """
import sys
from pathlib import Path

sys.path[:0] = [str(Path(sys.argv[1]) / "src"), sys.argv[1]]
from ray import tune
from ray.tune.schedulers import FIFOScheduler

import hpsearch
from tests.test_ray_node_loss import sleeping_objective

tmp = Path(sys.argv[3])
hpsearch.search(sleeping_objective(tmp / "marks", tmp / "checkpoints"), {"x": tune.uniform(0, 1)}, n_trials=4,
                backend="ray", address=sys.argv[2], output_dir=str(tmp / "out"), show_progress=False,
                scheduler=FIFOScheduler())
"""


def wait_for(condition, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_a_search_killed_while_a_lost_nodes_trial_ran_again_finishes_it_on_its_rerun(ray_two_nodes, tmp_path):
    """The node lost, then the search's process killed while a lost trial ran again: the rerun of the same call
    restores Ray's experiment and runs what it left (that trial from its checkpoint); the study ends with `n_trials`
    complete, none lost."""
    marks, checkpoints = tmp_path / "marks", tmp_path / "checkpoints"
    marks.mkdir()
    (tmp_path / "driver.py").write_text(DRIVER)
    driver = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(ROOT), ray_two_nodes.address, str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def starts(node: str) -> set[int]:
            return {int(m.name.split("-")[0]) for m in marks.iterdir() if m.name.split("-")[1] == node}

        wait_for(lambda: any((checkpoints / f"{n}-2").is_dir() for n in starts("worker")), "a worker trial is midway")
        lost = {n for n in starts("worker") if not (checkpoints / f"{n}-{STEPS}").is_dir()}
        ray_two_nodes.lose_worker_node()
        wait_for(lambda: starts("head") & lost, "a lost trial runs again")
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)
    finally:
        driver.kill()
    hpsearch.search(
        sleeping_objective(marks, checkpoints),
        {"x": tune.uniform(0, 1)},
        n_trials=4,
        backend="ray",
        address=ray_two_nodes.address,
        output_dir=str(tmp_path / "out"),
        show_progress=False,
        scheduler=FIFOScheduler(),
    )
    trials = hpsearch.load_trials(tmp_path / "out")
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 4, [(t.number, t.state, t.error) for t in trials]
    # the killed run's running trials are marked interrupted (no slot used) and run again: from Ray's saved state,
    # their checkpoints, or (where a kill left that state behind) as new trials in their slots
    assert all(t.state is TrialState.COMPLETE or t.interrupted for t in trials)


class DiesOnceAtItsSecondSave(TrainerCallback):
    """Kills the trial's worker process (as a lost node does) right after its second checkpoint, once; notes the
    step each start of training began at."""

    def __init__(self, marks: Path):
        self.marks = marks

    def on_train_begin(self, args, state, control, **kwargs):
        (self.marks / f"began-{len(list(self.marks.glob('began-*')))}-at-{state.global_step}").touch()

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 8 and not (self.marks / "died").exists():
            (self.marks / "died").touch()
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_trainer_trial_whose_worker_died_resumes_from_its_checkpoint_and_completes(
    make_trainer, tmp_path, on_ray_cluster
):
    """Steps-based evaluation and checkpoints, `load_best_model_at_end`: the trial's worker dies after its
    checkpoint at step 8; Ray runs the trial again from the checkpoint its last report pointed to (step 4), and it
    completes as one trial whose kept model scores its objective."""
    marks = tmp_path / "marks"
    marks.mkdir()
    trainer = make_trainer(
        max_steps=12, eval_strategy="steps", eval_steps=4, save_strategy="steps", save_steps=4,
        load_best_model_at_end=True, metric_for_best_model="accuracy",
    )  # fmt: skip
    trainer.add_callback(DiesOnceAtItsSecondSave(marks))
    best = trainer.hyperparameter_search(
        backend="ray",
        hp_space={"learning_rate": tune.uniform(1e-2, 2e-2)},
        n_trials=1,
        direction="maximize",
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        scheduler=FIFOScheduler(),
        show_progress=False,
    )
    assert sorted(m.name for m in marks.iterdir()) == ["began-0-at-0", "began-1-at-4", "died"]
    (trial,) = hpsearch.load_trials(trainer.args.output_dir)
    assert trial.state is TrialState.COMPLETE and sorted(trial.intermediate) == [333, 667, 1000]
    reloaded = make_trainer(
        model_init=lambda: AutoModelForSequenceClassification.from_pretrained(best.run_summary.best_model_dir)
    )
    assert reloaded.evaluate()["eval_accuracy"] == pytest.approx(best.objective)
