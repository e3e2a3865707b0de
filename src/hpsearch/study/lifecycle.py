"""A trial's life in the study, written in one place: created and claimed, its parameters, its
intermediate values, its end (complete, pruned, failed, interrupted) and its model.

KerasTuner's Oracle split (`create_trial` / `update_trial` / `end_trial` in the base): the
engine's loop, and a backend that drives its own loop (Ray), call these; no backend writes to
the store itself.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch import compat
from hpsearch.errors import out_of_memory
from hpsearch.objective import is_better
from hpsearch.settings import SearchSettings
from hpsearch.space import Space
from hpsearch.study import disk, liveness, schema, store
from hpsearch.study.best_model import BestModelKeeper
from hpsearch.study.counts import StudyCounts
from hpsearch.trial import Decision, TrialState

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)


def _leftovers(paused: optuna.trial.FrozenTrial) -> list[str]:
    """What a paused trial pruned before it resumed leaves: its pause checkpoint and (unless the user keeps them) its
    run directory (a study of an hpsearch before `PAUSE_FILES` recorded only the checkpoint)."""
    if files := schema.fact(paused, schema.PAUSE_FILES):
        return files["remove"]
    checkpoint = schema.fact(paused, schema.CHECKPOINT)
    return [checkpoint] if checkpoint else []


@dataclass
class LiveTrial:
    """A trial this process runs: its number, its id in the storage, the optuna trial that samples and
    prunes on it. `taken_over`: another worker failed it meanwhile (this one stopped beating too long)."""

    number: int
    trial_id: int
    optuna_trial: optuna.Trial
    taken_over: bool = False
    resume_from: str | None = None  # a trial resumed after a crash: the checkpoint it continues from


class Trials(StudyCounts):
    """The study's trials and every change in their lives, and the best model they offer. The study is
    opened when first used (bad input found before leaves none); `study_options` go to `optuna.create_study`."""

    def __init__(self, settings: SearchSettings, **study_options: Any):
        self.settings = settings
        self._study_options = study_options
        output, keeps = settings.output_dir, settings.output_dir is not None and settings.single_objective
        self.keeper = BestModelKeeper(output, settings.directions[0], settings.study_name) if keeps else None
        self._heartbeats: dict[int, liveness.Heartbeat] = {}  # trial id -> the beat of a trial this process runs
        self._fail_stale = liveness.StaleCheck(settings.heartbeat_interval)
        self._resumable: list[tuple[int, str]] = []  # crashed trials this process took over: id, checkpoint

    @functools.cached_property
    def storage(self) -> optuna.storages.BaseStorage:
        settings = self.settings
        beats = (settings.heartbeat_interval, settings.grace_period, settings.retry_stale_trials)
        return store.open_storage(settings.storage, *beats, checked=settings.workers > 1)  # by the search's process

    @functools.cached_property
    def study(self) -> optuna.Study:
        settings = self.settings
        return store.open_study(self.storage, settings.study_name, settings.directions, **self._study_options)

    @functools.cached_property
    def _study_id(self) -> int:
        return self.storage.get_study_id_from_name(self.study.study_name)

    def create(self, params: dict[str, Any] | None = None, space: Space | None = None, **facts: Any) -> LiveTrial:
        """A new trial, running and owned by this process from its first moment, with `params` (those
        of `space` as optuna parameters, any other beside them) and `facts` as user attributes.

        One write creates and claims it (optuna's `ask` creates a trial nobody owns yet, which a
        crash right then would leave running forever).
        """
        import optuna

        params, space = params or {}, space or {}
        fixed = {name: params[name] for name, dim in space.items() if name in params and dim.contains(params[name])}
        extra = {name: value for name, value in params.items() if name not in fixed}
        facts[schema.OWNER] = liveness.this_process()
        if extra:
            facts[schema.EXTRA_PARAMS] = json.loads(json.dumps(extra, default=str))
        template = optuna.trial.FrozenTrial(
            number=-1,
            state=optuna.trial.TrialState.RUNNING,
            value=None,
            values=None,
            datetime_start=datetime.datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs=facts,
            system_attrs=compat.fixing(fixed),  # what its `suggest_*` calls return
            intermediate_values={},
            trial_id=-1,
        )
        live = self._running(self.storage.create_new_trial(self._study_id, template_trial=template))
        for name in fixed:
            store.suggest(live.optuna_trial, name, space[name])
        return live

    def enqueue(self, waiting: optuna.trial.FrozenTrial) -> int:
        """Queue a trial (`optuna.trial.create_trial(state=WAITING, ...)`): `claim_queued` runs it first. Its number."""
        return self.storage.get_trial_number_from_id(self.storage.create_new_trial(self._study_id, waiting))

    def claim_queued(self) -> tuple[LiveTrial, dict[str, Any]] | None:
        """A queued trial (a stale one retried, a warm start's, the user's `study.enqueue_trial`) claimed, and its
        parameters; None if none is. Stale trials are failed (and queued) first."""
        for frozen in self.waiting_and_failed(fresh=self._fail_stale(self.study)):  # a stale trial queued again
            waiting = frozen.state.name == "WAITING" and not schema.fact(frozen, schema.PAUSED)
            if waiting and (trial_id := self._claim(frozen)) is not None:
                params = {**compat.fixed_params(frozen), **store.to_record(frozen).params}
                return self._running(trial_id), params
        return None

    def _claim(self, waiting: optuna.trial.FrozenTrial) -> int | None:
        """Own a waiting trial (optuna's atomic WAITING -> RUNNING); its id, None if another process was first."""
        import optuna

        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self._study_id, waiting.number)
        if getattr(self.storage, "get_heartbeat_interval", lambda: None)():  # a paused trial's last beat is old:
            self.storage.record_heartbeat(trial_id)  # running again with it, another worker would fail it as stale
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # another claimed and ended it since
            if self.storage.set_trial_state_values(trial_id, optuna.trial.TrialState.RUNNING):
                self.storage.set_trial_user_attr(trial_id, schema.OWNER, liveness.this_process())
                return trial_id
        return None

    def pause(self, live: LiveTrial) -> bool:
        """Leave the trial waiting at its rung, to resume from its checkpoint (`claim_paused`); False if taken over."""
        import optuna

        self._stop_beating(live.trial_id)
        if not live.taken_over:  # the time it ran so far counts in its duration
            ran = self.ran_seconds(self.storage.get_trial(live.trial_id))
            self.storage.set_trial_user_attr(live.trial_id, schema.RAN, ran)
            self.storage.set_trial_user_attr(live.trial_id, schema.PAUSED, True)
            self.storage.set_trial_state_values(live.trial_id, optuna.trial.TrialState.WAITING)
            if (total := self.paused_bytes()) > (self.recall(schema.PAUSE_PEAK) or 0):
                self.remember(schema.PAUSE_PEAK, total)
        return not live.taken_over

    def claim_paused(
        self, decide: Callable[[optuna.trial.FrozenTrial], Decision]
    ) -> tuple[LiveTrial, dict[str, Any]] | None:
        """A paused trial that `decide` (`loop.decision.Decider.on_paused`) now continues, claimed to resume from
        its checkpoint, and its parameters; those it prunes are pruned on the way, their checkpoints deleted. None if
        none continues."""
        import optuna

        waiting = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        for frozen in [t for t in waiting if schema.fact(t, schema.PAUSED)]:  # not those queued to run first
            if (verdict := decide(frozen)) is Decision.PAUSE or (trial_id := self._claim(frozen)) is None:
                continue
            self.storage.set_trial_user_attr(trial_id, schema.PAUSED, False)
            checkpoint = schema.fact(frozen, schema.CHECKPOINT)
            if verdict is Decision.CONTINUE:
                resume_from = checkpoint if checkpoint and Path(checkpoint).is_dir() else None
                return self._running(trial_id, resume_from), store.to_record(frozen).params
            self._end(frozen.number, trial_id, TrialState.PRUNED, None, None, interrupted=False)
            disk.remove(_leftovers(frozen))
            if self.keeper is not None:  # a model its evaluations offered before it paused (`objective_at='best'`)
                self.keeper.settle(frozen.number, keep=False)
        return None

    def claim_resumable(self) -> tuple[LiveTrial, dict[str, Any]] | None:
        """A crashed trial this process took over (`recover`), to resume from its checkpoint; its parameters."""
        if not self._resumable:
            return None
        trial_id, checkpoint = self._resumable.pop(0)
        return self._running(trial_id, checkpoint), store.to_record(self.storage.get_trial(trial_id)).params

    def _running(self, trial_id: int, resume_from: str | None = None) -> LiveTrial:
        """The live trial of a trial this process has just claimed, beating."""
        trial = compat.running_trial(self.study, trial_id)
        self._heartbeats[trial_id] = liveness.Heartbeat(trial_id, self.storage)  # until the trial ends
        return LiveTrial(trial.number, trial_id, trial, resume_from=resume_from)

    def _stop_beating(self, trial_id: int) -> None:
        if (beat := self._heartbeats.pop(trial_id, None)) is not None:
            beat.stop()

    def ran_seconds(self, frozen: optuna.trial.FrozenTrial) -> float:
        """How long the trial has trained so far, its runs before a pause or a crash included."""
        return store.to_record(frozen).ran_until(datetime.datetime.now()) or 0.0

    def note_checkpoint(self, live: LiveTrial, path: str) -> None:  # where a crash resumes it (`recover`)
        self.storage.set_trial_user_attr(live.trial_id, schema.CHECKPOINT, path)

    def note_pause(self, live: LiveTrial, checkpoint: str, size: int, seconds: float, leftovers: list[str]) -> None:
        """The checkpoint the trial pauses with (it resumes there), what it takes, and what it leaves if pruned."""
        self.note_checkpoint(live, checkpoint)
        files = {"bytes": size, "seconds": seconds, "remove": leftovers}
        self.storage.set_trial_user_attr(live.trial_id, schema.PAUSE_FILES, files)

    def report(self, live: LiveTrial, step: int, value: float, error: float | None = None) -> bool:
        """Record an intermediate value (none for several objectives) and its standard error where measured; False
        once another worker failed the trial."""
        import optuna

        if self.settings.single_objective and not live.taken_over:
            try:
                live.optuna_trial.report(value, step)
                if error is not None:
                    self.storage.set_trial_user_attr(live.trial_id, f"{schema.RUNG_ERROR}{step}", error)
            except optuna.exceptions.UpdateFinishedTrialError:
                self._taken_over(live)
        return not live.taken_over

    def should_prune(self, live: LiveTrial) -> bool:
        """The word of the pruner the study store was opened with on the trial's latest intermediate value."""
        return live.optuna_trial.should_prune()

    def _taken_over(self, live: LiveTrial) -> None:
        live.taken_over = True
        logger.warning(
            f"Trial {live.number} was failed by another worker: this one had stopped beating for longer than "
            "grace_period (frozen, or asleep). It stops here, and nothing more of it is written."
        )

    def offer_model(self, live: LiveTrial, value: float, save: Callable[[str], None]) -> None:
        """Stage the trial's model, `save(directory)`, if `value` beats its earlier offers and every
        completed trial; `finish` then keeps it or drops it."""
        if self.keeper is not None and self._beats(value, self.best_value()):
            self.keeper.stage(live.number, value, save)

    def finish(
        self,
        live: LiveTrial,
        state: TrialState,
        values: list[float] | None = None,
        error: str | None = None,
        interrupted: bool = False,
    ) -> bool:
        """Record how the trial ended (`values` count for a completed one only; `error`, and whether
        it was interrupted rather than run, for a failed one); keep its model if no trial is better.
        False, writing nothing, for a trial another worker failed meanwhile (`report`)."""
        import optuna

        self._stop_beating(live.trial_id)
        try:
            if not live.taken_over:
                self._end(live.optuna_trial, live.trial_id, state, values, error, interrupted)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as e:  # tell: "Cannot tell a FAIL trial"
            if isinstance(e, ValueError) and not self.storage.get_trial(live.trial_id).state.is_finished():
                raise
            self._taken_over(live)  # failed by another worker meanwhile
        keeper = self.keeper
        if keeper is not None and keeper.offered(live.number):
            keep = state is TrialState.COMPLETE and not (live.taken_over or self._beats(self.best_value(), values[0]))
            keeper.settle(live.number, keep, values[0] if keep else None, live.optuna_trial.params)
            if keep:  # as the link says (another worker may have promoted since): for the dashboard and `show`
                self.remember(schema.BEST_MODEL, {"trial": keeper.kept_trial(), "path": str(keeper.dir.absolute())})
        return not live.taken_over

    def _end(
        self,
        trial: optuna.Trial | int,  # or its number
        trial_id: int,
        state: TrialState,
        values: list[float] | None,
        error: str | None,
        interrupted: bool,
    ) -> None:
        import optuna

        self._stop_beating(trial_id)
        if error is not None:
            self.storage.set_trial_user_attr(trial_id, schema.ERROR, error)
        if interrupted:
            self.storage.set_trial_user_attr(trial_id, schema.INTERRUPTED, True)
        if infeasible := state is TrialState.FAILED and not interrupted and out_of_memory(error or ""):
            compat.running_trial(self.study, trial_id).set_constraint(schema.OUT_OF_MEMORY, 1.0)
        optuna_state = optuna.trial.TrialState["PRUNED" if infeasible else schema.TO_OPTUNA[state]]
        self.study.tell(trial, values if state is TrialState.COMPLETE else None, state=optuna_state)

    def recover(self, own: bool = False) -> list[int]:
        """Mark as failed (interrupted) the running trials with no live owner (none recorded, or a gone process of this
        machine), and with `own` this process's (after Ctrl-C); their numbers. Their slots run again. A dead one whose
        checkpoint is still there is not marked: this process takes it over, to resume it there (`claim_resumable`)."""
        import optuna

        liveness.fail_stale(self.study)
        marked = []
        for frozen in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            owner, checkpoint = schema.fact(frozen, schema.OWNER), schema.fact(frozen, schema.CHECKPOINT)
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self._study_id, frozen.number)
            dead = liveness.owner_is_dead(owner)
            if dead and not own and checkpoint and Path(checkpoint).is_dir():
                self.storage.set_trial_user_attr(trial_id, schema.OWNER, liveness.this_process())
                self._resumable.append((trial_id, checkpoint))
            elif dead or (own and owner == liveness.this_process()):
                error = "the process running this trial died" if dead else "interrupted (Ctrl-C)"
                self._end(frozen.number, trial_id, TrialState.FAILED, None, error, interrupted=True)
                marked.append(frozen.number)
        return marked

    def _beats(self, value: float | None, than: float | None) -> bool:
        settings = self.settings
        return value is not None and settings.single_objective and is_better(value, than, settings.directions[0])

    def recall(self, name: str) -> Any:
        """A fact a backend keeps about the whole study (its experiment's or sweep's id), None if none."""
        return schema.study_fact(self.study.user_attrs, name)

    def remember(self, name: str, value: Any) -> None:
        self.study.set_user_attr(name, value)
