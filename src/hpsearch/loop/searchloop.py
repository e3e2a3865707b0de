"""The engine's internal loop, as optuna's `study/_optimize.py` under `Study.optimize`: ask the
backend, record and run the trial, decide once how it ended, tell the backend once."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from hpsearch.backends.base import Backend, Proposal
from hpsearch.loop.decision import Decider
from hpsearch.loop.failures import FailurePolicy
from hpsearch.loop.progress import SearchProgress
from hpsearch.objective import Outcome, name_objectives, run_objective
from hpsearch.settings import SearchSettings
from hpsearch.space import Dimension
from hpsearch.study.leaderboard import format_value
from hpsearch.study.lifecycle import LiveTrial, Trials
from hpsearch.trial import Decision, Trial, TrialSink, TrialState

logger = logging.getLogger(__name__)


class SearchLoop:
    """One run of a search at one place: runs trials until `n_trials` trials of the study have finished, the
    timeout, or the backend has nothing left to try (`run`); a library that places trials itself (Ray Tune, the
    W&B agent) has its executor run each of its trials through it (`run_trial`)."""

    def __init__(
        self,
        settings: SearchSettings,
        backend: Backend,
        trials: Trials,
        objective: Callable[[Trial], Any],
        param_space: dict[str, Dimension | None],
    ):
        self.settings, self.backend, self.trials, self.objective = settings, backend, trials, objective
        self.space = {name: dim for name, dim in param_space.items() if dim is not None}
        self.interrupted: list[int] = []  # trials Ctrl-C stopped
        self._taken = 0  # slots of `n_trials` used or being used, as of this process's latest trial
        self.failures = FailurePolicy(settings.max_consecutive_failed_trials)  # this run's failed trials
        self.decider = Decider(settings, backend, trials)
        self.progress = SearchProgress(trials)

    def run(self) -> None:
        start = time.monotonic()
        self._resumes = self.settings.pause_trials or self.trials.paused() > 0  # an earlier run's paused trials too
        while resumed := self.trials.claim_resumable():  # trials a crash cut short: their slots are taken already
            self.run_trial(Proposal(resumed[1]), resumed[0])
        self._recount_slots()
        while self._taken < self.settings.n_trials:
            if self.settings.timeout is not None and time.monotonic() - start > self.settings.timeout:
                logger.info(f"Search stopped: timeout of {self.settings.timeout} s reached.")
                break
            if self.settings.workers > 1:  # the other workers may have taken the last slots meanwhile
                self._recount_slots()
                if self._taken >= self.settings.n_trials:
                    break
            if self._resume_paused():
                continue
            queued = self.trials.claim_queued()  # run first, with their parameters
            proposal = Proposal(queued[1]) if queued else self.backend.ask()
            if proposal is None:
                logger.info("Search stopped: the backend has no more trials to propose.")
                break
            if not self.run_trial(proposal, queued[0] if queued else None):
                break
        self.decider.settling = True  # no trial left to start (or no time): each paused one judged by its peers
        while self._resume_paused():
            pass

    def _resume_paused(self) -> bool:
        """Resume a paused trial that its rung now promotes (pruning those it never will); False if none (at once,
        with no query, where no trial pauses)."""
        if not self._resumes:
            return False
        paused = self.trials.claim_paused(self.decider.on_paused)
        if paused is None:
            return False
        self.run_trial(Proposal(paused[1]), paused[0])
        self._recount_slots()
        return True

    def run_trial(self, proposal: Proposal, live: LiveTrial | None = None) -> bool:
        """Record (unless `live`: a queued trial claimed), run and end one trial; False if other workers
        took the last slot meanwhile."""
        live = live or self.trials.create(proposal.params, self.space)
        proposal.number = live.number
        taken = self.trials.slots_taken_before(live.number)  # by any worker
        self._taken = taken + 1
        if taken >= self.settings.n_trials:
            self.trials.finish(
                live, TrialState.FAILED, error="not run: other workers took the last slots", interrupted=True
            )
            return False
        try:
            self.backend.begin(proposal, live)
        except BaseException as e:  # the backend's mistake (an `hp_space` that raises), not the trial's
            self.trials.finish(live, TrialState.FAILED, error=f"the backend could not begin the trial: {e!r}")
            raise
        trial = self._trial(proposal, live)
        self.progress.show(f"trial {live.number}")
        outcome, interrupted = Outcome(TrialState.FAILED), False  # failed, if the search stops in the trial
        try:
            outcome = run_objective(self.objective, trial, len(self.settings.directions), self.settings.catch)
        except KeyboardInterrupt:
            outcome.error, interrupted = "interrupted (Ctrl-C)", True
            self.interrupted.append(live.number)
            raise
        except BaseException as e:  # what stops the search: recorded with its traceback
            outcome.error = "".join(traceback.format_exception(e))
            raise
        finally:
            recorded = self._end(proposal, live, outcome.state, outcome.values, outcome.error, interrupted)
        if outcome.failure is not None:
            logger.warning(f"Trial {live.number} failed: {outcome.failure!r}")
        if outcome.state is TrialState.PAUSED:
            return True
        if recorded:
            self._count(outcome.failure, proposal.params, outcome.values)
        else:  # this worker was frozen meanwhile: the others may have taken every slot since
            self._recount_slots()
        return True

    def _end(self, proposal: Proposal, live: LiveTrial, state: TrialState, *outcome: Any) -> bool:
        """Record how the trial ended (paused: nothing told, it resumes later), tell the backend; False if another
        worker failed it meanwhile, which is a failure to the backend as to the store."""
        if state is TrialState.PAUSED:
            return self.trials.pause(live)
        recorded = self.trials.finish(live, state, *outcome)
        self.backend.tell(proposal, *((state, outcome[0]) if recorded else (TrialState.FAILED, None)))
        return recorded

    def _trial(self, proposal: Proposal, live: LiveTrial) -> Trial:
        """What the objective sees of the trial; what it reports goes to the loop (`InLoop`)."""
        sink = InLoop(self, proposal, live)
        return Trial(live.number, proposal.params, proposal.native, sink, proposal.tracking_run, live.resume_from)

    def _recount_slots(self) -> None:
        """The slots of `n_trials` the study's trials use or used, any worker's, up to the latest one created."""
        self._taken = self.trials.slots_taken_before(self.trials.created())

    def _count(self, failure: BaseException | None, params: dict[str, Any], values: list[float] | None) -> None:
        """Progress, and the stop of a search whose trials keep failing while trials remain (its code is likely
        broken); once the budget is spent, the search ends as it would have (`check_failures`)."""
        self.progress.trial_ended(values)
        self.failures.ended(params, failure, trials_left=self._taken < self.settings.n_trials)

    def check_failures(self) -> None:
        """After the run: raise if every trial of it failed; if some did, warn with what they had in common."""
        self.failures.after_run()

    def close(self) -> None:
        self.progress.close()


class InLoop(TrialSink):
    """A trial the loop runs: each report decided once (`loop.decision`), its checkpoints, pause and model kept by
    the study's `Trials`, its parameters as the backend's trial has them (define-by-run)."""

    def __init__(self, loop: SearchLoop, proposal: Proposal, live: LiveTrial) -> None:
        self.loop, self.proposal, self.live = loop, proposal, live

    def report(self, trial: Trial, step: int, value: float) -> Decision:
        decision = self.loop.decider.at_report(self.proposal, self.live, step, value, trial)
        self.loop.progress.show(f"trial {self.live.number} at {step}: {format_value(value)}")
        return decision

    def suggested(self) -> dict[str, Any]:
        return self.loop.backend.suggested_params(self.proposal)

    def portable_native(self) -> Any:
        return self.loop.backend.portable_native(self.proposal)

    def offer_model(self, trial: Trial, value: float, save: Callable[[str], None]) -> None:
        self.loop.trials.offer_model(self.live, value, save)

    def checkpointed(self, trial: Trial, path: str) -> None:
        self.loop.trials.note_checkpoint(self.live, path)

    def paused(self, trial: Trial, *checkpoint: Any) -> None:
        self.loop.trials.note_pause(self.live, *checkpoint)

    def named(self, names: list[str]) -> None:
        name_objectives(self.loop.trials.study, names)
