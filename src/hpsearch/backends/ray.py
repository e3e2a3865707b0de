"""The Ray Tune backend: Ray's search algorithms and schedulers, on a local Ray or a cluster.

Ray drives the trials (`tune.Tuner`); each runs the same trial runner in a Ray worker and
reports its evaluations with `ray.tune.report`, so schedulers such as ASHA stop bad trials
early. A Tune callback in the driver mirrors every trial into the hpsearch study store, and
keeps the best trial's model (reported as its final checkpoint). The Ray experiment lives in
`<output_dir>/ray/<study_name>`; rerunning the same search restores it (`Tuner.restore`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.search import BasicVariantGenerator, sample

from hpsearch import store
from hpsearch.backends.base import Backend
from hpsearch.backends.randomness import stream_seed
from hpsearch.objective import ObjectiveError, check_values, is_better
from hpsearch.space import (
    Categorical,
    Dimension,
    Float,
    Int,
    Space,
    called_with_no_trial,
    format_hint,
    is_space,
    neutral_space,
    plain,
)
from hpsearch.trial import Trial, TrialPruned, TrialState

logger = logging.getLogger("hpsearch")
RAY_DIR = "ray"
_RAY_TRIAL_ID = "hpsearch:ray_trial_id"


def to_ray(dim: Dimension) -> sample.Domain:
    """A neutral dimension as a `ray.tune` search-space object."""
    if isinstance(dim, Categorical):
        return tune.choice(list(dim.choices))
    if isinstance(dim, Float):
        return tune.loguniform(dim.low, dim.high) if dim.log else tune.uniform(dim.low, dim.high)
    return tune.lograndint(dim.low, dim.high + 1) if dim.log else tune.randint(dim.low, dim.high + 1)


def to_neutral(domain: Any) -> Dimension | None:
    """The neutral dimension of a `ray.tune` domain (or grid), None where there is none (sample_from, randn)."""
    if isinstance(domain, Mapping) and set(domain) == {"grid_search"}:
        return Categorical(domain["grid_search"])
    if isinstance(domain, sample.Categorical):
        return Categorical(domain.categories)
    if not isinstance(domain, (sample.Float, sample.Integer)) or domain.lower is None or domain.upper is None:
        return None
    sampler = domain.get_sampler()
    sampler = getattr(sampler, "sampler", sampler)  # the sampler inside a quantized one
    log = isinstance(sampler, sample.LogUniform)
    if isinstance(domain, sample.Integer):
        return Int(int(domain.lower), int(domain.upper) - 1, log=log)
    return Float(float(domain.lower), float(domain.upper), log=log)


def _format_error(hp_space: Any, why: str) -> ValueError:
    return ValueError(
        "The ray backend takes `hp_space` as a dict of `ray.tune` search-space objects, e.g. "
        "`{'learning_rate': tune.loguniform(1e-6, 1e-4), 'per_device_train_batch_size': tune.choice([16, 32])}`, "
        f"a function returning one, or an `hpsearch.space` dict. Received: {hp_space!r} ({why})."
    )


def _param_space(hp_space: Any) -> dict[str, Any]:
    """The Ray param_space of an `hp_space`: a dict, or (as in transformers) a function called with None."""
    if is_space(hp_space):
        return {name: to_ray(dim) for name, dim in hp_space.items()}
    space = called_with_no_trial(hp_space, _format_error)
    if isinstance(space, list) or (isinstance(space, Mapping) and "parameters" in space and "method" in space):
        raise _format_error(hp_space, format_hint(space))
    if not isinstance(space, Mapping) or not space:
        raise _format_error(hp_space, "not a non-empty dict")
    for name, value in space.items():
        if isinstance(value, Mapping) and set(value) != {"grid_search"}:
            raise _format_error(hp_space, f"{name!r} is a dict, not a search-space object")
    return dict(space)


def _ray_trial(
    config: dict[str, Any], objective: Callable[[Trial], Any], direction: str, finished: dict[str, float | None]
) -> None:
    """One trial, in a Ray worker: the objective reports each evaluation; the last report carries
    the objective and, as its checkpoint, the trial's model if it offered one.

    `finished` holds the trials the store saw end (their objective, None if not completed): a
    restored experiment can be behind the store, and those must not run again.
    """
    ray_trial_id = tune.get_context().get_trial_id()
    if ray_trial_id in finished:
        if finished[ray_trial_id] is not None:
            tune.report({"objective": finished[ray_trial_id], "hpsearch_final": True})
        return
    params = {name: plain(value) for name, value in config.items()}
    kept: dict[str, Any] = {}

    def report(step: int, value: float) -> bool:
        tune.report({"objective": value, "hpsearch_step": step})
        return False  # a scheduler stops the trial by ending its worker

    def offer_model(value: float, save: Callable[[str], None]) -> None:
        if is_better(value, kept.get("value"), direction):
            kept["dir"] = kept.get("dir") or tempfile.mkdtemp(prefix="hpsearch-model-")
            shutil.rmtree(kept["dir"], ignore_errors=True)
            save(kept["dir"])
            kept["value"] = value

    number = int(ray_trial_id.rsplit("_", 1)[-1])
    trial = Trial(number, params, native=params, report=report, offer_model=offer_model)
    try:
        (value,) = check_values(objective(trial), 1)
    except TrialPruned:
        return
    checkpoint = tune.Checkpoint.from_directory(kept["dir"]) if "dir" in kept else None
    tune.report({"objective": value, "hpsearch_final": True}, checkpoint=checkpoint)
    if "dir" in kept:
        shutil.rmtree(kept["dir"], ignore_errors=True)


_ctrl_c = threading.Event()


@contextlib.contextmanager
def _ctrl_c_raises() -> Iterator[None]:
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


def _finished_ray_trials(study: optuna.Study) -> dict[str, float | None]:
    """Ray's id of each trial whose end the store recorded, with its objective (None if not completed)."""
    finished = {}
    for frozen in study.get_trials(deepcopy=False):
        record = store.to_record(frozen)
        if _RAY_TRIAL_ID in frozen.system_attrs and record.counts:
            finished[frozen.system_attrs[_RAY_TRIAL_ID]] = record.values[0] if record.values else None
    return finished


def _error_text(trial: Any) -> str:
    """A failed trial's error as Ray wrote it: its local error file (`get_error` reads the copy in
    the experiment's storage, which is synced later)."""
    error_file = trial.error_file
    if error_file and os.path.exists(error_file):
        return Path(error_file).read_text()
    return str(trial.get_error())


class _Mirror:
    """In the driver: records Ray's trials in the study store as they start, report and end, and
    keeps the best trial's model. `_Recorder` tells it what Tune does, wherever Tune runs."""

    def __init__(self, study: optuna.Study, space: Space, keeper: Any):
        self.study, self.space, self.keeper = study, space, keeper
        self.finished = _finished_ray_trials(study)  # as the store saw them before this run
        self._trials: dict[str, optuna.Trial] = {}

    def _record(self, ray_trial_id: str, config: dict[str, Any]) -> optuna.Trial:
        params = {name: plain(value) for name, value in config.items()}
        return store.start_trial(self.study, params, self.space, **{_RAY_TRIAL_ID: ray_trial_id})

    def started(self, ray_trial_id: str, config: dict[str, Any]) -> None:
        if ray_trial_id not in self.finished:  # else Ray lost its record when the driver died; the store has it
            self._trials[ray_trial_id] = self._record(ray_trial_id, config)

    def reported(self, ray_trial_id: str, step: int, value: float) -> None:
        if ray_trial_id in self._trials:
            self._trials[ray_trial_id].report(value, step)

    def completed(self, ray_trial_id: str, result: dict[str, Any], checkpoint: tune.Checkpoint | None) -> None:
        recorded = self._trials.pop(ray_trial_id, None)
        if recorded is None:
            return
        if not result.get("hpsearch_final"):
            store.finish(self.study, recorded, TrialState.PRUNED)  # stopped by the scheduler
            return
        store.finish(self.study, recorded, TrialState.COMPLETE, [result["objective"]])
        if checkpoint is None:
            return
        if self.keeper is not None and not is_better(self.study.best_value, result["objective"], self.direction):
            staging = self.keeper.staging_dir(recorded.number)
            checkpoint.to_directory(str(staging))
            self.keeper.promote(recorded.number, result["objective"], recorded.params)
        checkpoint.filesystem.delete_dir(checkpoint.path)  # no model piles up per trial

    @property
    def direction(self) -> str:
        return self.study.direction.name.lower()

    def failed(self, ray_trial_id: str, error: str) -> None:
        recorded = self._trials.pop(ray_trial_id, None)
        if recorded is not None:
            store.record_error(self.study, recorded._trial_id, error)
            store.finish(self.study, recorded, TrialState.FAILED)

    def reconcile(self, results: tune.ResultGrid) -> None:
        """Record the trials Ray finished whose end the store missed (the driver died in between)."""
        finished = _finished_ray_trials(self.study)
        for result in results:
            ray_trial_id = result.metrics.get("trial_id")
            if ray_trial_id is None or ray_trial_id in finished:
                continue
            recorded = self._record(ray_trial_id, result.config)
            history = result.metrics_dataframe
            if history is not None and "hpsearch_step" in history:
                for step, value in history[["hpsearch_step", "objective"]].dropna().itertuples(index=False):
                    recorded.report(float(value), int(step))
            if result.error is not None:
                store.record_error(self.study, recorded._trial_id, str(result.error))
                store.finish(self.study, recorded, TrialState.FAILED)
            elif result.metrics.get("hpsearch_final"):
                store.finish(self.study, recorded, TrialState.COMPLETE, [result.metrics["objective"]])
            else:
                store.finish(self.study, recorded, TrialState.PRUNED)


_mirrors: dict[str, _Mirror] = {}  # study name -> the mirror of the search this driver runs


@ray.remote(num_cpus=0)
class _Outbox:
    """Under Ray Client, where Tune's loop runs in an actor on the cluster: the events of its
    `_Recorder`, until the driver takes them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple]] = []

    def put(self, event: tuple[str, tuple]) -> None:
        self.events.append(event)

    def take(self) -> list[tuple[str, tuple]]:
        events, self.events = self.events, []
        return events


def _outbox_name(study_name: str) -> str:
    return f"hpsearch-events-{study_name}"


@contextlib.contextmanager
def _mirroring(mirror: _Mirror) -> Iterator[None]:
    """The mirror of this driver's search, found by the `_Recorder` in this process or, under Ray
    Client, fed from its outbox by a thread while Tune runs."""
    _mirrors[mirror.study.study_name] = mirror
    stop = threading.Event()
    drain = None
    if ray.util.client.ray.is_connected():
        outbox = _Outbox.options(name=_outbox_name(mirror.study.study_name)).remote()

        def deliver() -> None:
            for method, args in ray.get(outbox.take.remote()):
                getattr(mirror, method)(*args)

        def keep_delivering() -> None:
            while not stop.wait(0.5):
                deliver()

        drain = threading.Thread(target=keep_delivering, name="hpsearch-ray-events", daemon=True)
        drain.start()
    try:
        yield
    finally:
        del _mirrors[mirror.study.study_name]
        if drain is not None:
            stop.set()
            drain.join()
            deliver()
            ray.kill(outbox)


class _Recorder(tune.Callback):
    """Tells the driver's `_Mirror` what Tune does with each trial. It runs wherever Tune's loop
    runs: in the driver (calling the mirror), or under Ray Client in an actor on the cluster
    (sending through the outbox). Ray pickles it with the experiment (`tuner.pkl`), so it keeps
    the study's name, never its storage, whose URL may hold a password."""

    def __init__(self, study_name: str):
        self.study_name = study_name
        self.mistake: str | None = None
        self._outbox: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_outbox": None, "mistake": None}  # a rerun starts with the code fixed

    def _send(self, method: str, *args: Any) -> None:
        mirror = _mirrors.get(self.study_name)
        if mirror is not None:
            getattr(mirror, method)(*args)
            return
        if self._outbox is None:
            self._outbox = ray.get_actor(_outbox_name(self.study_name))
        self._outbox.put.remote((method, args))

    def on_step_end(self, iteration, trials, **info):
        if _ctrl_c.is_set():
            raise KeyboardInterrupt
        if self.mistake is not None:
            raise ObjectiveError(self.mistake)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._send("started", trial.trial_id, dict(trial.config))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "hpsearch_step" in result:
            self._send("reported", trial.trial_id, result["hpsearch_step"], result["objective"])

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        final = {key: result[key] for key in ("objective", "hpsearch_final") if key in result}
        self._send("completed", trial.trial_id, final, trial.checkpoint)

    def on_trial_error(self, iteration, trials, trial, **info):
        error = _error_text(trial)
        self._send("failed", trial.trial_id, error)
        if mistake := re.search(rf"{ObjectiveError.__name__}: (.*)", error):
            self.mistake = mistake[1]  # a mistake in the code: ends the search at the next step


_CLIENT_ATTEMPTS = 5


def _join(address: str) -> None:
    """Connect to the cluster at `address`. Under Ray Client the cluster's proxier sometimes loses the
    server it forks for a connection (ray-project/ray#63202, a gRPC fork race): connect again."""
    for attempt in range(1, _CLIENT_ATTEMPTS + 1):
        try:
            ray.init(address=address)
            return
        except ConnectionAbortedError as e:
            if attempt == _CLIENT_ATTEMPTS:
                raise
            reason = str(e).strip().splitlines()[0]
            logger.warning(
                f"Ray Client: the cluster could not start this connection's server ({reason}); "
                f"connecting again ({attempt}/{_CLIENT_ATTEMPTS - 1})."
            )


class RayBackend(Backend):
    """Ray Tune: `search_alg=` and `scheduler=` (e.g. `ASHAScheduler`) as Ray takes them; `seed=`
    for reproducible proposals of Ray's default random search.

    With no cluster it starts a local Ray with this machine's CPUs and shuts it down after; with
    `address=` (or `RAY_ADDRESS`) it joins that cluster and leaves it running.
    """

    name = "ray"
    max_objectives = 1

    def __init__(
        self,
        hp_space: Any,
        directions: Sequence[str],
        storage: Any,
        study_name: str,
        output_dir: str | None = None,
        address: str | None = None,
        resources_per_trial: dict[str, float] | None = None,
        scheduler: Any = None,
        search_alg: Any = None,
        max_concurrent_trials: int | None = None,
        storage_path: str | None = None,
        seed: int | None = None,
    ):
        super().__init__(hp_space, directions, storage, study_name, output_dir)
        self.ray_space = _param_space(self.default_space() if hp_space is None else hp_space)
        self.space = neutral_space(self.ray_space, to_neutral)
        self.address = address
        self.resources = resources_per_trial
        self.scheduler, self.search_alg = scheduler, search_alg
        self.max_concurrent_trials = max_concurrent_trials
        self.storage_path = storage_path
        if seed is not None and search_alg is not None:
            raise ValueError(
                f"Pass `seed` or `search_alg`, not both: give the seed to your search algorithm. Received: "
                f"seed={seed!r}, search_alg={search_alg!r}."
            )
        self.seed = seed

    @classmethod
    def default_space(cls) -> dict[str, Any]:
        """transformers' Ray default, with the seed an integer."""
        return {
            "learning_rate": tune.loguniform(1e-6, 1e-4),
            "num_train_epochs": tune.choice(list(range(1, 6))),
            "seed": tune.randint(1, 41),
            "per_device_train_batch_size": tune.choice([4, 8, 16, 32, 64]),
        }

    def param_space(self) -> dict[str, Dimension | None]:
        return {name: self.space.get(name) for name in self.ray_space}

    @property
    def can_prune(self) -> bool:
        return self.scheduler is not None and not isinstance(self.scheduler, tune.schedulers.FIFOScheduler)

    def _connect(self) -> bool:
        """Join the cluster at `address` / RAY_ADDRESS, or start a local Ray; False if already connected."""
        if ray.is_initialized():
            return False
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # else Ray writes a token under ~/.ray
        address = self.address or os.environ.get("RAY_ADDRESS")
        if address:
            _join(address)
        else:  # workers import what this process can: its `sys.path`, folders the script added included
            path = [os.path.abspath(p or ".") for p in sys.path if os.path.isdir(p or ".")]
            path += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            ray.init(
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(path))}},
            )
        return True

    def drive(self, objective: Callable[[Trial], Any], search: Any) -> tune.ResultGrid | None:
        """Restore the Ray experiment of an earlier run, or start one, until `n_trials` trials finished.

        A driver killed at the wrong moment can leave Ray's saved state one trial short (its
        searcher counted a trial its trial list never held); the missing trials then run in a
        follow-up experiment, `<study_name>-1`, and so on. The trials the store saw end never run
        again, even where Ray's restored state is behind it.
        """
        local = Path(self.output_dir or tempfile.mkdtemp(prefix="hpsearch-")).resolve() / RAY_DIR
        root = self.storage_path or str(local)
        # Save Ray's experiment state at every step, so that a killed driver's rerun repeats no trial
        os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
        connected = self._connect()
        results = None
        mirror = _Mirror(self.study, self.space, search.keeper)
        try:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
            for attempt in range(search.n_trials + 1):
                name = self.study_name if attempt == 0 else f"{self.study_name}-{attempt}"
                trainable = tune.with_parameters(
                    _ray_trial,
                    objective=objective,
                    direction=self.directions[0],
                    finished=_finished_ray_trials(self.study),
                )
                trainable = tune.with_resources(trainable, self.resources or {"cpu": 1, "gpu": gpus})
                experiment = os.path.join(root, name)
                remaining = search.n_trials - search.finished()
                if tune.Tuner.can_restore(experiment):
                    tuner = tune.Tuner.restore(
                        experiment,
                        trainable,
                        resume_unfinished=True,
                        restart_errored=True,
                        param_space=self.ray_space,
                    )
                elif remaining > 0:
                    tuner = self._tuner(trainable, remaining, root, name, search)
                else:
                    break
                with _ctrl_c_raises(), _mirroring(mirror):
                    results = tuner.fit()
                mirror.reconcile(results)
        finally:
            if connected:
                ray.shutdown()
        if results is not None and len(results) and len(results.errors) == len(results):
            raise RuntimeError(f"All {len(results)} trials of this search failed; the first: {results.errors[0]!r}")
        return results

    def _tuner(self, trainable: Any, n_trials: int, root: str, name: str, search: Any) -> tune.Tuner:
        search_alg, max_concurrent = self.search_alg, self.max_concurrent_trials
        if search_alg is None:  # Ray's default random search, with a random state of its own
            random_state = stream_seed(self.seed, len(self.study.get_trials(deepcopy=False)))
            search_alg = BasicVariantGenerator(max_concurrent=max_concurrent or 0, random_state=random_state)
            max_concurrent = None
        return tune.Tuner(
            trainable,
            param_space=self.ray_space,
            tune_config=tune.TuneConfig(
                metric="objective",
                mode="max" if self.directions[0] == "maximize" else "min",
                num_samples=n_trials,
                scheduler=self.scheduler,
                search_alg=search_alg,
                max_concurrent_trials=max_concurrent,
                time_budget_s=search.timeout,
                reuse_actors=True,  # a worker's imports (torch, transformers) serve its next trials too
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=root,
                callbacks=[_Recorder(self.study_name)],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                verbose=1 if search.show_progress else 0,
            ),
        )
