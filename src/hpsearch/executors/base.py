"""The executor contract: where a search's trials run (`hpsearch.executors`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hpsearch.executors.resources import WorkerShare
    from hpsearch.lifecycle import Trials
    from hpsearch.settings import SearchSettings
    from hpsearch.trial import Trial

Objective = Callable[["Trial"], Any]
RunningContext = Callable[[], AbstractContextManager] | None  # the context the trials run in, made where they run


class Runnable(Protocol):
    """What an executor needs of a search (`hpsearch.Search` is one): its settings and study, the machine's shares
    for worker processes, and a blueprint each place rebuilds the same search from (`rebuilt`); at each place,
    `recover` what a dead process left running and `run_here` its share of the trials (the loop that ran them)."""

    blueprint: Any
    settings: SearchSettings
    trials: Trials
    shares: list[WorkerShare]

    @classmethod
    def rebuilt(cls, blueprint: Any) -> Runnable: ...

    def recover(self) -> None: ...

    def run_here(self, objective: Objective) -> Any: ...


class Executor(ABC):
    """Runs a search's trials until `n_trials` of its study have finished: `search.run_here(objective)` (the loop, one
    process's share of the trials) wherever the executor places it, each place entering `while_running()` around its
    trials; then the failure policy's verdict on them (`hpsearch.failures`). Ctrl-C ends every place, the trials it
    stopped recorded as interrupted (`SearchInterrupted`).

    A new one (a Slurm or Kubernetes job per worker) starts places that each build the same search on the study's
    shared storage and call `run_here`: the study counts the trials, so `n_trials`, resume and crash-safety hold."""

    @abstractmethod
    def run(self, search: Runnable, objective: Objective, while_running: RunningContext) -> None: ...
