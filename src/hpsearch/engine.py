"""The public face of a search: `search()`, `Search`, and what they return (`BestRun`).

`Search` checks the arguments and puts the backend, the study's trials and the loop together
(`hpsearch.loop.searchloop` runs the trials, `hpsearch.study.lifecycle` records them), as optuna's
`Study.optimize` stands over its `_optimize`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.backends.base import Backend, get_backend
from hpsearch.errors import ConfigError, SearchInterrupted, check_number, interrupted_message
from hpsearch.executors import resources
from hpsearch.executors.base import Executor, placing
from hpsearch.executors.in_process import InProcess
from hpsearch.executors.resources import WorkerShare
from hpsearch.executors.workers import WorkerProcesses
from hpsearch.loop import failures
from hpsearch.loop.searchloop import SearchLoop
from hpsearch.objective import check_directions
from hpsearch.result import BestRun, SearchSummary
from hpsearch.settings import DEFAULT_STUDY_NAME, SearchSettings
from hpsearch.study import continuity, disk, liveness, schema, store
from hpsearch.study.best_model import kept_model
from hpsearch.study.leaderboard import print_leaderboard
from hpsearch.study.lifecycle import Trials
from hpsearch.study.warm_start import FirstPoint, WarmStart
from hpsearch.trial import Trial, TrialRecord, TrialState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Blueprint:
    """What a search is built from once its arguments are checked: its settings and its backend's inputs. Each worker
    process (`n_jobs`) builds its place of the same search from it (`at_worker`)."""

    settings: SearchSettings
    hp_space: Any
    backend: type[Backend]
    backend_kwargs: dict[str, Any]
    define_by_run: bool

    def at_worker(self) -> Place:
        """The search as a worker process (`n_jobs`) runs it: as this worker of them (its own random draws), quiet
        (the search's process shows the progress)."""
        settings = dataclasses.replace(self.settings, show_progress=False, **resources.worker_identity())
        return Place(self.backend(self.hp_space, settings, **self.backend_kwargs), self)


class Place:
    """The search at one place (this process, a worker process): its backend and the study's trials. It recovers
    what a dead process left running and runs this place's share of the trials (`run_here`: the loop)."""

    def __init__(self, backend: Backend, blueprint: Blueprint) -> None:
        self.settings, self.backend = backend.settings, backend
        self.param_space = backend.param_space()
        _check_not_empty(self.param_space, blueprint.hp_space, blueprint.define_by_run and backend.define_by_run)
        self.trials = Trials(self.settings, **backend.study_options())
        self.native: Any = None  # what the backend's own loop returned (Ray's `ResultGrid`)

    def recover(self) -> None:
        """Fail the trials a dead process left running, or take them over to resume (`Trials.recover`)."""
        resumed = self.trials.recover()
        if resumed:
            logger.warning(f"Trials {resumed} were left running by a process that died; their slots run again.")

    def run_here(
        self, objective: Callable[[Trial], Any], drive: Callable[[SearchLoop], Any] | None = None
    ) -> SearchLoop:
        """Run this place's trials of the search (a worker's, with `n_jobs`): the backend set up for this run, then
        the loop driven by `drive` (an executor's: Ray Tune's), else on its own; the loop that ran them."""
        loop = SearchLoop(self.settings, self.backend, self.trials, objective, self.param_space)
        try:
            self.native = self.backend.start(self.trials)
            produced = (drive or SearchLoop.run)(loop)
            self.native = self.native if produced is None else produced
        except BaseException as e:
            interrupted = loop.interrupted + self.trials.recover(own=True)  # trials a library's own loop ran
            if not isinstance(e, KeyboardInterrupt):
                raise
            raise SearchInterrupted(interrupted_message(interrupted)) from None
        finally:
            loop.close()
        return loop


class Search:
    """One search: a backend on a study store, run trial by trial until `n_trials` have finished.

    Args:
        hp_space: the space, in the backend's native format or as an `hpsearch.space` dict; None
            for the backend's default (transformers').
        n_trials: how many trials of the study must finish, earlier runs' included: rerunning the
            same search after a crash finishes what is missing.
        direction: "minimize", "maximize", or a list of them (several objectives). None: the
            space's own (a W&B sweep's metric goal), else "minimize".
        backend: "optuna" (default), "sigopt", "ray", "wandb", or a `Backend` subclass.
        storage: an optuna storage URL or object keeping the study; None: `<output_dir>/hpsearch.db`,
            or in memory without `output_dir`.
        study_name: the study's name in the storage.
        timeout: seconds after which no new trial starts.
        catch: the exceptions that fail a trial and let the search go on: a class or several, as optuna takes it.
        max_consecutive_failed_trials: stop after this many trials in a row failed (None: never).
        show_progress: a progress bar and, at the end, the leaderboard.
        n_jobs: how many trials run at once, each in a worker process of its own on the study's storage
            (`hpsearch.executors.workers`); -1: as many as the machine holds (a worker per GPU x `trials_per_gpu`,
            else per `threads_per_trial` CPU cores). Ray schedules its own trials: there it is Ray's
            `max_concurrent_trials`.
        trials_per_gpu: on a GPU machine, how many workers share each GPU (default: the workers spread evenly).
        threads_per_trial: each worker's CPU threads (default: the cores split evenly between the workers).
        executor: where the trials run (`hpsearch.executors`), where neither this process nor `n_jobs` worker
            processes are the place: the Trainer's search under torchrun passes DDP's (`executors.ranks.LeadRank`).
        gc_after_trial: True (memory is always released between trials).
        heartbeat_interval: with a database storage URL (SQLite, PostgreSQL, MySQL), each running trial
            beats every `heartbeat_interval` seconds (default 60; optuna's heartbeats).
        grace_period: a trial that has not beaten for this many seconds (default 600: a process paused for
            minutes is not taken for dead) is failed by the next worker that checks, its slot run again.
        retry_stale_trials: run such a trial again with its parameters up to this many times (optuna's
            `RetryHeartbeatStaleTrialCallback(max_retry=...)`), before any new trial.
        pause_trials: a trial at a rung with no peers yet waits for them, resumed from `trial.resume_from` (`halving`).
        promote_leaders: True: a trial waiting at the last rung goes on at once where it beats each of its peers there
            (3 or more) by more than the standard error of the difference (`halving`); False (default): it waits for 9.
        pause_disk: the most disk the checkpoints of paused trials may take at once: bytes, a size ("20GB"), "auto"
            (default: half the disk free under `output_dir`), or None (no cap). A trial whose pause would pass it
            is judged by the peers it has (`hpsearch.study.disk`).
        output_dir: where the best model (`best_model/`; a study not named as the default:
            `studies/<study_name>/best_model/`) and the backends' files go.
        warm_start: an earlier study (its search's `output_dir`, a storage URL, an `optuna.Study`) whose best
            trials (up to 3; for several directions, its Pareto front's first) run first in a new study, projected
            onto this space (`hpsearch.study.warm_start`); a rerun does not queue them again.
        user_values: values the user chose themselves (a name -> value mapping; the Trainer's search passes its
            `TrainingArguments`): where there is no `warm_start`, a new study's first trial takes those inside the
            space, the others sampled (backends that run whole points only: where every parameter has one).
        **backend_kwargs: the backend's own options (optuna's `sampler`, Ray's `scheduler`, ...).

    Raises:
        ConfigError: a bad argument, before any trial (it names the argument, the value and the fix).
        MissingExtra: the backend's library is not installed.

    Examples:
        >>> from hpsearch import Search
        >>> from hpsearch.space import Float
        >>> run = Search({"x": Float(-2.0, 2.0)}, n_trials=5, show_progress=False, seed=0)
        >>> records = run.run(lambda trial: trial.params["x"] ** 2)
        >>> len(records), run.best().objective <= 4.0
        (5, True)
    """

    def __init__(
        self,
        hp_space: Any = None,
        n_trials: int = 20,
        direction: str | Sequence[str] | None = None,
        backend: str | type[Backend] | None = None,
        storage: Any = None,
        study_name: str = DEFAULT_STUDY_NAME,
        timeout: float | None = None,
        catch: type[BaseException] | Iterable[type[BaseException]] = (Exception,),
        max_consecutive_failed_trials: int | None = 3,
        show_progress: bool = True,
        n_jobs: int = 1,
        gc_after_trial: bool = True,
        output_dir: str | None = None,
        executor: Executor | None = None,
        define_by_run: bool = True,
        rungs: Sequence[int] = (),
        pause_trials: bool = False,
        promote_leaders: bool = False,
        pause_disk: int | str | None = disk.AUTO,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        retry_stale_trials: int = 0,
        trials_per_gpu: int | None = None,
        threads_per_trial: int | None = None,
        warm_start: Any = None,
        user_values: Mapping[str, Any] | None = None,
        **backend_kwargs: Any,
    ):
        _check_search_arguments(n_trials, timeout, gc_after_trial, max_consecutive_failed_trials)
        backend_class = get_backend(backend)
        own = [n for n, p in inspect.signature(Search.__init__).parameters.items() if p.default is not p.empty]
        backend_class.check_options(backend_kwargs, [n for n in own if n != "executor"])
        blueprint_kwargs = dict(backend_kwargs)  # before `plan_for` adds Ray's concurrency, which is this process's
        shares, plan = resources.plan_for(backend_class, n_jobs, trials_per_gpu, threads_per_trial, backend_kwargs)
        if direction is None:  # the space's own (a W&B sweep's metric goal), else transformers' default
            direction = backend_class.space_directions(hp_space) or "minimize"
        storage = _storage(storage, output_dir)
        beats = liveness.settings(storage, heartbeat_interval, grace_period, retry_stale_trials)
        settings = SearchSettings(
            directions=tuple(check_directions(direction)),
            n_trials=n_trials,
            storage=storage,
            study_name=study_name,
            output_dir=output_dir,
            timeout=timeout,
            catch=_exception_classes(catch),
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            show_progress=show_progress,
            rungs=tuple(rungs),
            pause_trials=bool(pause_trials),
            promote_leaders=bool(promote_leaders),
            pause_disk=disk.check_cap(pause_disk),
            **beats,
            **resources.worker_identity(),
        )
        self.blueprint = Blueprint(settings, hp_space, backend_class, blueprint_kwargs, define_by_run)
        self.here = Place(backend_class(hp_space, settings, **backend_kwargs), self.blueprint)
        self.settings, self.backend, self.trials = self.here.settings, self.here.backend, self.here.trials
        self.param_space, self.directions = self.here.param_space, list(settings.directions)
        warm = WarmStart.load(warm_start, self.backend, self.param_space, n_trials)
        self.first_trials = warm if warm is not None else FirstPoint.of(user_values, self.backend, self.param_space)
        self.executor = self._executor(n_jobs, shares, plan, executor)

    def _executor(self, n_jobs: int, shares: list[WorkerShare], plan: str, given: Executor | None) -> Executor:
        """Where the trials run: worker processes for the machine's shares (`n_jobs`), else this process, or the
        executor of a library that places them itself (Ray Tune, n_jobs at once; a W&B server's agent), each within
        the executor `given` (DDP's: every rank runs each trial)."""
        if plan:
            logger.info(f"hpsearch: n_jobs={n_jobs}: {plan}.")
        if not shares:
            placed_by = self.backend.placed_by(self.trials)
            own = placing(placed_by) if placed_by else InProcess()
            return given.around(own) if given is not None else own
        resources.check_shareable(self.settings.storage, given)
        return WorkerProcesses(shares)

    @property
    def study(self) -> Any:
        """The study store, an `optuna.Study`, whichever backend chose the trials."""
        return self.trials.study

    def run(
        self,
        objective: Callable[[Trial], Any],
        while_running: Callable[[], contextlib.AbstractContextManager] | None = None,
    ) -> list[TrialRecord]:
        """Run trials until `n_trials` have finished (or `timeout`, or the backend has no more), in this
        process or in `n_jobs` worker processes; `while_running()` is the context the trials run in.

        Returns every trial of the study. Raises `SearchFailed` when every trial of this run failed
        (or `max_consecutive_failed_trials` in a row), `SearchInterrupted` on Ctrl-C.
        """
        continuity.check_space(self.study, self.param_space, self.backend.name)
        if self.first_trials is not None:  # an earlier study's best trials, or the user's values, queued in a new study
            self.first_trials.enqueue(self.trials)
        self.executor.run(self.here, self.blueprint, objective, while_running)
        records = self.trials.records()
        if self.settings.show_progress:
            print_leaderboard(records, self.directions)
            if peak := schema.study_fact(self.study.user_attrs, schema.PAUSE_PEAK):
                print(f"Paused trials' checkpoints took at most {disk.size_text(peak)} of disk at once.")
        return records

    def best(self) -> BestRun | list[BestRun]:
        """The best run, or the Pareto front for several directions."""
        records = store.records(self.study)
        complete = [r for r in records if r.state is TrialState.COMPLETE]
        if not complete:
            failures.nothing_completed(records, self.settings.timeout)
        kept = kept_model(self.settings.output_dir, self.study) if self.trials.keeper is not None else None
        run_summary = SearchSummary(records, self.study, str(kept[0]) if kept else None, self.here.native)
        if len(self.directions) == 1:
            best = store.best_record(self.study, kept[1] if kept else None)
            return BestRun(str(best.number), best.values[0], best.params, run_summary)
        front = [store.to_record(t) for t in self.study.best_trials]
        return [BestRun(str(t.number), list(t.values), t.params, run_summary) for t in front]


def _check_search_arguments(n_trials: Any, timeout: Any, gc_after_trial: Any, max_consecutive_failed_trials: Any):
    check_number("n_trials", n_trials, 1)
    check_number("timeout", timeout, 0, integer=False, allowed=(None,), says=" (seconds), or None for no limit")
    if gc_after_trial is not True:
        raise ConfigError(
            f"`gc_after_trial` must be True: hpsearch always releases a trial's memory (its model, optimizer, "
            f"the garbage collector, the GPU cache) before the next. Received: gc_after_trial={gc_after_trial!r}."
        )
    limit, never = max_consecutive_failed_trials, ", or None to never stop for failures"
    check_number("max_consecutive_failed_trials", limit, 1, allowed=(None,), says=never)


def _exception_classes(catch: Any) -> tuple[type[BaseException], ...]:
    """`catch` as a tuple: one exception class, or an iterable of them (optuna's `Study.optimize` takes both)."""
    classes = (catch,) if isinstance(catch, type) else tuple(catch) if isinstance(catch, Iterable) else (catch,)
    if not all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
        raise ConfigError(
            f"`catch` must be an exception class or a tuple of them, e.g. catch=(ValueError,). "
            f"Received: catch={catch!r}."
        )
    return classes


def _storage(storage: Any, output_dir: str | None) -> Any:
    """The study's storage: the one given, else a SQLite file in `output_dir` (checked writable), else memory."""
    if output_dir is not None:
        _check_writable(output_dir)
        if storage is None:
            return store.storage_url(output_dir)
    return storage


def _check_not_empty(param_space: dict[str, Any], hp_space: Any, define_by_run: bool) -> None:
    """An empty space is define-by-run where the objective may suggest on the backend's trial; otherwise a mistake."""
    if not param_space and not define_by_run:
        raise ConfigError(
            f"`hp_space` has no parameters to search. Received: {hp_space!r}. Give it at least one, or leave "
            "it out for the backend's default space."
        )


def _check_writable(directory: str) -> None:
    """Fail before any training if the search could not write its store and models to `directory`."""
    probe = Path(directory) / f".hpsearch-write-test-{os.getpid()}"  # workers check at once
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"`output_dir` {str(directory)!r} is not writable ({e.strerror}); pass a directory with room that you "
            "can write to."
        ) from None


def search(
    objective: Callable[[Trial], Any],
    space: Any,
    n_trials: int = 20,
    direction: str | Sequence[str] | None = None,
    backend: str | type[Backend] | None = None,
    storage: Any = None,
    **kwargs: Any,
) -> BestRun | list[BestRun]:
    """Search `space` for the parameters that optimise `objective(trial)`: the function API.

    Args:
        objective: a function of a `Trial`; it reads `trial.params`, may call
            `trial.report(step, value)` (True: stop the trial now) and returns the objective (a
            list of them for several directions). Raising `TrialPruned` ends the trial as pruned.
        space: an `hpsearch.space` dict, or the backend's native format.
        n_trials: how many trials the study ends with (`Search`).
        direction: "minimize" (default) or "maximize"; a list: several objectives.
        backend: "optuna" (default), "sigopt", "ray" or "wandb".
        storage: the study's storage (`Search`).
        **kwargs: the search's and the backend's options, as `Search` takes them.

    Returns:
        The best run (`BestRun`: `run_id`, `objective`, `hyperparameters`, `run_summary`), or the
        Pareto front (a list of them) when `direction` is a list.

    Raises:
        ConfigError: bad input, before any trial.
        SearchFailed: every trial failed (or `max_consecutive_failed_trials` in a row); its cause is
            the first trial's error.
        SearchInterrupted: Ctrl-C; rerun the same call to resume.

    Examples:
        >>> import hpsearch
        >>> from hpsearch.space import Float
        >>> best = hpsearch.search(lambda trial: (trial.params["x"] - 1) ** 2, {"x": Float(-3.0, 3.0)},
        ...                        n_trials=20, show_progress=False, seed=0)
        >>> round(best.objective, 1) <= 0.5, sorted(best.hyperparameters)
        (True, ['x'])
    """
    if not callable(objective):
        raise ConfigError(f"`objective` must be a function of a trial. Received: {objective!r}.")
    run = Search(space, n_trials, direction, backend, storage, **kwargs)
    run.run(objective)
    return run.best()
