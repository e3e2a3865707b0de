"""The optuna backend: optuna's samplers and pruners, its study being the store itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna

from hpsearch import store
from hpsearch.backends.base import AskTellBackend, Proposal
from hpsearch.space import Categorical, Dimension, Float, Space, is_space
from hpsearch.trial import TrialState


def suggest(trial: optuna.Trial, name: str, dim: Dimension) -> Any:
    """Sample one neutral dimension with optuna."""
    if isinstance(dim, Categorical):
        return trial.suggest_categorical(name, dim.choices)
    if isinstance(dim, Float):
        return trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    return trial.suggest_int(name, dim.low, dim.high, log=dim.log)


def _check_hp_space(hp_space: Any) -> Callable[[optuna.Trial], Mapping[str, Any]] | Space:
    if callable(hp_space) or is_space(hp_space):
        return hp_space
    hint = ""
    if isinstance(hp_space, list):
        hint = " (a list of parameter dicts is SigOpt's format)"
    elif isinstance(hp_space, Mapping) and "parameters" in hp_space:
        hint = " (a dict with 'parameters' is a W&B sweep config)"
    elif isinstance(hp_space, Mapping):
        hint = " (a dict of search-space objects is Ray Tune's format)"
    raise ValueError(
        f"The optuna backend takes `hp_space` as a function of an optuna trial returning a dict, e.g. "
        f"`lambda trial: {{'learning_rate': trial.suggest_float('learning_rate', 1e-6, 1e-4, log=True)}}`, "
        f"or an `hpsearch.space` dict. Received: {hp_space!r}{hint}."
    )


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
                raise ValueError(f"hp_space: {attribute}({name!r}, ...): {e}") from None

        return suggest


class OptunaBackend(AskTellBackend):
    """optuna: TPE by default, `sampler=` and `pruner=` (MedianPruner by default) as optuna takes them."""

    name = "optuna"

    def __init__(
        self,
        hp_space: Any,
        directions: Sequence[str],
        storage: Any,
        study_name: str,
        output_dir: str | None = None,
        sampler: optuna.samplers.BaseSampler | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
        load_if_exists: bool = True,
    ):
        super().__init__(hp_space, directions, storage, study_name, output_dir)
        self.hp_space = _check_hp_space(self.default_space() if hp_space is None else hp_space)
        self.study_options = {"load_if_exists": load_if_exists, "sampler": sampler, "pruner": pruner}

    def _sample(self, trial: optuna.Trial) -> dict[str, Any]:
        if not callable(self.hp_space):
            return {name: suggest(trial, name, dim) for name, dim in self.hp_space.items()}
        params = self.hp_space(trial)
        if not isinstance(params, Mapping):
            raise ValueError(
                f"`hp_space(trial)` must return a dict of parameter names to values. Received: {params!r}."
            )
        return dict(params)

    def param_space(self) -> dict[str, Dimension | None]:
        """Samples `hp_space` once on a probe trial, so that its mistakes show before any training."""
        probe = optuna.create_study(directions=self.directions, sampler=optuna.samplers.RandomSampler(0)).ask()
        return {name: store.dimension(probe.distributions.get(name)) for name in self._sample(_Named(probe))}

    def ask(self) -> Proposal:
        trial = self.study.ask()
        store.claim(self.study, trial._trial_id)
        try:
            params = self._sample(trial)
        except BaseException as e:
            store.mark_failed(self.study, trial._trial_id, f"hp_space raised {e!r}")
            raise
        return Proposal(trial.number, trial._trial_id, params, trial)

    def portable_native(self, proposal: Proposal) -> optuna.trial.FixedTrial:
        return optuna.trial.FixedTrial(proposal.params, proposal.number)

    @property
    def can_prune(self) -> bool:
        return len(self.directions) == 1 and not isinstance(self.study.pruner, optuna.pruners.NopPruner)

    def report(self, proposal: Proposal, step: int, value: float) -> bool:
        if len(self.directions) > 1:  # optuna has no intermediate values for several objectives
            return False
        proposal.native.report(value, step)
        return proposal.native.should_prune()

    def tell(self, proposal: Proposal, state: TrialState, values: list[float] | None) -> None:
        store.finish(self.study, proposal.native, state, values)
