"""One worker of a shared study with fast heartbeats, for the frozen-worker tests.

Usage: python tests/reliability/beating_search.py STORAGE LOG. Each trial this worker runs writes
`<number> <step>` to LOG after each intermediate value it reports; trials beat every second, and one
that has not beaten for 3 seconds is taken for dead.
"""

from __future__ import annotations

import sys
import time

import optuna

import hpsearch
from hpsearch.space import Float

storage, log = sys.argv[1], sys.argv[2]


def objective(trial):
    for step in range(1, 7):
        if trial.report(step, trial.params["x"] + 1 / step):
            return None  # stopped: another worker failed this trial while this one was frozen
        with open(log, "a") as f:
            f.write(f"{trial.number} {step}\n")
        time.sleep(0.4)
    return trial.params["x"]


hpsearch.search(
    objective,
    {"x": Float(0.0, 1.0)},
    n_trials=4,
    storage=storage,
    study_name="frozen-worker",
    show_progress=False,
    pruner=optuna.pruners.NopPruner(),
    heartbeat_interval=1,
    grace_period=3,
)
