"""The Ray Tune backend, what to try and when to stop a trial: the Ray space, Ray's search algorithms and schedulers,
and `tune.run`'s keywords as Ray means them. Where the trials run is Tune's (the `executors.ray` executor: its
controller places them on a local Ray or a cluster, and runs the scheduler and search algorithm given here).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from ray import tune
from ray.tune.search import sample

from hpsearch.backends import ray_options
from hpsearch.backends.base import Backend, StudyView
from hpsearch.errors import ConfigError, check_number
from hpsearch.loop.fidelity import PROGRESS_END, REDUCTION_FACTOR
from hpsearch.settings import SearchSettings
from hpsearch.space import (
    Categorical,
    Dimension,
    Float,
    Int,
    called_with_no_trial,
    format_hint,
    is_space,
    neutral_space,
)
from hpsearch.study import schema

logger = logging.getLogger(__name__)
NO_LAST_STEP = 2**40  # ASHA's `max_t` where no rung ends a trial: beyond any step a trial reports
# Schedulers that pause trials or start them from another's checkpoint: the trials report their checkpoints
PAUSING_SCHEDULERS = (tune.schedulers.PopulationBasedTraining, tune.schedulers.HyperBandScheduler)


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


def _format_error(hp_space: Any, why: str) -> ConfigError:
    return ConfigError(
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


class RayBackend(Backend):
    """Ray Tune: `search_alg=` and `scheduler=` as Ray takes them (default: `ASHAScheduler` at the
    search's rungs, on the trial's progress); `seed=` for reproducible proposals of Ray's default
    random search. It takes `tune.run`'s keywords too, which transformers' own Ray search forwards
    (`ray_options`): Ray's meaning, translated where hpsearch does the job itself.

    Its trials run where Tune places them (`executors.ray`): on a local Ray with this machine's CPUs, or with
    `address=` (or `RAY_ADDRESS`) on that cluster. A trial whose worker or node dies runs again from its last
    checkpoint, up to `max_failures` times.
    """

    name = "ray"
    max_objectives = 1

    def __init__(
        self,
        hp_space: Any,
        settings: SearchSettings,
        address: str | None = None,
        resources_per_trial: dict[str, float] | None = None,
        scheduler: Any = None,
        search_alg: Any = None,
        max_concurrent_trials: int | None = None,
        storage_path: str | None = None,
        seed: int | None = None,
        # tune.run's own (`ray_options`)
        name: str | None = None,
        metric: str | None = None,
        mode: str | None = None,
        stop: Any = None,
        max_failures: int = ray_options.DEFAULT_MAX_FAILURES,
        fail_fast: bool | str = False,
        keep_checkpoints_num: int | None = None,
        checkpoint_score_attr: str | None = None,
        checkpoint_config: tune.CheckpointConfig | None = None,
        local_dir: str | None = None,
        time_budget_s: float | None = None,
        callbacks: list[tune.Callback] | None = None,
        progress_reporter: Any = None,
        log_to_file: bool | str | tuple[str, str] = False,
        verbose: int | None = None,
        storage_filesystem: Any = None,
        sync_config: Any = None,
        reuse_actors: bool | None = None,
        trial_name_creator: Any = None,
        trial_dirname_creator: Any = None,
    ):
        super().__init__(hp_space, settings)
        self.ray_space = _param_space(self.default_space() if hp_space is None else hp_space)
        self.space = neutral_space(self.ray_space, to_neutral)
        self.address = address
        self.resources = resources_per_trial
        self.scheduler, self.search_alg = _named(scheduler, search_alg)
        self.max_concurrent_trials = max_concurrent_trials
        self.storage_path = _results_path(storage_path, local_dir)
        if seed is not None and search_alg is not None:
            raise ConfigError(
                f"Pass `seed` or `search_alg`, not both: give the seed to your search algorithm. Received: "
                f"seed={seed!r}, search_alg={search_alg!r}."
            )
        self.seed = seed
        self.experiment_name = name or settings.study_name
        if mode not in (None, "min", "max") or (mode is not None and metric is None):
            raise ConfigError(
                f"`mode` ('min' or 'max') goes with `metric`, the reported metric Ray's scheduler and search algorithm "
                f"judge by (the objective's way is `direction`). Received: metric={metric!r}, mode={mode!r}."
            )
        self.metric, self.mode, self.stop = metric, mode, stop
        check_number("max_failures", max_failures, -1, says=" (-1: no limit)")
        self.max_failures = max_failures
        self.max_in_a_row = 1 if fail_fast else settings.max_consecutive_failed_trials  # Ray's: the first fails it
        self.checkpoint_config = ray_options.checkpoint_config(
            checkpoint_config, keep_checkpoints_num, checkpoint_score_attr
        )
        if time_budget_s is not None and settings.timeout is not None:
            raise ConfigError(
                f"Pass `timeout` or `time_budget_s` (Ray's name for it), not both. Received: "
                f"timeout={settings.timeout!r}, time_budget_s={time_budget_s!r}."
            )
        self.time_budget_s = settings.timeout if time_budget_s is None else time_budget_s
        self.callbacks = list(callbacks or [])
        self.verbose = (1 if settings.show_progress else 0) if verbose is None else verbose
        self.run_options = dict(  # to Ray's `RunConfig` as they are
            progress_reporter=progress_reporter,
            log_to_file=log_to_file,
            storage_filesystem=storage_filesystem,
            sync_config=sync_config,
        )
        if reuse_actors is None:  # a worker's imports (torch, transformers) serve its next trials too; but a reused
            reuse_actors = not log_to_file  # worker writes a later trial's output to the earlier one's closed files
        self.tune_options = dict(  # to Ray's `TuneConfig` as they are
            reuse_actors=reuse_actors,
            trial_name_creator=trial_name_creator,
            trial_dirname_creator=trial_dirname_creator,
        )

    @classmethod
    def check_options(cls, options: dict[str, Any], search_arguments: list[str]) -> None:
        """As every backend's, after refusing the keywords of `tune.run` that hpsearch gives Ray itself."""
        ray_options.refuse(options)
        super().check_options(options, search_arguments)

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

    def placed_by(self, trials: StudyView) -> str:
        return "ray-tune"

    @property
    def can_prune(self) -> bool:
        """Whether hpsearch's rungs serve Ray: not under your own scheduler, nor where Ray judges by metrics a rung
        does not report (`metric`, `stop`, a search algorithm's own metric): it then sees your own evaluations."""
        own = isinstance(self.scheduler, tune.schedulers.FIFOScheduler)
        return not own and self.metric is None and self.stop is None and not self.judged()

    def judged(self) -> tuple[str, ...]:
        """The metrics Ray judges trials by besides the objective: your `metric`, the one your scheduler or search
        algorithm was made with (Ray's PBT example: `metric="eval_acc"`)."""
        named = [self.metric, getattr(self.scheduler, "metric", None), getattr(self.search_alg, "metric", None)]
        flat = [m for each in named for m in ([each] if isinstance(each, str) or each is None else each)]
        return tuple(dict.fromkeys(m for m in flat if m and m != "objective"))

    def metric_and_mode(self) -> tuple[str | None, str | None]:
        """Tune's `metric` and `mode`: yours (by default in the search's direction), else the objective, except where
        your scheduler or search algorithm has a metric of its own (Ray refuses a second beside it)."""
        if self.metric is None and self.judged():
            return None, None
        return self.metric or "objective", self.mode or ("max" if self.directions[0] == "maximize" else "min")

    def tune_scheduler(self) -> Any:
        """The user's scheduler, else ASHA: its rungs at the search's rung points of progress; with no rungs
        (the function API, `evals_per_trial=0`, an evaluation set too small to rank trials on) at the reported steps
        1, 3, 9..., as optuna's pruner there, and with no end of its own: ASHA stops a trial that reaches `max_t`,
        and the trial's own last evaluation would then be recorded as a pruning."""
        if self.scheduler is not None:
            return self.scheduler
        rungs = self.settings.rungs
        return tune.schedulers.ASHAScheduler(
            time_attr=schema.RAY_STEP,
            max_t=PROGRESS_END if rungs else NO_LAST_STEP,
            grace_period=rungs[0] if rungs else 1,
            reduction_factor=REDUCTION_FACTOR,
        )


def _named(scheduler: Any, search_alg: Any) -> tuple[Any, Any]:
    """Your scheduler and search algorithm, each also by its name in Ray's registries ("asha", "optuna"), as
    `tune.run` takes them."""
    if isinstance(scheduler, str):
        scheduler = tune.create_scheduler(scheduler)
    if isinstance(search_alg, str):
        search_alg = tune.create_searcher(search_alg)
    return scheduler, search_alg


def _results_path(storage_path: str | None, local_dir: str | None) -> str | None:
    """Where Ray's experiments go: `storage_path`, or `local_dir`, its older name (Ray 2 refuses it; Ray's PBT
    example for transformers still passes it)."""
    if local_dir is None:
        return storage_path
    if storage_path is not None:
        raise ConfigError(
            f"Pass `storage_path` or `local_dir` (Ray's older name for it), not both. Received: "
            f"storage_path={storage_path!r}, local_dir={local_dir!r}."
        )
    return os.path.expanduser(local_dir)
