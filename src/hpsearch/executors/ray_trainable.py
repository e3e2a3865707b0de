"""The trainable each Ray worker runs: one trial of the objective, its evaluations reported to Tune with its
checkpoints (for schedulers that pause or exploit trials; pointers to them otherwise, where a retry resumes), its
model kept as its final checkpoint, its failure reported; and the store's number of the trial, which names its run
as the store does (`run-<number>`)."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from ray import tune

from hpsearch.errors import ObjectiveError, TrialError
from hpsearch.objective import Outcome, run_objective
from hpsearch.space import plain
from hpsearch.study import schema
from hpsearch.study.best_model import BestModelKeeper
from hpsearch.trial import Decision, Trial, TrialSink, TrialState

NEXT = ""  # in `numbers`: the store's number of a new experiment's first trial
REUSE_WAIT_S = 60  # the most a reused Ray worker waits for its earlier trial to end


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
    judged: tuple[str, ...] = (),
) -> None:
    """One trial, in a Ray worker: the objective reports each evaluation (its metrics beside its objective); the
    last report carries the objective and, as its checkpoint, the trial's model if it offered one.

    `finished` holds the trials the store saw end (their objective, None if not completed): a
    restored experiment can be behind the store, and those must not run again. `numbers` holds the
    store's numbers of Ray's trials, and of the next experiment's first (`store_number`). Each report carries the
    trial's latest checkpoint (`Trial.note_checkpoint`) since the last: itself with `checkpoints` (a scheduler that
    pauses or exploits trials: PBT, HyperBand), else a pointer to it. A trial Ray restarts, restores, exploits, or
    runs again after its worker or node died (`max_failures`), resumes from the checkpoint `tune.get_checkpoint()`
    gives it (`Trial.resume_from`), or from the one its pointer names where that is still on this machine's disk.
    How the trial ended is decided as in the engine's loop (`run_objective`) and reported, never raised: Ray runs
    again only a trial that died. `judged` names the metrics Ray's scheduler or search algorithm judge by besides
    the objective (`RayBackend.judged`): Ray refuses a result without them, so a last report lacking one has NaN.
    """
    # a worker reused for the next trial (`reuse_actors`) first waits for this trial's thread to end, 2 s by default:
    # a trial stopped by the scheduler then cleans up (its model, its run directory), longer on a busy machine, and
    # Ray errors the next trial when the wait runs out ("Could not re-use actor")
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", str(REUSE_WAIT_S))
    ray_trial_id = tune.get_context().get_trial_id()
    if ray_trial_id in finished:
        if finished[ray_trial_id] is not None:
            tune.report({"objective": finished[ray_trial_id], schema.RAY_FINAL: True})
        return
    params = {name: plain(value) for name, value in config.items()}
    number = store_number(ray_trial_id, numbers)
    # the trial's best model is staged here as the loop stages it; the driver's `Trials` keeps it or not
    scratch = tempfile.mkdtemp(prefix="hpsearch-model-")
    sink = ToTune(number, BestModelKeeper(scratch, direction), checkpoints)
    resume_from = _resume_point(tune.get_checkpoint(), sink.noted)
    trial = Trial(number, params, native=params, sink=sink, resume_from=resume_from)
    try:
        _report_end(_run_to_end(objective, trial, catch), sink, judged)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class ToTune(TrialSink):
    """A trial in a Ray worker: its evaluations reported to Tune, each with the trial's checkpoint noted since the last
    (itself with `whole`, else a pointer to it); its offered model staged, for its last report to carry."""

    def __init__(self, number: int, staging: BestModelKeeper, whole: bool) -> None:
        self.number, self.staging, self.whole = number, staging, whole
        self.noted: dict[str, Any] = {}  # the latest report (its step, its metrics), the checkpoint not yet reported

    def report(self, trial: Trial, step: int, value: float) -> Decision:
        self.noted["step"], path = step, self.noted.pop("path", None)
        self.noted["metrics"] = {**_numbers(trial.metrics), "objective": value, schema.RAY_STEP: step}
        with _carried(path, step, whole=self.whole) as checkpoint:
            tune.report(self.noted["metrics"], checkpoint=checkpoint)
        return Decision.CONTINUE  # Ray's scheduler stops the trial by ending its worker

    def offer_model(self, trial: Trial, value: float, save: Callable[[str], None]) -> None:
        self.staging.stage(self.number, value, save)

    def checkpointed(self, trial: Trial, path: str) -> None:
        self.noted["path"] = path


def _resume_point(given: tune.Checkpoint | None, noted: dict[str, Any]) -> str | None:
    """Where the trial resumes (None: from its start): the checkpoint Tune gives it, or the trial's own checkpoint
    that a pointer names, if it is still there (a lost node's disk is not), at that checkpoint's step."""
    if given is None:
        return None
    metadata = given.get_metadata()
    pointer = metadata.get(schema.RAY_RESUME)
    if pointer is not None and not os.path.isdir(pointer):
        return None
    if schema.RAY_STEP in metadata:
        noted["step"] = metadata[schema.RAY_STEP]
    return pointer or given.to_directory()


@contextlib.contextmanager
def _carried(path: str | None, step: int, whole: bool) -> Iterator[tune.Checkpoint | None]:
    """The checkpoint a report carries (None if none was noted since the last): the trial's own checkpoint at `path`
    (`whole`: another trial may start from it, PBT's exploit), or a pointer to it, an empty checkpoint whose metadata
    holds its path (Ray keeps a copy of what a report carries: a pointer costs no disk)."""
    if path is None:
        yield None
    elif whole:
        checkpoint = tune.Checkpoint.from_directory(path)
        checkpoint.set_metadata({schema.RAY_STEP: step})  # where a trial resumed from it stands
        yield checkpoint
    else:
        with tempfile.TemporaryDirectory(prefix="hpsearch-pointer-") as empty:
            checkpoint = tune.Checkpoint.from_directory(empty)
            checkpoint.set_metadata({schema.RAY_STEP: step, schema.RAY_RESUME: os.path.abspath(path)})
            yield checkpoint


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The evaluation metrics a report carries beside the objective: the numbers."""
    return {
        name: value
        for name, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def _run_to_end(objective: Callable[[Trial], Any], trial: Trial, catch: tuple[type[BaseException], ...]) -> Outcome:
    """The trial run to its end as the engine's loop runs it (`run_objective`); a mistake in the code
    (`ObjectiveError`) or an error outside `catch` (`TrialError`) fails it too, and stops the search from the
    driver (the Recorder). Ray's end of a stopped trial's thread (SystemExit) and Ctrl-C pass."""
    try:
        return run_objective(objective, trial, 1, catch)
    except (KeyboardInterrupt, SystemExit):
        raise
    except ObjectiveError as e:
        return Outcome(TrialState.FAILED, error=_traceback(e), failure=e)
    except BaseException as e:  # outside `catch`: it stops the search, as in the engine's loop
        stop = TrialError(f"Trial {trial.number} raised {e!r}, which is not one of catch={catch}")
        return Outcome(TrialState.FAILED, error=_traceback(e), failure=stop)


def _traceback(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def _report_end(outcome: Outcome, sink: ToTune, judged: tuple[str, ...]) -> None:
    """Tell Tune how the trial ended, in its last report, beside its latest evaluation's metrics, at its last step
    (schedulers keyed by the step, PBT, decide nothing anew): completed, with its objective and, as its checkpoint,
    its staged model; failed, with its traceback (and what stops the search, if it does). A stopped one reports
    nothing more, which the driver records as pruned."""
    noted = sink.noted
    end: dict[str, Any] = {**dict.fromkeys(judged, math.nan), **noted.get("metrics", {})}
    if "step" in noted:
        end[schema.RAY_STEP] = noted["step"]
    if outcome.state is TrialState.FAILED:
        end.update({"objective": math.nan, schema.RAY_FAILED: outcome.error})
        if isinstance(outcome.failure, (ObjectiveError, TrialError)):
            end[schema.RAY_STOPS] = f"{type(outcome.failure).__name__}: {outcome.failure}"
        tune.report(end)
        return
    if outcome.state is not TrialState.COMPLETE:
        return
    (value,) = outcome.values
    staging, number = sink.staging, sink.number
    model = tune.Checkpoint.from_directory(staging.staging_dir(number)) if staging.offered(number) else None
    end.update({"objective": value, schema.RAY_FINAL: True, schema.RAY_MODEL: model is not None})
    tune.report(end, checkpoint=model)


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
