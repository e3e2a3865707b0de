"""The W&B backend: W&B sweep configs, with or without a W&B server.

Local mode (no server configured): W&B's own open-source sweep engine (`sweeps.next_run`,
`sweeps.stop_runs` for hyperband) chooses the trials, driven by our engine; each trial is an
offline W&B run under `<output_dir>/wandb`, grouped by sweep, that `wandb sync` uploads later.
Server mode (`sweep_id=`, `server=True`, or a `WANDB_API_KEY` unless WANDB_MODE is offline or
disabled): `wandb.sweep` and `wandb.agent`
run the trials, each through the same trial runner. Either way, trials go to the study store.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
import sweeps
import wandb

from hpsearch import store
from hpsearch.backends.base import AskTellBackend, Proposal
from hpsearch.space import Categorical, Dimension, Float, Int, is_space, neutral_space, plain
from hpsearch.trial import Trial, TrialRecord, TrialState

METHODS = ("random", "grid", "bayes")
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


def sweep_config(hp_space: Any, direction: str) -> dict[str, Any]:
    """The W&B sweep config of an `hp_space`, checked by W&B's own schema, its metric agreeing with
    `direction` (which fills in a missing goal)."""
    if is_space(hp_space):
        config: Any = {"method": "random", "parameters": {name: to_wandb(dim) for name, dim in hp_space.items()}}
    elif isinstance(hp_space, list):
        raise _format_error(hp_space, "a list of parameter dicts is SigOpt's format")
    elif callable(hp_space):
        try:
            config = hp_space(None)
        except AttributeError as e:
            raise _format_error(hp_space, f"it failed when called with no trial: {e}; optuna's format?") from None
    else:
        config = hp_space
    if not isinstance(config, Mapping) or not isinstance(config.get("parameters"), Mapping):
        raise _format_error(hp_space, "no 'parameters' dict: a dict of search-space objects is Ray Tune's format")
    config = copy.deepcopy(dict(config))
    if config.get("method") not in METHODS:
        raise ValueError(
            f"The W&B sweep `method` must be one of {list(METHODS)} (what the sweep engine runs). "
            f"Received: method={config.get('method')!r}."
        )
    metric = config.setdefault("metric", {})
    metric.setdefault("name", "objective")
    metric.setdefault("goal", direction)
    if metric["goal"] != direction:
        raise ValueError(
            f"The sweep's metric goal {metric['goal']!r} contradicts direction={direction!r}; "
            "make them agree (or leave the goal out: direction fills it in)."
        )
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
    """W&B sweeps: `method` random, grid or bayes; `early_terminate` hyperband; `project`, `entity`."""

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
        sweep_id: str | None = None,
        server: bool | None = None,
        agent: Callable[..., Any] | None = None,
    ):
        super().__init__(hp_space, directions, storage, study_name, output_dir)
        self.config = sweep_config(self.default_space() if hp_space is None else hp_space, self.directions[0])
        self.metric = self.config["metric"]["name"]
        self.space = neutral_space(self.config["parameters"], to_neutral)
        self.project, self.entity, self.sweep_id = project or "hpsearch", entity, sweep_id
        online = bool(os.environ.get("WANDB_API_KEY")) and os.environ.get("WANDB_MODE") not in ("offline", "disabled")
        self.server = server if server is not None else bool(sweep_id) or online
        self.agent = agent
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

    @functools.cached_property
    def runs(self) -> list[sweeps.SweepRun]:
        """What the sweep engine sees: the store's finished trials (a rerun continues the sweep), then ours."""
        return [_sweep_run(r, self.metric) for r in store.records(self.study) if r.counts]

    def param_space(self) -> dict[str, Dimension | None]:
        return {name: self.space.get(name) for name in self.config["parameters"]}

    @property
    def can_prune(self) -> bool:
        return "early_terminate" in self.config and not self.server

    def drive(self, objective: Callable[[Trial], Any], search: Any) -> str | None:
        """Local mode: the engine's loop. Server mode: `wandb.agent` calls the trial runner per run."""
        if not self.server:
            search.ask_tell_loop(objective)
            return None
        sweep_id = self.sweep_id or wandb.sweep(self.config, project=self.project, entity=self.entity)
        remaining = search.n_trials - search.finished()
        if remaining > 0:
            agent = self.agent or wandb.agent
            agent(sweep_id, function=lambda: search.run_trial(self._join_run(), objective), count=remaining,
                  project=self.project, entity=self.entity)
        return sweep_id

    def _settings(self) -> wandb.Settings:
        return wandb.Settings(silent=True, console="off", disable_git=True, save_code=False, x_disable_stats=True)

    def ask(self) -> Proposal | None:
        suggestion = sweeps.next_run(self.config, self.runs)
        if suggestion is None:
            return None  # a grid with every point run
        params = {name: plain(p["value"], self.space.get(name)) for name, p in suggestion.config.items()}
        recorded = store.start_trial(self.study, params, self.space)
        run = wandb.init(
            mode="offline", dir=self.dir, project=self.project, entity=self.entity, group=self.study_name,
            name=f"trial-{recorded.number}", config=params, reinit="create_new",
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
        return Proposal(recorded.number, recorded._trial_id, params, native=params)

    def report(self, proposal: Proposal, step: int, value: float) -> bool:
        recorded, run, sweep_run = self._live[proposal.number]
        recorded.report(value, step)
        run.log({self.metric: value}, step=step)
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
