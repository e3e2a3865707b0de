"""A function-API search with `n_jobs=2`, in a process of its own, for the worker tests.

Usage: python tests/parallel_search.py BACKEND OUTPUT_DIR
Environment: FAULT picks what happens at trial 1: `sigkill` kills its worker; `kill-search`
kills the search (SIGKILL), which leaves its workers;
`sigint` Ctrl-Cs the search (the process that started the workers) while trials 0 and 1 run.
Every trial that starts appends "number pid" to OUTPUT_DIR/started.log. With `sigkill`, trial 2 waits for trial 3
to start: the worker that took the dead one's place runs a trial, however slowly it starts.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hpsearch  # noqa: E402
from tests.reliability.spaces import native_space  # noqa: E402

backend, output_dir = sys.argv[1], Path(sys.argv[2])
fault = os.environ.get("FAULT", "")
os.environ.update(WANDB_MODE="offline", WANDB_CONFIG_DIR=str(output_dir / "wandb-config"))
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if started in the background


def started() -> list[str]:
    return (output_dir / "started.log").read_text().splitlines()


def objective(trial):
    with open(output_dir / "started.log", "a") as log:
        log.write(f"{trial.number} {os.getpid()}\n")
    deadline = time.monotonic() + 120
    while fault == "sigkill" and trial.number == 2 and time.monotonic() < deadline:
        if any(line.split()[0] == "3" for line in started()):
            break
        time.sleep(0.1)
    if fault in ("sigkill", "kill-search") and trial.number == 1:
        os.kill(os.getpid() if fault == "sigkill" else os.getppid(), signal.SIGKILL)
        time.sleep(30)  # the worker, once the search is gone, ends itself
    if fault == "sigint" and trial.number in (0, 1):
        if trial.number == 1:
            os.kill(os.getppid(), signal.SIGINT)
        time.sleep(30)  # Ctrl-C ends the trial
    trial.report(1, trial.params["x"])
    time.sleep(0.3)
    return trial.params["x"]


hpsearch.search(objective, native_space(backend), n_trials=4, n_jobs=2, backend=backend, output_dir=str(output_dir))
