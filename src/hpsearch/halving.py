"""Successive halving that waits for peers: the default rule at a Trainer search's rungs.

optuna's `SuccessiveHalvingPruner` keeps the best third of the trials that have reached a rung, and at least one:
so the first trial of a search, and each trial that beats the one or two before it, run to the end whatever they
score. Here a trial that reaches a rung before `reduction_factor` trials have (itself included) pauses instead: its
checkpoint is kept and the search goes on. Once its rung has peers, the trial is resumed from that checkpoint if
it is among the best third of them, and pruned if not (ASHA's promotion of paused trials, Li et al. 2020). When no
trial is left to start, a paused trial is judged by the peers it has: the best at its rung resumes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import optuna

from hpsearch.fidelity import REDUCTION_FACTOR
from hpsearch.trial import CONTINUE, PAUSE, PRUNE

if TYPE_CHECKING:
    from hpsearch.settings import SearchSettings


def verdict(peers: Sequence[float], value: float, maximize: bool, reduction_factor: int, can_wait: bool) -> str:
    """What a rung does with a trial that scored `value` there, among `peers` (every score there, its own included):
    CONTINUE if it is among the best `1/reduction_factor` of them (at least the best one), PRUNE if not, or PAUSE
    (where it `can_wait`) while there are fewer than `reduction_factor` peers."""
    if math.isnan(value):
        return PRUNE
    if len(peers) < reduction_factor and can_wait:
        return PAUSE
    better = sum((peer > value) if maximize else (peer < value) for peer in peers)
    return CONTINUE if better < max(len(peers) // reduction_factor, 1) else PRUNE


def judge(study: optuna.Study, trial: optuna.trial.FrozenTrial, reduction_factor: int, can_wait: bool) -> str:
    """The `verdict` on `trial` at the rung of its latest intermediate value, among every trial of `study` scored
    there (in any state: paused, pruned, running or complete)."""
    step = trial.last_step
    if step is None:
        return CONTINUE
    peers = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False) if step in t.intermediate_values]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return verdict(peers, trial.intermediate_values[step], maximize, reduction_factor, can_wait)


class PeerHalvingPruner(optuna.pruners.BasePruner):
    """The rule above at the search's `rungs` (progress points, `hpsearch.fidelity`), as an optuna pruner: `prune`
    is True for a trial to stop there, to be pruned or paused (`pauses` tells which). `pause=False`: optuna's
    successive halving, which promotes a trial without peers."""

    def __init__(self, rungs: Sequence[int], reduction_factor: int = REDUCTION_FACTOR, pause: bool = True):
        self.rungs, self.reduction_factor, self.pause = tuple(rungs), reduction_factor, pause

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.last_step not in self.rungs:
            return False
        return judge(study, trial, self.reduction_factor, self.pause) != CONTINUE

    def pauses(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        """Whether the trial, told to stop at its rung, is to wait there rather than be pruned."""
        return self.pause and judge(study, trial, self.reduction_factor, True) == PAUSE


def default_pruner(settings: SearchSettings, pause: bool = True) -> optuna.pruners.BasePruner:
    """Successive halving at the search's rungs, a trial reaching one before it has peers pausing there where
    `pause` and the search's `pause_trials` say so (above); without rungs, optuna's, its first rung
    estimated from the first finished trial."""
    if settings.rungs:
        return PeerHalvingPruner(settings.rungs, REDUCTION_FACTOR, pause=pause and settings.pause_trials)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource="auto", reduction_factor=REDUCTION_FACTOR)
