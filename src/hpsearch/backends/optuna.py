"""The optuna backend: optuna's samplers and pruners, its study being the store itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna

from hpsearch.backends.base import AskTellBackend, Proposal, StartedTrial, StudyView
from hpsearch.backends.out_of_memory import AvoidOutOfMemory
from hpsearch.backends.randomness import stream_seed
from hpsearch.errors import ConfigError
from hpsearch.loop.halving import default_pruner
from hpsearch.settings import SearchSettings
from hpsearch.space import Dimension, Space, format_hint, is_space
from hpsearch.study import store


def _format_error(hp_space: Any, why: str) -> ConfigError:
    return ConfigError(
        f"The optuna backend takes `hp_space` as a function of an optuna trial returning a dict, e.g. "
        f"`lambda trial: {{'learning_rate': trial.suggest_float('learning_rate', 1e-6, 1e-4, log=True)}}`, "
        f"or an `hpsearch.space` dict. Received: {hp_space!r} ({why})."
    )


def _check_hp_space(hp_space: Any) -> Callable[[optuna.Trial], Mapping[str, Any]] | Space:
    if callable(hp_space) or is_space(hp_space):
        return hp_space
    raise _format_error(hp_space, format_hint(hp_space) or "neither a function nor a neutral space")


def _check_sampled(hp_space: Any, params: Any) -> dict[str, Any]:
    """What `hp_space(trial)` returned, as the trial's parameters; another backend's space refused."""
    is_ray = isinstance(params, Mapping) and any(type(v).__module__.startswith("ray.") for v in params.values())
    if isinstance(params, list) or is_ray or (isinstance(params, Mapping) and "parameters" in params):
        raise _format_error(hp_space, f"it returned {params!r}: {format_hint(params, 'ray' if is_ray else None)}")
    if not isinstance(params, Mapping):
        raise ConfigError(f"`hp_space(trial)` must return a dict of parameter names to values. Received: {params!r}.")
    return dict(params)


class _Named:
    """An optuna trial whose `suggest_*` errors name the parameter (optuna's own messages do not)."""

    def __init__(self, trial: optuna.Trial):
        self._trial = trial

    def __getattr__(self, attribute: str) -> Any:
        method = getattr(self._trial, attribute)
        if not attribute.startswith("suggest_"):
            return method

        def suggest(name: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(name, *args, **kwargs)
            except ValueError as e:
                raise ConfigError(f"hp_space: {attribute}({name!r}, ...): {e}") from None

        return suggest


OPTUNA_STARTUP_TRIALS = 10  # TPE's random start-up trials, optuna's default and transformers'


def startup_trials(n_trials: int) -> int:
    """TPE's random start-up trials for a search of `n_trials`: half of them, at most optuna's 10 (with optuna's 10,
    a search of 10 trials or fewer would be random search; BENCHMARKS.md)."""
    return max(1, min(OPTUNA_STARTUP_TRIALS, n_trials // 2))


def default_sampler(seed: int | None, parallel: bool, n_trials: int) -> AvoidOutOfMemory:
    """optuna's TPE, its random start-up sized to the search's `n_trials` (`startup_trials`). With workers, the running
    trials count as if bad (optuna's constant liar), so that workers try apart. The discrete values of a trial that
    ran out of memory are not drawn again (`AvoidOutOfMemory`), and trials paused at a rung count as pruned there
    (`SeesPausedTrials`)."""
    tpe = optuna.samplers.TPESampler(seed=seed, constant_liar=parallel, n_startup_trials=startup_trials(n_trials))
    return AvoidOutOfMemory(tpe, seed)


class OptunaBackend(AskTellBackend):
    """optuna: TPE by default (`seed=` seeds it), `sampler=` and `pruner=` as optuna takes them (by
    default successive halving at the search's rungs, `hpsearch.loop.fidelity`). The study store is
    optuna's own study, so the sampler sees every trial of it. `model_init(trial)` may suggest
    parameters of its own (define-by-run)."""

    name = "optuna"
    define_by_run = True

    def __init__(
        self,
        hp_space: Any,
        settings: SearchSettings,
        sampler: optuna.samplers.BaseSampler | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
        load_if_exists: bool = True,
        seed: int | None = None,
    ):
        super().__init__(hp_space, settings)
        self.hp_space = _check_hp_space(self.default_space() if hp_space is None else hp_space)
        if seed is not None and sampler is not None:
            raise ConfigError(
                f"Pass `seed` or `sampler`, not both: give the seed to your sampler, e.g. "
                f"`sampler=optuna.samplers.TPESampler(seed={seed!r})`. Received: sampler={sampler!r}."
            )
        self.seed = seed
        self.pruner = pruner or default_pruner(settings)
        # a worker process (`n_jobs`) joins the study its search's process opened, `load_if_exists` or not
        self._options = {"load_if_exists": load_if_exists or settings.workers > 1, "sampler": sampler}

    def study_options(self) -> dict[str, Any]:
        return {**super().study_options(), **self._options}

    def runs_queued(self) -> str:
        return "partial"  # `hp_space` suggests on the trial: the queued values where it has them, sampled elsewhere

    def _sample(self, trial: optuna.Trial) -> dict[str, Any]:
        if not callable(self.hp_space):
            return {name: store.suggest(trial, name, dim) for name, dim in self.hp_space.items()}
        return _check_sampled(self.hp_space, self.hp_space(trial))

    def param_space(self) -> dict[str, Dimension | None]:
        """Samples `hp_space` once on a probe trial, so that its mistakes show before any training."""
        with store.quiet_optuna():
            probe = optuna.create_study(directions=self.directions, sampler=optuna.samplers.RandomSampler(0)).ask()
        return {name: store.dimension(probe.distributions.get(name)) for name in self._sample(_Named(probe))}

    def start(self, trials: StudyView) -> None:
        study, worker, parallel = trials.study, self.settings.worker, self.settings.workers > 1
        if self._options["sampler"] is None:
            # seeded for this run's place in the study (a resumed search draws anew) and this worker's
            seed = None if self.seed is None else stream_seed(self.seed, trials.created(), worker)
            study.sampler = default_sampler(seed, parallel, self.settings.n_trials)
        elif worker:  # the user's sampler, copied into each worker: optuna's way to keep the copies apart
            study.sampler.reseed_rng()

    def ask(self) -> Proposal:
        return Proposal({})  # sampled on the study's trial, once it exists (`begin`)

    def begin(self, proposal: Proposal, trial: StartedTrial) -> None:
        proposal.native = trial.optuna_trial
        proposal.params = self._sample(trial.optuna_trial)

    def suggested_params(self, proposal: Proposal) -> dict[str, Any]:
        return {**proposal.params, **proposal.native.params}

    def portable_native(self, proposal: Proposal) -> optuna.trial.FixedTrial:
        return optuna.trial.FixedTrial(self.suggested_params(proposal), proposal.number)
