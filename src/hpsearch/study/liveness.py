"""Whether a running trial's worker is alive: its owner process, on this machine, and optuna's
heartbeats, on any.

Each trial names the process that owns it (host, pid, start time), which a rerun on the same machine
checks. With a database storage each running trial beats (optuna's thread writes a timestamp every
`heartbeat_interval` seconds); a worker that checks before its next trial fails those that have not
beaten for `grace_period` seconds, whichever machine ran them, as optuna's `Study.optimize` does.
Such a trial is marked beside the study (a finished trial's own attributes cannot change), so that
its slot of `n_trials` runs again.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil
import sqlalchemy

from hpsearch import compat
from hpsearch.errors import ConfigError, check_number
from hpsearch.study import schema

if TYPE_CHECKING:
    import optuna

DEFAULT_INTERVAL = 60
# Ten missed beats: a process paused for minutes (swapping, a laptop lid closed) is not taken for dead; the
# beat is a thread of its own, so a long evaluation or checkpoint never stops it.
DEFAULT_GRACE_PERIOD = 600
# A trial that ends within a second never beats: a beat is a database commit (~30 ms on SQLite), as much as a
# trivial trial's whole bookkeeping; its end is written anyway (and a rerun here recovers a dead one).
FIRST_BEAT_AFTER = 1.0
STALE_ERROR = "its worker stopped beating (heartbeat): the process froze or died, on this machine or another"


def this_process() -> dict[str, Any]:
    """This process, as a trial's owner: host, pid and start time (a pid is reused, its start time not)."""
    process = psutil.Process()
    return {"host": socket.gethostname(), "pid": process.pid, "started": process.create_time()}


def owner_is_dead(owner: dict[str, Any] | None) -> bool:
    """Whether a trial's owner is known dead: gone from this machine (another machine's: only heartbeats tell)."""
    if not owner:
        return True  # no one claimed it: made by a process that died before it could (older hpsearch)
    if owner.get("host") != socket.gethostname():
        return False  # another machine's trial: only its heartbeat can tell
    try:
        return psutil.Process(owner["pid"]).create_time() != owner["started"]
    except psutil.NoSuchProcess:
        return True


def settings(storage: Any, heartbeat_interval: Any, grace_period: Any, retry_stale_trials: Any) -> dict[str, int]:
    """The heartbeat settings of a database storage URL (hpsearch's defaults where not given); none for
    another storage, where giving them is a mistake (a storage object keeps its own)."""
    for name, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        check_number(name, value, 1, allowed=(None,), says=" (seconds), or None for the default")
    retries = retry_stale_trials
    check_number("retry_stale_trials", retries, 0)
    if not isinstance(storage, str):
        if heartbeat_interval is not None or grace_period is not None or retries:
            raise ConfigError(
                "`heartbeat_interval`, `grace_period` and `retry_stale_trials` set the heartbeats of a database "
                f"storage URL. Received: storage={storage!r}. Pass a URL (sqlite:///..., postgresql://...), or set "
                "them on your storage object: optuna.storages.RDBStorage(url, heartbeat_interval=..., "
                "grace_period=..., heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(...))."
            )
        return {}
    interval = heartbeat_interval or DEFAULT_INTERVAL
    grace = grace_period or max(DEFAULT_GRACE_PERIOD, 2 * interval)
    if grace < interval:
        raise ConfigError(
            "`grace_period` must be at least `heartbeat_interval`, or a live trial looks dead between two beats. "
            f"Received: grace_period={grace_period!r}, heartbeat_interval={interval!r}."
        )
    return {"heartbeat_interval": interval, "grace_period": grace, "retry_stale_trials": retries}


class Heartbeat:
    """A running trial's beat: the storage's `record_heartbeat` every `heartbeat_interval` seconds, as
    optuna's own thread does, but a daemon: it never keeps a process alive (Ctrl-C, a crashed search), and
    dies with it, which is what makes the trial stale."""

    def __init__(self, trial_id: int, storage: optuna.storages.BaseStorage):
        interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
        self._stop = threading.Event()
        self._thread = None
        if interval is not None:
            self._thread = threading.Thread(
                target=self._beat, args=(trial_id, storage, interval), name="hpsearch-heartbeat", daemon=True
            )
            self._thread.start()

    def _beat(self, trial_id: int, storage: Any, interval: int) -> None:
        if self._stop.wait(FIRST_BEAT_AFTER):
            return
        while True:
            storage.record_heartbeat(trial_id)
            if self._stop.wait(interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()


class StaleCheck:
    """`fail_stale` at most once a heartbeat interval (it costs a query), never without heartbeats. Also fails the
    running trials that never beat once this process has seen them so for a grace period and a first beat: optuna's
    check sees only trials that have beaten once, and a worker that froze or died in its trial's first second (one
    killed while it loads its model) never beats. Timed by this process's clock: another machine's may differ."""

    def __init__(self, interval: int | None):
        self.interval, self.last = interval, -math.inf
        self._unbeaten_since: dict[int, float] = {}  # trial id -> when this process first saw it running, unbeaten

    def __call__(self, study: optuna.Study) -> bool:
        """Whether it checked (and may have queued a stale trial again)."""
        if self.interval is None or time.monotonic() - self.last < self.interval:
            return False
        self.last = time.monotonic()
        fail_stale(study)
        self._fail_never_beaten(study)
        return True

    def _fail_never_beaten(self, study: optuna.Study) -> None:
        import optuna

        storage = compat.database(study)
        if not isinstance(storage, optuna.storages.RDBStorage) or storage.heartbeat_interval is None:
            return
        unbeaten, now = _never_beaten(storage, storage.get_study_id_from_name(study.study_name)), time.monotonic()
        self._unbeaten_since = {trial_id: self._unbeaten_since.get(trial_id, now) for trial_id in unbeaten}
        grace = (storage.grace_period or 2 * storage.heartbeat_interval) + FIRST_BEAT_AFTER
        callback = storage.get_heartbeat_stale_trial_callback()
        for trial_id, since in self._unbeaten_since.items():
            if now - since > grace:
                with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # another worker was first
                    if storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL) and callback:
                        callback(study, storage.get_trial(trial_id))


def fail_stale(study: optuna.Study) -> None:
    """Fail the running trials whose workers stopped beating (`on_stale` marks them)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _never_beaten(storage: optuna.storages.RDBStorage, study_id: int) -> list[int]:
    """The ids of the study's running trials that have not beaten yet (a query on optuna's tables: `compat`)."""
    query = sqlalchemy.text(compat.NEVER_BEATEN)
    with storage.engine.connect() as connection:
        return [row[0] for row in connection.execute(query, {"study": study_id})]


def on_stale(retries: int) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """optuna's callback for a trial its heartbeat check failed: marked; with `retries`, queued again with
    its parameters up to that many times (optuna's `RetryHeartbeatStaleTrialCallback`; the loop runs queued trials
    first)."""
    import optuna

    with warnings.catch_warnings():  # optuna marks it experimental; hpsearch's users chose none of it
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=retries) if retries else None

    def callback(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        study.set_user_attr(f"{schema.STALE}{frozen.number}", True)
        if retry is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                retry(study, frozen)

    return callback


def stale_trials(study: optuna.Study) -> set[int]:
    """The numbers of the trials the heartbeat check failed."""
    return {int(name[len(schema.STALE) :]) for name in study.user_attrs if name.startswith(schema.STALE)}
