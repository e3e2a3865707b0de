"""Tune's side of Ray Tune's executor (`executors.ray`): how Tune's trials reach the study (the trainable they run is
`ray_trainable`).

A Tune callback (`Recorder`) runs wherever Tune's loop runs; it tells the driver's `Mirror`
what Tune does with each trial, directly or (Ray Client, where Tune runs on the cluster)
through a named actor the driver drains (`ray_client`). The mirror records the trials through the engine's
`Trials`, as every backend's trials are recorded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.utils import flatten_dict

from hpsearch import compat
from hpsearch.errors import ObjectiveError, SearchFailed, TrialError
from hpsearch.executors.ray_client import mirrors, outbox_name
from hpsearch.executors.ray_trainable import place
from hpsearch.loop.failures import FailurePolicy
from hpsearch.space import Space, plain
from hpsearch.study import schema, store
from hpsearch.study.lifecycle import LiveTrial, Trials
from hpsearch.trial import TrialState

logger = logging.getLogger(__name__)


def ray_numbers(study: optuna.Study) -> dict[str, int]:
    """Ray's id of each trial the store holds, with its number there."""
    return {
        schema.fact(frozen, schema.RAY_TRIAL_ID): frozen.number
        for frozen in study.get_trials(deepcopy=False)
        if schema.fact(frozen, schema.RAY_TRIAL_ID) is not None
    }


_ctrl_c = threading.Event()


@contextlib.contextmanager
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt out of `Tuner.fit`, as in the other backends' loops.

    Ray's own handler would end the run as if it had finished, and Ray's waits can swallow a
    KeyboardInterrupt, so Ctrl-C is also noted and raised again at Tune's next step.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_ctrl_c(signum: int, frame: Any) -> None:
        _ctrl_c.set()
        raise KeyboardInterrupt

    _ctrl_c.clear()
    ray_handler = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if ray_handler is None:
            del os.environ["TUNE_DISABLE_SIGINT_HANDLER"]
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = ray_handler


def finished_ray_trials(study: optuna.Study) -> dict[str, float | None]:
    """Ray's id of each trial whose end the store recorded, with its objective (None if not completed)."""
    finished = {}
    for frozen in study.get_trials(deepcopy=False):
        record = store.to_record(frozen)
        ray_trial_id = schema.fact(frozen, schema.RAY_TRIAL_ID)
        if ray_trial_id is not None and record.counts:
            finished[ray_trial_id] = record.values[0] if record.values else None
    return finished


class Mirror:
    """In the driver: records Ray's trials in the study as they start, report and end (through the
    engine's `Trials`, which also keeps the best model). `Recorder` tells it what Tune does."""

    def __init__(self, trials: Trials, space: Space):
        self.trials, self.space = trials, space
        self.finished = finished_ray_trials(trials.study)  # as the store saw them before this run
        self._live: dict[str, LiveTrial] = {}
        self._steps: dict[str, set[int]] = {}  # the steps each trial reported

    def _record(self, ray_trial_id: str, config: dict[str, Any]) -> LiveTrial:
        params = {name: plain(value) for name, value in config.items()}
        return self.trials.create(params, self.space, **{schema.RAY_TRIAL_ID: ray_trial_id})

    def started(self, ray_trial_id: str, config: dict[str, Any]) -> None:
        # not when Ray lost its record when the driver died (the store has it), nor when a trial Ray paused,
        # restored or exploited (PBT: another config, another trial's checkpoint) starts again: it goes on
        if ray_trial_id not in self.finished and ray_trial_id not in self._live:
            self._live[ray_trial_id] = self._record(ray_trial_id, config)

    def reported(self, ray_trial_id: str, step: int, value: float) -> None:
        steps = self._steps.setdefault(ray_trial_id, set())
        if ray_trial_id in self._live and step not in steps:  # once a step: the final report repeats the last
            steps.add(step)
            self.trials.report(self._live[ray_trial_id], step, value)

    def completed(self, ray_trial_id: str, result: dict[str, Any], checkpoint: tune.Checkpoint | None) -> None:
        self._end(ray_trial_id, result, None, checkpoint)

    def failed(self, ray_trial_id: str, error: str) -> None:
        self._end(ray_trial_id, {}, error)

    def _end(
        self, ray_trial_id: str, result: dict[str, Any], error: str | None, model: tune.Checkpoint | None = None
    ) -> None:
        """End the trial as its last report says (`ray_trainable`): failed with `error` (Ray's, or its own code's,
        which it reported), completed with its objective (and its model, a checkpoint, offered to the engine's
        keeper), or else stopped by the scheduler."""
        live = self._live.pop(ray_trial_id, None)
        if live is None:
            return
        error = error if error is not None else result.get(schema.RAY_FAILED)
        if error is not None:
            self.trials.finish(live, TrialState.FAILED, error=error)
        elif not result.get(schema.RAY_FINAL):
            self.trials.finish(live, TrialState.PRUNED)
        else:
            if model is not None and result.get(schema.RAY_MODEL):  # else a checkpoint of its training
                self.trials.offer_model(live, result["objective"], lambda directory: model.to_directory(directory))
                model.filesystem.delete_dir(model.path)  # no model piles up per trial
            self.trials.finish(live, TrialState.COMPLETE, [result["objective"]])

    def reconcile(self, results: tune.ResultGrid) -> None:
        """Record the trials Ray finished whose end the store missed (the driver died in between)."""
        finished = finished_ray_trials(self.trials.study)
        for result in results:
            ray_trial_id = result.metrics.get("trial_id")
            if ray_trial_id is None or ray_trial_id in finished:
                continue
            if ray_trial_id not in self._live:
                self._live[ray_trial_id] = self._record(ray_trial_id, result.config)
            history = result.metrics_dataframe
            if history is not None and schema.RAY_STEP in history:
                for step, value in history[[schema.RAY_STEP, "objective"]].dropna().itertuples(index=False):
                    self.reported(ray_trial_id, int(step), float(value))  # once a step, as while it ran
            self._end(ray_trial_id, result.metrics, None if result.error is None else str(result.error))

    def unstarted(self) -> None:
        """After the experiment: the trials told before their turn (`Recorder.on_trial_start`) that never started
        (its time ran out, or it stopped) are failed as not run: their slots of `n_trials` are free."""
        for live in self._live.values():
            self.trials.finish(live, TrialState.FAILED, error="not run: the search ended first", interrupted=True)
        self._live.clear()


class UserStop(tune.Stopper):
    """The search's `stop`, as Ray takes it (result thresholds as a dict, a function of a trial's id and result, or a
    `Stopper`), noting the trials it ended: they completed, at their last report (a scheduler's stop is a pruning)."""

    def __init__(self, stop: Any):
        self.stop = stop
        self.ended: set[str] = set()
        self._missing: set[str] = set()  # the thresholds warned of: no result has them

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if isinstance(self.stop, Mapping):
            flat = flatten_dict(result)
            for name in self.stop.keys() - flat.keys() - self._missing:
                self._missing.add(name)
                logger.warning(f"`stop` names {name!r}, which trials do not report; they report {sorted(flat)}.")
            hit = any(name in flat and flat[name] >= value for name, value in self.stop.items())
        else:
            hit = bool(self.stop(trial_id, result))
        if hit:
            self.ended.add(trial_id)
        return hit

    def stop_all(self) -> bool:
        return isinstance(self.stop, tune.Stopper) and self.stop.stop_all()


class Recorder(tune.Callback):
    """Tells the driver's `Mirror` what Tune does with each trial. It runs wherever Tune's loop
    runs: in the driver (calling the mirror), or under Ray Client in an actor on the cluster
    (sending through the outbox). Ray pickles it with the experiment (`tuner.pkl`), so it keeps
    the study's name, never its storage, whose URL may hold a password."""

    def __init__(self, study_name: str, max_consecutive_failed_trials: int | None, stop: UserStop | None = None):
        self.study_name = study_name
        self.user_stop = stop  # the trials the user's `stop` ended
        self.stop: Exception | None = None  # what ends the search at Tune's next step
        self._failures = FailurePolicy(max_consecutive_failed_trials)
        self._outbox: Any = None
        self._announced: set[str] = set()  # the trials told as started

    def __getstate__(self) -> dict[str, Any]:  # a rerun starts with the code fixed
        fresh = FailurePolicy(self._failures.max_in_a_row)
        return {**self.__dict__, "_outbox": None, "stop": None, "_failures": fresh, "_announced": set()}

    def _send(self, method: str, *args: Any) -> None:
        mirror = mirrors.get(self.study_name)
        if mirror is not None:
            getattr(mirror, method)(*args)
            return
        if self._outbox is None:
            self._outbox = ray.get_actor(outbox_name(self.study_name))
        self._outbox.put.remote((method, args))

    def on_step_end(self, iteration, trials, **info):
        if _ctrl_c.is_set():
            raise KeyboardInterrupt
        if self.stop is not None:
            raise self.stop

    def on_trial_start(self, iteration, trials, trial, **info):
        """The trial, and before it those of its experiment that Ray made before it and has not started yet: the
        store numbers them in Ray's order (`store_number`)."""
        experiment, index = place(trial.trial_id)
        earlier = [t for t in trials if place(t.trial_id)[0] == experiment and place(t.trial_id)[1] <= index]
        for each in sorted(earlier, key=lambda t: place(t.trial_id)[1]):
            if each.trial_id not in self._announced:
                self._announced.add(each.trial_id)
                self._send("started", each.trial_id, dict(each.config))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if schema.RAY_STEP in result and schema.RAY_FAILED not in result:  # a failure's report is no evaluation
            self._send("reported", trial.trial_id, result[schema.RAY_STEP], result["objective"])

    def on_trial_complete(self, iteration, trials, trial, **info):
        """The trial's function returned (completed, or failed in its own code: its last report says which), or Ray
        stopped it: its scheduler (pruned), or the user's `stop` (completed, at its last report)."""
        result, checkpoint = compat.ray_trial_end(trial)
        kept = ("objective", schema.RAY_FINAL, schema.RAY_MODEL, schema.RAY_FAILED)
        end = {key: result[key] for key in kept if key in result}
        stopped = self.user_stop is not None and trial.trial_id in self.user_stop.ended
        if stopped and "objective" in end and schema.RAY_FAILED not in end:
            end[schema.RAY_FINAL] = True
        self._send("completed", trial.trial_id, end, checkpoint)
        if stops := result.get(schema.RAY_STOPS):  # a mistake in the code, an error outside `catch`
            kind, _, message = stops.partition(": ")
            self.stop = {"ObjectiveError": ObjectiveError, "TrialError": TrialError}[kind](message)
            return
        self._ended(trial, result.get(schema.RAY_FAILED))

    def on_trial_error(self, iteration, trials, trial, **info):
        """Ray gave up on a trial whose run raised: its worker or node died more often than `max_failures` allows,
        or Ray could not run it at all (a trial's own errors are reported, not raised: `ray_trainable`)."""
        error = compat.ray_trial_error(trial)
        self._send("failed", trial.trial_id, error)
        self._ended(trial, error)

    def _ended(self, trial: Any, error: str | None) -> None:
        try:
            self._failures.ended(dict(trial.config), None if error is None else error.strip().splitlines()[-1])
        except SearchFailed as stop:  # raised in Tune's loop, at its next step
            self.stop = stop
