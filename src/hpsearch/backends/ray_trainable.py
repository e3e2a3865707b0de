"""The trainable each Ray worker runs: one trial of the objective, its evaluations reported to Tune (and its
checkpoints, for schedulers that pause or exploit trials), its model kept as its final checkpoint; and the store's
number of the trial, which names its run as the store does (`run-<number>`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from ray import tune

from hpsearch import schema
from hpsearch.best_model import BestModelKeeper
from hpsearch.errors import ObjectiveError, TrialError
from hpsearch.objective import Outcome, run_objective
from hpsearch.space import plain
from hpsearch.trial import Trial, TrialState

NEXT = ""  # in `numbers`: the store's number of a new experiment's first trial


def place(ray_trial_id: str) -> tuple[str, int]:
    """A Ray trial's experiment (the id's prefix) and its index there ("1a2b3_00004" -> ("1a2b3", 4))."""
    experiment, index = ray_trial_id.rsplit("_", 1)
    return experiment, int(index)


def ray_trial(
    config: dict[str, Any],
    objective: Callable[[Trial], Any],
    direction: str,
    finished: dict[str, float | None],
    numbers: dict[str, int],
    checkpoints: bool = False,
    catch: tuple[type[BaseException], ...] = (Exception,),
) -> None:
    """One trial, in a Ray worker: the objective reports each evaluation; the last report carries
    the objective and, as its checkpoint, the trial's model if it offered one.

    `finished` holds the trials the store saw end (their objective, None if not completed): a
    restored experiment can be behind the store, and those must not run again. `numbers` holds the
    store's numbers of Ray's trials, and of the next experiment's first (`store_number`). With `checkpoints`
    (a scheduler that pauses or exploits trials: PBT, HyperBand), each report also carries the
    trial's latest checkpoint (`Trial.note_checkpoint`), and a trial Ray restarts, restores or
    exploits resumes from the one `tune.get_checkpoint()` gives it (`Trial.resume_from`). How the trial ended is decided
    as in the engine's loop (`run_objective`): an error outside `catch` stops the search (`TrialError`).
    """
    ray_trial_id = tune.get_context().get_trial_id()
    if ray_trial_id in finished:
        if finished[ray_trial_id] is not None:
            tune.report({"objective": finished[ray_trial_id], schema.RAY_FINAL: True})
        return
    params = {name: plain(value) for name, value in config.items()}
    noted: dict[str, Any] = {}  # the latest step reported, and the latest checkpoint not yet reported
    given = tune.get_checkpoint() if checkpoints else None
    if given is not None and schema.RAY_STEP in given.get_metadata():
        noted["step"] = given.get_metadata()[schema.RAY_STEP]

    def report(step: int, value: float) -> bool:
        noted["step"], path = step, noted.pop("path", None)
        checkpoint = tune.Checkpoint.from_directory(path) if path else None
        if checkpoint is not None:
            checkpoint.set_metadata({schema.RAY_STEP: step})  # where a trial resumed from it stands
        tune.report({"objective": value, schema.RAY_STEP: step}, checkpoint=checkpoint)
        return False  # a scheduler stops the trial by ending its worker

    number = store_number(ray_trial_id, numbers)
    # the trial's best model is staged here as the loop stages it; the driver's `Trials` keeps it or not
    scratch = tempfile.mkdtemp(prefix="hpsearch-model-")
    staging = BestModelKeeper(scratch, direction)
    trial = Trial(
        number,
        params,
        native=params,
        report=report,
        offer_model=lambda value, save: staging.stage(number, value, save),
        resume_from=given.to_directory() if given is not None else None,
        checkpointed=(lambda path: noted.update(path=path)) if checkpoints else None,
    )
    try:
        _report_end(_run_to_end(objective, trial, catch), staging, number, noted.get("step"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_to_end(objective: Callable[[Trial], Any], trial: Trial, catch: tuple[type[BaseException], ...]) -> Outcome:
    """The trial run to its end as the engine's loop runs it (`run_objective`); an error outside `catch` stops the
    search (`TrialError`), and a failed trial raises its error, which Ray records (the driver's Recorder tells the
    store)."""
    try:
        outcome = run_objective(objective, trial, 1, catch)
    except (KeyboardInterrupt, ObjectiveError):
        raise
    except BaseException as e:  # outside `catch`: it stops the search, as in the engine's loop
        raise TrialError(f"Trial {trial.number} raised {e!r}, which is not one of catch={catch}") from e
    if outcome.failure is not None:
        raise outcome.failure
    return outcome


def _report_end(outcome: Outcome, staging: BestModelKeeper, number: int, step: int | None) -> None:
    """Tell Tune how the trial ended: a completed trial's last report carries its objective and, as its checkpoint,
    its staged model; a stopped one reports nothing more, which the driver records as pruned."""
    if outcome.state is not TrialState.COMPLETE:
        return
    (value,) = outcome.values
    model = tune.Checkpoint.from_directory(staging.staging_dir(number)) if staging.offered(number) else None
    final = {"objective": value, schema.RAY_FINAL: True, schema.RAY_MODEL: model is not None}
    if step is not None:  # at its last step: schedulers keyed by the step (PBT) need one, and decide nothing anew
        final[schema.RAY_STEP] = step
    tune.report(final, checkpoint=model)


def store_number(ray_trial_id: str, numbers: dict[str, int]) -> int:
    """The store's number of a Ray trial, for its run's name (`run-<number>`) as for the store. The mirror records an
    experiment's trials in Ray's order, so its trial i is its trial 0's number + i."""
    if ray_trial_id in numbers:
        return numbers[ray_trial_id]
    experiment, index = place(ray_trial_id)
    for other, number in numbers.items():
        if other != NEXT and place(other)[0] == experiment:
            return number - place(other)[1] + index
    return numbers[NEXT] + index
