"""Faults, on every backend: a search killed at any moment, or Ctrl-C'd, then rerun.

`faulty_search.py` runs a 4-trial search and is killed around trial 2; the rerun must finish
exactly 4 trials, run no finished trial again, and leave a store that reads back whole. On Ray the
search process is a driver of the test process's Ray cluster (`ray_on_cluster`), its trials in
the cluster's workers.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import hpsearch
from hpsearch import TrialState
from tests.reliability.spaces import native_space

SCRIPT = Path(__file__).with_name("faulty_search.py")
BACKENDS = ["optuna", "sigopt", "wandb", "ray"]


def run(backend: str, output_dir: Path, fault: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, FAULT=fault, FAULT_AT_TRIAL="2")
    return subprocess.run(
        [sys.executable, str(SCRIPT), backend, str(output_dir)], env=env, capture_output=True, text=True, timeout=300
    )


def started(output_dir: Path) -> list[str]:
    return (output_dir / "started.log").read_text().split()


# Killed while the store writes a result, or once a trial's creation is committed: the same store
# calls for every backend (on Ray, in the driver), shown on the ask/tell ones.
CASES = [(backend, fault) for backend in BACKENDS for fault in ("trial", "between")]
CASES += [("optuna", "store"), ("sigopt", "store"), ("optuna", "create"), ("wandb", "create")]


@pytest.mark.parametrize(("backend", "fault"), CASES)
def test_sigkill_then_rerun_finishes_exactly_n_trials_and_repeats_none(backend, fault, tmp_path, ray_on_cluster):
    killed = run(backend, tmp_path, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    finished_before = [t.params["x"] for t in hpsearch.load_trials(tmp_path) if t.counts]
    assert len(finished_before) == (3 if fault == "between" else 2)

    resumed = run(backend, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = hpsearch.load_trials(tmp_path)
    assert sum(t.counts for t in trials) == 4
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len([t for t in trials if t.interrupted]) == (0 if fault == "between" else 1)  # the killed trial
    assert all(started(tmp_path).count(repr(x)) == 1 for x in finished_before)  # none ran again
    with sqlite3.connect(tmp_path / "hpsearch.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    if backend == "sigopt":  # a new embedded experiment, told what the store holds
        assert f"replayed {len(finished_before)} observations" in resumed.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_records_the_trial_and_exits_with_one_line_saying_how_to_resume(backend, tmp_path, ray_on_cluster):
    interrupted = run(backend, tmp_path, "sigint")
    assert interrupted.returncode != 0, interrupted.stderr[-5000:]
    assert "Traceback" not in interrupted.stderr
    assert interrupted.stderr.strip().splitlines()[-1] == (
        "hpsearch: Search interrupted during trial 2; rerun the same call to resume it."
    )
    trials = hpsearch.load_trials(tmp_path)
    ended = (TrialState.COMPLETE, TrialState.PRUNED)  # the default pruning may stop trial 1 at its report
    assert [(t.state in ended, t.interrupted) for t in trials] == [(True, False), (True, False), (False, True)]
    assert trials[2].state is TrialState.FAILED
    assert run(backend, tmp_path).returncode == 0
    assert sum(t.counts for t in hpsearch.load_trials(tmp_path)) == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_trial_that_raises_or_returns_nan_is_recorded_and_the_search_goes_on(backend, tmp_path, ray_on_cluster):
    def sometimes_fails(trial):
        if trial.params["x"] < 0.25:
            raise RuntimeError("this trial failed")
        if trial.params["x"] > 0.75:
            return float("nan")
        return trial.params["x"]

    options = {"max_concurrent_trials": 1} if backend == "ray" else {}
    hpsearch.search(
        sometimes_fails,
        native_space(backend),
        seed=0,  # unseeded, every draw may land where trials fail (all 12 did once, on Ray)
        max_consecutive_failed_trials=None,  # half the space fails: failures in a row are expected
        n_trials=12,
        backend=backend,
        output_dir=str(tmp_path),
        show_progress=False,
        **options,
    )
    trials = hpsearch.load_trials(tmp_path)
    assert len(trials) == 12 and all(t.counts for t in trials)
    for t in trials:
        expected = TrialState.COMPLETE if 0.25 <= t.params["x"] <= 0.75 else TrialState.FAILED
        assert t.state is expected, t
        if t.params["x"] < 0.25:
            assert "this trial failed" in t.error
