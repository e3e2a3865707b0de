"""What a running trial sees (`Trial`, and the `Decision` each of its reports gets back, made by
`hpsearch.loop.decision`), where what it reports goes (`TrialSink`, the path's that runs it) and what the study store
keeps of it (`TrialRecord`)."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hpsearch.errors import ObjectiveError

T = TypeVar("T")


class Decision(str, enum.Enum):
    """A trial's fate at a report: train on, pause at the rung (its checkpoint kept, to resume once the rung has
    peers), or stop for good."""

    CONTINUE = "continue"
    PAUSE = "pause"
    PRUNE = "prune"

    @property
    def stops(self) -> bool:
        return self is not Decision.CONTINUE


class TrialState(str, enum.Enum):
    """Where a trial is in its life. Failed trials that were interrupted count as not run."""

    WAITING = "waiting"  # queued (optuna's `enqueue_trial`), not started
    RUNNING = "running"
    PAUSED = "paused"  # stopped at a rung until it has peers (`hpsearch.loop.halving`), its checkpoint kept
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


class TrialPruned(Exception):
    """Raise inside an objective to end the trial early as pruned (like `optuna.TrialPruned`)."""


@dataclass
class TrialRecord:
    """One trial as the study store recorded it."""

    number: int
    state: TrialState
    params: dict[str, Any]
    values: list[float] | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    error: str | None = None
    interrupted: bool = False
    started: datetime.datetime | None = None
    finished: datetime.datetime | None = None
    ran_before: float = 0.0  # a trial paused at a rung: the seconds it ran before `started`, its latest start

    @property
    def objective(self) -> float | list[float] | None:
        """The objective: one float for one direction, a list for several; for a pruned trial its last
        intermediate value (as optuna records it); None if it has none."""
        if self.values is None:
            return None
        return self.values[0] if len(self.values) == 1 else list(self.values)

    @property
    def duration(self) -> float | None:
        """Seconds it ran, None until it ends: from start to end, and a trial paused at a rung its runs summed."""
        return None if self.finished is None else self.ran_until(self.finished)

    def ran_until(self, moment: datetime.datetime) -> float | None:
        """Seconds it has run by `moment` (None if it never started)."""
        return None if self.started is None else self.ran_before + (moment - self.started).total_seconds()

    @property
    def counts(self) -> bool:
        """Whether this trial uses one of the search's `n_trials` slots: it ended, and not by a dead process."""
        return self.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED) and not self.interrupted


class TrialSink:
    """Where a running trial's reports, checkpoints and model go, whichever path runs it: the engine's loop
    (`loop.searchloop`), a Ray worker (`executors.ray_trainable`), a DDP rank (`executors.ranks`). Each overrides what
    its path keeps; this one keeps nothing and never stops the trial."""

    def report(self, trial: Trial, step: int, value: float) -> Decision:
        """The search's `Decision` on the trial's intermediate objective `value` at `step`."""
        return Decision.CONTINUE

    def suggested(self) -> dict[str, Any] | None:
        """The trial's parameters now, where they can grow as it runs (define-by-run); None: those it started with."""
        return None

    def define(self, trial: Trial, build: Callable[[Any], T]) -> T:
        """`build(trial.native)`: the trial's model (under DDP, built with rank 0's parameters on every rank)."""
        return build(trial.native)

    def portable_native(self) -> Any:
        """The backend's trial as another process's `model_init` gets it (optuna's `FixedTrial`)."""
        return None

    def offer_model(self, trial: Trial, value: float, save: Callable[[str], None]) -> None:
        """The model that scored `value`: `save(directory)` it if it may become the best model."""

    def checkpointed(self, trial: Trial, path: str) -> None:
        """The trial's latest checkpoint, where a crash resumes it."""

    def paused(self, trial: Trial, checkpoint: str, size: int, seconds: float, leftovers: list[str]) -> None:
        """The checkpoint the trial pauses with, and what to remove should it never resume."""

    def named(self, names: list[str]) -> None:
        """What the objective(s) are ("eval_accuracy")."""


class Trial:
    """A trial while it runs: its parameters, and `report` for intermediate values.

    `native` is the backend's own trial object (an `optuna.Trial` for optuna), which is what
    `model_init(trial)` receives; on optuna it may suggest parameters of its own there
    (define-by-run), which `params` then holds too. `tracking_run` is the experiment-tracking run
    the backend opened for the trial (a W&B run), if any. `resume_from` is the checkpoint a trial
    resumed after a crash or a pause continues from (None for a fresh start). `pause_bytes` is what a checkpoint of
    the trial would take if it paused at its rung (an estimate its runner gives before reporting there), and
    `score_error` the standard error of the score it reports there (None: not measured). What the
    trial reports and saves goes to its `sink`, the path's that runs it (`TrialSink`).
    """

    def __init__(
        self,
        number: int,
        params: dict[str, Any],
        native: Any = None,
        sink: TrialSink | None = None,
        tracking_run: Any = None,
        resume_from: str | None = None,
    ) -> None:
        self.number = number
        self.native = native
        self.sink = sink or TrialSink()
        self.tracking_run = tracking_run
        self.resume_from = resume_from
        self.should_stop = False
        self.metrics: dict[str, Any] = {}  # the evaluation metrics of the latest report
        self.pausing = False  # stopped to pause at a rung: its checkpoint is kept there, it resumes later
        self.pause_bytes: int | None = None
        self.score_error: float | None = None
        self._params = params
        self._named = False

    @property
    def params(self) -> dict[str, Any]:
        """The trial's parameters: those the backend proposed, and any suggested since (define-by-run)."""
        suggested = self.sink.suggested()
        return self._params if suggested is None else suggested

    def define(self, build: Callable[[Any], T]) -> T:
        """`build(native)`, e.g. the model of `model_init(trial)`, which may suggest parameters of its
        own on the backend's trial (define-by-run)."""
        return self.sink.define(self, build)

    def report(self, step: int, value: float, metrics: Mapping[str, Any] | None = None) -> bool:
        """Record an intermediate objective at `step`, scored from the evaluation `metrics` if given (Ray passes them
        to its schedulers and stop criteria, as transformers' search does); True when the search's `Decision` is
        to stop this trial now (to prune it, or to pause it there: then `pausing` too)."""
        self.metrics = dict(metrics or {})
        if (decision := self.sink.report(self, step, value)).stops:
            self.should_stop, self.pausing = True, decision is Decision.PAUSE
        return self.should_stop

    def note_checkpoint(self, path: str) -> None:
        """Record `path` as the trial's latest checkpoint (a directory that resumes its training)."""
        self.sink.checkpointed(self, path)

    def note_pause(self, checkpoint: str, size: int, seconds: float, leftovers: list[str]) -> None:
        """Record the checkpoint the trial pauses with (`size` bytes, saved in `seconds`), and the directories to
        remove should it never resume (that checkpoint, its run directory)."""
        self.sink.paused(self, checkpoint, size, seconds, leftovers)

    def name_objectives(self, names: list[str]) -> None:
        """Say what the objective(s) are ("eval_accuracy"): the study's metric names, where it has none yet. Once a
        trial: the later evaluations say the same."""
        if not self._named:
            self.sink.named(names)
            self._named = True

    def offer_model(self, value: float, save: Callable[[str], None]) -> None:
        """Offer the model that scored `value`: `save(directory)` is called if it may become the best model."""
        self.sink.offer_model(self, value, save)

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self.params})"


def check_searched(trial: Trial, suggester: str) -> None:
    """Stop the search if `trial` has no parameters: an empty `hp_space` whose `suggester` (the
    objective, or `model_init(trial)`) suggested none either searches nothing."""
    if not trial.params:
        raise ObjectiveError(
            f"Trial {trial.number} has no parameters to search: `hp_space` gave none and {suggester} suggested "
            "none on the trial. Give `hp_space` at least one parameter, or call `trial.suggest_*` in "
            f"{suggester} (define-by-run)."
        )
