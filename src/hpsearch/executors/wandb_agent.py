"""The W&B agent as an executor: where a W&B server runs the sweep (the `wandb` backend's server mode), `wandb.agent`
asks the server for each run's parameters and calls back for it; each call is one trial of the search's loop
(`SearchLoop.run_trial`), recorded in the study as every executor's trials are.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import wandb

from hpsearch.executors.in_process import InProcess
from hpsearch.loop.searchloop import SearchLoop

# what `wandb.agent` sets for each run and leaves set after its last one
AGENT_VARIABLES = ("WANDB_RUN_ID", "WANDB_SWEEP_ID", "WANDB_SWEEP_PARAM_PATH")


class WandbAgent(InProcess):
    """The backend's sweep on the W&B server, its runs until `n_trials` trials of the study have finished, each run
    by the agent in this process (more agents: `wandb agent SWEEP_ID` in other shells)."""

    def drive(self, loop: SearchLoop) -> None:
        backend = loop.backend
        remaining = loop.settings.n_trials - loop.trials.finished()
        if remaining <= 0:
            return
        agent = backend.agent or wandb.agent
        with agent_leftovers_cleared():
            agent(
                backend.sweep_id,
                function=lambda: loop.run_trial(backend.agent_run()),
                count=remaining,
                project=backend.project,
                entity=backend.entity,
            )


@contextlib.contextmanager
def agent_leftovers_cleared() -> Iterator[None]:
    """After `wandb.agent`: its last run's id and parameter file out of the environment again, and
    W&B's process state (which keeps that run's sweep parameters) torn down; else every later
    `wandb.init` in this process, a local search's trials included, takes that id and those values."""
    before = {name: os.environ.get(name) for name in AGENT_VARIABLES}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        wandb.teardown()
