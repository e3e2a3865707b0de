"""A worker frozen in the middle of a trial (SIGSTOP, as a laptop that sleeps): another worker sees its
heartbeat stop, fails its trial and runs the slot again; thawed, the frozen worker stops that trial
without writing over the failure. On SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hpsearch
from hpsearch import TrialState

SCRIPT = Path(__file__).with_name("beating_search.py")


def lines(log: Path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in log.read_text().split("\n") if line] if log.exists() else []


def worker(storage: str, log: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), storage, str(log)], stdout=out.open("w"), stderr=subprocess.STDOUT, text=True
    )


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def frozen_worker_search(storage: str, tmp_path: Path, frozen_at: int = 4) -> None:
    """The first worker frozen in trial 0 at step `frozen_at`: 4 (1.2 s in, it has beaten) or 1 (at once: never)."""
    frozen_log, other_log = tmp_path / "frozen.log", tmp_path / "other.log"
    frozen = worker(storage, frozen_log, tmp_path / "frozen.out")
    other = None
    try:
        wait_until(lambda: (0, frozen_at) in lines(frozen_log), 60, f"the first worker's trial 0 at step {frozen_at}")
        os.kill(frozen.pid, signal.SIGSTOP)  # mid-trial: its heartbeat stops with it
        steps_before = len(lines(frozen_log))
        other = worker(storage, other_log, tmp_path / "other.out")
        assert other.wait(timeout=120) == 0, (tmp_path / "other.out").read_text()
        trials = hpsearch.load_trials(storage=storage, study_name="frozen-worker")
        (stale,) = [t for t in trials if t.number == 0]
        assert stale.state is TrialState.FAILED and stale.interrupted and "heartbeat" in stale.error
        assert sum(t.counts for t in trials) == 4  # the frozen trial's slot ran again
        assert {n for n, _ in lines(other_log)} == {t.number for t in trials if t.counts}  # the other ran them all
        os.kill(frozen.pid, signal.SIGCONT)
        assert frozen.wait(timeout=60) == 0, (tmp_path / "frozen.out").read_text()
    finally:
        for process in (frozen, other):
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait(timeout=30)
    output = (tmp_path / "frozen.out").read_text()
    assert "Trial 0 was failed by another worker" in output
    after = hpsearch.load_trials(storage=storage, study_name="frozen-worker")
    assert [(t.number, t.state, t.error) for t in after] == [(t.number, t.state, t.error) for t in trials]
    assert after[0].intermediate == trials[0].intermediate  # nothing written over the failed trial
    assert len(lines(frozen_log)) <= steps_before + 1  # thawed, it stopped at its next report
    assert {n for n, _ in lines(frozen_log)} == {0}  # and ran no other trial: the study was done


def test_a_frozen_worker_on_sqlite_is_taken_for_dead_and_its_slot_runs_again(tmp_path):
    frozen_worker_search(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)


def test_a_frozen_worker_on_postgresql_is_taken_for_dead_and_its_slot_runs_again(postgres_url, tmp_path):
    frozen_worker_search(postgres_url, tmp_path)


def test_a_worker_frozen_before_its_first_beat_is_taken_for_dead_too(tmp_path):
    """Frozen in its trial's first second, the worker never beat: the other fails the trial once it has seen it
    unbeaten for the grace period and a first beat, and runs its slot again."""
    frozen_worker_search(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path, frozen_at=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"heartbeat_interval": 0}, r"`heartbeat_interval` must be an int >= 1 \(seconds\)"),
        ({"grace_period": 1.5}, r"`grace_period` must be an int >= 1 \(seconds\)"),
        ({"heartbeat_interval": 10, "grace_period": 5}, "`grace_period` must be at least `heartbeat_interval`"),
    ],
)
def test_bad_heartbeat_settings_fail_before_any_trial(tmp_path, kwargs, message):
    with pytest.raises(hpsearch.ConfigError, match=message):
        hpsearch.search(lambda t: 0.0, {"x": hpsearch.space.Float(0, 1)}, output_dir=str(tmp_path), **kwargs)
    assert not (tmp_path / "hpsearch.db").exists()


def test_heartbeat_settings_for_a_storage_without_heartbeats_say_where_they_go():
    with pytest.raises(hpsearch.ConfigError, match=r"set them on your storage object"):
        hpsearch.search(lambda t: 0.0, {"x": hpsearch.space.Float(0, 1)}, heartbeat_interval=5)


@pytest.mark.parametrize("backend", ["optuna", "sigopt", "wandb"])
def test_a_stale_trial_is_retried_once_with_its_parameters_before_any_new_trial(tmp_path, monkeypatch, backend):
    """A worker that died on another machine (its trial RUNNING, its heartbeat old): the next worker fails it
    and, with `retry_stale_trials=1`, runs its parameters again first; the retry is not retried again."""
    import optuna

    monkeypatch.setenv("WANDB_MODE", "offline")
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    options = {"storage": storage, "study_name": "shared", "show_progress": False, "seed": 0}
    beats = {"heartbeat_interval": 1, "grace_period": 1, "retry_stale_trials": 1}
    space = {"x": hpsearch.space.Float(0.0, 1.0)}
    hpsearch.search(lambda t: t.params["x"], space, n_trials=1, backend=backend, **options)

    # a trial of a worker on another machine, which then stopped beating
    study = optuna.load_study(study_name="shared", storage=storage)
    lost = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    lost_x = lost.params["x"]
    lost.set_user_attr("hpsearch:owner", {"host": "elsewhere", "pid": 1, "started": 0.0})
    optuna.storages.RDBStorage(storage, heartbeat_interval=1).record_heartbeat(lost._trial_id)
    time.sleep(2.5)  # older than the grace period

    seen = []

    def objective(trial):
        seen.append((trial.number, trial.params["x"]))
        return trial.params["x"]

    hpsearch.search(objective, space, n_trials=3, backend=backend, **options, **beats)
    trials = hpsearch.load_trials(storage=storage, study_name="shared")
    assert trials[1].state is TrialState.FAILED and trials[1].interrupted and "heartbeat" in trials[1].error
    assert seen[0] == (2, pytest.approx(lost_x))  # the retry ran first, with the lost trial's parameters
    assert len(seen) == 2 and seen[1][1] != pytest.approx(lost_x)  # then the backend's own proposal
    assert sum(t.counts for t in trials) == 3 and trials[2].state is TrialState.COMPLETE
