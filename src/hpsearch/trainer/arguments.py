"""Trial parameters as `TrainingArguments`: which parameters are fields, their types, casting a
trial's value to its field's type ("16" -> 16), and the checks that run before any training."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import typing
from collections.abc import Callable, Mapping
from typing import Any

import transformers
from transformers.trainer_utils import number_of_arguments

from hpsearch.errors import ConfigError
from hpsearch.space import Categorical, Dimension, Float

logger = logging.getLogger(__name__)


@functools.cache
def argument_types() -> dict[str, Any]:
    fields = {f.name for f in dataclasses.fields(transformers.TrainingArguments) if f.init}
    hints = typing.get_type_hints(transformers.TrainingArguments)
    return {name: hints.get(name) for name in fields}


def check_params(space: Mapping[str, Dimension | None], model_init: Callable[..., Any]) -> None:
    """Fail before training if a parameter can reach neither `TrainingArguments` nor `model_init`,
    or its values cannot be its `TrainingArguments` field's type."""
    fields = argument_types()
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
        raise ConfigError(
            f"hp_space key(s) {model_keys} are not `TrainingArguments` fields, and `model_init` takes no trial "
            f"to read them from.{hints} For a model hyperparameter, define `model_init(trial)` and read it there "
            "(`trial.params[name]` for optuna)."
        )
    log = logger.warning if hints else logger.info
    log(f"hp_space key(s) {model_keys} are model hyperparameters: `model_init(trial)` must read them.{hints}")


def check_schedule(space: Mapping[str, Dimension | None], args: transformers.TrainingArguments) -> None:
    """Fail before training where the space searches `num_train_epochs` while the Trainer's fixed `max_steps`
    overrides it: every trial would train the same steps, and the search would compare nothing."""
    if "num_train_epochs" in space and "max_steps" not in space and args.max_steps > 0:
        raise ConfigError(
            f"hp_space searches 'num_train_epochs', but the Trainer's `max_steps={args.max_steps}` overrides it "
            f"(transformers trains {args.max_steps} steps whatever the epochs): build the Trainer's "
            "`TrainingArguments` with `max_steps=-1` to search the epochs, or search 'max_steps' instead."
        )


def warn_unread(searched: Mapping[str, Any], model: Any) -> None:
    """After the first trial's `model_init(trial)`, before it trains: warn of each searched model hyperparameter
    that its model does not show (not in its config, or there with another value), which then changes nothing."""
    config, fields = getattr(model, "config", None), argument_types()
    if config is None:
        return
    for name, value in searched.items():
        if name in fields:
            continue
        if hasattr(config, name):
            if getattr(config, name) != value and str(getattr(config, name)) != str(value):
                logger.warning(
                    f"hp_space searches {name!r}, but the first trial's model has config.{name}="
                    f"{getattr(config, name)!r}, not the trial's {value!r}: `model_init(trial)` does not pass it on "
                    f"(e.g. `from_pretrained(..., {name}=trial.params[{name!r}])` for optuna)."
                )
            continue
        close = difflib.get_close_matches(name, list(config.to_dict()), n=1, cutoff=0.6)
        logger.warning(
            f"hp_space searches {name!r}, which is neither a `TrainingArguments` field nor in the model's config "
            f"({type(config).__name__}): unless `model_init(trial)` uses it in a way of its own, it changes nothing."
            + (f" Did you mean the config's {close[0]!r}?" if close else "")
        )


def _check_field_values(name: str, dim: Dimension) -> None:
    target = _field_type(name)
    if target is int and isinstance(dim, Float):
        raise ConfigError(
            f"hp_space samples {name!r} as a float ({dim}), but `TrainingArguments.{name}` is an int: sample "
            "it as an int (hpsearch Int, trial.suggest_int, tune.randint, an int W&B range, a SigOpt int) "
            "or from whole-number choices."
        )
    for value in dim.choices if isinstance(dim, Categorical) else (dim.low, dim.high):
        try:
            cast(name, value)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"hp_space gives {name!r} the value {value!r}, which `TrainingArguments.{name}` cannot take "
                f"({e}). Give it {target.__name__} values."
            ) from None


def _field_type(name: str) -> type | None:
    """The plain type (int, float, bool, str) of a `TrainingArguments` field, None for richer ones."""
    hint = argument_types()[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    target = args[0] if len(args) == 1 else hint
    return target if target in (int, float, str, bool) else None


def cast(name: str, value: Any) -> Any:
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


def typed(params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's parameters with each `TrainingArguments` field's value cast to its type (SigOpt's categorical "16"
    -> 16), so that `TrainingArguments(**params)` takes them; an int the backend gave a float field stays that int
    (`num_train_epochs` 3, not 3.0), and model hyperparameters are as they are."""
    fields = argument_types()
    return {
        name: value if name not in fields or _int_for_float(name, value) else cast(name, value)
        for name, value in params.items()
    }


def _int_for_float(name: str, value: Any) -> bool:
    return type(value) is int and _field_type(name) is float


_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
