"""One worker of a search shared by several processes, for the parallel-worker tests.

Usage: python tests/worker_search.py STORAGE LOG. STORAGE is an optuna storage URL, or
`journal:PATH` for optuna's journal file. Each trial this worker runs appends its number to LOG.
"""

from __future__ import annotations

import sys
import time

import optuna

import hpsearch
from hpsearch.space import Float

storage, log = sys.argv[1], sys.argv[2]
if storage.startswith("journal:"):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage[len("journal:") :]))


def objective(trial):
    with open(log, "a") as f:
        f.write(f"{trial.number}\n")
    time.sleep(0.6)  # long enough that a worker starting a few seconds late still gets trials
    return trial.params["x"] ** 2


hpsearch.search(objective, {"x": Float(-1, 1)}, n_trials=8, storage=storage, study_name="shared", show_progress=False)
