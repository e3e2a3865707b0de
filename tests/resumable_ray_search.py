"""A Ray search in a process of its own, for the kill-and-resume test.

Usage: python tests/resumable_ray_search.py OUTPUT_DIR. With KILL_AT_TRIAL=k, trial k's worker
SIGKILLs this driver process. Every trial that starts appends its Ray index to started.log.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from ray import tune

import hpsearch

output_dir = Path(sys.argv[1])
driver, kill_at = os.getpid(), int(os.environ.get("KILL_AT_TRIAL", "-1"))


def objective(trial):
    with open(output_dir / "started.log", "a") as log:
        log.write(f"{trial.number}\n")
    if trial.number == kill_at:
        os.kill(driver, signal.SIGKILL)
        time.sleep(30)
    return trial.params["x"]


hpsearch.search(objective, {"x": tune.uniform(0, 1)}, n_trials=4, backend="ray", output_dir=str(output_dir),
                storage=f"sqlite:///{output_dir / 'hpsearch.db'}", max_concurrent_trials=1)
