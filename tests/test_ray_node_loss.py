"""A Ray node lost mid-search loses no trial: on a real two-node cluster on 127.0.0.1, the worker node's raylet and
its children are killed while its trials run; Ray runs those trials again (`max_failures`) from their last
checkpoint, and the study ends with `n_trials` finished trials, each recorded once."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from ray import tune
from ray.tune.schedulers import FIFOScheduler

import hpsearch
from hpsearch import TrialState

STEPS = 4


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
