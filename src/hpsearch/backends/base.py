"""The backend contract and the registry of backend names.

A backend decides what to try next and whether to stop a trial early; it knows nothing of
transformers. The engine drives it (ask -> report... -> tell) and the trial runner trains.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hpsearch.trial import TrialState

if TYPE_CHECKING:
    import optuna


@dataclass
class Proposal:
    """One trial the backend wants run: its number and id in the study store, its parameters, and
    the backend's own trial object (what `model_init(trial)` receives)."""

    number: int
    trial_id: int
    params: dict[str, Any]
    native: Any = None


class Backend(ABC):
    """Base class of the search backends: what they all have.

    A backend is either an `AskTellBackend`, which the engine drives trial by trial, or a
    `SelfDrivingBackend`, which runs its own loop and calls the trial runner from it. Either
    records every trial in `self.study`, the study store (see `hpsearch.store`).
    """

    name: ClassVar[str]
    library: ClassVar[str]
    extra: ClassVar[str | None] = None
    study: optuna.Study

    def __init__(self, hp_space: Any, directions: Sequence[str], storage: Any, study_name: str, **kwargs: Any):
        self.directions = list(directions)

    @classmethod
    def default_space(cls) -> Any:
        """The search space used when `hp_space` is None (transformers' default for this backend)."""
        from hpsearch.space import DEFAULT_SPACE

        return DEFAULT_SPACE

    @abstractmethod
    def param_names(self) -> list[str]:
        """The names of the parameters a trial gets, known before any trial runs (for validation)."""

    @property
    def can_prune(self) -> bool:
        """Whether a trial may be stopped at an intermediate value (so evaluations are worth their cost)."""
        return False


class AskTellBackend(Backend):
    """A backend the engine drives. Who calls what, and when (the engine, in one process):

    - `ask()` before each trial: a `Proposal`, already recorded as running in `self.study`,
      or None when the backend has nothing left to try (an exhausted grid).
    - `report(proposal, step, value)` for each intermediate objective of a single-objective
      search: record it and return True to stop the trial now.
    - `tell(proposal, state, values)` once the trial ended: record the outcome (the engine has
      already stored a failed trial's error).
    """

    @abstractmethod
    def ask(self) -> Proposal | None: ...

    @abstractmethod
    def tell(self, proposal: Proposal, state: TrialState, values: list[float] | None) -> None: ...

    def report(self, proposal: Proposal, step: int, value: float) -> bool:
        return False


class SelfDrivingBackend(Backend):
    """A backend with a loop of its own (Ray Tune): `drive` runs the whole search.

    `drive(objective, search)` calls `objective(trial)` for each trial, wherever the library runs
    it, until `search.n_trials` trials of the study have finished; it records them in the store and
    offers the best model to `search.keeper`. It returns the library's result object.
    """

    @abstractmethod
    def drive(self, objective: Callable[[Any], Any], search: Any) -> Any: ...


# name -> (module, class, library it imports, extra that installs it)
_REGISTRY: dict[str, tuple[str, str, str, str | None]] = {
    "optuna": ("hpsearch.backends.optuna", "OptunaBackend", "optuna", None),
    "sigopt": ("hpsearch.backends.sigopt", "SigOptBackend", "sigopt", "sigopt"),
    "ray": ("hpsearch.backends.ray", "RayBackend", "ray.tune", "ray"),
    "wandb": ("hpsearch.backends.wandb", "WandbBackend", "wandb", "wandb"),
}
BACKEND_NAMES = tuple(_REGISTRY)


def get_backend(backend: str | type[Backend] | None) -> type[Backend]:
    """The backend class for a name (case-insensitive, transformers' `HPSearchBackend` too) or a class.

    None means optuna. An unknown name is a ValueError listing the valid ones; a backend whose
    library is missing is an ImportError naming the `pip install` that fixes it.
    """
    if isinstance(backend, type) and issubclass(backend, Backend):
        return backend
    if backend is None:
        backend = "optuna"
    name = str(getattr(backend, "value", backend)).lower()
    if name not in _REGISTRY:
        raise ValueError(f"`backend` must be one of {list(_REGISTRY)}. Received: backend={backend!r}.")
    module, class_name, library, extra = _REGISTRY[name]
    try:
        importlib.import_module(library)
    except ImportError as e:
        fix = f'pip install "hpsearch[{extra}]"' if extra else f"pip install {library}"
        raise ImportError(f"The {name!r} backend needs the {library!r} library, which is not installed: {fix}.") from e
    try:
        return getattr(importlib.import_module(module), class_name)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise NotImplementedError(
            f"The {name!r} backend is not in this version of hpsearch yet; use backend='optuna'."
        ) from None
