"""`study.liveness`: a trial's owner process and whether it is gone, the heartbeat settings of a search, a running
trial's beat, and the checks that fail the running trials whose workers stopped beating (or never beat), mark them
beside the study and queue them again; on a real optuna SQLite storage."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import optuna
import psutil
import pytest
import sqlalchemy

from hpsearch import compat
from hpsearch.errors import ConfigError
from hpsearch.study import liveness
from hpsearch.study.liveness import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_INTERVAL,
    Heartbeat,
    StaleCheck,
    fail_stale,
    on_stale,
    owner_is_dead,
    settings,
    stale_trials,
    this_process,
)

State = optuna.trial.TrialState
RUNNING, FAIL, WAITING = State.RUNNING, State.FAIL, State.WAITING
X = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
# `study.ask` on a storage with heartbeats (hpsearch runs its own loop, not `Study.optimize`)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")


# -- owners --------------------------------------------------------------------------------------------------------


def test_this_process_is_its_host_pid_and_start_time_and_is_alive():
    owner = this_process()
    assert owner == {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}
    assert this_process() == owner  # the same process: equal owners (how a rerun tells its own trials)
    assert not owner_is_dead(owner)


def test_a_trial_no_one_claimed_has_a_dead_owner():
    assert owner_is_dead(None)
    assert owner_is_dead({})


def test_another_machines_owner_is_never_known_dead_here():
    assert not owner_is_dead({"host": f"not-{socket.gethostname()}", "pid": 2**22 + 1, "started": 0.0})


def test_an_owner_is_dead_once_its_process_has_ended():
    child = subprocess.Popen(["sleep", "60"])
    try:
        owner = {"host": socket.gethostname(), "pid": child.pid, "started": psutil.Process(child.pid).create_time()}
        assert not owner_is_dead(owner)
    finally:
        child.kill()
        child.wait()
    assert owner_is_dead(owner)


def test_a_pid_reused_by_a_process_started_at_another_time_is_not_its_owner():
    owner = this_process() | {"started": this_process()["started"] - 3600.0}  # this pid, an hour earlier
    assert owner_is_dead(owner)


# -- settings ------------------------------------------------------------------------------------------------------


def test_a_database_url_gets_hpsearchs_heartbeat_defaults():
    assert settings("sqlite:///s.db", None, None, 0) == {
        "heartbeat_interval": DEFAULT_INTERVAL,
        "grace_period": DEFAULT_GRACE_PERIOD,
        "retry_stale_trials": 0,
    }


def test_the_default_grace_period_is_at_least_two_beats_and_given_values_are_kept():
    assert settings("sqlite:///s.db", 400, None, 0)["grace_period"] == 800
    assert settings("sqlite:///s.db", 5, None, 0)["grace_period"] == DEFAULT_GRACE_PERIOD
    assert settings("sqlite:///s.db", 5, 7, 2) == {"heartbeat_interval": 5, "grace_period": 7, "retry_stale_trials": 2}
    assert settings("sqlite:///s.db", 1, 1, 0)["grace_period"] == 1  # one beat of grace: allowed


def test_a_grace_period_shorter_than_a_beat_is_a_config_error_naming_both():
    with pytest.raises(ConfigError, match=r"Received: grace_period=5, heartbeat_interval=10\."):
        settings("sqlite:///s.db", 10, 5, 0)
    with pytest.raises(ConfigError, match=rf"Received: grace_period=30, heartbeat_interval={DEFAULT_INTERVAL}\."):
        settings("sqlite:///s.db", None, 30, 0)  # shorter than the default beat


def test_a_storage_that_is_no_url_has_no_settings_and_refuses_them(database_url):
    database = optuna.storages.RDBStorage(database_url)
    assert settings(None, None, None, 0) == {}
    assert settings(database, None, None, 0) == {}
    for given in [(60, None, 0), (None, 600, 0), (None, None, 1)]:
        with pytest.raises(ConfigError, match=r"set the heartbeats of a database storage URL. Received: storage=None"):
            settings(None, *given)


@pytest.mark.parametrize(
    ("interval", "grace", "retries", "named"),
    [
        (0, None, 0, "heartbeat_interval"),
        (True, None, 0, "heartbeat_interval"),
        (1.5, None, 0, "heartbeat_interval"),
        ("60", None, 0, "heartbeat_interval"),
        (None, 0, 0, "grace_period"),
        (None, False, 0, "grace_period"),
        (None, None, -1, "retry_stale_trials"),
        (None, None, None, "retry_stale_trials"),
        (None, None, False, "retry_stale_trials"),
    ],
)
def test_a_setting_that_is_no_whole_number_in_range_is_a_config_error_naming_it(interval, grace, retries, named):
    with pytest.raises(ConfigError, match=rf"^`{named}` must be an int"):
        settings("sqlite:///s.db", interval, grace, retries)


# -- a study on a database with heartbeats ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_database(tmp_path_factory) -> Path:
    """An SQLite file with optuna's tables and no study: each test's database starts as a copy (no schema to build)."""
    path = tmp_path_factory.mktemp("empty") / "study.db"
    optuna.storages.RDBStorage(f"sqlite:///{path}").engine.dispose()
    return path


@pytest.fixture
def database_url(tmp_path, empty_database) -> str:
    shutil.copy(empty_database, tmp_path / "study.db")
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def database_study(database_url):
    """A study "s" on an SQLite database with heartbeats (every `interval` seconds, stale after `grace`)."""

    def make(interval: int | None = 1, grace: int | None = 30, callback=None) -> optuna.Study:
        with warnings.catch_warnings():  # optuna calls heartbeats experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            database = optuna.storages.RDBStorage(
                database_url, heartbeat_interval=interval, grace_period=grace, heartbeat_stale_trial_callback=callback
            )
        return optuna.create_study(storage=database, study_name="s")

    return make


def trial_id(study: optuna.Study, number: int) -> int:
    storage = compat.database(study)
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("s"), number)


def beat(study: optuna.Study, number: int, seconds_ago: int = 0) -> None:
    """Record a heartbeat of trial `number`, as if beaten `seconds_ago` (by the database's clock)."""
    storage = compat.database(study)
    storage.record_heartbeat(trial_id(study, number))
    with storage.engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("UPDATE trial_heartbeats SET heartbeat = datetime('now', :ago) WHERE trial_id = :trial"),
            {"ago": f"-{seconds_ago} seconds", "trial": trial_id(study, number)},
        )


def beaten(study: optuna.Study, number: int) -> bool:
    storage = compat.database(study)
    with storage.engine.connect() as connection:
        query = sqlalchemy.text("SELECT 1 FROM trial_heartbeats WHERE trial_id = :trial")
        return connection.execute(query, {"trial": trial_id(study, number)}).first() is not None


def states(study: optuna.Study) -> list[optuna.trial.TrialState]:
    return [t.state for t in study.get_trials(deepcopy=False)]


def wait_until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- the beat ------------------------------------------------------------------------------------------------------


def beat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hpsearch-heartbeat"]


def test_a_storage_without_heartbeats_gets_no_beat(database_study):
    for study in (optuna.create_study(), database_study(interval=None)):
        trial = study.ask()
        heartbeat = Heartbeat(trial._trial_id, compat.database(study))
        assert beat_threads() == []
        heartbeat.stop()
    assert not beaten(study, 0)


def test_a_trial_that_ends_within_its_first_second_never_beats(database_study):
    study = database_study(interval=60)
    study.ask()
    started = time.monotonic()
    heartbeat = Heartbeat(trial_id(study, 0), compat.database(study))
    heartbeat.stop()
    assert time.monotonic() - started < liveness.FIRST_BEAT_AFTER  # stopping waits for no beat
    assert not beaten(study, 0) and beat_threads() == []


def test_a_running_trial_beats_in_a_daemon_thread_that_stops_at_once_between_beats(database_study, monkeypatch):
    monkeypatch.setattr(liveness, "FIRST_BEAT_AFTER", 0.01)
    study = database_study(interval=60)
    study.ask()
    heartbeat = Heartbeat(trial_id(study, 0), compat.database(study))
    try:
        (thread,) = beat_threads()
        assert thread.daemon  # never keeps a dying search's process alive
        wait_until(lambda: beaten(study, 0))
    finally:
        started = time.monotonic()
        heartbeat.stop()
    assert time.monotonic() - started < 5  # not the 60 s to the next beat
    assert not thread.is_alive()


def test_a_running_trial_beats_again_every_interval(database_url, monkeypatch):
    class Timed(optuna.storages.RDBStorage):
        """The database, and when each beat reached it."""

        beats: list[float] = []

        def record_heartbeat(self, trial_id: int) -> None:
            super().record_heartbeat(trial_id)
            self.beats.append(time.monotonic())

    monkeypatch.setattr(liveness, "FIRST_BEAT_AFTER", 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        database = Timed(database_url, heartbeat_interval=0.1)
    study = optuna.create_study(storage=database, study_name="s")
    study.ask()
    heartbeat = Heartbeat(trial_id(study, 0), database)
    wait_until(lambda: len(database.beats) >= 3)
    heartbeat.stop()
    count = len(database.beats)
    assert all(later - earlier >= 0.09 for earlier, later in zip(database.beats, database.beats[1:]))
    time.sleep(0.3)
    assert len(database.beats) == count  # stopped: no beat after
    assert beaten(study, 0)


# -- stale trials --------------------------------------------------------------------------------------------------


def test_a_trial_whose_beat_stopped_longer_than_the_grace_period_ago_is_failed_and_marked(database_study):
    study = database_study(grace=30, callback=on_stale(0))
    for _ in range(3):
        study.ask(X)
    beat(study, 0, seconds_ago=3600)  # its worker stopped an hour ago
    beat(study, 1, seconds_ago=5)  # beating, within the grace period
    fail_stale(study)  # trial 2 never beat: optuna's check does not see it
    assert states(study) == [FAIL, RUNNING, RUNNING]
    assert stale_trials(study) == {0}
    fail_stale(study)  # again: nothing more to fail, nothing marked twice
    assert states(study) == [FAIL, RUNNING, RUNNING] and stale_trials(study) == {0}


def test_a_stale_trial_is_queued_again_with_its_parameters_up_to_the_retries(database_study):
    study = database_study(callback=on_stale(1))
    study.ask(X)
    beat(study, 0, seconds_ago=3600)
    fail_stale(study)
    assert states(study) == [FAIL, WAITING]
    retry = study.ask()  # the waiting trial first
    assert retry.number == 1 and retry.params == study.trials[0].params
    beat(study, 1, seconds_ago=3600)
    fail_stale(study)  # the retry went stale too: not retried again
    assert states(study) == [FAIL, FAIL] and stale_trials(study) == {0, 1}


def test_the_stale_callback_marks_and_queues_without_an_experimental_warning_of_optunas(database_study):
    """hpsearch keeps optuna's ExperimentalWarning about its heartbeats from the user, as it does where it opens the
    storage (`store`) and fails stale trials: `retry_stale_trials=1` prints none."""
    study = database_study()
    study.ask(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", optuna.exceptions.ExperimentalWarning)
        callback = on_stale(2)
        callback(study, study.trials[0])
    assert stale_trials(study) == {0}
    assert study.trials[1].state == WAITING and study.trials[1].params == study.trials[0].params


def test_without_heartbeats_no_trial_is_ever_stale(database_study):
    study = database_study(interval=None, callback=None)
    study.ask()
    beat(study, 0, seconds_ago=3600)
    fail_stale(study)
    in_memory = optuna.create_study()
    in_memory.ask()
    fail_stale(in_memory)
    assert states(study) == [RUNNING] and states(in_memory) == [RUNNING]


def test_the_stale_trials_are_read_from_their_marks_only():
    study = optuna.create_study()
    assert stale_trials(study) == set()
    study.set_user_attr("hpsearch:stale:12", True)
    study.set_user_attr("hpsearch:stale:3", True)
    study.set_user_attr("hpsearch:something-else", 5)
    study.set_user_attr("stale", 4)
    assert stale_trials(study) == {3, 12}


# -- the check a worker runs between trials ------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """This process's monotonic clock as `StaleCheck` reads it, set by the test."""
    now = SimpleNamespace(value=1000.0)
    monkeypatch.setattr(liveness, "time", SimpleNamespace(monotonic=lambda: now.value))
    return now


def test_no_interval_means_no_check(database_study, clock):
    study = database_study(callback=on_stale(0))
    study.ask()
    beat(study, 0, seconds_ago=3600)
    check = StaleCheck(None)
    for _ in range(3):
        clock.value += 1000
        assert not check(study)
    assert states(study) == [RUNNING]


def test_the_check_runs_at_most_once_an_interval(database_study, clock):
    study = database_study(callback=on_stale(0))
    check = StaleCheck(10)
    assert check(study)
    study.ask()
    beat(study, 0, seconds_ago=3600)
    clock.value += 9.5
    assert not check(study)  # within the interval: no query
    assert states(study) == [RUNNING]
    clock.value += 0.5
    assert check(study)
    assert states(study) == [FAIL] and stale_trials(study) == {0}


def test_a_trial_that_never_beat_fails_once_seen_so_for_a_grace_period_and_a_first_beat(database_study, clock):
    study = database_study(grace=30, callback=on_stale(1))
    check = StaleCheck(1)
    grace = 30 + liveness.FIRST_BEAT_AFTER
    study.ask(X)  # 0: its worker died in its first second
    study.ask(X)  # 1: beats later
    assert check(study)  # both first seen unbeaten now
    clock.value += 10
    beat(study, 1)
    study.ask(X)  # 2: first seen at the next check
    assert check(study)
    clock.value += grace - 10  # trial 0: exactly a grace period since seen, not more
    assert check(study) and states(study) == [RUNNING] * 3
    clock.value += 1
    assert check(study)
    assert states(study)[:3] == [FAIL, RUNNING, RUNNING]  # 1 beat; 2 was seen 10 s later
    assert stale_trials(study) == {0} and study.trials[3].state == WAITING  # queued again, with its parameters
    assert study.trials[3].params == study.trials[0].params
    clock.value += 10
    assert check(study)
    assert [t.state for t in study.trials[:3]] == [FAIL, RUNNING, FAIL] and stale_trials(study) == {0, 2}


def test_without_heartbeats_on_the_storage_a_trial_that_never_beat_is_never_failed(database_study, clock):
    study = database_study(interval=None)
    study.ask()
    check = StaleCheck(1)
    for _ in range(3):
        assert check(study)
        clock.value += 10_000
    assert states(study) == [RUNNING]


def test_a_trial_that_never_beat_is_failed_without_a_mark_where_the_storage_has_no_callback(database_study, clock):
    study = database_study(grace=1, callback=None)
    study.ask()
    check = StaleCheck(1)
    check(study)
    clock.value += 3
    check(study)
    assert states(study) == [FAIL] and stale_trials(study) == set()
