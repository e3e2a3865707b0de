"""The 🤗 Transformers integration: a drop-in `Trainer` and `hyperparameter_search`.

The search runs each trial with the trial runner (`hpsearch.trainer.runner`); the trial's parameters
become `TrainingArguments` fields or model hyperparameters (`hpsearch.trainer.arguments`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import transformers
from transformers.trainer_utils import number_of_arguments

from hpsearch.backends.base import AskTellBackend, get_backend
from hpsearch.engine import Search
from hpsearch.errors import ConfigError, check_number
from hpsearch.executors import ranks as ddp
from hpsearch.loop.fidelity import DEFAULT_EVALS_PER_TRIAL, MAX_EVALS_PER_TRIAL, rung_points
from hpsearch.objective import default_compute_objective, metric_objective
from hpsearch.result import BestRun
from hpsearch.study import continuity, schema, store
from hpsearch.trainer.arguments import check_params, check_schedule, typed
from hpsearch.trainer.fingerprint import describe_setup
from hpsearch.trainer.rungs import AUTO, DEFAULT_RUNG_METRIC, RUNG_METRICS, rungs_that_fit
from hpsearch.trainer.runner import RunSettings, TrialRunner

logger = logging.getLogger(__name__)


class Trainer(transformers.Trainer):
    """A `transformers.Trainer` whose `hyperparameter_search` is hpsearch's engine.

    Everything else is transformers' own. It also takes the `tokenizer=` of older transformers
    (and of the docs), passed on as `processing_class`.

    Raises:
        ConfigError: both `tokenizer` and `processing_class` given.

    Examples:
        As the transformers docs write it; `model_init` builds a fresh model per trial:

        >>> trainer = Trainer(model=None, args=training_args, train_dataset=train, eval_dataset=valid,
        ...                   tokenizer=tokenizer, model_init=model_init)  # doctest: +SKIP
        >>> best_run = trainer.hyperparameter_search(direction="maximize", backend="optuna",
        ...                                          hp_space=optuna_hp_space, n_trials=20)  # doctest: +SKIP
    """

    def __init__(self, *args: Any, tokenizer: Any = None, **kwargs: Any):
        if tokenizer is not None:
            if kwargs.get("processing_class") is not None:
                raise ConfigError("Pass either `tokenizer` or `processing_class` to `Trainer`, not both.")
            kwargs["processing_class"] = tokenizer
        super().__init__(*args, **kwargs)

    def hyperparameter_search(
        self,
        hp_space: Any = None,
        compute_objective: Callable[[dict[str, float]], Any] | None = None,
        n_trials: int = 20,
        direction: str | list[str] | None = None,
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
    direction: str | Sequence[str] | None = None,
    backend: Any = None,
    hp_name: Callable[[Any], str] | None = None,
    objective_at: str = "last",
    evals_per_trial: int | None = None,
    rung_eval_size: int | str | None = AUTO,
    rung_metric: str = DEFAULT_RUNG_METRIC,
    keep_checkpoints: bool = False,
    user_values_first: bool = False,
    **kwargs: Any,
) -> BestRun | list[BestRun]:
    """Search the hyperparameters of `trainer`, as `transformers.Trainer.hyperparameter_search` does.

    Args:
        trainer: a Trainer built with `model_init` (a fresh model per trial; `model_init(trial)`
            may read the trial's model hyperparameters or, on optuna, suggest them) and an
            `eval_dataset`. A stock `transformers.Trainer` works too.
        hp_space: the space in the backend's native format (as the transformers docs show it per
            backend) or an `hpsearch.space` dict; None: transformers' default for the backend.
        compute_objective: metrics -> objective; default: the sum of the metrics, else the loss (on W&B,
            `metric="eval/accuracy"` instead makes that evaluation metric the objective, as transformers' sweep does).
        n_trials: how many trials the study ends with, finished ones of earlier runs included.
        direction: "minimize" or "maximize", as transformers takes it; a list: several objectives.
        backend: "optuna" (default), "sigopt", "ray" or "wandb", as transformers takes it.
        hp_name: trial -> the name of its run directory and of its tracking runs.
        objective_at: "last" (the trial's last evaluation, as transformers) or "best" (its best).
        evals_per_trial: how often the pruner looks at a trial: rung evaluations at 1/9, 1/3... of its
            training (`hpsearch.loop.fidelity`), then its final one. Default 3 where the backend can
            prune; 0 (or 1) turns rungs off, and the pruner then sees the user's own evaluations.
        rung_eval_size: the most examples a rung evaluation scores of each evaluation set (a fixed
            subset, the same for every trial of the study); "auto" (default): 1/20 of the examples a
            trial trains on, from 128 to 1,000 (`hpsearch.trainer.rungs.auto_subset_size`); None: all. An evaluation
            set of fewer than 128 examples ranks trials on noise: "auto" then has no rungs (`evals_per_trial=0`).
        rung_metric: what a rung reports to the pruner: "loss" (the evaluation loss, negated when
            maximising; it ranks trials early in training better than few examples' accuracy does) or
            "objective" (`compute_objective` of the rung's metrics).
        keep_checkpoints: keep each finished trial's run directory `<output_dir>/<trial name>` and its
            checkpoints (by default deleted: `best_model/` holds the best trial's model). A crashed
            trial's checkpoints are kept either way, and its rerun resumes from the last one.
        user_values_first: True: a new study's first trial runs the values of `trainer.args` that lie inside the
            space (transformers' defaults included: learning rate 5e-5), the others sampled, as tuned systems start
            from defaults; a `warm_start` or your own optuna `sampler=` comes instead. Off by default: transformers'
            defaults are no good point for every set-up (the docs' one epoch on a small set; docs/resume.md).
        **kwargs: `storage`, `study_name` (default store: `<output_dir>/hpsearch.db`; rerunning
            the same call continues it), `warm_start` (an earlier search's `output_dir`: its best trials
            run first, on this data), `pause_trials` (default True: a trial that reaches a rung before
            two others pauses there, its checkpoint kept, until it can be compared; `hpsearch.loop.halving`),
            `promote_leaders` (default False; True: at the last rung a trial that clearly leads three or more peers goes
            on without waiting for nine), the search's options (`Search`), the backend's own.

    Returns:
        The best run (`BestRun`; its `run_summary.best_model_dir` holds its model), or the Pareto
        front when `direction` is a list. Under DDP, None on the ranks other than 0.

    Raises:
        ConfigError: bad input, before any training. SearchFailed: every trial failed (or
        `max_consecutive_failed_trials` in a row). SearchInterrupted: Ctrl-C; rerun to resume.

    Examples:
        >>> best_run = hyperparameter_search(trainer, direction="maximize", backend="optuna",
        ...                                  hp_space=optuna_hp_space, n_trials=20)  # doctest: +SKIP
        >>> best_run.hyperparameters  # doctest: +SKIP
        {'learning_rate': 3.1e-05, 'per_device_train_batch_size': 32}
    """
    _check_arguments(trainer, compute_objective, objective_at, evals_per_trial, rung_eval_size, rung_metric)
    compute_objective = _objective(backend, compute_objective, kwargs)
    ranks = ddp.Ranks() if trainer.args.world_size > 1 else None
    if ranks is not None and not ranks.leads:
        return _follow(ranks, trainer, compute_objective, hp_name)
    with ddp.leading(ranks) if ranks is not None else contextlib.nullcontext():
        kwargs.setdefault("storage", store.storage_url(trainer.args.output_dir))
        kwargs.setdefault("pause_trials", True)  # a trial resumes from the checkpoint it paused at
        kwargs.setdefault("output_dir", trainer.args.output_dir if trainer.args.should_save else None)
        if user_values_first and kwargs.get("sampler") is None:  # your own sampler chooses every point
            kwargs.setdefault("user_values", vars(trainer.args))
        define_by_run = number_of_arguments(trainer.model_init) == 1  # model_init may suggest on the trial
        rungs = rung_points(DEFAULT_EVALS_PER_TRIAL if evals_per_trial is None else evals_per_trial)
        rungs = _rungs_that_fit(rungs, trainer, rung_eval_size)  # no rung on noise
        executor = ddp.LeadRank(ranks) if ranks is not None else None
        search = Search(
            hp_space,
            n_trials,
            direction,
            backend,
            executor=executor,
            define_by_run=define_by_run,
            rungs=rungs,
            **kwargs,
        )
        _check_search(search, trainer, ranks, objective_at)
        _tell_a_changed_setup(search, trainer)
        settings = RunSettings(
            directions=tuple(search.directions),
            objective_at=objective_at,
            rungs=rungs if search.backend.can_prune else (),  # scores no pruner looks at: not worth their time
            rung_eval_size=rung_eval_size,
            rung_metric=rung_metric,
            study_name=search.settings.study_name,
            keep_checkpoints=keep_checkpoints,
        )
        if ranks is not None:
            ranks.share(settings)
        runner = TrialRunner(trainer, compute_objective or default_compute_objective, settings, hp_name)
        search.run(runner, while_running=runner.trials_only_collected)
    return _typed(search.best())


def _typed(best: BestRun | list[BestRun]) -> BestRun | list[BestRun]:
    """The best run(s) with values typed as the `TrainingArguments` fields they set (`trainer.arguments.typed`)."""
    if isinstance(best, list):
        return [_typed(run) for run in best]
    return best._replace(hyperparameters=typed(best.hyperparameters))


def _check_arguments(
    trainer: transformers.Trainer,
    compute_objective: Any,
    objective_at: str,
    evals_per_trial: Any,
    rung_eval_size: Any,
    rung_metric: Any,
) -> None:
    if trainer.model_init is None:
        raise ConfigError(
            "hyperparameter_search needs a `model_init`: build the Trainer with `model_init=...` "
            "(a function returning a fresh model, optionally of the trial) instead of `model=`."
        )
    if trainer.eval_dataset is None:
        raise ConfigError("hyperparameter_search needs an `eval_dataset` on the Trainer to score each trial.")
    if compute_objective is not None and not callable(compute_objective):
        raise ConfigError(f"`compute_objective` must be a function of the metrics. Received: {compute_objective!r}.")
    if objective_at not in ("last", "best"):
        raise ConfigError(f"`objective_at` must be 'last' or 'best'. Received: objective_at={objective_at!r}.")
    finest = f" (its finest rung: 1/3**{MAX_EVALS_PER_TRIAL - 1} of training), or None for the default (3)"
    check_number("evals_per_trial", evals_per_trial, 0, MAX_EVALS_PER_TRIAL, allowed=(None,), says=finest)
    whole = ", 'auto', or None for the whole evaluation set"
    check_number("rung_eval_size", rung_eval_size, 1, allowed=(None, AUTO), says=whole)
    if rung_metric not in RUNG_METRICS:
        raise ConfigError(f"`rung_metric` must be one of {list(RUNG_METRICS)}. Received: rung_metric={rung_metric!r}.")


def _objective(backend: Any, compute_objective: Callable[..., Any] | None, options: dict[str, Any]) -> Any:
    """`compute_objective`, or the evaluation metric the backend's options name as what the search optimises (W&B's
    `metric=`, which transformers' W&B search optimises while `compute_objective` only picks the best run)."""
    metric = get_backend(backend).objective_metric(options)
    if metric is None:
        return compute_objective
    if compute_objective is not None:
        raise ConfigError(
            f"Pass `metric` or `compute_objective`, not both: the sweep optimises the search's objective. Received: "
            f"metric={metric!r} (the objective is then that evaluation metric) and compute_objective="
            f"{compute_objective!r}; drop `metric` to optimise what `compute_objective` returns."
        )
    return metric_objective(metric)


def _check_search(search: Search, trainer: transformers.Trainer, ranks: Any, objective_at: str) -> None:
    """What the search's backend and space must agree with: the objective, DDP, the Trainer's arguments."""
    if objective_at == "best" and len(search.directions) > 1:
        raise ConfigError("`objective_at='best'` needs one `direction`: several objectives have no single best.")
    if ranks is not None and not isinstance(search.backend, AskTellBackend):
        raise ConfigError(
            f"The {search.backend.name!r} backend runs trials in its own workers, not under torchrun: launch "
            "the search as one process (Ray gives each trial `resources_per_trial`, GPUs included)."
        )
    check_params(search.param_space, trainer.model_init)
    check_schedule(search.param_space, trainer.args)


def _rungs_that_fit(rungs: tuple[int, ...], trainer: transformers.Trainer, size: Any) -> tuple:
    """The rungs at which trials can be ranked (`hpsearch.trainer.rungs.rungs_that_fit`); where none can, said once: the
    search then runs as with `evals_per_trial=0`, on the user's own evaluations."""
    fit, why = rungs_that_fit(rungs, trainer, size)
    if why:
        logger.warning(
            f"hpsearch: {why}. No rung evaluations: trials are judged on your own evaluations only (without one "
            "before a trial's end, every trial runs to the end)."
        )
    return fit


def _tell_a_changed_setup(search: Search, trainer: transformers.Trainer) -> None:
    """Warn, before the first trial, where the study's earlier runs trained on other data or fixed arguments."""
    changes = continuity.changed_since(search.study, schema.SETUP, describe_setup(trainer, search.param_space))
    if changes:
        logger.warning(
            f"The study {search.study.study_name!r} in this storage was searched on another set-up: "
            f"{'; '.join(changes)}. Its earlier trials count in this search as they are; to start a new study "
            "instead, pass a new `study_name` (or another `output_dir`)."
        )


def _follow(
    ranks: ddp.Ranks,
    trainer: transformers.Trainer,
    compute_objective: Callable[[dict[str, float]], Any] | None,
    hp_name: Callable[[Any], str] | None,
) -> None:
    """A DDP rank other than 0: train the trials rank 0 chooses, stopping when it says."""
    settings = ranks.received()
    runner = TrialRunner(trainer, compute_objective or default_compute_objective, settings, hp_name)
    with runner.trials_only_collected():
        ddp.follow(ranks, runner)
    return None
