"""The trials in this process, one after another: the default executor (and rank 0's under DDP)."""

from __future__ import annotations

import contextlib
from typing import Any

from hpsearch.executors.base import Blueprint, Executor, Objective, Place, RunningContext


class InProcess(Executor):
    def run(self, here: Place, blueprint: Blueprint, objective: Objective, while_running: RunningContext) -> None:
        here.recover()  # the trials a dead process left running: failed, or resumed here
        with while_running() if while_running is not None else contextlib.nullcontext():
            here.run_here(objective, self.drive).check_failures()

    def drive(self, loop: Any) -> Any:
        """Run the `loop`'s trials (`loop.searchloop`): here, the loop's own way (an executor whose library places
        the trials, Ray Tune's, its library's way); what that library returned, if anything."""
        return loop.run()
