"""The SigOpt backend: SigOpt's core API, embedded (`sigoptlite`) by default, or a SigOpt-API server.

The hosted SigOpt service is gone; its optimizer lives on in `sigoptlite`, which the official
`sigopt` client runs in-process with `Connection(driver="lite")`. With `SIGOPT_API_TOKEN` (and
`SIGOPT_API_URL` for a self-hosted server) or `api_token=` / `api_url=`, the same calls go over
HTTP. SigOpt has no pruning of its own: the engine's rule (successive halving on the study store,
or the optuna `pruner=` given) stops trials at their intermediate values.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from sigopt import Connection
from sigopt.objects import ApiObject, Suggestion

from hpsearch import compat, extras
from hpsearch.backends.base import AskTellBackend, Proposal, StudyView
from hpsearch.backends.randomness import PrivateRandomState
from hpsearch.errors import ConfigError, MissingExtra
from hpsearch.loop.halving import default_pruner
from hpsearch.settings import SearchSettings
from hpsearch.space import Categorical, Dimension, Float, Int, called_with_no_trial, format_hint, is_space, plain
from hpsearch.study import schema
from hpsearch.trial import TrialState

logger = logging.getLogger(__name__)
TYPES = ("double", "int", "categorical")


def to_sigopt(name: str, dim: Dimension) -> dict[str, Any]:
    """A neutral dimension as a SigOpt parameter (categorical values as strings, as SigOpt takes them)."""
    if isinstance(dim, Categorical):
        return {"name": name, "type": "categorical", "categorical_values": [str(c) for c in dim.choices]}
    kind = "double" if isinstance(dim, Float) else "int"
    parameter = {"name": name, "type": kind, "bounds": {"min": dim.low, "max": dim.high}}
    if dim.log:
        parameter["transformation"] = "log"
    return parameter


def to_neutral(parameter: Mapping[str, Any]) -> Dimension:
    """The neutral dimension of a (checked) SigOpt parameter."""
    if parameter["type"] == "categorical":
        return Categorical([c["name"] if isinstance(c, Mapping) else c for c in parameter["categorical_values"]])
    low, high = parameter["bounds"]["min"], parameter["bounds"]["max"]
    if parameter["type"] == "int":
        return Int(int(low), int(high))
    return Float(float(low), float(high), log=parameter.get("transformation") == "log")


def _format_error(hp_space: Any, why: str) -> ConfigError:
    return ConfigError(
        "The sigopt backend takes `hp_space` as a list of SigOpt parameters, e.g. "
        "[{'name': 'learning_rate', 'type': 'double', 'bounds': {'min': 1e-6, 'max': 1e-4}, 'transformation': 'log'}, "
        "{'name': 'per_device_train_batch_size', 'type': 'categorical', 'categorical_values': ['16', '32']}], "
        f"a function returning one, or an `hpsearch.space` dict. Received: {hp_space!r} ({why})."
    )


def _check_parameter(parameter: Any) -> None:
    if not isinstance(parameter, Mapping) or not isinstance(parameter.get("name"), str):
        raise ConfigError(f"A SigOpt parameter must be a dict with a 'name'. Received: {parameter!r}.")
    name, kind = parameter["name"], parameter.get("type")
    if kind not in TYPES:
        raise ConfigError(f"SigOpt parameter {name!r}: `type` must be one of {list(TYPES)}. Received: type={kind!r}.")
    if kind == "categorical":
        values = parameter.get("categorical_values")
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"SigOpt parameter {name!r}: `categorical_values` must be a non-empty list. Received: {values!r}."
            )
        return
    bounds = parameter.get("bounds")
    if not isinstance(bounds, Mapping) or not {"min", "max"} <= set(bounds):
        raise ConfigError(f"SigOpt parameter {name!r}: `bounds` must be {{'min': m, 'max': M}}. Received: {bounds!r}.")
    if not bounds["min"] < bounds["max"]:
        raise ConfigError(f"SigOpt parameter {name!r}: needs bounds min < max. Received: {dict(bounds)}.")
    if parameter.get("transformation") == "log" and (kind != "double" or bounds["min"] <= 0):
        raise ConfigError(f"SigOpt parameter {name!r}: transformation 'log' needs a double with min > 0.")


def sigopt_parameters(hp_space: Any) -> list[dict[str, Any]]:
    """The SigOpt parameters of an `hp_space`: a list, (as in the docs) a function called with None,
    or a neutral space; checked before any trial."""
    if is_space(hp_space):
        return [to_sigopt(name, dim) for name, dim in hp_space.items()]
    parameters = called_with_no_trial(hp_space, _format_error)
    if isinstance(parameters, Mapping):
        raise _format_error(hp_space, format_hint(parameters))
    if not isinstance(parameters, list) or not parameters:
        raise _format_error(hp_space, "not a non-empty list")
    for parameter in parameters:
        _check_parameter(parameter)
    return [dict(p) for p in parameters]


def embedded_connection() -> Connection:
    """A connection to SigOpt's optimizer run in this process (`sigoptlite`), made to work on numpy 2."""
    lite = extras.EXTRAS["sigopt"][1]
    if error := extras.import_error(lite):
        raise MissingExtra(
            f"The embedded SigOpt optimizer needs `sigoptlite`, which is not installed: "
            f"{extras.install_command('sigopt', lite)} (their numpy pins are wrong; hpsearch's sigopt extra brings "
            "what they need; `hpsearch doctor --fix` runs it). Or set SIGOPT_API_TOKEN to use a SigOpt-API server."
        ) from error
    compat.numpy_1_for_libsigopt()
    return Connection(driver="lite")


class SigOptBackend(AskTellBackend):
    """SigOpt: the embedded `sigoptlite` optimizer (`seed=` for reproducible proposals), or a
    SigOpt-API server (`api_token`, `api_url`). `pruner`: the optuna pruner that stops trials on
    the study store (default: successive halving; `optuna.pruners.NopPruner()`: none)."""

    name = "sigopt"
    max_objectives = 2  # SigOpt's multimetric experiments

    def __init__(
        self,
        hp_space: Any,
        settings: SearchSettings,
        api_token: str | None = None,
        api_url: str | None = None,
        seed: int | None = None,
        pruner: Any = None,
    ):
        super().__init__(hp_space, settings)
        # no pausing: a paused trial resumes under a new proposal, which the experiment's suggestion does not know
        self.pruner = pruner or default_pruner(settings, pause=False)
        self.parameters = sigopt_parameters(self.default_space() if hp_space is None else hp_space)
        self.space = {p["name"]: to_neutral(p) for p in self.parameters}
        self._choices = self._original_choices(hp_space)
        token = api_token or os.environ.get("SIGOPT_API_TOKEN")
        self.server = bool(token)
        self.connection = Connection(client_token=token, api_url=api_url) if token else embedded_connection()
        self.seed = seed
        self.experiment_id: str | None = None
        self._observed: set[int] = set()  # the trials the experiment knows the end of, by number

    @classmethod
    def default_space(cls) -> list[dict[str, Any]]:
        """transformers' last SigOpt default."""
        return [
            {"bounds": {"min": 1e-6, "max": 1e-4}, "name": "learning_rate", "type": "double", "transformation": "log"},
            {"bounds": {"min": 1, "max": 5}, "name": "num_train_epochs", "type": "int"},
            {"bounds": {"min": 1, "max": 40}, "name": "seed", "type": "int"},
            {
                "categorical_values": ["4", "8", "16", "32", "64"],
                "name": "per_device_train_batch_size",
                "type": "categorical",
            },
        ]

    @staticmethod
    def _original_choices(hp_space: Any) -> dict[str, dict[str, Any]]:
        """For a neutral space: each categorical's string (as SigOpt returns it) -> the user's choice."""
        if not is_space(hp_space):
            return {}
        return {n: {str(c): c for c in d.choices} for n, d in hp_space.items() if isinstance(d, Categorical)}

    def param_space(self) -> dict[str, Dimension | None]:
        return dict(self.space)

    def start(self, trials: StudyView) -> str:
        if self.server and self.settings.workers > 1:
            raise ConfigError(
                "`n_jobs` with a SigOpt server: run one search per process on the server's experiment (its "
                "parallel bandwidth), or use the embedded optimizer (no `api_token`) with n_jobs."
            )
        # the embedded optimizer's own random state (it draws from NumPy's global one); a resumed search draws anew
        self.random_state = PrivateRandomState(self.seed, stream=trials.created(), worker=self.settings.worker)
        self.trials = trials
        with self.random_state.active():
            self._open_experiment(trials)
        return self.experiment_id

    def _metric_names(self) -> list[str]:
        return ["objective"] if len(self.directions) == 1 else [f"objective_{i}" for i in range(len(self.directions))]

    def _open_experiment(self, trials: StudyView) -> None:
        """Continue the server experiment of an earlier run, or create one (the embedded optimizer keeps
        nothing on disk, so its new experiment is given every finished trial first)."""
        experiments = self.connection.experiments
        earlier = trials.recall(schema.SIGOPT_EXPERIMENT)
        if self.server and earlier is not None:
            self.experiment_id = experiments(earlier).fetch().id
            return
        experiment = experiments().create(
            name=self.settings.study_name,
            parameters=self.parameters,
            metrics=[{"name": m, "objective": d} for m, d in zip(self._metric_names(), self.directions)],
            observation_budget=self.settings.n_trials,
        )
        self.experiment_id = experiment.id
        trials.remember(schema.SIGOPT_EXPERIMENT, experiment.id)
        if not self.server:
            finished = self._replay(trials)
            if finished:
                logger.info(f"SigOpt: replayed {finished} observations from the store into a new experiment.")

    def _replay(self, trials: StudyView) -> int:
        """Give the embedded experiment the store's finished trials it has not observed (an earlier run's, or
        other workers' of this search); how many."""
        finished = [r for r in trials.records() if r.counts and r.number not in self._observed]
        for record in finished:
            assignments = {p["name"]: self._encode(p, record.params[p["name"]]) for p in self.parameters}
            self._observe(record.state, record.values, assignments=assignments)
            self._observed.add(record.number)
        return len(finished)

    def _observe(self, state: TrialState, values: list[float] | None, **about: Any) -> None:
        """Tell SigOpt a trial's outcome: its values, or `failed` (SigOpt has no pruned trials)."""
        observations = self.connection.experiments(self.experiment_id).observations()
        if state is TrialState.COMPLETE:
            observations.create(values=[{"name": m, "value": v} for m, v in zip(self._metric_names(), values)], **about)
        else:
            observations.create(failed=True, **about)

    def ask(self) -> Proposal:
        with self.random_state.active():
            if self.settings.workers > 1 and not self.server:  # what the other workers learnt meanwhile
                self._replay(self.trials)
            suggestion = self.connection.experiments(self.experiment_id).suggestions().create()
        params = {name: self._decode(name, value) for name, value in suggestion.assignments.items()}
        return Proposal(params, native=suggestion)

    @staticmethod
    def _encode(parameter: Mapping[str, Any], value: Any) -> Any:
        return str(value) if parameter["type"] == "categorical" else value

    def _decode(self, name: str, value: Any) -> Any:
        return self._choices.get(name, {}).get(value, plain(value, self.space.get(name)))

    def portable_native(self, proposal: Proposal) -> Suggestion:
        """The suggestion without its connection to the API (which does not pickle); None for a queued trial."""
        return None if proposal.native is None else Suggestion(ApiObject.as_json(proposal.native))

    def tell(self, proposal: Proposal, state: TrialState, values: list[float] | None) -> None:
        if proposal.native is not None:
            about = {"suggestion": proposal.native.id}
        else:  # a queued trial the engine ran (a retried one): not SigOpt's suggestion
            about = {"assignments": {p["name"]: self._encode(p, proposal.params[p["name"]]) for p in self.parameters}}
        with self.random_state.active():
            self._observe(state, values, **about)
        self._observed.add(proposal.number)
