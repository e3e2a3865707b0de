"""The trials in this process, one after another: the default executor (and rank 0's under DDP)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from hpsearch.executors.base import Executor, Objective, RunningContext

if TYPE_CHECKING:
    from hpsearch.engine import Search


class InProcess(Executor):
    def run(self, search: Search, objective: Objective, while_running: RunningContext) -> None:
        search.recover()  # the trials a dead process left running: failed, or resumed here
        with while_running() if while_running is not None else contextlib.nullcontext():
            search.run_here(objective).check_failures()
