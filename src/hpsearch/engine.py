"""The search loop for every ask/tell backend: ask -> run -> report/prune -> tell.

Written once here, so progress, the store, failures, timeouts and resume behave the same on
every backend. `search()` is the function API on top of it.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from tqdm.auto import tqdm

from hpsearch import store
from hpsearch.backends.base import Backend, Proposal, get_backend
from hpsearch.best_model import BestModelKeeper
from hpsearch.distributed import lead_definition
from hpsearch.objective import ObjectiveError, check_directions, check_values, is_better
from hpsearch.report import format_value, print_leaderboard
from hpsearch.trial import Trial, TrialPruned, TrialRecord, TrialState, check_searched

logger = logging.getLogger("hpsearch")


class BestRun(NamedTuple):
    """The best run of a search, in the shape of `transformers.trainer_utils.BestRun`."""

    run_id: str
    objective: float | list[float]
    hyperparameters: dict[str, Any]
    run_summary: Any | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class SearchSummary:
    """What `BestRun.run_summary` holds: every trial, the store, the best model's directory, and
    the backend's own result object where it has one (Ray's `ResultGrid`, the W&B sweep's id).

    Two summaries are equal when they are of the same search (study, best model's place and
    backend result), as transformers' W&B `run_summary` (the sweep's id) is equal across the calls
    that continue one sweep.
    """

    trials: list[TrialRecord]
    study: Any
    best_model_dir: str | None = None
    native: Any = None

    def _identity(self) -> tuple:
        return self.study.study_name, self.best_model_dir, self.native

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSummary) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((self.study.study_name, self.best_model_dir))


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search: the running trial is recorded as interrupted; rerun the same call to resume.

    Left uncaught, it ends the process (non-zero, as Ctrl-C does) with its one-line message
    rather than a traceback.
    """

    def __init__(self, message: str):
        super().__init__(message)
        if not getattr(sys.excepthook, "_hpsearch", False):
            sys.excepthook = _one_line_for_interrupts(sys.excepthook)


def _one_line_for_interrupts(previous: Callable[..., Any]) -> Callable[..., Any]:
    def excepthook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        if issubclass(kind, SearchInterrupted):
            print(f"hpsearch: {error}", file=sys.stderr)
        else:
            previous(kind, error, tb)

    excepthook._hpsearch = True
    return excepthook


class Search:
    """One search: a backend on a study store, run trial by trial until `n_trials` have finished.

    `n_trials` counts every finished trial of the study, earlier runs' included, so rerunning the
    same search after a crash finishes what is missing. A trial that raises one of `catch` is
    recorded as failed and the search goes on; if every trial of this run fails, it raises.
    """

    def __init__(
        self,
        hp_space: Any = None,
        n_trials: int = 20,
        direction: str | Sequence[str] | None = None,
        backend: str | type[Backend] | None = None,
        storage: Any = None,
        study_name: str = store.DEFAULT_STUDY_NAME,
        timeout: float | None = None,
        catch: tuple[type[BaseException], ...] = (Exception,),
        show_progress: bool = True,
        n_jobs: int = 1,
        gc_after_trial: bool = True,
        output_dir: str | None = None,
        coordinator: Any = None,
        define_by_run: bool = True,
        **backend_kwargs: Any,
    ):
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
            raise ValueError(f"`n_trials` must be an int >= 1. Received: n_trials={n_trials!r}.")
        if n_jobs != 1:
            raise ValueError(
                f"`n_jobs` must be 1: a trial uses the whole process. Received: n_jobs={n_jobs!r}. "
                "To run trials in parallel, start several workers with the same `storage`."
            )
        if timeout is not None and timeout <= 0:
            raise ValueError(f"`timeout` must be a positive number of seconds. Received: timeout={timeout!r}.")
        self.n_trials = n_trials
        self.timeout = timeout
        self.catch = tuple(catch)
        self.show_progress = show_progress
        backend_class = get_backend(backend)
        _check_kwargs(backend_class, backend_kwargs)
        if direction is None:  # the space's own (a W&B sweep's metric goal), else transformers' default
            direction = backend_class.space_directions(hp_space) or "minimize"
        self.directions = check_directions(direction)
        if output_dir is not None:
            _check_writable(output_dir)
            if storage is None:
                storage = store.storage_url(output_dir)
        self.backend = backend_class(hp_space, self.directions, storage, study_name, output_dir, **backend_kwargs)
        self.param_space = self.backend.param_space()
        # an empty space is define-by-run where the objective may suggest on the backend's trial
        if not self.param_space and not (define_by_run and backend_class.define_by_run):
            raise ValueError(
                f"`hp_space` has no parameters to search. Received: {hp_space!r}. Give it at least one, or leave "
                "it out for the backend's default space."
            )
        single = len(self.directions) == 1
        self.keeper = BestModelKeeper(output_dir) if output_dir is not None and single else None
        self.coordinator = coordinator  # under DDP: tells the other ranks each trial and each decision
        self.native: Any = None
        self._offers: dict[int, float] = {}

    @property
    def study(self) -> Any:
        return self.backend.study

    def finished(self) -> int:
        """How many trials of the study used a slot of `n_trials` (earlier runs' included)."""
        return sum(r.counts for r in store.records(self.study))

    def run(self, objective: Callable[[Trial], Any]) -> list[TrialRecord]:
        """Run trials until `n_trials` have finished (or `timeout`, or the backend has no more)."""
        store.check_space(self.study, self.param_space)
        resumed = store.fail_interrupted(self.study)
        if resumed:
            logger.warning(f"Trials {resumed} were left running by a process that died; their slots run again.")
        self._errors: list[BaseException] = []
        self._ran = 0
        self._bar = tqdm(
            total=self.n_trials, initial=self.finished(), desc="hpsearch", unit="trial", disable=not self.show_progress
        )
        self._interrupted: list[int] = []
        try:
            self.native = self.backend.drive(objective, self)
        except BaseException as e:
            self._interrupted += store.fail_interrupted(self.study, ours=True)  # trials a backend's own loop ran
            if not isinstance(e, KeyboardInterrupt):
                raise
            during = f"during trial {', '.join(map(str, self._interrupted))}" if self._interrupted else "between trials"
            raise SearchInterrupted(f"Search interrupted {during}; rerun the same call to resume it.") from None
        finally:
            self._bar.close()
        if self._ran and len(self._errors) == self._ran:
            first = self._errors[0]
            raise RuntimeError(f"All {self._ran} trials of this search failed; the first error: {first!r}") from first
        records = store.records(self.study)
        if self.show_progress:
            print_leaderboard(records, self.directions)
        return records

    def ask_tell_loop(self, objective: Callable[[Trial], Any]) -> None:
        """The engine's loop: ask the backend, run the trial, tell it; until `n_trials` have finished."""
        start = time.monotonic()
        while self.finished() < self.n_trials:
            if self.timeout is not None and time.monotonic() - start > self.timeout:
                logger.info(f"Search stopped: timeout of {self.timeout} s reached.")
                return
            proposal = self.backend.ask()
            if proposal is None:
                logger.info("Search stopped: the backend has no more trials to propose.")
                return
            if self._slots_taken_before(proposal.number) >= self.n_trials:  # by other workers, meanwhile
                self._fail(proposal, "not run: other workers on this study took the last slots", interrupted=True)
                return
            self.run_trial(proposal, objective)

    def _slots_taken_before(self, number: int) -> int:
        """Slots of `n_trials` used or being used by trials started before trial `number` (any worker)."""
        records = store.records(self.study)
        return sum(r.counts or r.state is TrialState.RUNNING for r in records if r.number < number)

    def run_trial(self, proposal: Proposal, objective: Callable[[Trial], Any]) -> None:
        """Run one trial of an ask/tell backend and tell it how the trial ended (from any loop)."""
        error = self._run_trial(proposal, objective)
        self._ran += 1
        if error is not None:
            self._errors.append(error)
        self._bar.update()
        self._show_progress()

    def _run_trial(self, proposal: Proposal, objective: Callable[[Trial], Any]) -> BaseException | None:
        """Run one trial and tell the backend how it ended; the error if it failed."""
        trial = Trial(
            proposal.number,
            proposal.params,
            proposal.native,
            report=lambda step, value: self._report(proposal, step, value),
            offer_model=lambda value, save: self._offer_model(proposal, value, save),
            suggested=lambda: self.backend.suggested_params(proposal),
            tracking_run=proposal.tracking_run,
        )
        if self.coordinator is not None:
            trial.sync_definition = lead_definition(self.coordinator, lambda: self.backend.portable_native(proposal))
            self.coordinator.announce(proposal.number, proposal.params, self.backend.portable_native(proposal))
        try:
            result = objective(trial)
            if trial.should_stop:
                raise TrialPruned()
            check_searched(trial, "the objective")
            values = check_values(result, len(self.directions))
        except TrialPruned:
            self._tell(proposal, TrialState.PRUNED, None)
            return None
        except ObjectiveError as e:
            self._fail(proposal, "".join(traceback.format_exception(e)))
            raise
        except self.catch as e:
            logger.warning(f"Trial {proposal.number} failed: {e!r}")
            self._fail(proposal, "".join(traceback.format_exception(e)))
            return e
        except KeyboardInterrupt:
            self._fail(proposal, "interrupted (Ctrl-C)", interrupted=True)
            self._interrupted.append(proposal.number)
            raise
        except BaseException as e:
            self._fail(proposal, "".join(traceback.format_exception(e)))
            raise
        self._tell(proposal, TrialState.COMPLETE, values)
        return None

    def _tell(self, proposal: Proposal, state: TrialState, values: list[float] | None) -> None:
        """Tell the backend how the trial ended, then keep its model if no trial is better."""
        self.backend.tell(proposal, state, values)
        staged = self._offers.pop(proposal.number, None) is not None
        if self.keeper is None or not staged:
            return
        if state is TrialState.COMPLETE and not self._beats(self.best_value(), values[0]):
            self.keeper.promote(proposal.number, values[0], self.backend.suggested_params(proposal))
        else:
            self.keeper.discard(proposal.number)

    def _offer_model(self, proposal: Proposal, value: float, save: Callable[[str], None]) -> None:
        """Stage the trial's model if `value` beats its earlier offers and every completed trial."""
        if self.keeper is None:
            return
        direction = self.directions[0]
        earlier_offer = self._offers.get(proposal.number)
        if not (is_better(value, earlier_offer, direction) and self._beats(value, self.best_value())):
            return
        self._offers[proposal.number] = value
        target = self.keeper.staging_dir(proposal.number)
        shutil.rmtree(target, ignore_errors=True)
        save(str(target))

    def _report(self, proposal: Proposal, step: int, value: float) -> bool:
        stop = self.backend.report(proposal, step, value)
        if self.coordinator is not None:
            stop = self.coordinator.decide(stop)
        self._show_progress(f"trial {proposal.number} step {step}: {format_value(value)}")
        return stop

    def _show_progress(self, current: str = "") -> None:
        best = self.best_value()
        parts = [current, f"best={format_value(best)}" if best is not None else ""]
        self._bar.set_postfix_str(", ".join(p for p in parts if p))

    def _fail(self, proposal: Proposal, error: str, interrupted: bool = False) -> None:
        store.record_error(self.study, proposal.trial_id, error, interrupted)
        self._tell(proposal, TrialState.FAILED, None)

    def best_value(self) -> float | None:
        """The best objective so far (single objective; the storage's own query), None before any completed."""
        if len(self.directions) > 1:
            return None
        try:
            return self.study.best_value
        except ValueError:  # no trial completed yet
            return None

    def _beats(self, value: float | None, than: float | None) -> bool:
        return value is not None and len(self.directions) == 1 and is_better(value, than, self.directions[0])

    def best(self) -> BestRun | list[BestRun]:
        """The best run, or the Pareto front for several directions."""
        records = store.records(self.study)
        complete = [r for r in records if r.state is TrialState.COMPLETE]
        if not complete:
            raise RuntimeError(f"No trial of the study completed ({len(records)} recorded); nothing to return.")
        kept = self.keeper is not None and self.keeper.dir.is_dir()
        run_summary = SearchSummary(records, self.study, str(self.keeper.dir) if kept else None, self.native)
        if len(self.directions) == 1:
            best = store.best_record(self.study, self.keeper.kept_trial() if kept else None)
            return BestRun(str(best.number), best.values[0], best.params, run_summary)
        front = [store.to_record(t) for t in self.study.best_trials]
        return [BestRun(str(t.number), list(t.values), t.params, run_summary) for t in front]


def _check_writable(directory: str) -> None:
    """Fail before any training if the search could not write its store and models to `directory`."""
    probe = Path(directory) / ".hpsearch-write-test"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as e:
        raise ValueError(
            f"`output_dir` {str(directory)!r} is not writable ({e.strerror}); pass a directory with room that you "
            "can write to."
        ) from None


def _check_kwargs(backend_class: type[Backend], kwargs: dict[str, Any]) -> None:
    accepted = [
        name
        for name in inspect.signature(backend_class.__init__).parameters
        if name not in ("self", "hp_space", "directions", "storage", "study_name", "output_dir")
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        own = [
            n
            for n, p in inspect.signature(Search.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty and n not in ("hp_space", "coordinator")
        ]
        hints = "".join(
            f" Did you mean {close[0]!r} for {name!r}?"
            for name in unknown
            if (close := difflib.get_close_matches(name, [*accepted, *own], n=1))
        )
        raise ValueError(
            f"Unknown argument(s) {unknown} for the {backend_class.name!r} backend.{hints} "
            f"It takes {accepted}, besides the search's own {own}."
        )


def search(
    objective: Callable[[Trial], Any],
    space: Any,
    n_trials: int = 20,
    direction: str | Sequence[str] | None = None,
    backend: str | type[Backend] | None = None,
    storage: Any = None,
    **kwargs: Any,
) -> BestRun | list[BestRun]:
    """Search `space` for the parameters that optimise `objective(trial)`.

    `objective` reads `trial.params`, may call `trial.report(step, value)` (True: stop now) and
    returns the objective (a list of them for several directions). `space` is an `hpsearch.space`
    dict, or the backend's native format. `storage` (an optuna storage URL) keeps the study;
    None keeps it in memory.
    """
    if not callable(objective):
        raise ValueError(f"`objective` must be a function of a trial. Received: {objective!r}.")
    run = Search(space, n_trials, direction, backend, storage, **kwargs)
    run.run(objective)
    return run.best()
