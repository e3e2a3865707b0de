"""The trials in this process, one after another: the default executor (and rank 0's under DDP)."""

from __future__ import annotations

import contextlib

from hpsearch.executors.base import Executor, Objective, Runnable, RunningContext


class InProcess(Executor):
    def run(self, search: Runnable, objective: Objective, while_running: RunningContext) -> None:
        search.recover()  # the trials a dead process left running: failed, or resumed here
        with while_running() if while_running is not None else contextlib.nullcontext():
            search.run_here(objective).check_failures()
