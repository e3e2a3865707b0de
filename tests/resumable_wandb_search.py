"""A local-mode W&B search in a process of its own, for the kill-and-resume test.

Usage: python tests/resumable_wandb_search.py OUTPUT_DIR. With KILL_AT_TRIAL=k set, the process
SIGKILLs itself in the middle of trial k. Every trial that starts appends its number to started.log.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import hpsearch

output_dir = Path(sys.argv[1])
kill_at = int(os.environ.get("KILL_AT_TRIAL", "-1"))
os.environ.update(WANDB_MODE="offline", WANDB_CONFIG_DIR=str(output_dir / "wandb-config"))
os.environ.pop("WANDB_API_KEY", None)


def objective(trial):
    with open(output_dir / "started.log", "a") as log:
        log.write(f"{trial.number}\n")
    trial.report(1, trial.params["x"])
    if trial.number == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return trial.params["x"]


config = {"method": "bayes", "parameters": {"x": {"min": 0.0, "max": 1.0}}}
hpsearch.search(objective, config, n_trials=5, backend="wandb", output_dir=str(output_dir),
                storage=f"sqlite:///{output_dir / 'hpsearch.db'}")
