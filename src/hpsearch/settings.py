"""What a search is asked to do, in one object that the engine and the backends read."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

DEFAULT_STUDY_NAME = "hpsearch"


def study_folder(study_name: str) -> str:
    """A study's name as the name of a folder of its own: the name itself where it is a plain file name, else one
    made of it with a hash of the name, so that no two studies share a folder ("a/b" and "a_b", "..")."""
    name = re.sub(r"[^\w.-]", "_", study_name)
    if name != study_name or name.strip(".") == "":
        name = f"{name}-{hashlib.sha256(study_name.encode()).hexdigest()[:8]}"
    return name


@dataclass(frozen=True)
class SearchSettings:
    """One search's settings, checked by `hpsearch.Search` (Ray's `TuneConfig` idea).

    `n_trials` counts every finished trial of the study, earlier runs' included. A trial raising
    one of `catch` is recorded as failed and the search goes on, unless
    `max_consecutive_failed_trials` fail in a row (None: never stop for that). `rungs` are the
    progress points (`hpsearch.loop.fidelity`) at which a Trainer search scores every trial on its way,
    where the backends' default pruning rules put their rungs; empty for the function API. `pause_trials`: a
    trial reaching a rung before it has peers pauses there (`hpsearch.loop.halving`) rather than running on, while the
    paused trials' checkpoints fit in `pause_disk` bytes ("auto": `hpsearch.study.disk`; None: no cap); with
    `promote_leaders`, a clear leader at the last rung does not wait (`hpsearch.loop.halving`).
    `heartbeat_interval` and `grace_period` (seconds; None for a storage that is not a database URL)
    are optuna's heartbeats of running trials; a trial they find dead runs again with its parameters up
    to `retry_stale_trials` times. `worker` is which of the search's `workers` processes (`n_jobs`)
    this one is, so that each draws its own proposals.
    """

    directions: tuple[str, ...]
    n_trials: int = 20
    storage: Any = None  # an optuna storage URL or object; None keeps the study in memory
    study_name: str = DEFAULT_STUDY_NAME
    output_dir: str | None = None  # the best model and the backends' files; None: neither kept
    timeout: float | None = None
    catch: tuple[type[BaseException], ...] = (Exception,)
    max_consecutive_failed_trials: int | None = 3
    show_progress: bool = True
    rungs: tuple[int, ...] = ()
    pause_trials: bool = False
    promote_leaders: bool = False
    pause_disk: int | str | None = "auto"  # the most disk paused trials' checkpoints take (`hpsearch.study.disk`)
    heartbeat_interval: int | None = None
    grace_period: int | None = None
    retry_stale_trials: int = 0
    worker: int = 0
    workers: int = 1

    @property
    def single_objective(self) -> bool:
        return len(self.directions) == 1
