"""The trial runner: one trial of a Trainer search, from the trial's parameters to its objective.

A trial's parameters that are `TrainingArguments` fields set those fields; the others are model
hyperparameters, which `model_init(trial)` reads from the backend's trial it is given (on optuna
it may also suggest them there, define-by-run). The trial's rung evaluations (`hpsearch.trainer.rungs`),
or without rungs the user's own evaluations, are reported to the backend at their progress, and
it may stop the trial there (pruning); each trial is its own run in the `report_to`
integrations; memory is released between trials; the best model is offered to the search.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import transformers
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, number_of_arguments

from hpsearch import compat
from hpsearch.errors import ConfigError
from hpsearch.loop.fidelity import progress
from hpsearch.objective import check_values, is_better, objective_names
from hpsearch.settings import DEFAULT_STUDY_NAME
from hpsearch.study import disk
from hpsearch.trainer import pausing
from hpsearch.trainer.arguments import argument_types, typed, warn_unread
from hpsearch.trainer.recipe import rebuild_trainer, trainer_recipe
from hpsearch.trainer.rungs import AUTO, DEFAULT_RUNG_METRIC, RungEvaluations, rung_score, rung_sources
from hpsearch.trainer.tracking import TrialTracking
from hpsearch.trial import Trial, check_searched


def run_name(hp_name: Callable[[Any], str] | None, trial: Trial) -> str:
    """The trial's name: `hp_name(trial)` (called once the model is built), else run-<number>."""
    name = hp_name(trial.native) if hp_name is not None else f"run-{trial.number}"
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ConfigError(f"`hp_name` must return a plain directory name. Received: {name!r}.")
    return name


class _Reporter(transformers.TrainerCallback):
    """Records the objective of each of the user's evaluations of a trial; without rungs, reports it
    to the backend at its progress, and stops training when the backend says prune."""

    def __init__(self, runner: TrialRunner, trial: Trial):
        self.runner = runner
        self.trial = trial
        self.values: dict[int, Any] = {}  # step -> objective of the evaluation there

    def on_train_begin(self, args, state, control, **kwargs):
        """Resumed from a checkpoint: the evaluations before it count (the best checkpoint may be one)."""
        for entry in (e for e in state.log_history if "step" in e and any(n.startswith("eval_") for n in e)):
            self.values[entry["step"]] = self.runner.compute_objective({n: v for n, v in entry.items() if n != "step"})

    def on_save(self, args, state, control, **kwargs):
        self.trial.note_checkpoint(str(Path(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = self.runner.compute_objective(dict(metrics or {}))
        self.values[state.global_step] = value
        self.trial.name_objectives(objective_names(self.runner.compute_objective, metrics or {}, value))
        if len(self.runner.directions) > 1:
            return
        (number,) = check_values(value, 1)
        self.runner.on_evaluation(self.trial, number)
        if not self.runner.rungs and self.trial.report(progress(state.global_step, state.max_steps), number, metrics):
            control.should_training_stop = True
            control.should_save = False


def _rebuild_runner(recipe: dict[str, Any], *arguments: Any) -> TrialRunner:
    return TrialRunner(rebuild_trainer(recipe), *arguments)


@dataclass(frozen=True)
class RunSettings:
    """How each trial of a Trainer search runs, as rank 0 decided it: shared with the other DDP ranks, and carried
    with the runner to Ray's workers. The user's functions (`compute_objective`, `hp_name`) go beside it."""

    directions: tuple[str, ...]
    objective_at: str = "last"
    rungs: tuple[int, ...] = ()  # progress points of the rung evaluations
    rung_eval_size: int | str | None = AUTO
    rung_metric: str = DEFAULT_RUNG_METRIC
    study_name: str = DEFAULT_STUDY_NAME
    keep_checkpoints: bool = False  # a finished trial's run directory: kept, or deleted


class TrialRunner:
    """Runs one trial of a Trainer: applies the parameters, trains, returns the objective.

    It knows nothing of the backends: it sees only the `Trial`. Pickled (for Ray workers), it
    travels as the Trainer's recipe and rebuilds the Trainer where it lands.
    """

    def __init__(
        self,
        trainer: transformers.Trainer,
        compute_objective: Callable[[dict[str, float]], Any],
        settings: RunSettings,
        hp_name: Callable[[Any], str] | None = None,
    ):
        self.trainer, self.settings = trainer, settings
        self.compute_objective, self.hp_name = compute_objective, hp_name
        self.directions = list(settings.directions)
        self.rungs = settings.rungs if len(self.directions) == 1 else ()  # several objectives are not pruned
        self.base_args = trainer.args
        self.output_dir = Path(trainer.args.output_dir)
        self._model_checked = False  # whether the searched model hyperparameters were looked for in a model yet

    def __reduce__(self) -> tuple:
        return _rebuild_runner, (trainer_recipe(self.trainer), self.compute_objective, self.settings, self.hp_name)

    @functools.cached_property
    def _rung_sources(self) -> list[tuple[str, Any]]:
        """The evaluation sets the rungs score, drawn once for every trial of the search."""
        return rung_sources(self.trainer, self.settings.rung_eval_size, self.settings.study_name)

    def trial_args(self, trial: Trial) -> transformers.TrainingArguments:
        """The trial's `TrainingArguments`: the user's, with the trial's fields (its run directory is
        named once its model is built)."""
        fields = argument_types()
        values = {name: value for name, value in typed(trial.params).items() if name in fields}
        values["output_dir"] = str(self.output_dir / f"run-{trial.number}")
        # A copy, not a new TrainingArguments: building one resets the accelerator state in use.
        args = copy.copy(self.base_args)
        for name, value in values.items():
            setattr(args, name, value)
        return args

    def __call__(self, trial: Trial) -> Any:
        trainer = self.trainer
        args = self.trial_args(trial)
        reporter = _Reporter(self, trial)
        callbacks = [reporter]
        if self.rungs:
            score = rung_score(self.settings.rung_metric, self.compute_objective, self.directions[0])
            loss_only = self.settings.rung_metric == "loss"
            callbacks.append(RungEvaluations(trainer, trial, self.rungs, score, self._rung_sources, loss_only))
        tracking = TrialTracking(trainer, self.output_dir, self.settings.study_name)
        model_init = trainer.model_init
        trainer.args = args
        compat.set_train_batch_size(trainer, args.train_batch_size)
        if args.deepspeed:
            self._rebuild_deepspeed(args)
        # train() calls model_init first thing, right after seeding, as in transformers' own search
        trainer.model_init = lambda: self._start(trial, model_init, args, tracking)
        for callback in callbacks:
            trainer.add_callback(callback)
        failed = True
        pause_dir = disk.pause_dir(self.output_dir, self.settings.study_name, trial.number)
        keeps_run = self.settings.keep_checkpoints  # the run directory is named once the model is built (`_start`)
        try:
            with compat.pausing_where_training_ends(
                trainer,
                lambda: trial.pausing,
                lambda: pausing.save(trainer, trial, pause_dir, None if keeps_run else args.output_dir),
            ):  # None, or the checkpoint a crash or a pause left
                trainer.train(resume_from_checkpoint=trial.resume_from)
            if trial.should_stop:  # pruned or paused: the trial has no objective (yet), its model is dropped
                failed = False
                return None
            if trainer.state.global_step not in reporter.values and not self._ends_at_best(reporter):
                trainer.evaluate()  # the user's final evaluation, which the reporter records
            failed = False
            return self._objective(trial, reporter)
        finally:
            tracking.end(failed)
            for callback in callbacks:
                trainer.remove_callback(callback)
            trainer.model_init = model_init
            trainer.args = self.base_args
            self._release()
            if not failed:  # a rank that failed leaves at once: the launcher (torchrun) ends the others
                _wait_for_every_rank()
            if not trial.pausing:  # a paused trial resumes from its checkpoints; one that ran on is done with them
                disk.remove([str(pause_dir), *([] if self.settings.keep_checkpoints else [args.output_dir])])

    def _start(
        self,
        trial: Trial,
        model_init: Callable[..., Any],
        args: transformers.TrainingArguments,
        tracking: TrialTracking,
    ) -> Any:
        """The trial's model, then (its parameters all known) its name, run directory and tracking."""
        takes_trial, searched = number_of_arguments(model_init) == 1, dict(trial.params)
        model = trial.define(lambda native: model_init(native) if takes_trial else model_init())
        check_searched(trial, "`model_init(trial)`")
        if not self._model_checked and self.trainer.is_world_process_zero():
            warn_unread(searched, model)
            self._model_checked = True
        name = run_name(self.hp_name, trial)
        args.output_dir = str(self.output_dir / name)
        args.run_name = name  # what the report_to integrations call the trial's run
        tracking.start(trial, name, args)
        return model

    def _rebuild_deepspeed(self, args: transformers.TrainingArguments) -> None:
        """A DeepSpeed config made from the trial's arguments ("auto" values filled from them), and an
        accelerator for it, as transformers' own search does for each trial."""
        from accelerate.utils import DeepSpeedPlugin
        from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

        args.hf_deepspeed_config = HfTrainerDeepSpeedConfig(args.deepspeed)
        args.hf_deepspeed_config.trainer_config_process(args)
        args.deepspeed_plugin = DeepSpeedPlugin(hf_ds_config=args.hf_deepspeed_config)
        compat.reset_accelerator_state()  # a singleton holding the last trial's plugin
        self.trainer.create_accelerator_and_postprocess()

    def _ends_at_best(self, reporter: _Reporter) -> bool:
        """Whether training ended on the model of its best checkpoint (`load_best_model_at_end`)."""
        best = self.trainer.state.best_model_checkpoint
        return bool(self.trainer.args.load_best_model_at_end and best) and _step_of(best) in reporter.values

    def _objective(self, trial: Trial, reporter: _Reporter) -> Any:
        """The trial's objective: the score of the model it ends with (its last evaluation's, or its best
        checkpoint's with `load_best_model_at_end`), or with `objective_at='best'` its best evaluation's."""
        ends_at_best = self._ends_at_best(reporter)
        step = _step_of(self.trainer.state.best_model_checkpoint) if ends_at_best else max(reporter.values)
        if len(self.directions) > 1:
            return reporter.values[step]
        if self.settings.objective_at == "last":
            objective = reporter.values[step]
            trial.offer_model(check_values(objective, 1)[0], self._save_model)
            return objective
        best = None
        for value in reporter.values.values():
            if is_better(value, best, self.directions[0]):
                best = value
        return best

    def on_evaluation(self, trial: Trial, value: float) -> None:
        """With `objective_at='best'`, every evaluation offers its model: the best one is kept."""
        if self.settings.objective_at == "best":
            trial.offer_model(value, self._save_model)

    def _save_model(self, directory: str) -> None:
        self.trainer.save_model(directory)

    def _release(self) -> None:
        """Drop the trial's model, optimizer and scheduler everywhere the Trainer keeps them, and collect
        them (accelerate's `free_memory` runs the garbage collector and empties the CUDA cache)."""
        trainer = self.trainer
        trainer.model = trainer.model_wrapped = None
        trainer.optimizer = trainer.lr_scheduler = None
        handler = trainer.callback_handler
        handler.model = handler.optimizer = handler.lr_scheduler = None
        handler.train_dataloader = handler.eval_dataloader = None
        trainer.accelerator.free_memory()

    @contextlib.contextmanager
    def trials_only_collected(self) -> Iterator[None]:
        """While the search runs, the garbage collector scans only what the trials make: the objects alive
        before it (the libraries, the datasets, the Trainer) are frozen out of its scans (`gc.freeze`),
        so each collection between trials (two a trial, accelerate's) takes milliseconds, not a third
        of a second. The model the Trainer was built with is released first, so that it is not frozen. Where
        the process has frozen objects already (its own `gc.freeze`), that freeze is left as it is."""
        if gc.get_freeze_count():
            yield
            return
        self._release()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()


def _wait_for_every_rank() -> None:
    """Under DDP, every rank at the end of the trial: no rank deletes the run directory while another still writes
    its part of a checkpoint there (seen once: "Parent directory .../run-1/checkpoint-2 does not exist")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _step_of(checkpoint: str) -> int:
    """The global step of a checkpoint directory (`.../checkpoint-120` -> 120)."""
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])
