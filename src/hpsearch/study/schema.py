"""What hpsearch persists in a study, in one place: the keys it writes beside each trial and beside the study (optuna
user attributes, which `trials_dataframe()` and optuna-dashboard show), the map between its trial states and
optuna's, and the format version the study records.

Every key is `hpsearch:<name>`. Format 1 (hpsearch 0.1 until this module) spelt three keys with a dot
(`hpsearch.space`) and, earlier still, kept a trial's keys as system attributes; both are still read, never written.
Format 2 also records itself on the study (`hpsearch:format`), so that a later hpsearch can tell what it opens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpsearch.errors import ConfigError
from hpsearch.trial import TrialState

if TYPE_CHECKING:
    import optuna

FORMAT = 2
FORMAT_KEY = "hpsearch:format"  # beside the study: the format it was written in (absent: format 1)

# Beside a trial
OWNER = "hpsearch:owner"  # the process that runs the trial: host, pid, process start time
ERROR = "hpsearch:error"  # a failed trial's traceback
INTERRUPTED = "hpsearch:interrupted"  # a failed trial that was stopped rather than run (its slot runs again)
EXTRA_PARAMS = "hpsearch:extra_params"  # parameters outside the space (constants), beside optuna's
CHECKPOINT = "hpsearch:checkpoint"  # a running trial's latest checkpoint, where a crash resumes it
PAUSED = "hpsearch:paused"  # a trial waiting at a rung (optuna state WAITING) from its checkpoint (`loop.halving`)
# a paused trial's checkpoint: {"bytes", "seconds" (its save), "remove": what to remove if it never resumes}
PAUSE_FILES = "hpsearch:pause_files"
RUNG_ERROR = "hpsearch:rung_error:"  # + a rung's progress: the standard error of the trial's score there, measured
RAN = "hpsearch:ran_s"  # a trial paused at a rung: the seconds it ran before its latest start (optuna's)
RAY_TRIAL_ID = "hpsearch:ray_trial_id"  # Ray's id of the trial
WARM_START = "hpsearch:warm_start"  # beside a trial: its origin; beside the study: the source and what it queued
# a trial that ran out of memory: failed, and to optuna pruned and infeasible (this constraint > 0), which its
# samplers learn from (`hpsearch.backends.out_of_memory`); optuna's constraints have no prefix of ours
OUT_OF_MEMORY = "out_of_memory"

# Beside the study
BEST_MODEL = "hpsearch:best_model"  # the kept model's trial and path
SPACE = "hpsearch:space"  # the space its first run searched
BACKEND = "hpsearch:backend"  # the backend its first run searched with
SETUP = "hpsearch:setup"  # what its first run trained on
PAUSE_PEAK = "hpsearch:pause_peak_bytes"  # the most disk the paused trials' checkpoints took at once
STALE = "hpsearch:stale:"  # + a trial's number: that trial was failed by the heartbeat check
SIGOPT_EXPERIMENT = "hpsearch:sigopt_experiment"  # the SigOpt experiment's id
WANDB_SWEEP = "hpsearch:wandb_sweep_id"  # the local W&B sweep's id

# In a Ray trial's reports to Tune, which Ray's experiment directory keeps and a rerun restores (`reconcile`);
# Tune's result keys are plain names, so these are spelt with an underscore
RAY_STEP = "hpsearch_step"  # an intermediate report's progress (a Trainer's: how far its training went)
RAY_FINAL = "hpsearch_final"  # the last report of a trial that completed (one the scheduler stopped has none)
RAY_MODEL = "hpsearch_model"  # in the last report: its checkpoint is the trial's model, not a training checkpoint
RAY_FAILED = "hpsearch_failed"  # the last report of a trial whose own code failed: its traceback (Ray retries none)
RAY_STOPS = "hpsearch_stops"  # beside it, where the failure stops the search: "ObjectiveError: ..." / "TrialError: ..."
RAY_RESUME = "hpsearch_resume"  # in a reported checkpoint's metadata: the trial's own checkpoint, where a retry resumes

# Tags on a trial's MLflow run (`hpsearch.trainer.tracking`), in MLflow's dotted style
TRACKING_STUDY, TRACKING_TRIAL = "hpsearch.study", "hpsearch.trial"

_FORMAT_1 = {
    SPACE: "hpsearch.space",
    SIGOPT_EXPERIMENT: "hpsearch.sigopt_experiment",
    WANDB_SWEEP: "hpsearch.wandb_sweep_id",
}

# hpsearch's trial states as optuna's, and back (a paused trial is optuna's WAITING, marked `PAUSED`)
TO_OPTUNA = {TrialState.COMPLETE: "COMPLETE", TrialState.PRUNED: "PRUNED", TrialState.FAILED: "FAIL"}
FROM_OPTUNA = {**{state.name: state for state in TrialState}, **{name: state for state, name in TO_OPTUNA.items()}}


def fact(frozen: optuna.trial.FrozenTrial, name: str) -> Any:
    """What hpsearch recorded as `name` beside a trial (None if nothing)."""
    return frozen.user_attrs[name] if name in frozen.user_attrs else frozen.system_attrs.get(name)


def study_fact(attributes: Mapping[str, Any], name: str) -> Any:
    """What hpsearch recorded as `name` beside a study (its user attributes), in either format (None if nothing)."""
    if name in attributes:
        return attributes[name]
    return attributes.get(_FORMAT_1.get(name, name))


def check_format(study: optuna.Study) -> None:
    """Record the format of a study hpsearch writes; refuse one a later hpsearch wrote, before any trial."""
    written = study.user_attrs.get(FORMAT_KEY)
    if written is None:
        study.set_user_attr(FORMAT_KEY, FORMAT)
    elif written > FORMAT:
        raise ConfigError(
            f"The study {study.study_name!r} was written by a later hpsearch (format {written}; this one reads up "
            f"to {FORMAT}). Continue it with the hpsearch that wrote it, or a later one."
        )
