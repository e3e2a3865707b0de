"""DDP (torchrun): every trial runs on every rank, rank 0 deciding.

Only rank 0 runs the search (`LeadRank`: the loop in its process, as `InProcess`), talking to the backend and the
study store. The other ranks `follow`: each trial rank 0 starts, with the parameters its `model_init` built with,
stopped at the step rank 0's `Decision` says, until it says the search is over (or why it failed). So all ranks
train the same trial with the same arguments, however many trials are pruned, time out or fail. Other ranks
return None from `hyperparameter_search`, as in transformers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from hpsearch.errors import ConfigError, RankFailed
from hpsearch.executors.base import Blueprint, Executor, Objective, Place, RunningContext
from hpsearch.executors.in_process import InProcess
from hpsearch.trial import Decision, Trial, TrialSink

T = TypeVar("T")


@dataclass(frozen=True)
class TrialStarts:
    """Rank 0 starts trial `number`: `native` is what the other ranks' `model_init` gets, `resume_from` the checkpoint
    it continues from (None: its start)."""

    number: int
    params: dict[str, Any]
    native: Any
    resume_from: str | None


@dataclass(frozen=True)
class TrialDefined:
    """Rank 0's `model_init` built the trial's model with these parameters (define-by-run ones included)."""

    params: dict[str, Any]
    native: Any


@dataclass(frozen=True)
class DefinitionFailed:
    """Rank 0's `model_init` raised `error`: the trial fails on every rank."""

    error: str


@dataclass(frozen=True)
class SearchEnds:
    """The search is over, or failed on rank 0 with `error`."""

    error: str | None = None


class Ranks:
    """The DDP group's ranks, rank 0's word shared with them: each `share` is a collective every rank makes in step."""

    def __init__(self) -> None:
        import torch.distributed as dist  # not at `import hpsearch`

        if not (dist.is_available() and dist.is_initialized()):
            raise ConfigError("A search over several processes needs torch.distributed initialised (torchrun).")
        self.rank = dist.get_rank()

    @property
    def leads(self) -> bool:
        return self.rank == 0

    def share(self, message: Any = None) -> Any:
        """Rank 0's `message`, on every rank."""
        import torch.distributed as dist

        box = [message]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def received(self) -> Any:
        """Rank 0's next message, on another rank; its error raised where rank 0's search failed."""
        message = self.share()
        if isinstance(message, SearchEnds) and message.error is not None:
            raise RankFailed(f"The search stopped on rank 0: {message.error}")
        return message


class LeadRank(Executor):
    """Rank 0's executor: the trials in this process (`own`: `InProcess`, or a W&B server's agent), each run on every
    rank; the other ranks are told which trial starts, the parameters rank 0's `model_init` built with, and the
    `Decision` at each report."""

    def __init__(self, ranks: Ranks, own: Executor | None = None) -> None:
        self.ranks, self.own = ranks, own or InProcess()

    def around(self, own: Executor) -> Executor:
        return LeadRank(self.ranks, own)

    def run(self, here: Place, blueprint: Blueprint, objective: Objective, while_running: RunningContext) -> None:
        self.own.run(here, blueprint, self.on_every_rank(objective), while_running)

    def on_every_rank(self, objective: Objective) -> Objective:
        """`objective` as rank 0 runs each trial: every other rank told first, and of each decision."""

        def run(trial: Trial) -> Any:
            trial.sink = Leading(trial.sink, self.ranks)
            native = trial.sink.portable_native()
            self.ranks.share(TrialStarts(trial.number, dict(trial.params), native, trial.resume_from))
            return objective(trial)

        return run


@contextlib.contextmanager
def leading(ranks: Ranks) -> Iterator[None]:
    """Rank 0's whole search: at its end, every other rank is told it is over, or why it failed."""
    try:
        yield
    except BaseException as e:
        ranks.share(SearchEnds(f"{type(e).__name__}: {e}"))
        raise
    ranks.share(SearchEnds())


class Leading(TrialSink):
    """A trial on rank 0: its own path's sink (`inner`, the loop's), each decision and definition shared with the
    other ranks."""

    def __init__(self, inner: TrialSink, ranks: Ranks) -> None:
        self.inner, self.ranks = inner, ranks

    def report(self, trial: Trial, step: int, value: float) -> Decision:
        return self.ranks.share(self.inner.report(trial, step, value))

    def define(self, trial: Trial, build: Callable[[Any], T]) -> T:
        """Build (`model_init`, which may suggest parameters of its own), then send every rank the trial's parameters
        and the trial object their `model_init` gets."""
        try:
            built = self.inner.define(trial, build)
        except BaseException as e:
            self.ranks.share(DefinitionFailed(f"{type(e).__name__}: {e}"))
            raise
        self.ranks.share(TrialDefined(trial.params, self.inner.portable_native()))
        return built

    def suggested(self) -> dict[str, Any] | None:
        return self.inner.suggested()

    def portable_native(self) -> Any:
        return self.inner.portable_native()

    def offer_model(self, trial: Trial, value: float, save: Callable[[str], None]) -> None:
        self.inner.offer_model(trial, value, save)

    def checkpointed(self, trial: Trial, path: str) -> None:
        self.inner.checkpointed(trial, path)

    def paused(self, trial: Trial, *checkpoint: Any) -> None:
        self.inner.paused(trial, *checkpoint)

    def named(self, names: list[str]) -> None:
        self.inner.named(names)


class Following(TrialSink):
    """A trial on another rank: built with the parameters rank 0 built with, stopped where rank 0 decides."""

    def __init__(self, ranks: Ranks) -> None:
        self.ranks = ranks
        self.defined: dict[str, Any] | None = None

    def report(self, trial: Trial, step: int, value: float) -> Decision:
        return self.ranks.share()

    def define(self, trial: Trial, build: Callable[[Any], T]) -> T:
        message = self.ranks.share()
        if isinstance(message, DefinitionFailed):
            raise RankFailed(f"The trial's model_init failed on rank 0: {message.error}")
        self.defined, trial.native = message.params, message.native
        return build(trial.native)

    def suggested(self) -> dict[str, Any] | None:
        return self.defined


def follow(ranks: Ranks, objective: Objective) -> None:
    """A rank other than 0: run each trial rank 0 starts, until it says the search is over (raising where it failed)."""
    while isinstance(message := ranks.received(), TrialStarts):
        trial = Trial(message.number, message.params, message.native, Following(ranks), resume_from=message.resume_from)
        with contextlib.suppress(Exception):  # rank 0 records the trial's failure; follow it to the next trial
            objective(trial)
