"""What a search returns: the best run, in the shape of transformers' `BestRun`, and its summary."""

from __future__ import annotations

import dataclasses
import html
from typing import TYPE_CHECKING, Any, NamedTuple

from hpsearch.study import schema, store
from hpsearch.study.leaderboard import columns, html_table, rows
from hpsearch.trial import TrialRecord

if TYPE_CHECKING:
    import pandas


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

    @property
    def directions(self) -> list[str]:
        return store.study_directions(self.study)

    @property
    def peak_pause_bytes(self) -> int:
        """The most disk the checkpoints of trials paused at a rung took at once (0: none paused)."""
        return schema.study_fact(self.study.user_attrs, schema.PAUSE_PEAK) or 0

    def trials_dataframe(self) -> pandas.DataFrame:
        """Every trial, best first, with the columns of `hpsearch show --csv`: number, state, objective
        (`objective_<i>` for several directions), `params_<name>`, duration, intermediate, error."""
        import pandas

        return pandas.DataFrame(rows(self.trials, self.directions), columns=columns(self.trials, self.directions))

    def _repr_html_(self) -> str:
        """A notebook shows the summary as the leaderboard."""
        kept = f"; best model: <code>{html.escape(self.best_model_dir)}</code>" if self.best_model_dir else ""
        title = f"<p>study <b>{html.escape(self.study.study_name)}</b>: {len(self.trials)} trials{kept}</p>"
        return title + html_table(self.trials, self.directions)

    def _identity(self) -> tuple:
        return self.study.study_name, self.best_model_dir, self.native

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSummary) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((self.study.study_name, self.best_model_dir))
