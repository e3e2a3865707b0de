"""W&B sweep configs: checking one, converting it to and from the neutral space, and the study's
trials as the sweep engine (`sweeps`) sees runs."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Mapping
from typing import Any

import sweeps

from hpsearch.errors import ConfigError
from hpsearch.space import (
    Categorical,
    Dimension,
    Float,
    Int,
    called_with_no_trial,
    format_hint,
    is_space,
    neutral_space,
)
from hpsearch.trial import TrialRecord, TrialState

logger = logging.getLogger(__name__)
METHODS = ("random", "grid", "bayes")
SWEEP_STATES = {
    TrialState.COMPLETE: sweeps.RunState.finished,
    TrialState.PRUNED: sweeps.RunState.killed,
    TrialState.FAILED: sweeps.RunState.failed,
}


def to_wandb(dim: Dimension) -> dict[str, Any]:
    """A neutral dimension as a W&B sweep parameter."""
    if isinstance(dim, Categorical):
        return {"values": list(dim.choices)}
    if isinstance(dim, Float):
        return {"distribution": "log_uniform_values" if dim.log else "uniform", "min": dim.low, "max": dim.high}
    if dim.log:
        return {"distribution": "q_log_uniform_values", "min": dim.low, "max": dim.high, "q": 1}
    return {"distribution": "int_uniform", "min": dim.low, "max": dim.high}


def to_neutral(param: Mapping[str, Any]) -> Dimension | None:
    """The neutral dimension of a W&B sweep parameter, None where there is none (a constant, a normal)."""
    if "values" in param:
        return Categorical(param["values"])
    kind = param.get("distribution")
    low, high = param.get("min"), param.get("max")
    if kind is None and low is not None and high is not None:
        kind = "int_uniform" if isinstance(low, int) and isinstance(high, int) else "uniform"
    if kind in ("uniform", "log_uniform_values"):
        return Float(float(low), float(high), log=kind == "log_uniform_values")
    if kind == "int_uniform":
        return Int(int(low), int(high))
    if kind == "q_log_uniform_values" and param.get("q") == 1:
        return Int(int(low), int(high), log=True)
    return None


def _format_error(hp_space: Any, why: str) -> ConfigError:
    return ConfigError(
        "The wandb backend takes `hp_space` as a W&B sweep config, e.g. {'method': 'random', 'metric': "
        "{'name': 'objective', 'goal': 'minimize'}, 'parameters': {'learning_rate': {'distribution': 'uniform', "
        "'min': 1e-6, 'max': 1e-4}}}, a function returning one, or an `hpsearch.space` dict. "
        f"Received: {hp_space!r} ({why})."
    )


def _native_config(hp_space: Any) -> Mapping[str, Any]:
    """The sweep config an `hp_space` stands for: a neutral space's, or (as in transformers) what a
    function called with None returns."""
    if is_space(hp_space):
        return {"method": "random", "parameters": {name: to_wandb(dim) for name, dim in hp_space.items()}}
    config = called_with_no_trial(hp_space, _format_error)
    if not isinstance(config, Mapping) or not isinstance(config.get("parameters"), Mapping):
        raise _format_error(hp_space, format_hint(config) or "no 'parameters' dict")
    return config


def sweep_goal(hp_space: Any) -> str | None:
    """The direction the sweep config's metric names ("minimize" / "maximize"), None if it names none."""
    metric = _native_config(hp_space).get("metric")
    goal = metric.get("goal") if isinstance(metric, Mapping) else None
    return goal if goal in ("minimize", "maximize") else None


def sweep_config(
    hp_space: Any,
    direction: str,
    early_terminate: dict[str, Any] | None = None,
    name: str | None = None,
    metric: str | None = None,
) -> dict[str, Any]:
    """The W&B sweep config of an `hp_space`, checked by W&B's own schema: its metric's goal `direction` and, where
    given, its metric's name `metric` and its own `name` (as transformers' `metric=` and `name=` set them; each wins,
    the metric's with a warning, over what `hp_space` says), and `early_terminate` where it has none
    (`"early_terminate": None` in it: no early termination)."""
    config = copy.deepcopy(dict(_native_config(hp_space)))
    if config.setdefault("early_terminate", copy.deepcopy(early_terminate)) is None:
        del config["early_terminate"]
    if config.get("method") not in METHODS:
        raise ConfigError(
            f"The W&B sweep `method` must be one of {list(METHODS)} (what the sweep engine runs). "
            f"Received: method={config.get('method')!r}."
        )
    if name is not None:
        config["name"] = name
    sought = config.setdefault("metric", {})
    sought.setdefault("name", metric or "objective")
    if metric is not None and sought["name"] != metric:
        logger.warning(
            f"The sweep's metric is named {sought['name']!r} but metric={metric!r}: the sweep will optimise "
            f"{metric!r} (the `metric` argument wins)."
        )
        sought["name"] = metric
    if sought.setdefault("goal", direction) != direction:
        logger.warning(
            f"The sweep's metric goal is {sought['goal']!r} but direction={direction!r}: the search will "
            f"{direction} the objective (the `direction` argument wins)."
        )
        sought["goal"] = direction
    with contextlib.suppress(TypeError):  # a malformed parameter: W&B's schema names it, below
        neutral_space(config["parameters"], to_neutral)
    violations = sweeps.schema_violations_from_proposed_config(config)
    if violations:
        raise ConfigError(
            f"`hp_space` is not a valid W&B sweep config: {'; '.join(dict.fromkeys(violations))}. See "
            "https://docs.wandb.ai/guides/sweeps/sweep-config-keys for each parameter's keys."
        )
    return config


def sweep_run(record: TrialRecord, metric: str) -> sweeps.SweepRun:
    """A recorded trial as the sweep engine sees a finished run (to continue a sweep after a crash)."""
    return sweeps.SweepRun(
        name=str(record.number),
        state=SWEEP_STATES[record.state],
        config={name: {"value": value} for name, value in record.params.items()},
        history=[{metric: value, "_step": step} for step, value in sorted(record.intermediate.items())],
        summary_metrics={metric: record.values[0]} if record.state is TrialState.COMPLETE else {},
    )
