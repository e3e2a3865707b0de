"""The 🤗 Transformers integration: a drop-in `Trainer` and the trial runner it searches with.

A trial's parameters that are `TrainingArguments` fields set those fields; the others are
model hyperparameters, which `model_init(trial)` reads from the backend's trial it is given
(`trial.params[...]` for optuna). Every evaluation is reported to the backend, which may stop
the trial there (pruning); memory is released between trials; the best model is kept.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import gc
import logging
import shutil
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers.trainer_utils import IntervalStrategy, number_of_arguments

from hpsearch import store
from hpsearch.backends.base import AskTellBackend
from hpsearch.distributed import Coordinator, follow
from hpsearch.engine import BestRun, Search
from hpsearch.objective import check_values, default_compute_objective, is_better
from hpsearch.space import Categorical, Dimension, Float
from hpsearch.trial import Trial

logger = logging.getLogger("hpsearch")

DEFAULT_EVALS_PER_TRIAL = 4


class Trainer(transformers.Trainer):
    """A `transformers.Trainer` whose `hyperparameter_search` is hpsearch's engine.

    It also takes the `tokenizer=` of older transformers (and of the docs), passed on as
    `processing_class`.
    """

    def __init__(self, *args: Any, tokenizer: Any = None, **kwargs: Any):
        if tokenizer is not None:
            if kwargs.get("processing_class") is not None:
                raise ValueError("Pass either `tokenizer` or `processing_class` to `Trainer`, not both.")
            kwargs["processing_class"] = tokenizer
        super().__init__(*args, **kwargs)

    def hyperparameter_search(
        self,
        hp_space: Any = None,
        compute_objective: Callable[[dict[str, float]], Any] | None = None,
        n_trials: int = 20,
        direction: str | list[str] = "minimize",
        backend: Any = None,
        hp_name: Callable[[Any], str] | None = None,
        **kwargs: Any,
    ) -> BestRun | list[BestRun]:
        """Search hyperparameters with hpsearch; see `hpsearch.hyperparameter_search`."""
        return hyperparameter_search(
            self,
            hp_space=hp_space,
            compute_objective=compute_objective,
            n_trials=n_trials,
            direction=direction,
            backend=backend,
            hp_name=hp_name,
            **kwargs,
        )


def hyperparameter_search(
    trainer: transformers.Trainer,
    hp_space: Any = None,
    compute_objective: Callable[[dict[str, float]], Any] | None = None,
    n_trials: int = 20,
    direction: str | Sequence[str] = "minimize",
    backend: Any = None,
    hp_name: Callable[[Any], str] | None = None,
    objective_at: str = "last",
    evals_per_trial: int | None = None,
    **kwargs: Any,
) -> BestRun | list[BestRun]:
    """Search the hyperparameters of `trainer` (built with `model_init`); the best run, or the
    Pareto front when `direction` is a list.

    Beyond transformers' arguments:
    - `objective_at`: "last" (the trial's last evaluation, as transformers) or "best" (its best).
    - `evals_per_trial`: evaluations spread over each trial's training. By default, when the
      user's `eval_strategy` is "no" and the backend can prune, 4, so that pruning has values to
      act on; otherwise the user's own evaluation schedule.
    - `storage`, `study_name`: the study store (default: `<output_dir>/hpsearch.db`); rerunning
      the same call continues it. Other keyword arguments go to the backend.
    """
    if trainer.model_init is None:
        raise ValueError(
            "hyperparameter_search needs a `model_init`: build the Trainer with `model_init=...` "
            "(a function returning a fresh model, optionally of the trial) instead of `model=`."
        )
    if trainer.eval_dataset is None:
        raise ValueError("hyperparameter_search needs an `eval_dataset` on the Trainer to score each trial.")
    if compute_objective is not None and not callable(compute_objective):
        raise ValueError(f"`compute_objective` must be a function of the metrics. Received: {compute_objective!r}.")
    if objective_at not in ("last", "best"):
        raise ValueError(f"`objective_at` must be 'last' or 'best'. Received: objective_at={objective_at!r}.")
    if evals_per_trial is not None and (not isinstance(evals_per_trial, int) or evals_per_trial < 0):
        raise ValueError(f"`evals_per_trial` must be an int >= 0. Received: evals_per_trial={evals_per_trial!r}.")
    coordinator = Coordinator() if trainer.args.world_size > 1 else None
    if coordinator is not None and not coordinator.leads:
        return _follow(coordinator, trainer, compute_objective, hp_name, objective_at)
    try:
        kwargs.setdefault("storage", store.storage_url(trainer.args.output_dir))
        kwargs.setdefault("output_dir", trainer.args.output_dir if trainer.args.should_save else None)
        search = Search(hp_space, n_trials, direction, backend, coordinator=coordinator, **kwargs)
        if objective_at == "best" and len(search.directions) > 1:
            raise ValueError("`objective_at='best'` needs one `direction`: several objectives have no single best.")
        if coordinator is not None and not isinstance(search.backend, AskTellBackend):
            raise ValueError(
                f"The {search.backend.name!r} backend runs trials in its own workers, not under torchrun: launch "
                "the search as one process (Ray gives each trial `resources_per_trial`, GPUs included)."
            )
        check_params(search.param_space, trainer.model_init)
        if evals_per_trial is None:
            wants_evals = trainer.args.eval_strategy == "no" and search.backend.can_prune
            evals_per_trial = DEFAULT_EVALS_PER_TRIAL if wants_evals else 0
        settings = {"directions": search.directions, "evals_per_trial": evals_per_trial}
        if coordinator is not None:
            coordinator.share(("settings", settings))
        runner = TrialRunner(
            trainer, compute_objective or default_compute_objective, hp_name=hp_name, objective_at=objective_at,
            **settings,
        )
        search.run(runner)
    except BaseException as e:
        if coordinator is not None:
            coordinator.finish(e)
        raise
    if coordinator is not None:
        coordinator.finish()
    return search.best()


def _follow(
    coordinator: Coordinator,
    trainer: transformers.Trainer,
    compute_objective: Callable[[dict[str, float]], Any] | None,
    hp_name: Callable[[Any], str] | None,
    objective_at: str,
) -> None:
    """A DDP rank other than 0: train the trials rank 0 chooses, stopping when it says."""
    kind, settings = coordinator.share()
    if kind == "abort":
        raise RuntimeError(f"The search stopped on rank 0: {settings}")
    runner = TrialRunner(
        trainer, compute_objective or default_compute_objective, hp_name=hp_name, objective_at=objective_at,
        **settings,
    )
    follow(coordinator, runner)
    return None


@functools.cache
def _argument_types() -> dict[str, Any]:
    fields = {f.name for f in dataclasses.fields(transformers.TrainingArguments) if f.init}
    hints = typing.get_type_hints(transformers.TrainingArguments)
    return {name: hints.get(name) for name in fields}


def check_params(space: Mapping[str, Dimension | None], model_init: Callable[..., Any]) -> None:
    """Fail before training if a parameter can reach neither `TrainingArguments` nor `model_init`,
    or its values cannot be its `TrainingArguments` field's type."""
    fields = _argument_types()
    for name, dim in space.items():
        if name in fields and dim is not None:
            _check_field_values(name, dim)
    model_keys = [name for name in space if name not in fields]
    if not model_keys:
        return
    hints = "".join(
        f" Did you mean {close[0]!r} for {key!r}?"
        for key in model_keys
        if (close := difflib.get_close_matches(key, fields, n=1, cutoff=0.8))
    )
    if number_of_arguments(model_init) == 0:
        raise ValueError(
            f"hp_space key(s) {model_keys} are not `TrainingArguments` fields, and `model_init` takes no trial "
            f"to read them from.{hints} For a model hyperparameter, define `model_init(trial)` and read it there "
            "(`trial.params[name]` for optuna)."
        )
    log = logger.warning if hints else logger.info
    log(f"hp_space key(s) {model_keys} are model hyperparameters: `model_init(trial)` must read them.{hints}")


def _check_field_values(name: str, dim: Dimension) -> None:
    target = _field_type(name)
    if target is int and isinstance(dim, Float):
        raise ValueError(
            f"hp_space samples {name!r} as a float ({dim}), but `TrainingArguments.{name}` is an int: sample "
            "it as an int (hpsearch Int, trial.suggest_int, tune.randint, an int W&B range, a SigOpt int) "
            "or from whole-number choices."
        )
    for value in dim.choices if isinstance(dim, Categorical) else (dim.low, dim.high):
        try:
            _cast(name, value)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"hp_space gives {name!r} the value {value!r}, which `TrainingArguments.{name}` cannot take "
                f"({e}). Give it {target.__name__} values."
            ) from None


def _field_type(name: str) -> type | None:
    """The plain type (int, float, bool, str) of a `TrainingArguments` field, None for richer ones."""
    hint = _argument_types()[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    target = args[0] if len(args) == 1 else hint
    return target if target in (int, float, str, bool) else None


def _cast(name: str, value: Any) -> Any:
    """Cast a trial value to the type of its `TrainingArguments` field ("16" -> 16); ValueError
    where that would change it (16.5 -> int)."""
    target = _field_type(name)
    if target is None or value is None:
        return value
    if target is bool:
        if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
            return _BOOLEANS[value.strip().lower()]
        if isinstance(value, (bool, int)) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{value!r} is not a boolean")
    if target is str:
        return str(value)
    number = float(value)
    if target is int and not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number) if target is int else number


_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _run_name(hp_name: Callable[[Any], str] | None, trial: Trial) -> str:
    name = hp_name(trial.native) if hp_name is not None else f"run-{trial.number}"
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"`hp_name` must return a plain directory name. Received: {name!r}.")
    return name


class _Reporter(transformers.TrainerCallback):
    """Reports each evaluation of a trial to the backend, and stops training when it says prune."""

    def __init__(self, runner: TrialRunner, trial: Trial):
        self.runner = runner
        self.trial = trial
        self.values: list[tuple[int, Any]] = []

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = self.runner.compute_objective(dict(metrics or {}))
        self.values.append((state.global_step, value))
        if len(self.runner.directions) > 1:
            return
        (number,) = check_values(value, 1)
        self.runner.on_evaluation(self.trial, number)
        if self.trial.report(state.global_step, number):
            control.should_training_stop = True


def _trainer_recipe(trainer: transformers.Trainer) -> dict[str, Any]:
    """What rebuilds `trainer` in another process (a Ray worker): its constructor's inputs.

    The Trainer itself does not travel (its accelerator state belongs to this process); the
    callbacks do, except those the Trainer makes for itself, which the new one makes afresh.
    """
    args = trainer.args
    own = (
        *transformers.trainer.DEFAULT_CALLBACKS,
        transformers.trainer_callback.ProgressCallback,
        transformers.trainer_callback.PrinterCallback,
        *transformers.integrations.get_reporting_integration_callbacks(args.report_to),
    )
    return {
        "trainer_class": type(trainer),
        "args_class": type(args),
        "args": {f.name: getattr(args, f.name) for f in dataclasses.fields(args) if f.init},
        "callbacks": [type(c) if isinstance(c, own) else c for c in trainer.callback_handler.callbacks],
        "kwargs": {
            name: getattr(trainer, name)
            for name in (
                "model_init", "data_collator", "train_dataset", "eval_dataset", "processing_class",
                "compute_metrics", "preprocess_logits_for_metrics", "compute_loss_func",
            )
        },
    }


def _rebuild_trainer(recipe: dict[str, Any]) -> transformers.Trainer:
    trainer = recipe["trainer_class"](model=None, args=recipe["args_class"](**recipe["args"]), **recipe["kwargs"])
    fresh = {type(c): c for c in trainer.callback_handler.callbacks}
    trainer.callback_handler.callbacks = [fresh.get(c, c) if isinstance(c, type) else c for c in recipe["callbacks"]]
    return trainer


def _rebuild_runner(recipe: dict[str, Any], options: dict[str, Any]) -> TrialRunner:
    return TrialRunner(_rebuild_trainer(recipe), **options)


class TrialRunner:
    """Runs one trial of a Trainer: applies the parameters, trains, returns the objective.

    It knows nothing of the backends: it sees only the `Trial`. Pickled (for Ray workers), it
    travels as the Trainer's recipe and rebuilds the Trainer where it lands.
    """

    def __init__(
        self,
        trainer: transformers.Trainer,
        compute_objective: Callable[[dict[str, float]], Any],
        directions: Sequence[str],
        hp_name: Callable[[Any], str] | None = None,
        objective_at: str = "last",
        evals_per_trial: int = 0,
    ):
        self.trainer = trainer
        self.compute_objective = compute_objective
        self.directions = list(directions)
        self.hp_name = hp_name
        self.objective_at = objective_at
        self.evals_per_trial = evals_per_trial
        self.base_args = trainer.args
        self.output_dir = Path(trainer.args.output_dir)

    def __reduce__(self) -> tuple:
        options = {
            "compute_objective": self.compute_objective,
            "directions": self.directions,
            "hp_name": self.hp_name,
            "objective_at": self.objective_at,
            "evals_per_trial": self.evals_per_trial,
        }
        return _rebuild_runner, (_trainer_recipe(self.trainer), options)

    def trial_args(self, trial: Trial) -> transformers.TrainingArguments:
        """The trial's `TrainingArguments`: the user's, with the trial's fields and its own run dir."""
        fields = _argument_types()
        values = {name: _cast(name, value) for name, value in trial.params.items() if name in fields}
        values["output_dir"] = str(self.output_dir / _run_name(self.hp_name, trial))
        if self.evals_per_trial == 1:
            values["eval_strategy"] = IntervalStrategy.NO  # the one evaluation after training
        elif self.evals_per_trial > 1:
            values["eval_strategy"] = IntervalStrategy.STEPS
            values["eval_steps"] = 1 / self.evals_per_trial  # a fraction of the trial's steps
        # A copy, not a new TrainingArguments: building one resets the accelerator state in use.
        args = copy.copy(self.base_args)
        for name, value in values.items():
            setattr(args, name, value)
        return args

    def __call__(self, trial: Trial) -> Any:
        trainer = self.trainer
        args = self.trial_args(trial)
        reporter = _Reporter(self, trial)
        model_init = trainer.model_init
        trainer.args = args
        trainer._train_batch_size = args.train_batch_size  # transformers keeps the first trial's otherwise
        # model_init gets the backend's own trial; train() itself is given none (it only knows the
        # trial types of transformers' own backends)
        if number_of_arguments(model_init) == 1:
            trainer.model_init = functools.partial(model_init, trial.native)
        trainer.add_callback(reporter)
        try:
            trainer.train()
            if not reporter.values or reporter.values[-1][0] != trainer.state.global_step:
                trainer.evaluate()  # the reporter records it
            if trial.should_stop:
                return None
            return self._objective(trial, reporter.values)
        finally:
            trainer.remove_callback(reporter)
            trainer.model_init = model_init
            trainer.args = self.base_args
            self._release()
            shutil.rmtree(args.output_dir, ignore_errors=True)

    def _objective(self, trial: Trial, values: list[tuple[int, Any]]) -> Any:
        """The trial's objective: its last evaluation's, or with `objective_at='best'` its best one's."""
        if len(self.directions) > 1:
            return values[-1][1]
        if self.objective_at == "last":
            objective = values[-1][1]
            trial.offer_model(check_values(objective, 1)[0], self._save_model)
            return objective
        best = None
        for _, value in values:
            if is_better(value, best, self.directions[0]):
                best = value
        return best

    def on_evaluation(self, trial: Trial, value: float) -> None:
        """With `objective_at='best'`, every evaluation offers its model: the best one is kept."""
        if self.objective_at == "best":
            trial.offer_model(value, self._save_model)

    def _save_model(self, directory: str) -> None:
        self.trainer.save_model(directory)

    def _release(self) -> None:
        """Drop the trial's model, optimizer and scheduler everywhere the Trainer keeps them."""
        trainer = self.trainer
        trainer.model = trainer.model_wrapped = None
        trainer.optimizer = trainer.lr_scheduler = None
        handler = trainer.callback_handler
        handler.model = handler.optimizer = handler.lr_scheduler = None
        handler.train_dataloader = handler.eval_dataloader = None
        trainer.accelerator.free_memory()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
