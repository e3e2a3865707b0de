"""What a search returns: the best run, in the shape of transformers' `BestRun`, and its summary."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from hpsearch.trial import TrialRecord


class BestRun(NamedTuple):
    """The best run of a search, in the shape of `transformers.trainer_utils.BestRun`."""

    run_id: str
    objective: float | list[float]
    hyperparameters: dict[str, Any]
    run_summary: Any | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class SearchSummary:
    """What `BestRun.run_summary` holds: every trial, the store, the best model's directory, and
    the backend's own result object where it has one (Ray's `ResultGrid`, the W&B sweep's id).

    Two summaries are equal when they are of the same search (study, best model's place and
    backend result), as transformers' W&B `run_summary` (the sweep's id) is equal across the calls
    that continue one sweep.
    """

    trials: list[TrialRecord]
    study: Any
    best_model_dir: str | None = None
    native: Any = None

    def _identity(self) -> tuple:
        return self.study.study_name, self.best_model_dir, self.native

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSummary) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((self.study.study_name, self.best_model_dir))
