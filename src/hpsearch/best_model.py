"""Keeping the best trial's model: `<output_dir>/best_model`, swapped in whole or not at all.

A trial offers its model when an evaluation beats every completed trial; the model waits in a
staging directory until the trial completes, then replaces the best model if the trial is the
study's best. The keeper knows directories only: saving a model is the trial runner's job.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

BEST_MODEL_DIR = "best_model"
TRIAL_INFO = "hpsearch_trial.json"


class BestModelKeeper:
    """The best model's directory and the staging directories of the trials that may replace it."""

    def __init__(self, output_dir: str | Path):
        self.dir = Path(output_dir) / BEST_MODEL_DIR
        self._staging = Path(output_dir) / ".staging"

    def staging_dir(self, number: int) -> Path:
        return self._staging / f"trial-{number}"

    def promote(self, number: int, objective: Any, params: dict[str, Any], source: Path | None = None) -> None:
        """Make trial `number`'s staged model (or `source`, which is moved) the best model."""
        source = source or self.staging_dir(number)
        info = {"trial": number, "objective": objective, "params": params}
        (source / TRIAL_INFO).write_text(json.dumps(info, default=str, indent=1))
        old = self.dir.with_name(BEST_MODEL_DIR + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.dir.exists():
            self.dir.rename(old)
        shutil.move(str(source), self.dir)
        shutil.rmtree(old, ignore_errors=True)

    def kept_trial(self) -> int | None:
        """The number of the trial whose model is kept, None if none is."""
        info = self.dir / TRIAL_INFO
        return json.loads(info.read_text())["trial"] if info.is_file() else None

    def discard(self, number: int) -> None:
        shutil.rmtree(self.staging_dir(number), ignore_errors=True)
