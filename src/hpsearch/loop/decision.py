"""What becomes of a trial at each report of its objective: a `Decision`, made here once and carried out by whatever
runs the trial (this process, a worker process, every DDP rank).

The backend's pruner says whether the trial stops. Where that pruner is hpsearch's successive halving that waits
for peers (`hpsearch.loop.halving`: the rule, explained), the rule's verdict (`verdict`, `judge`, here) says whether
the trial pauses at its rung or is pruned; a pause must fit under `pause_disk` beside the paused trials'
checkpoints and cost less than running on would (`pause_pays`), else the trial is judged by the peers it has. A
paused trial is judged here again each time the loop looks for one to resume.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hpsearch.loop.fidelity import PROGRESS_END, REDUCTION_FACTOR
from hpsearch.study import disk, schema
from hpsearch.trial import Decision

if TYPE_CHECKING:
    import optuna

    from hpsearch.backends.base import Backend, Proposal
    from hpsearch.settings import SearchSettings
    from hpsearch.study.lifecycle import LiveTrial, Trials
    from hpsearch.trial import Trial

logger = logging.getLogger(__name__)
Scored = tuple[float, float | None]  # a rung score and its standard error (None: not measured)


def verdict(peers: Sequence[float], value: float, maximize: bool, reduction_factor: int, wait_for: int) -> Decision:
    """What a rung does with a trial that scored `value` there, among `peers` (every score there, its own included):
    PRUNE if it is not among the best `1/reduction_factor` of them (at least the best one), CONTINUE if it is and
    there are `wait_for` peers (0: nothing left to wait for), PAUSE while there are fewer (and, below
    `reduction_factor` peers, none to rank it among)."""
    if math.isnan(value):
        return Decision.PRUNE
    if len(peers) < min(reduction_factor, wait_for):
        return Decision.PAUSE
    better = sum((peer > value) if maximize else (peer < value) for peer in peers)
    if better >= max(len(peers) // reduction_factor, 1):
        return Decision.PRUNE
    return Decision.PAUSE if len(peers) < wait_for else Decision.CONTINUE


def leads_clearly(mine: Scored, others: Sequence[Scored], maximize: bool) -> bool:
    """Whether a rung score `mine` (value, standard error) beats each of `others` by more than the standard error of
    the difference: a ranking the rung's noise cannot turn (PASHA's idea, Bohdal et al. 2023). A score whose error
    was not measured (None) is never clearly beaten or beating."""
    value, error = mine
    for other, other_error in others:
        if error is None or other_error is None:
            return False
        if (value - other if maximize else other - value) <= math.hypot(error, other_error):
            return False
    return True


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
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    reduction_factor: int,
    can_wait: bool,
    rungs: Sequence[int],
    promote_leaders: bool = False,
) -> Decision:
    """The `verdict` on `trial` at the rung of its latest intermediate value (one of the search's `rungs`), among
    every trial of `study` scored there (in any state: paused, pruned, running or complete). With `promote_leaders`,
    a trial that would wait for more peers goes on where it has `reduction_factor` of them and `leads_clearly`."""
    step = trial.last_step
    if step is None:
        return Decision.CONTINUE
    peers = [t for t in study.get_trials(deepcopy=False) if step in t.intermediate_values]
    maximize = study.direction.name == "MAXIMIZE"
    wait_for = peers_to_wait_for(step, rungs, reduction_factor) if can_wait else 0
    values = [peer.intermediate_values[step] for peer in peers]
    decision = verdict(values, trial.intermediate_values[step], maximize, reduction_factor, wait_for)
    if decision is Decision.PAUSE and promote_leaders and len(peers) >= reduction_factor:
        others = [scored(peer, step) for peer in peers if peer.number != trial.number]
        if leads_clearly(scored(trial, step), others, maximize):
            return Decision.CONTINUE
    return decision


def scored(trial: optuna.trial.FrozenTrial, step: int) -> Scored:
    """The trial's score at rung `step` and its standard error, where its runner measured one (`schema.RUNG_ERROR`)."""
    return trial.intermediate_values[step], trial.user_attrs.get(f"{schema.RUNG_ERROR}{step}")


class Decider:
    """The one place a reported value becomes a `Decision`, for the trials of one search run (`searchloop`)."""

    def __init__(self, settings: SearchSettings, backend: Backend, trials: Trials):
        self.settings, self.backend, self.trials = settings, backend, trials
        self.settling = False  # no trial left to start (or no time): a paused trial is judged by the peers it has
        self._pause_cap = disk.cap_bytes(settings.pause_disk, settings.output_dir)  # as the disk is when it starts
        self._told_full = False

    def at_report(self, proposal: Proposal, live: LiveTrial, step: int, value: float, trial: Trial) -> Decision:
        """The decision on `trial`, which reported `value` at `step` (with what its runner knows: the value's
        standard error, what its pause would take). A trial another worker failed meanwhile stops; several
        objectives are never pruned."""
        if not self.trials.report(live, step, value, trial.score_error):
            return Decision.PRUNE
        if not self.settings.single_objective:
            return Decision.CONTINUE
        pruner = self.backend.pruner
        stops = self.backend.report(proposal, step, value)
        if not stops and pruner is not None and self.backend.can_prune:
            stops = self.trials.should_prune(live)  # the pruner on the study store
        if not stops:
            return Decision.CONTINUE
        verdicts = getattr(pruner, "verdicts", None)  # the halving's, as it said "stop"; another pruner's is final
        verdict = Decision.PRUNE if verdicts is None else verdicts.pop(live.number, Decision.PRUNE)
        if verdict is Decision.PAUSE:
            frozen = self.trials.storage.get_trial(live.trial_id)
            if not self._may_pause(frozen, trial.pause_bytes, pruner.reduction_factor):
                return self.on_paused(frozen, can_wait=False)
        return verdict

    def on_paused(self, frozen: optuna.trial.FrozenTrial, can_wait: bool | None = None) -> Decision:
        """The verdict on a paused trial at its rung: CONTINUE resumes it, PRUNE ends it, PAUSE leaves it waiting."""
        factor = getattr(self.backend.pruner, "reduction_factor", REDUCTION_FACTOR)
        can_wait = not self.settling if can_wait is None else can_wait
        return judge(self.trials.study, frozen, factor, can_wait, self.settings.rungs, self.settings.promote_leaders)

    def _may_pause(self, frozen: optuna.trial.FrozenTrial, pause_bytes: int | None, reduction_factor: int) -> bool:
        """Whether the trial's pause checkpoint fits under `pause_disk` beside the paused trials' and costs less
        than running on would (`pause_pays`), as the study's largest pause so far measured it."""
        measured = self.trials.measured_pause()
        size = measured[0] if measured else pause_bytes or 0
        paused = self.trials.paused_bytes()
        if paused + size > self._pause_cap:
            if not self._told_full:
                logger.warning(
                    f"hpsearch: pausing trial {frozen.number} would take the paused trials' checkpoints to "
                    f"{disk.size_text(paused + size)}, past pause_disk={self.settings.pause_disk!r} "
                    f"({disk.size_text(self._pause_cap)}): such a trial is judged by the peers it has at its rung."
                )
                self._told_full = True
            return False
        if measured is None:  # the first pause measures what one costs
            return True
        ran = self.trials.ran_seconds(frozen)
        later = [point for point in self.settings.rungs if point > frozen.last_step]
        return pause_pays(2 * measured[1], ran, frozen.last_step, min(later, default=PROGRESS_END), reduction_factor)
