"""Objectives and directions: what a trial is scored by, which way is better, and how a trial ended."""

from __future__ import annotations

import math
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpsearch.errors import ConfigError, ObjectiveError
from hpsearch.trial import Trial, TrialPruned, TrialState, check_searched

if TYPE_CHECKING:
    import optuna

DIRECTIONS = ("minimize", "maximize")


def default_compute_objective(metrics: Mapping[str, float]) -> float:
    """transformers' default objective: the sum of the evaluation metrics, or the loss if there are none.

    `eval_loss`, `epoch` and the speed metrics (`*_runtime`, `*_per_second`) are not metrics here.
    """
    summed = _summed(metrics)
    return metrics.get("eval_loss") if not summed else sum(summed.values())


def _summed(metrics: Mapping[str, float]) -> dict[str, float]:
    return {
        name: value
        for name, value in metrics.items()
        if name not in ("eval_loss", "epoch") and not name.endswith(("_runtime", "_per_second"))
    }


def metric_objective(metric: str) -> Callable[[Mapping[str, float]], float]:
    """The objective that is one evaluation metric, named as the Trainer's metrics name it (`eval_accuracy`) or as its
    W&B logging does (`eval/accuracy`, which transformers' W&B search takes as `metric=`)."""
    key = f"eval_{metric.removeprefix('eval/')}" if metric.startswith("eval/") else metric

    def objective(metrics: Mapping[str, float]) -> float:
        if key not in metrics:
            raise ObjectiveError(
                f"`metric={metric!r}` names no metric of the evaluation, which has {sorted(metrics)}: pass one of "
                "them (W&B's `eval/` names are the Trainer's `eval_` ones)."
            )
        return metrics[key]

    return objective


def objective_names(compute_objective: Callable[..., Any], metrics: Mapping[str, Any], result: Any) -> list[str]:
    """What each objective of `result` (`compute_objective(metrics)`) is, for the study's metric names (the
    dashboard's axes): the metrics the default objective sums, else the metric an objective equals ("eval_accuracy",
    or "-eval_loss" for its negation), else "objective" (several: "objective_0", ...)."""
    if compute_objective is default_compute_objective:
        return [" + ".join(_summed(metrics)) or "eval_loss"]
    values = list(result) if isinstance(result, (list, tuple)) else [result]
    numbers = {name: value for name, value in metrics.items() if isinstance(value, (int, float))}
    names = []
    for i, value in enumerate(values):
        number = value if isinstance(value, (int, float)) else None  # not a number: `check_values` says so
        same = [name for name, metric in numbers.items() if number is not None and metric == number]
        negated = [f"-{name}" for name, metric in numbers.items() if number is not None and metric == -number != 0]
        found = same if len(same) == 1 else negated if not same and len(negated) == 1 else []
        names.append(found[0] if found else "objective" if len(values) == 1 else f"objective_{i}")
    return names


def check_directions(direction: str | Sequence[str]) -> list[str]:
    """Return the direction(s) as a list, or raise a ValueError naming the bad value."""
    directions = [direction] if isinstance(direction, str) else list(direction) if direction else []
    if not directions or any(d not in DIRECTIONS for d in directions):
        raise ConfigError(
            f"`direction` must be 'minimize', 'maximize' or a list of them. Received: direction={direction!r}."
        )
    return directions


def check_values(result: Any, n_objectives: int) -> list[float]:
    """The objective value(s) a trial returned, as a list of finite floats; ObjectiveError if
    they are not numbers, a ValueError if one is NaN or infinite (that trial diverged)."""
    values = list(result) if isinstance(result, (list, tuple)) else [result]
    if len(values) != n_objectives:
        raise ObjectiveError(
            f"The objective returned {len(values)} value(s) for {n_objectives} direction(s): {result!r}. "
            "Return one value per direction."
        )
    checked = []
    for value in values:
        try:
            if isinstance(value, (str, bytes, bool)):  # a number's text, or True, is a mistake: no number
                raise TypeError
            number = float(value)
        except (TypeError, ValueError):
            raise ObjectiveError(
                f"The objective must be a number. Received: {value!r} (of type {type(value).__name__}); "
                "make the objective (`compute_objective` for a Trainer) return a float."
            ) from None
        if not math.isfinite(number):
            raise ValueError(f"The objective is {number}, not a finite number; the trial diverged or a metric is NaN.")
        checked.append(number)
    return checked


def is_better(value: float, than: float | None, direction: str) -> bool:
    """Whether `value` beats `than` (None: nothing to beat) in `direction`."""
    if than is None:
        return True
    return value > than if direction == "maximize" else value < than


def name_objectives(study: optuna.Study, names: list[str]) -> None:
    """Name the study's objectives (optuna's metric names: optuna-dashboard's axes) where none are yet."""
    import optuna

    if study.metric_names is None and len(names) == len(study.directions):
        with warnings.catch_warnings():  # optuna calls `set_metric_names` experimental, since 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)


@dataclass
class Outcome:
    """How a trial ended, decided once on every path (the engine's loop, Ray's trainable): its state, its values if
    it completed, and if it failed its traceback and the error itself (for the failure policy)."""

    state: TrialState
    values: list[float] | None = None
    error: str | None = None
    failure: BaseException | None = None


def run_objective(
    objective: Callable[[Trial], Any], trial: Trial, n_objectives: int, catch: tuple[type[BaseException], ...]
) -> Outcome:
    """Run `objective(trial)`: completed with its values, pruned (or paused at a rung), or failed with an error of
    `catch`. Raised, for the search to stop: Ctrl-C, a mistake in the code (`ObjectiveError`), an error outside
    `catch`."""
    try:
        result = objective(trial)
        if trial.should_stop:
            raise TrialPruned()
        check_searched(trial, "the objective")
        return Outcome(TrialState.COMPLETE, check_values(result, n_objectives))
    except TrialPruned:
        return Outcome(TrialState.PAUSED if trial.pausing else TrialState.PRUNED)
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, ObjectiveError)) or not isinstance(e, catch):
            raise
        return Outcome(TrialState.FAILED, error="".join(traceback.format_exception(e)), failure=e)
