"""Successive halving that waits for peers: the default rule at a Trainer search's rungs.

optuna's `SuccessiveHalvingPruner` keeps the best third of the trials that have reached a rung, and at least one:
so the first trial of a search, and each trial that beats the one or two before it, run to the end whatever they
score. Here a trial that reaches a rung before `reduction_factor` trials have (itself included) pauses instead: its
checkpoint is kept and the search goes on. Once its rung has peers, the trial is resumed from that checkpoint if
it is among the best third of them, and pruned if not (ASHA's promotion of paused trials, Li et al. 2020). When no
trial is left to start, a paused trial is judged by the peers it has: the best at its rung resumes.

At the last rung a trial among the best third goes on only once `reduction_factor**2` trials are there, pausing
until then (one below it is pruned as at any rung): what it is promoted to costs the most, the last two thirds of a
trial's training, and among a few peers each trial that beats the ones before it went on (after TPE's random
start-up, most of them: 7 of 20 trials ran to the end in BENCHMARKS.md's tweets search, 4 of which the best third
of all ten trials at that rung would have stopped). Measured against the same engine without it, in the same hour:
0.83x the wall time, the same best accuracy on all 6 runs, the best reached sooner on 4 (BENCHMARKS.md).
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


def verdict(peers: Sequence[float], value: float, maximize: bool, reduction_factor: int, wait_for: int) -> str:
    """What a rung does with a trial that scored `value` there, among `peers` (every score there, its own included):
    PRUNE if it is not among the best `1/reduction_factor` of them (at least the best one), CONTINUE if it is and
    there are `wait_for` peers (0: nothing left to wait for), PAUSE while there are fewer (and, below
    `reduction_factor` peers, none to rank it among)."""
    if math.isnan(value):
        return PRUNE
    if len(peers) < min(reduction_factor, wait_for):
        return PAUSE
    better = sum((peer > value) if maximize else (peer < value) for peer in peers)
    if better >= max(len(peers) // reduction_factor, 1):
        return PRUNE
    return PAUSE if len(peers) < wait_for else CONTINUE


def peers_to_wait_for(step: int, rungs: Sequence[int], reduction_factor: int) -> int:
    """How many trials scored at rung `step` (itself included) a trial there waits for before it goes on:
    `reduction_factor`, and its square at the last of the search's `rungs` (above: the promotion that costs most)."""
    return reduction_factor**2 if rungs and step == max(rungs) else reduction_factor


def pause_pays(pause_seconds: float, ran_seconds: float, step: int, next_step: int, reduction_factor: int) -> bool:
    """Whether pausing a trial at progress `step` (its checkpoint saved, then loaded: `pause_seconds`) costs less than
    running it on to `next_step`, its next verdict, would waste: the training to there (at the pace of the
    `ran_seconds` it took to reach `step`), lost where it is pruned then, as `1 - 1/reduction_factor` of trials are."""
    running_on = ran_seconds * (next_step - step) / max(step, 1)
    return pause_seconds < (1 - 1 / reduction_factor) * running_on


def judge(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, reduction_factor: int, can_wait: bool, rungs: Sequence[int]
) -> str:
    """The `verdict` on `trial` at the rung of its latest intermediate value (one of the search's `rungs`), among
    every trial of `study` scored there (in any state: paused, pruned, running or complete)."""
    step = trial.last_step
    if step is None:
        return CONTINUE
    peers = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False) if step in t.intermediate_values]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    wait_for = peers_to_wait_for(step, rungs, reduction_factor) if can_wait else 0
    return verdict(peers, trial.intermediate_values[step], maximize, reduction_factor, wait_for)


class PeerHalvingPruner(optuna.pruners.BasePruner):
    """The rule above at the search's `rungs` (progress points, `hpsearch.fidelity`), as an optuna pruner: `prune`
    is True for a trial to stop there, to be pruned or paused (`pauses` tells which). `pause=False`: optuna's
    successive halving, which promotes a trial without peers."""

    def __init__(self, rungs: Sequence[int], reduction_factor: int = REDUCTION_FACTOR, pause: bool = True):
        self.rungs, self.reduction_factor, self.pause = tuple(rungs), reduction_factor, pause

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.last_step not in self.rungs:
            return False
        return judge(study, trial, self.reduction_factor, self.pause, self.rungs) != CONTINUE

    def pauses(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        """Whether the trial, told to stop at its rung, is to wait there rather than be pruned."""
        return self.pause and judge(study, trial, self.reduction_factor, True, self.rungs) == PAUSE


def default_pruner(settings: SearchSettings, pause: bool = True) -> optuna.pruners.BasePruner:
    """Successive halving at the search's rungs, a trial reaching one before it has peers pausing there where
    `pause` and the search's `pause_trials` say so (above); without rungs, optuna's, its first rung
    estimated from the first finished trial."""
    if settings.rungs:
        return PeerHalvingPruner(settings.rungs, REDUCTION_FACTOR, pause=pause and settings.pause_trials)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource="auto", reduction_factor=REDUCTION_FACTOR)
