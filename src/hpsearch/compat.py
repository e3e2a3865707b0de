"""Every place hpsearch relies on a library's internals (an attribute or call its documentation does not promise),
in one module, each saying why no public API serves. `tests/test_compat.py` checks each against the installed
library, so that an upgrade that changes one fails there, by name, rather than somewhere in a search.

The libraries are imported inside the functions: importing this module imports none of them.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    import transformers
    import wandb

# -- optuna --------------------------------------------------------------------------------------------------------

_FIXED_PARAMS = "fixed_params"  # where `Study.enqueue_trial` keeps a queued trial's values for its `suggest_*` calls


def fixing(params: Mapping[str, Any]) -> dict[str, Any]:
    """The system attributes of a new trial whose `suggest_*` calls return `params`, as an enqueued trial's do."""
    return {_FIXED_PARAMS: dict(params)} if params else {}


def fixed_params(frozen: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The values a queued trial's `suggest_*` calls return (`Study.enqueue_trial`'s)."""
    return dict(frozen.system_attrs.get(_FIXED_PARAMS, {}))


def running_trial(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """The `optuna.Trial` of a trial this process created or claimed in the storage (`Study.ask` makes one only for
    a trial it creates itself). Its cache of the study's trials is reset, as `Study.ask` does, so that the sampler
    sees the study as it is."""
    import optuna

    study._thread_local.cached_all_trials = None
    return optuna.Trial(study, trial_id)


def database(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study writes to, under optuna's cache (`_CachedStorage._backend`): no public API gives it."""
    return getattr(study._storage, "_backend", study._storage)


def storage_object(storage: str | optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """The storage object optuna makes of a URL (its cache around an `RDBStorage`), as `create_study` does."""
    import optuna

    return optuna.storages.get_storage(storage)


NEVER_BEATEN = (  # in optuna's database schema: a study's running trials with no heartbeat row yet
    "SELECT trial_id FROM trials WHERE study_id = :study AND state = 'RUNNING' AND NOT EXISTS "
    "(SELECT 1 FROM trial_heartbeats WHERE trial_heartbeats.trial_id = trials.trial_id)"
)

# -- transformers and accelerate -----------------------------------------------------------------------------------


def set_train_batch_size(trainer: transformers.Trainer, size: int) -> None:
    """The batch size the Trainer's dataloader uses: kept from the first trial's arguments otherwise (transformers'
    own search resets it the same way)."""
    trainer._train_batch_size = size


def trainers_own_callbacks(report_to: Any) -> tuple[type, ...]:
    """The callback classes a Trainer adds itself (its defaults, its progress bar or printer, the `report_to`
    integrations): a rebuilt Trainer makes them afresh."""
    import transformers

    return (
        *transformers.trainer.DEFAULT_CALLBACKS,
        transformers.trainer_callback.ProgressCallback,
        transformers.trainer_callback.PrinterCallback,
        *transformers.integrations.get_reporting_integration_callbacks(report_to),
    )


def close_prediction_bar(callback: Any) -> None:
    """Close the evaluation progress bar `ProgressCallback` leaves open after an evaluation loop run outside
    `Trainer.evaluate` (its `on_evaluate` would close it)."""
    bar = getattr(callback, "prediction_bar", None)
    if bar is not None:
        bar.close()
        callback.prediction_bar = None


def save_resumable(trainer: transformers.Trainer, directory: str) -> None:
    """Save what `train(resume_from_checkpoint=directory)` resumes from, as a checkpoint of the Trainer's holds it (the
    model, optimizer, scheduler, scaler, random states, the Trainer's state), but outside the Trainer's checkpoint
    bookkeeping: no `on_save`, no rotation under `save_total_limit`, no best-checkpoint change, no push to the Hub,
    the optimizer saved even with `save_only_model`. Every rank calls it (each saves its part). The Trainer's
    `_save_checkpoint` does all of those; its parts do only the saving."""
    import dataclasses
    import os

    from transformers.trainer import TRAINER_STATE_NAME
    from transformers.trainer_callback import ExportableState

    trainer.save_model(directory, _internal_call=True)
    trainer._save_optimizer_and_scheduler(directory)
    trainer._save_scaler(directory)
    trainer._save_rng_state(directory)
    if trainer.args.should_save:
        # the callbacks' states as at a checkpoint of the user's schedule: training goes on from here
        control = dataclasses.replace(trainer.control, should_training_stop=False, should_epoch_stop=False)
        holders = [c for c in [*trainer.callback_handler.callbacks, control] if isinstance(c, ExportableState)]
        state = dataclasses.replace(trainer.state, stateful_callbacks=holders)
        state.save_to_json(os.path.join(directory, TRAINER_STATE_NAME))


@contextlib.contextmanager
def pausing_where_training_ends(trainer: transformers.Trainer, pausing: Callable[[], bool], save: Callable[[], None]):
    """While training, a trial that stops to pause (`pausing()`) calls `save()` where the training loop ends, after the
    user's evaluations and checkpoints of its last step, and before the Trainer ends the run: which then neither loads
    the best checkpoint (`load_best_model_at_end`; the trial goes on later) nor deletes the user's last checkpoint
    (`save_total_limit=1`). No callback marks that moment: the Trainer's `_finalize_training` is wrapped."""
    finalize = trainer._finalize_training

    def finalize_or_pause(*args: Any, **kwargs: Any) -> Any:
        if not pausing():
            return finalize(*args, **kwargs)
        save()
        own = trainer.args
        trainer.args = copy.copy(own)
        trainer.args.load_best_model_at_end, trainer.args.save_total_limit = False, None
        try:
            return finalize(*args, **kwargs)
        finally:
            trainer.args = own

    trainer._finalize_training = finalize_or_pause
    try:
        yield
    finally:
        del trainer._finalize_training


def reset_accelerator_state() -> None:
    """Forget accelerate's singleton state (the last trial's DeepSpeed plugin), as transformers' search does."""
    from accelerate.state import AcceleratorState

    AcceleratorState()._reset_state()


# -- Ray Tune (its developer API `Trial`, as its callbacks receive it) ----------------------------------------------


def ray_trial_error(trial: Any) -> str:
    """A failed Ray trial's traceback: its local error file where the driver can read it (`get_error` reads the copy
    in the experiment's storage, which is synced later)."""
    import os
    from pathlib import Path

    error_file = trial.error_file
    if error_file and os.path.exists(error_file):
        return Path(error_file).read_text()
    return str(trial.get_error())


def ray_trial_end(trial: Any) -> tuple[dict[str, Any], Any]:
    """A finished Ray trial's last result and its latest checkpoint (None if none)."""
    return trial.last_result or {}, trial.checkpoint


# -- W&B -----------------------------------------------------------------------------------------------------------


def quiet_wandb_settings() -> wandb.Settings:
    """A sweep run's settings: silent, no console capture, no git or code, and no system-metrics sampler (a thread
    per run: `x_disable_stats`, an experimental setting)."""
    import wandb

    return wandb.Settings(silent=True, console="off", disable_git=True, save_code=False, x_disable_stats=True)
