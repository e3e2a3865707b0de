"""The trainable each Ray worker runs: one trial of the objective, its evaluations reported to Tune (and its
checkpoints, for schedulers that pause or exploit trials), its model kept as its final checkpoint; and the store's
number of the trial, which names its run as the store does (`run-<number>`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from ray import tune

from hpsearch.errors import ObjectiveError, TrialError
from hpsearch.objective import is_better, run_objective
from hpsearch.space import plain
from hpsearch.trial import Trial, TrialState

PROGRESS = "hpsearch_step"  # what a trial's intermediate values are keyed by (a Trainer's: its progress)
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
            tune.report({"objective": finished[ray_trial_id], "hpsearch_final": True})
        return
    params = {name: plain(value) for name, value in config.items()}
    kept: dict[str, Any] = {}
    noted: dict[str, Any] = {}  # the latest step reported, and the latest checkpoint not yet reported
    given = tune.get_checkpoint() if checkpoints else None
    if given is not None and PROGRESS in given.get_metadata():
        noted["step"] = given.get_metadata()[PROGRESS]

    def report(step: int, value: float) -> bool:
        noted["step"], path = step, noted.pop("path", None)
        checkpoint = tune.Checkpoint.from_directory(path) if path else None
        if checkpoint is not None:
            checkpoint.set_metadata({PROGRESS: step})  # where a trial resumed from it stands
        tune.report({"objective": value, PROGRESS: step}, checkpoint=checkpoint)
        return False  # a scheduler stops the trial by ending its worker

    def offer_model(value: float, save: Callable[[str], None]) -> None:
        if is_better(value, kept.get("value"), direction):
            kept["dir"] = kept.get("dir") or tempfile.mkdtemp(prefix="hpsearch-model-")
            shutil.rmtree(kept["dir"], ignore_errors=True)
            save(kept["dir"])
            kept["value"] = value

    trial = Trial(
        store_number(ray_trial_id, numbers),
        params,
        native=params,
        report=report,
        offer_model=offer_model,
        resume_from=given.to_directory() if given is not None else None,
        checkpointed=(lambda path: noted.update(path=path)) if checkpoints else None,
    )
    try:
        outcome = run_objective(objective, trial, 1, catch)
    except (KeyboardInterrupt, ObjectiveError):
        raise
    except BaseException as e:  # outside `catch`: it stops the search, as in the engine's loop
        raise TrialError(f"Trial {trial.number} raised {e!r}, which is not one of catch={catch}") from e
    if outcome.failure is not None:
        raise outcome.failure  # Ray records the trial as errored; the driver's Recorder tells the store
    if outcome.state is not TrialState.COMPLETE:
        return  # stopped: no final result, which the driver records as pruned
    (value,) = outcome.values
    checkpoint = tune.Checkpoint.from_directory(kept["dir"]) if "dir" in kept else None
    final = {"objective": value, "hpsearch_final": True, "hpsearch_model": checkpoint is not None}
    if "step" in noted:  # at its last step: schedulers keyed by the step (PBT) need one, and decide nothing anew
        final[PROGRESS] = noted["step"]
    tune.report(final, checkpoint=checkpoint)
    if "dir" in kept:
        shutil.rmtree(kept["dir"], ignore_errors=True)


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
