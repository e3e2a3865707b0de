"""A backend-neutral search space: `Float`, `Int` and `Categorical` dimensions.

A space is a plain mapping of parameter names to dimensions. Every backend converts it to
its own native format, so one space runs on any backend:

    space = {"learning_rate": Float(1e-6, 1e-4, log=True), "seed": Int(1, 40)}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from hpsearch.errors import ConfigError


def _check_bounds(kind: str, low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"`{kind}` bounds must be finite. Received: low={low}, high={high}.")
    if low >= high:
        raise ConfigError(f"`{kind}` needs low < high. Received: low={low}, high={high}; swap or widen them.")
    if log and low <= 0:
        raise ConfigError(f"`{kind}` with log=True needs low > 0. Received: low={low}; use a positive lower bound.")


@dataclass(frozen=True)
class Float:
    """A real number in [low, high], sampled uniformly or, with `log=True`, log-uniformly."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_bounds("Float", self.low, self.high, self.log)

    def contains(self, value: Any) -> bool:
        return isinstance(value, float) and self.low <= value <= self.high


@dataclass(frozen=True)
class Int:
    """An integer in [low, high] (both included), uniformly or log-uniformly."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if not all(isinstance(b, int) and not isinstance(b, bool) for b in (self.low, self.high)):
            raise ConfigError(f"`Int` bounds must be ints. Received: low={self.low!r}, high={self.high!r}.")
        _check_bounds("Int", self.low, self.high, self.log)

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and self.low <= value <= self.high


@dataclass(frozen=True)
class Categorical:
    """One of a fixed list of choices (numbers, strings, booleans or None)."""

    choices: tuple[Any, ...]

    def __init__(self, choices: Sequence[Any]) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence) or len(choices) == 0:
            raise ConfigError(f"`Categorical` needs a non-empty list of choices. Received: choices={choices!r}.")
        object.__setattr__(self, "choices", tuple(choices))

    def contains(self, value: Any) -> bool:
        return value in self.choices


Dimension = Union[Float, Int, Categorical]
Space = Mapping[str, Dimension]


def neutral_space(params: Mapping[str, Any], to_neutral: Callable[[Any], Dimension | None]) -> dict[str, Dimension]:
    """The neutral dimensions of a backend's native parameters, where they have one; the error of
    a bad one (min >= max, an empty list) names it."""
    space = {}
    for name, param in params.items():
        try:
            dim = to_neutral(param)
        except ValueError as e:
            raise ConfigError(f"hp_space {name!r}: {e}") from None
        if dim is not None:
            space[name] = dim
    return space


def plain(value: Any, dim: Dimension | None = None) -> Any:
    """A value another library sampled, as the Python value it stands for: a numpy scalar as a
    Python number, and a whole float of an `Int` dimension as an int."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(dim, Int) and isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


# the native formats a backend may be handed by mistake, as the backend that takes each recognises it
_FORMATS = {
    "optuna": "a function of an optuna trial is optuna's format",
    "sigopt": "a list of parameter dicts is SigOpt's format",
    "wandb": "a dict with 'parameters' is a W&B sweep config",
    "ray": "a dict of search-space objects is Ray Tune's format",
}


def recognised_format(value: Any) -> str | None:
    """The backend whose native `hp_space` format `value` looks like (None for a neutral space or
    anything else): a function is optuna's, a list SigOpt's, a dict with 'parameters' W&B's, any
    other dict Ray Tune's."""
    if is_space(value):
        return None
    if isinstance(value, list):
        return "sigopt"
    if isinstance(value, Mapping):
        return "wandb" if "parameters" in value else "ray"
    return "optuna" if callable(value) else None


def format_hint(value: Any, backend: str | None = None) -> str:
    """What format `value` was recognised as (or is known to be: `backend`) and which backend takes
    it, e.g. "a list of parameter dicts is SigOpt's format, which backend='sigopt' takes"; "" if none."""
    backend = backend or recognised_format(value)
    return f"{_FORMATS[backend]}, which backend={backend!r} takes" if backend else ""


def called_with_no_trial(hp_space: Any, format_error: Callable[[Any, str], Exception]) -> Any:
    """The space a function `hp_space` returns when called with None (as transformers calls it for
    every backend but optuna), or `hp_space` itself; `format_error(hp_space, why)` where it needs a
    trial (optuna's format)."""
    if not callable(hp_space) or is_space(hp_space):
        return hp_space
    try:
        return hp_space(None)
    except AttributeError as e:
        why = f"it failed when called with no trial ({e}): {format_hint(hp_space, 'optuna')}"
        raise format_error(hp_space, why) from None


def is_space(value: Any) -> bool:
    """Whether `value` is a neutral space (a non-empty mapping of names to dimensions)."""
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(d, (Float, Int, Categorical)) for d in value.values())
    )


# transformers' default search space (`default_hp_space_optuna`), shared by the backends
# whose native default is the same.
DEFAULT_SPACE: Space = {
    "learning_rate": Float(1e-6, 1e-4, log=True),
    "num_train_epochs": Int(1, 5),
    "seed": Int(1, 40),
    "per_device_train_batch_size": Categorical([4, 8, 16, 32, 64]),
}
