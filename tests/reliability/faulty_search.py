"""A function-API search in a process of its own, for the fault tests: killed, then rerun.

Usage: python tests/reliability/faulty_search.py BACKEND OUTPUT_DIR
Environment: FAULT (one of below) and FAULT_AT_TRIAL=k pick what happens around trial k:
  trial    SIGKILL the search process in the middle of trial k;
  store    SIGKILL it while the store writes trial k's result (after the SQL ran, before COMMIT);
  between  SIGKILL it once that write is committed, before anything else (the next trial);
  create   SIGKILL it once the store committed trial k's creation, before the trial runs;
  sigint   send it SIGINT (Ctrl-C) in the middle of trial k.
Every trial that starts appends its x to OUTPUT_DIR/started.log. With Ray the search
process is the driver; the trials run in Ray's workers.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from optuna.storages._rdb.models import TrialModel  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import hpsearch  # noqa: E402
from tests.reliability.spaces import native_space  # noqa: E402

N_TRIALS = 4
backend, output_dir = sys.argv[1], Path(sys.argv[2])
fault, fault_at = os.environ.get("FAULT", ""), int(os.environ.get("FAULT_AT_TRIAL", "-1"))
search_pid = os.getpid()
armed = output_dir / "armed"  # a file, so that Ray's workers can arm the driver
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
os.environ.update(WANDB_MODE="offline", WANDB_CONFIG_DIR=str(output_dir / "wandb-config"))


# Ctrl-C raises KeyboardInterrupt here, even when this process was started with SIGINT ignored
# (as a shell does for a job it runs in the background)
signal.signal(signal.SIGINT, signal.default_int_handler)


def kill_search_if_armed() -> None:
    if armed.exists():
        os.kill(search_pid, signal.SIGKILL)


@event.listens_for(Session, "after_flush")
def wrote(session, flush_context) -> None:
    session.info["wrote"] = True
    if fault == "store":  # the SQL ran; its transaction is not committed
        kill_search_if_armed()


@event.listens_for(TrialModel, "after_update")  # optuna numbers a trial right after inserting it
def created(mapper, connection, trial) -> None:
    if fault == "create" and trial.number == fault_at:
        armed.touch()


@event.listens_for(Session, "after_commit")
def committed(session) -> None:
    if fault in ("between", "create") and session.info.pop("wrote", False):
        kill_search_if_armed()


def objective(trial):
    with open(output_dir / "started.log", "a") as log:
        log.write(f"{trial.params['x']!r}\n")
    trial.report(1, trial.params["x"])
    if trial.number == fault_at:
        if fault in ("trial", "sigint"):
            os.kill(search_pid, signal.SIGKILL if fault == "trial" else signal.SIGINT)
            time.sleep(30)  # the signal ends the trial
        if fault != "create":
            armed.touch()
    return trial.params["x"]


options = {}
if backend == "ray":  # one trial at a time, none stopped by the default ASHA (it would end trial k before its fault)
    from ray.tune.schedulers import FIFOScheduler

    options = {"max_concurrent_trials": 1, "scheduler": FIFOScheduler()}
hpsearch.search(
    objective,
    native_space(backend),
    n_trials=N_TRIALS,
    backend=backend,
    output_dir=str(output_dir),
    show_progress=False,
    **options,
)
