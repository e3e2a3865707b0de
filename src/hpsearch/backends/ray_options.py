"""`tune.run`'s keywords, which transformers' Ray search forwards from `hyperparameter_search(**kwargs)`: the Ray
backend takes each with Ray's meaning (`RayBackend`'s arguments, passed on to the Tuner's configs or translated
where hpsearch does the job itself), or refuses it here, before any trial, saying why and what to pass instead."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ray import tune

from hpsearch.errors import ConfigError, check_number

# A lost worker or node costs nothing: Ray runs its trials again from their last checkpoint, up to this many times
# each (a trial whose own code fails is recorded as failed, never run again)
DEFAULT_MAX_FAILURES = 3

_RESUMES = "rerunning the same call resumes the study and Ray's experiment (a new `study_name` starts a new one)"
_SAVES = "a trial's checkpoints follow the Trainer's `save_strategy` (in the function API, `trial.note_checkpoint`)"
REFUSED = {
    "config": "hpsearch gives Ray the search space itself: pass it as `hp_space`",
    "num_samples": "hpsearch gives Ray the number of trials itself: pass it as `n_trials`",
    "run_or_experiment": "hpsearch gives Ray the trial to run itself: your `model_init` (or objective) and arguments",
    "restore": _RESUMES,
    "resume": _RESUMES,
    "resume_config": _RESUMES,
    "raise_on_failed_trial": (
        "a failed trial is recorded and the search goes on; it raises `SearchFailed` once every trial of a run "
        "failed, or `max_consecutive_failed_trials` in a row"
    ),
    "checkpoint_freq": f"Ray takes it from class trainables only; {_SAVES}",
    "checkpoint_at_end": f"Ray takes it from class trainables only; {_SAVES}",
    "export_formats": "Ray exports a class trainable's model; hpsearch keeps the best trial's model in `best_model/`",
    "chdir_to_trial_dir": "Ray 2 no longer takes it: set the RAY_CHDIR_TO_TRIAL_DIR environment variable instead",
}


def refuse(options: Mapping[str, Any]) -> None:
    """Refuse the first of `options` that the Ray backend does not take from `tune.run`, saying why."""
    for name in sorted(options.keys() & REFUSED.keys()):
        raise ConfigError(
            f"The 'ray' backend does not take `{name}` (tune.run's): {REFUSED[name]}. Received: "
            f"{name}={options[name]!r}."
        )


def checkpoint_config(
    config: tune.CheckpointConfig | None, keep: int | None, score_attr: str | None
) -> tune.CheckpointConfig:
    """Which checkpoints Ray keeps of each trial (those it reports to Ray: PBT's and HyperBand's, a retry's pointer,
    its final model, which `best_model/` takes): `checkpoint_config`, with Ray's older keywords read as `tune.run`
    reads them (`keep_checkpoints_num`; `checkpoint_score_attr`, "min-" before a score to minimise); by default the
    latest one. The Trainer's own checkpoints follow its `save_total_limit`."""
    check_number("keep_checkpoints_num", keep, 1, allowed=(None,), says=", or None")
    if score_attr is not None and not isinstance(score_attr, str):
        raise ConfigError(
            f"`checkpoint_score_attr` must be the name of a reported metric, 'min-' before it to keep the lowest. "
            f"Received: checkpoint_score_attr={score_attr!r}."
        )
    config = copy.copy(config) if config is not None else tune.CheckpointConfig(num_to_keep=1)
    if keep is not None:
        config.num_to_keep = keep
    if score_attr is not None:
        config.checkpoint_score_attribute = score_attr.removeprefix("min-")
        config.checkpoint_score_order = "min" if score_attr.startswith("min-") else "max"
    return config
