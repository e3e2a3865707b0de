"""Ray Tune as an executor: Tune's controller places the trials on a local Ray or a cluster, and runs the user's
scheduler and search algorithm (what to try and when to stop: the `ray` backend's, `backends/ray`).

Each trial runs the same objective in a Ray worker (`ray_trainable`, reporting to Tune with `ray.tune.report`, so
schedulers such as ASHA stop bad trials early); a Tune callback in the driver mirrors every trial into the study
through `Trials`, as every path's trials are recorded, and keeps the best trial's model (reported as its final
checkpoint) (`ray_tune`; under Ray Client through `ray_client`). The Ray experiment lives in
`<output_dir>/ray/<study_name>`; rerunning the same search restores it (`Tuner.restore`).
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.search import BasicVariantGenerator

from hpsearch.backends.randomness import stream_seed
from hpsearch.backends.ray import PAUSING_SCHEDULERS, RayBackend
from hpsearch.executors.in_process import InProcess
from hpsearch.executors.ray_client import mirroring
from hpsearch.executors.ray_trainable import NEXT, ray_trial
from hpsearch.executors.ray_tune import Mirror, Recorder, UserStop, ctrl_c_raises, finished_ray_trials, ray_numbers
from hpsearch.loop import failures
from hpsearch.loop.searchloop import SearchLoop
from hpsearch.study import schema

logger = logging.getLogger(__name__)
RAY_DIR = "ray"


class RayTune(InProcess):
    """Ray Tune places the trials (its controller runs in this process, or under Ray Client on the cluster); the
    study records them as every executor's. With no cluster it starts a local Ray with this machine's CPUs and shuts it
    down after; with `address=` (or `RAY_ADDRESS`) it joins that cluster and leaves it running."""

    def drive(self, loop: SearchLoop) -> tune.ResultGrid | None:
        return Experiments(loop.backend, loop).run()


class Experiments:
    """The Ray experiments of one run of the search: Tune's `Tuner` on the backend's space, scheduler and search
    algorithm, its trials mirrored into the study."""

    def __init__(self, ray_backend: RayBackend, loop: SearchLoop) -> None:
        self.ray, self.loop = ray_backend, loop
        self._user_stop: UserStop | None = None  # the latest experiment's

    def _connect(self) -> bool:
        """Join the cluster at `address` / RAY_ADDRESS, or start a local Ray; False if already connected."""
        if ray.is_initialized():
            return False
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # else Ray writes a token under ~/.ray
        address = self.ray.address or os.environ.get("RAY_ADDRESS")
        if address:
            _join(address)
        else:  # workers import what this process can: its `sys.path`, folders the script added included
            path = [os.path.abspath(p or ".") for p in sys.path if os.path.isdir(p or ".")]
            path += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            ray.init(
                address="local",  # a Ray of our own, even where another one (`ray start`) runs here
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(path))}},
            )
        return True

    def run(self) -> tune.ResultGrid | None:
        """Restore the Ray experiment of an earlier run, or start one, until `n_trials` trials finished.

        A driver killed at the wrong moment can leave Ray's saved state one trial short (its
        searcher counted a trial its trial list never held); the missing trials then run in a
        follow-up experiment, `<name>-1`, and so on (none once your `stop` ended the experiment). The trials
        the store saw end never run again, even where Ray's restored state is behind it.
        """
        settings, trials, loop = self.ray.settings, self.loop.trials, self.loop
        local = Path(settings.output_dir or tempfile.mkdtemp(prefix="hpsearch-")).resolve() / RAY_DIR
        root = self.ray.storage_path or str(local)
        # Save Ray's experiment state at every step, so that a killed driver's rerun repeats no trial
        os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
        if self.ray.run_options["progress_reporter"] is not None:  # Ray's newer output ignores it, with a warning
            os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        connected = self._connect()
        results = None
        mirror = Mirror(trials, self.ray.space)
        try:
            for attempt in range(settings.n_trials + 1):
                name = self.ray.experiment_name if attempt == 0 else f"{self.ray.experiment_name}-{attempt}"
                tuner = self._experiment(loop, root, name, attempt)
                if tuner is None:
                    break
                with ctrl_c_raises(), mirroring(mirror):
                    results = tuner.fit()
                mirror.reconcile(results)
                mirror.unstarted()
                if self._user_stop is not None and self._user_stop.stop_all():
                    break
        finally:
            if connected:
                ray.shutdown()
        if results is not None:
            failures.check_run([failure for r in results if (failure := _failure(r))], len(results))
        return results

    def _trainable(self, loop: SearchLoop) -> Any:
        """`ray_trial` with what it needs of this run (the store's view of Ray's trials) and its resources."""
        trials = loop.trials
        trainable = tune.with_parameters(
            ray_trial,
            objective=loop.objective,
            direction=self.ray.directions[0],
            finished=finished_ray_trials(trials.study),
            numbers={**ray_numbers(trials.study), NEXT: trials.created()},
            checkpoints=isinstance(self.ray.scheduler, PAUSING_SCHEDULERS),
            catch=self.ray.settings.catch,
            judged=self.ray.judged(),
        )
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        return tune.with_resources(trainable, self.ray.resources or {"cpu": 1, "gpu": gpus})

    def _experiment(self, loop: SearchLoop, root: str, name: str, attempt: int) -> tune.Tuner | None:
        """Ray's experiment `name` restored where Ray saved one, else a new one for the trials left (None: none)."""
        trainable, experiment = self._trainable(loop), os.path.join(root, name)
        if tune.Tuner.can_restore(experiment):
            return tune.Tuner.restore(
                experiment, trainable, resume_unfinished=True, restart_errored=True, param_space=self.ray.ray_space
            )
        trials = loop.trials
        remaining = self.ray.settings.n_trials - trials.finished()
        if remaining <= 0:
            return None
        if attempt > 0:
            logger.warning(f"Ray's experiment ended {remaining} trial(s) short; {name} runs them.")
        return self._tuner(trainable, remaining, root, name, trials.created())

    def _tuner(self, trainable: Any, n_trials: int, root: str, name: str, stream: int) -> tune.Tuner:
        # a copy: a search algorithm serves one experiment (a follow-up one gets a fresh copy)
        search_alg, max_concurrent = copy.deepcopy(self.ray.search_alg), self.ray.max_concurrent_trials
        if search_alg is None:  # Ray's default random search, with a random state of its own
            random_state = stream_seed(self.ray.seed, stream)
            search_alg = BasicVariantGenerator(max_concurrent=max_concurrent or 0, random_state=random_state)
            max_concurrent = None
        metric, mode = self.ray.metric_and_mode()
        self._user_stop = UserStop(self.ray.stop) if self.ray.stop is not None else None
        recorder = Recorder(self.ray.settings.study_name, self.ray.max_in_a_row, self._user_stop)
        return tune.Tuner(
            trainable,
            param_space=self.ray.ray_space,
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=mode,
                num_samples=n_trials,
                scheduler=self.ray.tune_scheduler(),
                search_alg=search_alg,
                max_concurrent_trials=max_concurrent,
                time_budget_s=self.ray.time_budget_s,
                **self.ray.tune_options,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=root,
                callbacks=[recorder, *self.ray.callbacks],
                stop=self._user_stop,
                checkpoint_config=self.ray.checkpoint_config,
                failure_config=tune.FailureConfig(max_failures=self.ray.max_failures),
                verbose=self.ray.verbose,
                **self.ray.run_options,
            ),
        )


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


def _failure(result: tune.Result) -> tuple[dict[str, Any], Any] | None:
    """A trial's parameters and its error, if it failed: in its own code (its last report says so) or as Ray ran it."""
    error = result.error if result.error is not None else (result.metrics or {}).get(schema.RAY_FAILED)
    return None if error is None else (result.config, error)
