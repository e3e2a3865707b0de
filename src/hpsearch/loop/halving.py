"""Successive halving that waits for peers: the default rule at a Trainer search's rungs.

optuna's `SuccessiveHalvingPruner` keeps the best third of the trials that have reached a rung, and at least one:
so the first trial of a search, and each trial that beats the one or two before it, run to the end whatever they
score. Here a trial that reaches a rung before `reduction_factor` trials have (itself included) pauses instead: its
checkpoint is kept and the search goes on. Once its rung has peers, the trial is resumed from that checkpoint if
it is among the best third of them, and pruned if not (ASHA's promotion of paused trials, Li et al. 2020). When no
trial is left to start, a paused trial is judged by the peers it has: the best at its rung resumes.

At the last rung a trial among the best third goes on only once `reduction_factor**2` trials are there, pausing
until then (one below it is pruned as at any rung): what it is promoted to costs the most, the last two thirds of a
trial's training, and among a few peers each trial that beats the ones before it would go on (BENCHMARKS.md). With
`promote_leaders` a clear leader does not wait: a trial that beats each of at least `reduction_factor` peers there by
more than the standard error of the difference goes on at once, so that the first final result comes early (PASHA's
idea of growing the budget only where the ranking is unclear, Bohdal et al. 2023). Not the default: a leader among
the first few peers is seldom the search's best, and each one promoted trains to the end (BENCHMARKS.md).

The rule's verdicts are `hpsearch.loop.decision`'s (`verdict`, `judge`), which carries them out; here it is an optuna
pruner, the default of the backends that prune on the study store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import optuna

from hpsearch.loop.decision import judge
from hpsearch.loop.fidelity import REDUCTION_FACTOR
from hpsearch.trial import Decision

if TYPE_CHECKING:
    from hpsearch.settings import SearchSettings


class PeerHalvingPruner(optuna.pruners.BasePruner):
    """The rule above at the search's `rungs` (progress points, `hpsearch.loop.fidelity`), as an optuna pruner: `prune`
    is True for a trial to stop there, and `verdicts` keeps why, by trial number (PAUSE or PRUNE), for
    `hpsearch.loop.decision` to carry out. `pause=False`: optuna's successive halving, which promotes a trial without
    peers. `promote_leaders`: a clear leader goes on without waiting for the last rung's peers (above)."""

    def __init__(
        self,
        rungs: Sequence[int],
        reduction_factor: int = REDUCTION_FACTOR,
        pause: bool = True,
        promote_leaders: bool = False,
    ):
        self.rungs, self.reduction_factor, self.pause = tuple(rungs), reduction_factor, pause
        self.promote_leaders = promote_leaders
        self.verdicts: dict[int, Decision] = {}

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.last_step not in self.rungs:
            return False
        decision = judge(study, trial, self.reduction_factor, self.pause, self.rungs, self.promote_leaders)
        if decision.stops:
            self.verdicts[trial.number] = decision
        return decision.stops


def default_pruner(settings: SearchSettings, pause: bool = True) -> optuna.pruners.BasePruner:
    """Successive halving at the search's rungs, a trial reaching one before it has peers pausing there where
    `pause` and the search's `pause_trials` say so (above); without rungs, optuna's, its first rung
    estimated from the first finished trial."""
    if settings.rungs:
        pauses = pause and settings.pause_trials
        return PeerHalvingPruner(settings.rungs, REDUCTION_FACTOR, pauses, settings.promote_leaders)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource="auto", reduction_factor=REDUCTION_FACTOR)
