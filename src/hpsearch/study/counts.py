"""The study's trials counted: how many it holds, how many used a slot of `n_trials`, the best value so far.

A trial uses a slot of `n_trials` once it runs, whatever its end, unless it was interrupted rather than run (a
dead process's, a Ctrl-C's) or is queued and not started yet; a paused trial keeps the slot it took.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from hpsearch.settings import SearchSettings
from hpsearch.study import liveness, schema, store
from hpsearch.trial import TrialRecord

_READ_EVERY = 1.0  # seconds between reads of the queued trials, while none is queued

if TYPE_CHECKING:
    import optuna


class StudyCounts:
    """What `hpsearch.study.lifecycle.Trials` counts of its study, read from the storage (every worker's trials)."""

    settings: SearchSettings
    storage: optuna.storages.BaseStorage
    study: optuna.Study
    _study_id: int
    _read: list[optuna.trial.FrozenTrial] | None = None  # what `waiting_and_failed` read last, and when
    _read_at = -math.inf

    def created(self) -> int:
        """How many trials the study holds, in any state (where a resumed search's draws start)."""
        return self.storage.get_n_trials(self._study_id)

    def finished(self) -> int:
        """How many trials of the study used a slot of `n_trials` (earlier runs' included)."""
        import optuna

        states = optuna.trial.TrialState
        ended = self.storage.get_n_trials(self._study_id, (states.COMPLETE, states.PRUNED, states.FAIL))
        return ended - len(self._not_run(states.FAIL))

    def slots_taken_before(self, number: int) -> int:
        """Slots of `n_trials` used or being used by the trials numbered below `number` (any worker). Where the last
        `waiting_and_failed` found no queued trial, at most what it read says (trials made since count as taking
        slots), while that leaves room for the next trial: no query but near the end of the search."""
        import optuna

        read = self._read
        if read is not None and not any(t.state.name == "WAITING" for t in read):
            at_most = number - sum(n < number for n in self._not_run_of(read))
            if at_most + 1 < self.settings.n_trials:  # enough to go on by; to stop, the count is exact
                return at_most
        states = optuna.trial.TrialState
        return number - sum(n < number for n in self._not_run(states.FAIL, states.WAITING))

    def waiting_and_failed(self, fresh: bool = False) -> list[optuna.trial.FrozenTrial]:
        """The queued, paused and failed trials, in a read that `slots_taken_before` counts from too. While none is
        queued (and not `fresh`), read at most once a second: another process's queued trial waits that long."""
        import optuna

        queued = self._read is None or any(t.state.name == "WAITING" for t in self._read)
        if fresh or queued or time.monotonic() - self._read_at >= _READ_EVERY:
            states = optuna.trial.TrialState
            self._read = self.study.get_trials(deepcopy=False, states=(states.FAIL, states.WAITING))
            self._read_at = time.monotonic()
        return self._read

    def paused(self) -> int:
        """How many trials wait at a rung to resume (`hpsearch.loop.halving`)."""
        import optuna

        trials = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        return sum(bool(schema.fact(t, schema.PAUSED)) for t in trials)

    def paused_bytes(self) -> int:
        """The disk the checkpoints of the trials waiting at a rung take (`hpsearch.study.disk`)."""
        return sum(schema.fact(t, schema.PAUSE_FILES)["bytes"] for t in self._paused_with_files())

    def measured_pause(self) -> tuple[int, float] | None:
        """The bytes and save seconds of the largest pause checkpoint saved in the study (None before the first)."""
        files = [schema.fact(t, schema.PAUSE_FILES) for t in self.study.get_trials(deepcopy=False)]
        largest = max((f for f in files if f), key=lambda f: f["bytes"], default=None)
        return None if largest is None else (largest["bytes"], largest["seconds"])

    def _paused_with_files(self) -> list[optuna.trial.FrozenTrial]:
        import optuna

        trials = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        return [t for t in trials if schema.fact(t, schema.PAUSED) and schema.fact(t, schema.PAUSE_FILES)]

    def _not_run(self, *states: optuna.trial.TrialState) -> list[int]:
        """The numbers of the trials in `states` that use no slot: interrupted failures, queued ones."""
        return self._not_run_of(self.study.get_trials(deepcopy=False, states=states))

    def _not_run_of(self, trials: list[optuna.trial.FrozenTrial]) -> list[int]:
        queued = {t.number for t in trials if t.state.name == "WAITING" and not schema.fact(t, schema.PAUSED)}
        said = queued | {t.number for t in trials if schema.fact(t, schema.INTERRUPTED)}
        if len(said) < len(trials):  # failures not said to be interrupted: some may be stale (a query)
            said |= {t.number for t in trials} & liveness.stale_trials(self.study)
        return sorted(said)

    def best_value(self) -> float | None:
        """The best objective so far (single objective; the storage's own query), None before any completed."""
        if not self.settings.single_objective:
            return None
        try:
            return self.study.best_value
        except ValueError:  # no trial completed yet
            return None

    def records(self) -> list[TrialRecord]:
        return store.records(self.study)
