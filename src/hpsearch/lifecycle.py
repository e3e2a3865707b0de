"""A trial's life in the study, written in one place: created and claimed, its parameters, its
intermediate values, its end (complete, pruned, failed, interrupted) and its model.

KerasTuner's Oracle split (`create_trial` / `update_trial` / `end_trial` in the base): the
engine's loop, and a backend that drives its own loop (Ray), call these; no backend writes to
the store itself.
"""

from __future__ import annotations

import datetime
import functools
import json
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil

from hpsearch import store
from hpsearch.best_model import BestModelKeeper
from hpsearch.objective import is_better
from hpsearch.settings import SearchSettings
from hpsearch.space import Space
from hpsearch.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    import optuna

_OPTUNA_STATES = {
    TrialState.COMPLETE: "COMPLETE",
    TrialState.PRUNED: "PRUNED",
    TrialState.FAILED: "FAIL",
}


@dataclass
class LiveTrial:
    """A trial this process runs: its number, its id in the storage, and the optuna trial that
    samples and prunes on it."""

    number: int
    trial_id: int
    optuna_trial: optuna.Trial


def _this_process() -> dict[str, Any]:
    process = psutil.Process()
    return {"host": socket.gethostname(), "pid": process.pid, "started": process.create_time()}


def _owner_is_dead(owner: dict[str, Any] | None) -> bool:
    if not owner:
        return True  # no one claimed it: made by a process that died before it could (older hpsearch)
    if owner.get("host") != socket.gethostname():
        return False  # another machine's trial: only its heartbeat can tell
    try:
        return psutil.Process(owner["pid"]).create_time() != owner["started"]
    except psutil.NoSuchProcess:
        return True


class Trials:
    """The study's trials and every change in their lives, and the best model they offer.

    The study is opened when first used, so bad input found before that leaves no study behind.
    `study_options` go to `optuna.create_study` (a backend's sampler and pruner).
    """

    def __init__(self, settings: SearchSettings, **study_options: Any):
        self.settings = settings
        self._study_options = study_options
        single = settings.single_objective
        self.keeper = BestModelKeeper(settings.output_dir) if settings.output_dir is not None and single else None
        self._offers: dict[int, float] = {}  # trial number -> the value of its staged model

    @functools.cached_property
    def storage(self) -> optuna.storages.BaseStorage:
        return store.open_storage(self.settings.storage)

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
        facts[store.OWNER] = _this_process()
        if extra:
            facts[store.EXTRA_PARAMS] = json.loads(json.dumps(extra, default=str))
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
            system_attrs={"fixed_params": fixed} if fixed else {},  # what its `suggest_*` calls return
            intermediate_values={},
            trial_id=-1,
        )
        trial_id = self.storage.create_new_trial(self._study_id, template_trial=template)
        # optuna's private cache, reset as `Study.ask` does (no public call does): samplers see the study as it is
        self.study._thread_local.cached_all_trials = None
        trial = optuna.Trial(self.study, trial_id)
        for name in fixed:
            store.suggest(trial, name, space[name])
        return LiveTrial(trial.number, trial_id, trial)

    def report(self, live: LiveTrial, step: int, value: float) -> None:
        """Record an intermediate value (optuna keeps none for several objectives)."""
        if self.settings.single_objective:
            live.optuna_trial.report(value, step)

    def offer_model(self, live: LiveTrial, value: float, save: Callable[[str], None]) -> None:
        """Stage the trial's model, `save(directory)`, if `value` beats its earlier offers and every
        completed trial; `finish` then keeps it or drops it."""
        if self.keeper is None:
            return
        earlier_offer = self._offers.get(live.number)
        if not (is_better(value, earlier_offer, self.settings.directions[0]) and self._beats(value, self.best_value())):
            return
        self._offers[live.number] = value
        target = self.keeper.staging_dir(live.number)
        shutil.rmtree(target, ignore_errors=True)
        save(str(target))

    def finish(
        self,
        live: LiveTrial,
        state: TrialState,
        values: list[float] | None = None,
        error: str | None = None,
        interrupted: bool = False,
    ) -> None:
        """Record how the trial ended (`values` count for a completed one only; `error`, and whether
        it was interrupted rather than run, for a failed one); keep its model if no trial is better."""
        self._end(live.optuna_trial, live.trial_id, state, values, error, interrupted)
        if self.keeper is None or self._offers.pop(live.number, None) is None:
            return
        if state is TrialState.COMPLETE and not self._beats(self.best_value(), values[0]):
            self.keeper.promote(live.number, values[0], live.optuna_trial.params)
            # as the link says (another worker may have promoted since): for the dashboard and `show`
            kept = {"trial": self.keeper.kept_trial(), "path": str(self.keeper.dir.absolute())}
            self.remember(store.BEST_MODEL, kept)
        else:
            self.keeper.discard(live.number)

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

        if error is not None:
            self.storage.set_trial_user_attr(trial_id, store.ERROR, error)
        if interrupted:
            self.storage.set_trial_user_attr(trial_id, store.INTERRUPTED, True)
        optuna_state = optuna.trial.TrialState[_OPTUNA_STATES[state]]
        self.study.tell(trial, values if state is TrialState.COMPLETE else None, state=optuna_state)

    def recover(self, own: bool = False) -> list[int]:
        """Mark as failed (interrupted) the running trials with no live owner (none recorded, or a
        process of this machine that is gone), and with `own` those of this process (after Ctrl-C).

        Their slots run again; returns the numbers of the trials marked.
        """
        import optuna

        marked = []
        for frozen in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            owner = store.fact(frozen, store.OWNER)
            if _owner_is_dead(owner):
                error = "the process running this trial died"
            elif own and owner == _this_process():
                error = "interrupted (Ctrl-C)"
            else:
                continue
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self._study_id, frozen.number)
            self._end(frozen.number, trial_id, TrialState.FAILED, None, error, interrupted=True)
            marked.append(frozen.number)
        return marked

    def created(self) -> int:
        """How many trials the study holds, in any state (where a resumed search's draws start)."""
        return self.storage.get_n_trials(self._study_id)

    def finished(self) -> int:
        """How many trials of the study used a slot of `n_trials` (earlier runs' included), counted
        without reading every trial back."""
        import optuna

        states = optuna.trial.TrialState
        ended = self.storage.get_n_trials(self._study_id, (states.COMPLETE, states.PRUNED, states.FAIL))
        return ended - len(self._not_run(states.FAIL))

    def slots_taken_before(self, number: int) -> int:
        """Slots of `n_trials` used or being used by the trials numbered below `number` (any worker):
        all of them but those queued or interrupted."""
        import optuna

        states = optuna.trial.TrialState
        return number - sum(n < number for n in self._not_run(states.FAIL, states.WAITING))

    def _not_run(self, *states: optuna.trial.TrialState) -> list[int]:
        """The numbers of the trials in `states` that use no slot: interrupted failures, queued ones."""
        return [
            t.number
            for t in self.study.get_trials(deepcopy=False, states=states)
            if t.state.name == "WAITING" or store.fact(t, store.INTERRUPTED)
        ]

    def best_value(self) -> float | None:
        """The best objective so far (single objective; the storage's own query), None before any completed."""
        if not self.settings.single_objective:
            return None
        try:
            return self.study.best_value
        except ValueError:  # no trial completed yet
            return None

    def _beats(self, value: float | None, than: float | None) -> bool:
        return (
            value is not None and self.settings.single_objective and is_better(value, than, self.settings.directions[0])
        )

    def records(self) -> list[TrialRecord]:
        return store.records(self.study)

    def recall(self, name: str) -> Any:
        """A fact a backend keeps about the whole study (its experiment's or sweep's id), None if none."""
        return self.study.user_attrs.get(name)

    def remember(self, name: str, value: Any) -> None:
        self.study.set_user_attr(name, value)
