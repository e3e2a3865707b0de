"""The search's one progress bar, whatever runs its trials: the study's finished trials of `n_trials` (every worker's,
earlier runs' too), the best value so far, and what runs now; tqdm's own part estimates the time left."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from hpsearch.objective import is_better
from hpsearch.study.leaderboard import format_value

if TYPE_CHECKING:
    from hpsearch.study.lifecycle import Trials

COUNT_EVERY = 0.5  # seconds between two counts of the study's finished trials and best value (three queries)


class SearchProgress:
    """The bar of a search over `trials` (hidden unless the settings' `show_progress`)."""

    def __init__(self, trials: Trials):
        self.trials, self.settings = trials, trials.settings
        self.bar = tqdm(
            total=self.settings.n_trials,
            initial=trials.finished(),
            desc="hpsearch",
            unit="trial",
            disable=not self.settings.show_progress,
        )
        self._counted_at = -math.inf  # when the study's finished trials and best value were last counted
        self._best: float | None = None

    def count(self) -> None:
        """The study's finished trials and best value, counted now."""
        if not self.bar.disable:
            self.bar.update(self.trials.finished() - self.bar.n)
            self._best, self._counted_at = self.trials.best_value(), time.monotonic()

    def trial_ended(self, values: list[float] | None) -> None:
        """One more finished, and its value if best; counted from the study (the trials of every worker, the paused
        ones pruned meanwhile) at most every `COUNT_EVERY` seconds."""
        if self.bar.disable:
            return
        if time.monotonic() - self._counted_at >= COUNT_EVERY:
            self.count()
        else:
            self.bar.update(1)
            if values is not None and self.settings.single_objective:
                direction = self.settings.directions[0]
                self._best = values[0] if is_better(values[0], self._best, direction) else self._best
        self.show()

    def show(self, current: str = "") -> None:
        """The line beside the bar: what runs now (a trial, its latest intermediate value), the best so far."""
        if not self.bar.disable:
            parts = [current, f"best={format_value(self._best)}" if self._best is not None else ""]
            self.bar.set_postfix_str(", ".join(p for p in parts if p))

    def close(self) -> None:
        self.count()  # the last count, however recent the one before
        self.bar.close()
