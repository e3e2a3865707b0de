"""A search holding secrets, for the secrets test: every log at DEBUG, the progress bar, the report.

Usage: HPSEARCH_STORAGE=URL python tests/reliability/secret_search.py BACKEND OUTPUT_DIR SIGOPT_API_URL
The storage URL carries a password; it, WANDB_API_KEY and SIGOPT_API_TOKEN come from the
environment, where secrets belong (W&B records the command line). SigOpt runs against the API
server at SIGOPT_API_URL.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hpsearch
from hpsearch.space import Float
from hpsearch.study.store import load_study
from hpsearch.tools.report import write_report

backend, output_dir = sys.argv[1:3]
storage = os.environ["HPSEARCH_STORAGE"]
logging.basicConfig(level=logging.DEBUG, format="%(name)s %(message)s")
os.environ.update(WANDB_MODE="offline", WANDB_DIR=output_dir, WANDB_CONFIG_DIR=str(Path(output_dir) / "wandb-config"))
options = {"api_url": sys.argv[3]} if backend == "sigopt" else {}


def objective(trial):
    trial.report(1, trial.params["x"] ** 2)
    return trial.params["x"] ** 2


best = hpsearch.search(
    objective, {"x": Float(-1.0, 1.0)}, n_trials=3, backend=backend, storage=storage, output_dir=output_dir, **options
)
print(best)
write_report(load_study(storage=storage), Path(output_dir) / "report")
