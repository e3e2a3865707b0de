"""The W&B backend: W&B sweep configs, with or without a W&B server.

Local mode (no server configured): W&B's own open-source sweep engine (`sweeps.next_run`,
`sweeps.stop_runs` for hyperband) chooses the trials, driven by our engine; each trial is an
offline W&B run under `<output_dir>/wandb`, grouped by sweep, that `wandb sync` uploads later.
Server mode (`server=True`, a `sweep_id=` that is not this study's local sweep, or a
`WANDB_API_KEY` unless WANDB_MODE is offline or disabled): `wandb.sweep` and `wandb.agent` run the
trials, each through the same trial runner. Either way, trials go to the study store, and each
trial's W&B run is the current run (`wandb.run`) while it trains, so the Trainer's own W&B
logging (`report_to="wandb"`) goes into it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
import sweeps
import wandb

from hpsearch import store
from hpsearch.backends.base import AskTellBackend, Proposal
from hpsearch.backends.randomness import PrivateRandomState
from hpsearch.space import (
    Categorical,
    Dimension,
    Float,
    Int,
    called_with_no_trial,
    format_hint,
    is_space,
    neutral_space,
    plain,
)
from hpsearch.trial import Trial, TrialRecord, TrialState

logger = logging.getLogger("hpsearch")
METHODS = ("random", "grid", "bayes")
_LOCAL_SWEEP = "hpsearch.wandb_sweep_id"
_SWEEP_STATES = {
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


def _format_error(hp_space: Any, why: str) -> ValueError:
    return ValueError(
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


def sweep_config(hp_space: Any, direction: str) -> dict[str, Any]:
    """The W&B sweep config of an `hp_space`, checked by W&B's own schema, its metric's goal
    `direction` (which wins, with a warning, over a goal that says otherwise)."""
    config = copy.deepcopy(dict(_native_config(hp_space)))
    if config.get("method") not in METHODS:
        raise ValueError(
            f"The W&B sweep `method` must be one of {list(METHODS)} (what the sweep engine runs). "
            f"Received: method={config.get('method')!r}."
        )
    metric = config.setdefault("metric", {})
    metric.setdefault("name", "objective")
    if metric.setdefault("goal", direction) != direction:
        logger.warning(
            f"The sweep's metric goal is {metric['goal']!r} but direction={direction!r}: the search will "
            f"{direction} the objective (the `direction` argument wins)."
        )
        metric["goal"] = direction
    with contextlib.suppress(TypeError):  # a malformed parameter: W&B's schema names it, below
        neutral_space(config["parameters"], to_neutral)
    violations = sweeps.schema_violations_from_proposed_config(config)
    if violations:
        raise ValueError(
            f"`hp_space` is not a valid W&B sweep config: {'; '.join(dict.fromkeys(violations))}. See "
            "https://docs.wandb.ai/guides/sweeps/sweep-config-keys for each parameter's keys."
        )
    return config


class WandbBackend(AskTellBackend):
    """W&B sweeps: `method` random, grid or bayes; `early_terminate` hyperband; `project`, `entity`;
    `seed` for reproducible proposals (local mode)."""

    name = "wandb"
    max_objectives = 1

    def __init__(
        self,
        hp_space: Any,
        directions: Sequence[str],
        storage: Any,
        study_name: str,
        output_dir: str | None = None,
        project: str | None = None,
        entity: str | None = None,
        sweep_id: Any = None,
        server: bool | None = None,
        agent: Callable[..., Any] | None = None,
        seed: int | None = None,
    ):
        super().__init__(hp_space, directions, storage, study_name, output_dir)
        self.config = sweep_config(self.default_space() if hp_space is None else hp_space, self.directions[0])
        self.metric = self.config["metric"]["name"]
        self.space = neutral_space(self.config["parameters"], to_neutral)
        self.project = project or os.environ.get("WANDB_PROJECT") or "hpsearch"
        self.entity = entity or os.environ.get("WANDB_ENTITY")
        # transformers gives `best_run.run_summary` back as `sweep_id` to continue a sweep: it is ours
        self.sweep_id = getattr(sweep_id, "native", sweep_id)
        self._server = server
        self.agent = agent
        self.seed = seed
        self.dir = output_dir or tempfile.mkdtemp(prefix="hpsearch-wandb-")
        self._live: dict[int, tuple[optuna.Trial, Any, sweeps.SweepRun]] = {}

    @classmethod
    def default_space(cls) -> dict[str, Any]:
        """transformers' W&B default."""
        return {
            "method": "random",
            "metric": {"name": "objective", "goal": "minimize"},
            "parameters": {
                "learning_rate": {"distribution": "uniform", "min": 1e-6, "max": 1e-4},
                "num_train_epochs": {"distribution": "int_uniform", "min": 1, "max": 6},
                "seed": {"distribution": "int_uniform", "min": 1, "max": 40},
                "per_device_train_batch_size": {"values": [4, 8, 16, 32, 64]},
            },
        }

    @classmethod
    def space_directions(cls, hp_space: Any) -> list[str] | None:
        """The sweep's own metric goal decides when the caller passes no `direction`."""
        goal = sweep_goal(cls.default_space() if hp_space is None else hp_space)
        return [goal] if goal else None

    @functools.cached_property
    def server(self) -> bool:
        """Whether a W&B server runs the sweep: asked for, or implied by a sweep id this study did not
        make locally, or by an API key (unless W&B is offline or disabled)."""
        if self._server is not None:
            return self._server
        if self.sweep_id:
            return self.sweep_id != self.study.user_attrs.get(_LOCAL_SWEEP)
        return bool(os.environ.get("WANDB_API_KEY")) and os.environ.get("WANDB_MODE") not in ("offline", "disabled")

    @functools.cached_property
    def runs(self) -> list[sweeps.SweepRun]:
        """What the sweep engine sees: the store's finished trials (a rerun continues the sweep), then ours."""
        return [_sweep_run(r, self.metric) for r in store.records(self.study) if r.counts]

    @functools.cached_property
    def random_state(self) -> PrivateRandomState:
        """The sweep engine's own random state (it draws from the global generators)."""
        return PrivateRandomState(self.seed, stream=len(self.runs))

    def param_space(self) -> dict[str, Dimension | None]:
        return {name: self.space.get(name) for name in self.config["parameters"]}

    @property
    def can_prune(self) -> bool:
        return "early_terminate" in self.config and not self.server

    def drive(self, objective: Callable[[Trial], Any], search: Any) -> str:
        """Local mode: the engine's loop. Server mode: `wandb.agent` calls the trial runner per run.
        Either way the sweep's id, which `sweep_id=` takes to continue it."""
        if not self.server:
            self.sweep_id = self.study.user_attrs.get(_LOCAL_SWEEP) or secrets.token_hex(4)
            self.study.set_user_attr(_LOCAL_SWEEP, self.sweep_id)
            self._set_environment()
            search.ask_tell_loop(objective)
            return self.sweep_id
        sweep_id = self.sweep_id or wandb.sweep(self.config, project=self.project, entity=self.entity)
        remaining = search.n_trials - search.finished()
        if remaining > 0:
            agent = self.agent or wandb.agent
            agent(
                sweep_id,
                function=lambda: search.run_trial(self._join_run(), objective),
                count=remaining,
                project=self.project,
                entity=self.entity,
            )
        return sweep_id

    def _set_environment(self) -> None:
        """What `wandb.agent` sets for the runs of a sweep: its project and entity (none, offline)."""
        os.environ.update(WANDB_PROJECT=self.project, WANDB_ENTITY=self.entity or "")

    def _settings(self) -> wandb.Settings:
        return wandb.Settings(silent=True, console="off", disable_git=True, save_code=False, x_disable_stats=True)

    def ask(self) -> Proposal | None:
        with self.random_state.active():
            suggestion = sweeps.next_run(self.config, self.runs)
        if suggestion is None:
            return None  # a grid with every point run
        params = {name: plain(p["value"], self.space.get(name)) for name, p in suggestion.config.items()}
        recorded = store.start_trial(self.study, params, self.space)
        # the current run while the trial trains ("finish_previous"), for the Trainer's W&B logging to join
        run = wandb.init(
            mode="offline",
            dir=self.dir,
            project=self.project,
            entity=self.entity or None,
            group=self.study_name,
            name=f"trial-{recorded.number}",
            config=params,
            reinit="finish_previous",
            settings=self._settings(),
        )
        return self._start(recorded, run, params)

    def _join_run(self) -> Proposal:
        """Server mode, inside the agent: the run the agent started, with the parameters the sweep chose."""
        run = wandb.init(dir=self.dir, settings=self._settings())
        chosen = {name: value for name, value in dict(run.config).items() if not name.startswith("_")}
        params = {name: plain(value, self.space.get(name)) for name, value in chosen.items()}
        return self._start(store.start_trial(self.study, params, self.space), run, params)

    def _start(self, recorded: optuna.Trial, run: Any, params: dict[str, Any]) -> Proposal:
        config = {name: {"value": value} for name, value in params.items()}
        sweep_run = sweeps.SweepRun(name=str(recorded.number), state=sweeps.RunState.running, config=config)
        self.runs.append(sweep_run)
        self._live[recorded.number] = (recorded, run, sweep_run)
        return Proposal(recorded.number, recorded._trial_id, params, native=params, tracking_run=run)

    def report(self, proposal: Proposal, step: int, value: float) -> bool:
        recorded, run, sweep_run = self._live[proposal.number]
        recorded.report(value, step)
        # no `step=`: the Trainer's own W&B logging may share this run, with steps of its own
        run.log({self.metric: value, "hpsearch/step": step})
        sweep_run.history.append({self.metric: value, "_step": step})
        if not self.can_prune:
            return False
        return any(r.name == sweep_run.name for r in sweeps.stop_runs(self.config, self.runs))

    def tell(self, proposal: Proposal, state: TrialState, values: list[float] | None) -> None:
        recorded, run, sweep_run = self._live.pop(proposal.number)
        sweep_run.state = _SWEEP_STATES[state]
        if values is not None:
            sweep_run.summary_metrics = {self.metric: values[0]}
            run.summary[self.metric] = values[0]
        run.finish(exit_code=1 if state is TrialState.FAILED else 0)
        store.finish(self.study, recorded, state, values)


def _sweep_run(record: TrialRecord, metric: str) -> sweeps.SweepRun:
    """A recorded trial as the sweep engine sees a finished run (to continue a sweep after a crash)."""
    return sweeps.SweepRun(
        name=str(record.number),
        state=_SWEEP_STATES[record.state],
        config={name: {"value": value} for name, value in record.params.items()},
        history=[{metric: value, "_step": step} for step, value in sorted(record.intermediate.items())],
        summary_metrics={metric: record.values[0]} if record.state is TrialState.COMPLETE else {},
    )
