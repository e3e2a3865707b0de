"""An embedded SigOpt search in a process of its own, for the kill-and-resume test.

Usage: python tests/resumable_sigopt_search.py OUTPUT_DIR. With KILL_AT_TRIAL=k set, the process
SIGKILLs itself in the middle of trial k. Every trial that starts appends its number to started.log.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import hpsearch

output_dir = Path(sys.argv[1])
kill_at = int(os.environ.get("KILL_AT_TRIAL", "-1"))
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")


def objective(trial):
    with open(output_dir / "started.log", "a") as log:
        log.write(f"{trial.number}\n")
    if trial.number == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return trial.params["x"]


space = [{"name": "x", "type": "double", "bounds": {"min": 0.0, "max": 1.0}}]
hpsearch.search(objective, space, n_trials=5, backend="sigopt", storage=f"sqlite:///{output_dir / 'hpsearch.db'}",
                show_progress=False)
