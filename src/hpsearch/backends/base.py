"""The backend contract and the registry of backend names.

A backend decides what to try next and whether to stop a trial early; it knows nothing of
transformers. The engine drives it (ask -> report... -> tell) and the trial runner trains.
"""

from __future__ import annotations

import functools
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hpsearch import store
from hpsearch.space import Dimension
from hpsearch.trial import TrialState

if TYPE_CHECKING:
    import optuna


@dataclass
class Proposal:
    """One trial the backend wants run: its number and id in the study store, its parameters, the
    backend's own trial object (what `model_init(trial)` receives), and the experiment-tracking run
    the backend opened for it, if any (a W&B run), which the trial's own logging joins."""

    number: int
    trial_id: int
    params: dict[str, Any]
    native: Any = None
    tracking_run: Any = None


class Backend(ABC):
    """Base class of the search backends: what they all have.

    `drive` runs the search. An `AskTellBackend` lets the engine's loop do it, trial by trial;
    another backend (Ray Tune) runs its own loop and calls the trial runner from it, wherever its
    library runs trials, recording them in the store and offering the best model to
    `search.keeper`. Every backend records every trial in `self.study`, the study store (see
    `hpsearch.store`).
    """

    name: ClassVar[str]
    max_objectives: ClassVar[int | None] = None  # how many directions the library optimises (None: any)
    # whether the objective may suggest parameters of its own on the backend's trial object
    # (optuna's define-by-run: `model_init(trial)` calling `trial.suggest_*`), so `hp_space` may be empty
    define_by_run: ClassVar[bool] = False

    def __init__(
        self,
        hp_space: Any,
        directions: Sequence[str],
        storage: Any,
        study_name: str,
        output_dir: str | None = None,
        **kwargs: Any,
    ):
        self.directions = list(directions)
        if self.max_objectives is not None and len(self.directions) > self.max_objectives:
            raise ValueError(
                f"The {self.name!r} backend optimises at most {self.max_objectives} objective(s); received "
                f"direction={self.directions}. Use backend='optuna' for more."
            )
        self.storage, self.study_name = storage, study_name
        self.output_dir = output_dir  # where the backend's own files go (None: a temporary directory)
        self.study_options: dict[str, Any] = {}  # what else `optuna.create_study` gets for the store

    @functools.cached_property
    def study(self) -> optuna.Study:
        """The study store, opened when first used: bad input found before that leaves no study behind."""
        return store.open_study(self.storage, self.study_name, self.directions, **self.study_options)

    @classmethod
    def default_space(cls) -> Any:
        """The search space used when `hp_space` is None (transformers' default for this backend)."""
        from hpsearch.space import DEFAULT_SPACE

        return DEFAULT_SPACE

    @classmethod
    def space_directions(cls, hp_space: Any) -> list[str] | None:
        """The direction(s) `hp_space` itself names (a W&B sweep's metric goal), which decide when the
        caller passes no `direction`; None where it names none."""
        return None

    @abstractmethod
    def param_space(self) -> dict[str, Dimension | None]:
        """Each parameter a trial gets, with its neutral dimension (None where it has none: a
        constant, a custom sampler); known before any trial runs, for validation."""

    @property
    def can_prune(self) -> bool:
        """Whether a trial may be stopped at an intermediate value (so evaluations are worth their cost)."""
        return False

    @abstractmethod
    def drive(self, objective: Callable[[Any], Any], search: Any) -> Any:
        """Run the search: call `objective(trial)` for each trial until `search.n_trials` trials of the
        study have finished; return the library's own result object (or None)."""


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

    def suggested_params(self, proposal: Proposal) -> dict[str, Any]:
        """The trial's parameters now: what it was proposed, and (define-by-run) what the objective
        suggested on its native trial since."""
        return proposal.params

    def portable_native(self, proposal: Proposal) -> Any:
        """The trial object the other DDP ranks give `model_init` (it travels by pickle)."""
        return proposal.native

    def drive(self, objective: Callable[[Any], Any], search: Any) -> Any:
        """The engine's loop runs the trials (a backend may drive them from its own loop instead,
        calling `search.run_trial(proposal, objective)` for each)."""
        search.ask_tell_loop(objective)


# name -> (module, class, {library it imports: the pip install that brings it})
_REGISTRY: dict[str, tuple[str, str, dict[str, str]]] = {
    "optuna": ("hpsearch.backends.optuna", "OptunaBackend", {"optuna": "pip install optuna"}),
    "sigopt": ("hpsearch.backends.sigopt", "SigOptBackend", {"sigopt": 'pip install "hpsearch[sigopt]"'}),
    "ray": ("hpsearch.backends.ray", "RayBackend", {"ray.tune": 'pip install "hpsearch[ray]"'}),
    "wandb": (
        "hpsearch.backends.wandb",
        "WandbBackend",
        {
            "wandb": 'pip install "hpsearch[wandb]"',
            # its metadata pins numpy<2, which it runs without: installing its needs apart keeps numpy 2
            "sweeps": 'pip install "hpsearch[wandb]" && pip install --no-deps sweeps==0.3.0',
        },
    ),
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
    module, class_name, libraries = _REGISTRY[name]
    for library, fix in libraries.items():
        try:
            importlib.import_module(library)
        except ImportError as e:
            raise ImportError(
                f"The {name!r} backend needs the {library!r} library, which is not installed: {fix}."
            ) from e
    try:
        return getattr(importlib.import_module(module), class_name)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise NotImplementedError(
            f"The {name!r} backend is not in this version of hpsearch yet; use backend='optuna'."
        ) from None
