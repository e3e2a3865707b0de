"""The backend contract and the registry of backend names.

A backend decides what to try next and whether to stop a trial early; it knows nothing of
transformers, and writes nothing to the study store: the engine records each trial's life
(`hpsearch.study.lifecycle`). The engine's loop drives an ask/tell backend (ask -> begin -> report... ->
tell); where the backend's library places the trials itself (Ray Tune, a W&B server's agent), they run in that
library's executor (`placed_by`), through the same loop.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hpsearch import extras
from hpsearch.errors import ConfigError, MissingExtra
from hpsearch.loop.fidelity import prunes
from hpsearch.settings import SearchSettings
from hpsearch.space import Dimension
from hpsearch.trial import TrialState

if TYPE_CHECKING:
    from hpsearch.trial import TrialRecord


@dataclass
class Proposal:
    """One trial a backend wants run: its parameters, the backend's own trial object (what
    `model_init(trial)` receives), and the experiment-tracking run it opened for the trial, if
    any (a W&B run), which the trial's own logging joins. `number` is the trial's, once it exists."""

    params: dict[str, Any]
    native: Any = None
    tracking_run: Any = None
    number: int = -1


class StudyView(Protocol):
    """What a backend sees of the study store (`study.lifecycle.Trials` is one): its trials as records, how many
    were created and finished, facts of the backend's own kept with the study (a sweep's id), and for optuna's
    samplers the optuna study itself. Only the engine writes the trials."""

    settings: SearchSettings
    study: Any

    def records(self) -> list[TrialRecord]: ...

    def created(self) -> int: ...

    def finished(self) -> int: ...

    def recall(self, name: str) -> Any: ...

    def remember(self, name: str, value: Any) -> None: ...


class StartedTrial(Protocol):
    """A trial the engine has created in the study store (`begin`): its number, and its trial there, on which
    optuna's define-by-run samples."""

    number: int
    optuna_trial: Any


class Backend(ABC):
    """Base class of the search backends, what to try: their space, and `start`, which sets up a run of the search.

    Subclasses take `hp_space` in their library's native format and their own options.
    """

    name: ClassVar[str]
    pruner: Any = None  # an optuna pruner the study store is opened with, which the engine asks; None: none
    max_objectives: ClassVar[int | None] = None  # how many directions the library optimises (None: any)
    # whether the objective may suggest parameters of its own on the backend's trial object
    # (optuna's define-by-run: `model_init(trial)` calling `trial.suggest_*`), so `hp_space` may be empty
    define_by_run: ClassVar[bool] = False

    def __init__(self, hp_space: Any, settings: SearchSettings):
        if self.max_objectives is not None and len(settings.directions) > self.max_objectives:
            raise ConfigError(
                f"The {self.name!r} backend optimises at most {self.max_objectives} objective(s); received "
                f"direction={list(settings.directions)}. Use backend='optuna' for more."
            )
        self.settings = settings
        self.directions = list(settings.directions)

    @classmethod
    def check_options(cls, options: dict[str, Any], search_arguments: list[str]) -> None:
        """Fail on an option this backend does not take, with the name it most likely meant."""
        accepted = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "hp_space", "settings")]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            hints = "".join(
                f" Did you mean {close[0]!r} for {name!r}?"
                for name in unknown
                if (close := difflib.get_close_matches(name, [*accepted, *search_arguments], n=1))
            )
            raise ConfigError(
                f"Unknown argument(s) {unknown} for the {cls.name!r} backend.{hints} "
                f"It takes {accepted}, besides the search's own {search_arguments}."
            )

    @classmethod
    def default_space(cls) -> Any:
        """The search space used when `hp_space` is None (transformers' default for this backend)."""
        from hpsearch.space import DEFAULT_SPACE

        return DEFAULT_SPACE

    @classmethod
    def objective_metric(cls, options: dict[str, Any]) -> str | None:
        """The evaluation metric the backend's `options` name as what the search optimises (W&B's `metric=`), which
        a Trainer search makes its objective; None where they name none."""
        return None

    @classmethod
    def space_directions(cls, hp_space: Any) -> list[str] | None:
        """The direction(s) `hp_space` itself names (a W&B sweep's metric goal), which decide when the
        caller passes no `direction`; None where it names none."""
        return None

    @abstractmethod
    def param_space(self) -> dict[str, Dimension | None]:
        """Each parameter a trial gets, with its neutral dimension (None where it has none: a
        constant, a custom sampler); known before any trial runs, for validation."""

    def study_options(self) -> dict[str, Any]:
        """What else `optuna.create_study` gets for the study store (optuna's sampler and pruner)."""
        return {}

    @property
    def can_prune(self) -> bool:
        """Whether a trial may be stopped at an intermediate value (so evaluations are worth their cost)."""
        return False

    def runs_queued(self) -> str | None:
        """How the backend runs a queued trial (a warm start's): "partial" (it samples the parameters the trial
        lacks), "whole" (the trial must hold every parameter of its space), or None (never: its own loop runs)."""
        return None

    def placed_by(self, trials: StudyView) -> str | None:
        """The executor that must run the trials where the backend's library places them itself: "ray-tune" (Tune's
        controller) or "wandb-agent" (a W&B server's agent; `hpsearch.executors.placing`); None where hpsearch places
        them (this process, worker processes, DDP ranks)."""
        return None

    def start(self, trials: StudyView) -> Any:
        """Set up this run of the search on the study's `trials` before its first trial (seed the sampler for this
        run, open the library's experiment); return the library's handle on it (a SigOpt experiment's id, a W&B
        sweep's id), which `run_summary` carries, or None."""
        return None


class AskTellBackend(Backend):
    """A backend the engine's loop drives. Who calls what, and when (one process):

    - `ask()` before each trial: a `Proposal`, or None when there is nothing left to try (an
      exhausted grid);
    - `begin(proposal, trial)` once the engine has recorded the trial as running;
    - `report(proposal, step, value)` at each intermediate value of a single-objective search,
      which the engine has recorded: True stops the trial now;
    - `tell(proposal, state, values)` once, when the trial ended and the engine recorded it.

    `begin`, `report` and `tell` may also get a proposal the engine made itself, with `native` None:
    a queued trial (a stale trial retried with its parameters, or the user's `study.enqueue_trial`).

    A backend with no pruning rule of its own may set `pruner`, an optuna pruner: the study store
    is opened with it, and the engine stops a trial when it says so (optuna's and SigOpt's way).

    Example, a whole backend (random points of a neutral space), passed as `backend=`:
        >>> import random, hpsearch
        >>> from hpsearch.space import Float
        >>> class RandomPoints(AskTellBackend):
        ...     name = "random-points"
        ...     def __init__(self, hp_space, settings, seed=0):
        ...         super().__init__(hp_space, settings)
        ...         self.space, self.random = hp_space, random.Random(seed)
        ...     def param_space(self):
        ...         return dict(self.space)
        ...     def ask(self):
        ...         return Proposal({name: self.random.uniform(d.low, d.high) for name, d in self.space.items()})
        >>> best = hpsearch.search(lambda trial: (trial.params["x"] - 0.5) ** 2, {"x": Float(0.0, 1.0)},
        ...                        n_trials=30, backend=RandomPoints, show_progress=False)
        >>> best.objective < 0.01, len(best.run_summary.trials)
        (True, 30)
    """

    @abstractmethod
    def ask(self) -> Proposal | None: ...

    def study_options(self) -> dict[str, Any]:
        return {} if self.pruner is None else {"pruner": self.pruner}

    @property
    def can_prune(self) -> bool:
        return self.pruner is not None and self.settings.single_objective and prunes(self.pruner)

    def runs_queued(self) -> str | None:
        return "whole"  # `begin`, `report` and `tell` get the queued trial's parameters as its proposal

    def begin(self, proposal: Proposal, trial: StartedTrial) -> None:
        """The proposal's trial exists (`trial.number`; `trial.optuna_trial` in the study store)."""

    def report(self, proposal: Proposal, step: int, value: float) -> bool:
        """True stops the trial now, by a rule of the backend's own (a W&B sweep's early termination); the
        `pruner` on the study store is the engine's to ask (`hpsearch.loop.decision`)."""
        return False

    def tell(self, proposal: Proposal, state: TrialState, values: list[float] | None) -> None:
        """Learn from how the trial ended."""

    def suggested_params(self, proposal: Proposal) -> dict[str, Any]:
        """The trial's parameters now: what it was proposed, and (define-by-run) what the objective
        suggested on its native trial since."""
        return proposal.params

    def portable_native(self, proposal: Proposal) -> Any:
        """The trial object the other DDP ranks give `model_init` (it travels by pickle)."""
        return proposal.native


# name -> (module, class, the extra whose libraries it imports, how many of them it needs to load)
_REGISTRY: dict[str, tuple[str, str, str | None, int]] = {
    "optuna": ("hpsearch.backends.optuna", "OptunaBackend", None, 0),  # optuna: a dependency of hpsearch
    "sigopt": ("hpsearch.backends.sigopt", "SigOptBackend", "sigopt", 1),  # sigoptlite: in embedded mode only
    "ray": ("hpsearch.backends.ray", "RayBackend", "ray", 1),
    "wandb": ("hpsearch.backends.wandb", "WandbBackend", "wandb", 2),
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
        raise ConfigError(f"`backend` must be one of {list(_REGISTRY)}. Received: backend={backend!r}.")
    module, class_name, extra, needed = _REGISTRY[name]
    for library in extras.EXTRAS[extra][:needed] if extra else ():
        if error := extras.import_error(library):
            raise MissingExtra(
                f"The {name!r} backend needs the {library.module!r} library, which is not installed: "
                f"{extras.install_command(extra, library)}."
            ) from error
    try:
        return getattr(importlib.import_module(module), class_name)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise NotImplementedError(
            f"The {name!r} backend is not in this version of hpsearch yet; use backend='optuna'."
        ) from None
