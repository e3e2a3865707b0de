"""Keeping each study's best model: `<output_dir>/best_model` for the default study, and
`<output_dir>/studies/<study>/best_model` for any other, swapped in whole or not at all.

A trial offers its model when an evaluation beats every completed trial; the model waits in a
staging directory until the trial completes, then replaces the best model if the trial is the
study's best. The keeper knows directories only: saving a model is the trial runner's job.

Each kept model lives in its own directory under `<output_dir>/.models`, and `best_model` is a
relative symlink to it (read as a directory by `from_pretrained`, `Path.is_dir()`, ...). A
directory cannot be renamed onto a non-empty one, but a symlink can replace another in one
`rename`: so a process killed at any moment leaves `best_model` naming the old model or the new
one, each whole. Directories a killed `promote` left in `.models` are removed by the next one.
A real `best_model` directory (kept by an hpsearch before the symlink) is moved into `.models` by
the first promote: killed in that moment, `best_model` is missing until the next keeper made on
the directory links the new model.

Each study has its own such layout (`best_model`, `.models`, `.staging`) under its own directory,
so that no study's model replaces or removes another's: the default study's is `output_dir` itself,
where an hpsearch before one model per study kept every study's model; `kept_model` still finds a
study's model there when it names that study's trial.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock

from hpsearch.objective import is_better
from hpsearch.settings import DEFAULT_STUDY_NAME, study_folder

if TYPE_CHECKING:
    import optuna

BEST_MODEL_DIR = "best_model"
TRIAL_INFO = "hpsearch_trial.json"
MODELS_DIR = ".models"
MODELS_LOCK = ".lock"  # in MODELS_DIR
STUDIES_DIR = "studies"  # in output_dir: a directory per study other than the default one


def study_dir(output_dir: str | Path, study_name: str = DEFAULT_STUDY_NAME) -> Path:
    """Where a study's best model is kept: `output_dir` for the default study, else `studies/<study_name>` there
    (`study_folder`: a name that is not a plain file name made one)."""
    if study_name == DEFAULT_STUDY_NAME:
        return Path(output_dir)
    return Path(output_dir, STUDIES_DIR, study_folder(study_name))


class BestModelKeeper:
    """A study's best model's directory and the staging directories of the trials that may replace it
    (`direction`: how a trial's offers compare, for a keeper that stages them)."""

    def __init__(self, output_dir: str | Path, direction: str = "minimize", study_name: str = DEFAULT_STUDY_NAME):
        output = study_dir(output_dir, study_name)
        self.direction, self.study_name = direction, study_name
        self._offers: dict[int, float] = {}  # trial number -> the value of its staged model
        self.dir = output / BEST_MODEL_DIR
        self._staging = output / ".staging"
        self._models = output / MODELS_DIR
        self._new_link = output / f".{BEST_MODEL_DIR}.new"
        if self._new_link.is_symlink():  # a promote was killed mid-swap: finish or undo it
            with self._locked():
                self._finish_swap()

    def staging_dir(self, number: int) -> Path:
        return self._staging / f"trial-{number}"

    def stage(self, number: int, value: float, save: Callable[[str], None]) -> None:
        """Stage trial `number`'s model, `save(directory)`, unless it staged a better one already."""
        if not is_better(value, self._offers.get(number), self.direction):
            return
        self._offers[number] = value
        target = self.staging_dir(number)
        shutil.rmtree(target, ignore_errors=True)
        save(str(target))

    def offered(self, number: int) -> bool:
        return number in self._offers

    def settle(self, number: int, keep: bool, objective: Any = None, params: dict[str, Any] | None = None) -> None:
        """Trial `number` ended: its staged model becomes the best model if `keep`, else is dropped (one an earlier
        process staged for it too: a trial paused at a rung, pruned on a rerun)."""
        if self._offers.pop(number, None) is not None and keep:
            self.promote(number, objective, params or {})
        else:
            self.discard(number)

    def promote(self, number: int, objective: Any, params: dict[str, Any], source: Path | None = None) -> None:
        """Make trial `number`'s staged model (or `source`, which is moved) the best model.

        The model moves into its own directory under `.models`, a new symlink to it replaces
        `best_model` in one `os.replace`, and only then is the old model removed.
        """
        source = source or self.staging_dir(number)
        info = {"trial": number, "objective": objective, "params": params, "study": self.study_name}
        (source / TRIAL_INFO).write_text(json.dumps(info, default=str, indent=1))
        with self._locked():
            self._finish_swap()
            kept = f"trial-{number}-{uuid.uuid4().hex[:8]}"  # unique: a trial may be promoted again
            shutil.move(str(source), self._models / kept)
            os.symlink(Path(MODELS_DIR, kept), self._new_link)
            if self.dir.is_dir() and not self.dir.is_symlink():  # kept by an hpsearch before the symlink
                self.dir.rename(self._models / f"unlinked-{uuid.uuid4().hex[:8]}")
            os.replace(self._new_link, self.dir)
            for old in self._models.iterdir():
                if old.name not in (kept, MODELS_LOCK):
                    shutil.rmtree(old)
        self._drop_empty_staging()

    def kept_trial(self) -> int | None:
        """The number of the trial whose model is kept, None if none is."""
        info = _info(self.dir)
        return info["trial"] if info else None

    def discard(self, number: int) -> None:
        shutil.rmtree(self.staging_dir(number), ignore_errors=True)
        self._drop_empty_staging()

    def _drop_empty_staging(self) -> None:
        """No empty `.staging` left in `output_dir` (another worker staging meanwhile keeps it, and makes it anew)."""
        with contextlib.suppress(OSError):
            self._staging.rmdir()

    def _finish_swap(self) -> None:
        """Settle a swap a killed `promote` left: keep its new link if `best_model` is gone, else drop it."""
        if not self._new_link.is_symlink():
            return
        if os.path.lexists(self.dir):
            self._new_link.unlink()
        else:  # killed between moving a pre-symlink `best_model` away and linking the new model
            os.replace(self._new_link, self.dir)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold `.models/.lock` (a file lock, on any OS): processes sharing the output directory swap one
        at a time, and none removes a model another is about to link."""
        self._models.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(self._models / MODELS_LOCK):
            yield


def kept_model(output_dir: str | Path, study: optuna.Study) -> tuple[Path, int] | None:
    """The directory of `study`'s best model and its trial's number; None if none is kept. A model that
    names no study (kept by an hpsearch before one model per study, in `<output_dir>/best_model`) is the
    study's only if it names one of its completed trials, with that trial's objective and parameters."""
    own = BestModelKeeper(output_dir, study_name=study.study_name).dir
    for directory in dict.fromkeys([own, Path(output_dir) / BEST_MODEL_DIR]):
        info = _info(directory)
        if info and (info.get("study") == study.study_name or ("study" not in info and _names_its_trial(info, study))):
            return directory, info["trial"]
    return None


def _info(directory: Path) -> dict[str, Any] | None:
    """What `promote` wrote beside a kept model (`TRIAL_INFO`), None if no model is kept there."""
    info = directory / TRIAL_INFO
    return json.loads(info.read_text()) if info.is_file() else None


def _names_its_trial(info: dict[str, Any], study: optuna.Study) -> bool:
    """Whether `info` names a completed trial of `study`, with its objective (as JSON wrote it) and parameters."""
    import optuna

    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    trial = next((t for t in trials if t.number == info.get("trial") and len(t.values) == 1), None)
    if trial is None:
        return False
    with contextlib.suppress(TypeError, ValueError):
        same_objective = math.isclose(float(info["objective"]), trial.value, rel_tol=1e-6)
        return same_objective and json.loads(json.dumps(trial.params, default=str)) == info.get("params")
    return False
