"""The executor contract, where a search's trials run (`hpsearch.executors`), and the executors of the libraries
that place trials themselves."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hpsearch.settings import SearchSettings
    from hpsearch.study.lifecycle import Trials
    from hpsearch.trial import Trial

Objective = Callable[["Trial"], Any]
RunningContext = Callable[[], AbstractContextManager] | None  # the context the trials run in, made where they run


class Place(Protocol):
    """The search at one place (a process): its settings and study's trials; `recover` what a dead process left
    running, and `run_here` this place's share of the trials (the loop, driven by `drive` if given: a library's
    own loop; it returns the loop that ran them)."""

    settings: SearchSettings
    trials: Trials

    def recover(self) -> None: ...

    def run_here(self, objective: Objective, drive: Callable[[Any], Any] | None = None) -> Any: ...


class Blueprint(Protocol):
    """What every place builds the same search from: `at_worker()` builds it in a worker process."""

    def at_worker(self) -> Place: ...


class Executor(ABC):
    """Runs a search's trials until `n_trials` of its study have finished: `run_here(objective)` (the loop, one
    place's share of the trials) at this place (`here`) or at places it builds from the `blueprint`, each place
    entering `while_running()` around its trials; then the failure policy's verdict on them (`hpsearch.loop.failures`).
    Ctrl-C ends every place, the trials it stopped recorded as interrupted (`SearchInterrupted`).

    A new one (a Slurm or Kubernetes job per worker) starts places that each build the same search from the blueprint
    on the study's shared storage and call `run_here`: the study counts the trials, so `n_trials`, resume and
    crash-safety hold."""

    @abstractmethod
    def run(self, here: Place, blueprint: Blueprint, objective: Objective, while_running: RunningContext) -> None: ...

    def around(self, own: Executor) -> Executor:
        """This executor given to a search whose trials in this process would run with `own` (`InProcess`, or the
        executor of a library that places its trials itself: a W&B server's agent): DDP's runs each of them on
        every rank through `own`; by default an executor runs the trials its own way."""
        return self


# the executors of the libraries that place trials themselves, by the name a backend's `placed_by` gives
PLACING = {
    "ray-tune": ("hpsearch.executors.ray", "RayTune"),
    "wandb-agent": ("hpsearch.executors.wandb_agent", "WandbAgent"),
}


def placing(name: str) -> Executor:
    """The executor named `name` (`PLACING`), imported now: the backend that names it has loaded its library."""
    module, executor = PLACING[name]
    return getattr(importlib.import_module(module), executor)()
