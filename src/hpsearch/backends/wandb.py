"""The W&B backend: W&B sweep configs, with or without a W&B server.

Local mode (no server configured): W&B's own open-source sweep engine (`sweeps.next_run`,
`sweeps.stop_runs` for hyperband) chooses the trials, driven by our engine; each trial is an
offline W&B run under `<output_dir>/wandb`, grouped by sweep, that `wandb sync` uploads later.
Server mode (`server=True`, a `sweep_id=` that is not this study's local sweep, or a
`WANDB_API_KEY` unless WANDB_MODE is offline or disabled): the sweep is made with `wandb.sweep` and
`wandb.agent` runs its trials (`hpsearch.executors.wandb_agent`), each through the same loop. Either
way, trials go to the study store, and each trial's W&B run is the current run (`wandb.run`) while
it trains, so the Trainer's own W&B logging (`report_to="wandb"`) goes into it.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from collections.abc import Callable
from typing import Any

import sweeps

# The sweep engine's methods, imported now rather than lazily inside its private random state:
# importing them draws from the global generators, which would shift the first search's proposals.
import sweeps.bayes_search  # noqa: F401
import sweeps.grid_search  # noqa: F401
import sweeps.hyperband_stopping  # noqa: F401
import sweeps.random_search  # noqa: F401
import wandb

from hpsearch import compat
from hpsearch.backends.base import AskTellBackend, Proposal, StartedTrial, StudyView
from hpsearch.backends.randomness import PrivateRandomState
from hpsearch.backends.wandb_sweep import SWEEP_STATES, sweep_config, sweep_goal, sweep_run, to_neutral
from hpsearch.errors import ConfigError
from hpsearch.settings import SearchSettings
from hpsearch.space import (
    Dimension,
    neutral_space,
    plain,
)
from hpsearch.study import schema
from hpsearch.trial import TrialState

logger = logging.getLogger(__name__)
# bands at a run's 1st, 2nd, 4th... reported values (the rungs), each keeping the better half
DEFAULT_EARLY_TERMINATE = {"type": "hyperband", "min_iter": 1, "eta": 2}


class WandbBackend(AskTellBackend):
    """W&B sweeps: `method` random, grid or bayes; `early_terminate` hyperband (by default, bands at
    the search's rungs; `None`: no early termination); `project`, `entity`; `seed` for
    reproducible proposals (local mode). As in transformers, `name` is the sweep's (locally: its
    runs' group) and `metric` the name of the metric it optimises: the objective, logged under it."""

    name = "wandb"
    max_objectives = 1

    def __init__(
        self,
        hp_space: Any,
        settings: SearchSettings,
        project: str | None = None,
        entity: str | None = None,
        sweep_id: Any = None,
        server: bool | None = None,
        agent: Callable[..., Any] | None = None,
        seed: int | None = None,
        name: str | None = None,
        metric: str | None = None,
    ):
        super().__init__(hp_space, settings)
        space = self.default_space() if hp_space is None else hp_space
        # a sweep of ours: W&B's hyperband unless it has a rule of its own (or `"early_terminate": None`)
        early_terminate = DEFAULT_EARLY_TERMINATE if sweep_id is None else None
        self.config = sweep_config(space, self.directions[0], early_terminate, name=name, metric=metric)
        self.metric = self.config["metric"]["name"]
        self.space = neutral_space(self.config["parameters"], to_neutral)
        self.project = project or os.environ.get("WANDB_PROJECT") or "hpsearch"
        self.entity = entity or os.environ.get("WANDB_ENTITY")
        # transformers gives `best_run.run_summary` back as `sweep_id` to continue a sweep: it is ours
        self.sweep_id = getattr(sweep_id, "native", sweep_id)
        self.server = server
        self.agent = agent
        self.seed = seed
        self.dir = settings.output_dir or tempfile.mkdtemp(prefix="hpsearch-wandb-")
        self._live: dict[int, tuple[Any, sweeps.SweepRun]] = {}  # trial number -> its W&B run, its sweep run

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
    def objective_metric(cls, options: dict[str, Any]) -> str | None:
        """`metric=`: transformers' W&B search optimises that evaluation metric, so a Trainer search makes it the
        objective."""
        return options.get("metric")

    @classmethod
    def space_directions(cls, hp_space: Any) -> list[str] | None:
        """The sweep's own metric goal decides when the caller passes no `direction`."""
        goal = sweep_goal(cls.default_space() if hp_space is None else hp_space)
        return [goal] if goal else None

    def _server(self, trials: StudyView | None) -> bool:
        """Whether a W&B server runs the sweep: asked for, or implied by a sweep id this study did not
        make locally (without `trials`: any sweep id), or by an API key (unless W&B is offline or disabled)."""
        if self.server is not None:
            return self.server
        if self.sweep_id:
            return trials is None or self.sweep_id != trials.recall(schema.WANDB_SWEEP)
        return bool(os.environ.get("WANDB_API_KEY")) and os.environ.get("WANDB_MODE") not in ("offline", "disabled")

    def param_space(self) -> dict[str, Dimension | None]:
        return {name: self.space.get(name) for name in self.config["parameters"]}

    @property
    def can_prune(self) -> bool:
        return "early_terminate" in self.config and not self.server

    def runs_queued(self) -> str | None:
        return None if self._server(None) else "whole"  # a server's agent runs the sweep's runs only

    def placed_by(self, trials: StudyView) -> str | None:
        """Server mode: the W&B agent runs the trials (`hpsearch.executors.wandb_agent`)."""
        return "wandb-agent" if self._server(trials) else None

    def start(self, trials: StudyView) -> str:
        """Local mode: the sweep engine set up on the study's runs. Server mode: the sweep made on the server unless
        it exists. Either way the sweep's id, which `sweep_id=` takes to continue it."""
        self.server = self._server(trials)
        if self.server and self.settings.workers > 1:
            raise ConfigError(
                "`n_jobs` with a W&B server: W&B runs parallel agents its own way. Start `wandb agent SWEEP_ID` "
                "in several shells (each runs your script's trials), or use n_jobs=1."
            )
        # what the sweep engine sees: the store's finished trials (a rerun continues the sweep), then ours
        self.runs = [sweep_run(r, self.metric) for r in trials.records() if r.counts]
        if self.server:
            self.sweep_id = self.sweep_id or wandb.sweep(self.config, project=self.project, entity=self.entity)
            return self.sweep_id
        # the engine's own random state, this worker's
        self.random_state = PrivateRandomState(self.seed, stream=len(self.runs), worker=self.settings.worker)
        self.trials = trials
        self.sweep_id = trials.recall(schema.WANDB_SWEEP) or secrets.token_hex(4)
        trials.remember(schema.WANDB_SWEEP, self.sweep_id)
        self._set_environment()
        return self.sweep_id

    def _set_environment(self) -> None:
        """What `wandb.agent` sets for the runs of a sweep: its project and entity (none, offline)."""
        os.environ.update(WANDB_PROJECT=self.project, WANDB_ENTITY=self.entity or "")

    def _settings(self) -> wandb.Settings:
        return compat.quiet_wandb_settings()

    def ask(self) -> Proposal | None:
        if self.settings.workers > 1:  # the runs the other workers finished meanwhile
            known = {run.name for run in self.runs}
            others = [r for r in self.trials.records() if r.counts and str(r.number) not in known]
            self.runs += [sweep_run(r, self.metric) for r in others]
        with self.random_state.active():
            suggestion = sweeps.next_run(self.config, self.runs)
        if suggestion is None:
            return None  # a grid with every point run
        return Proposal({name: plain(p["value"], self.space.get(name)) for name, p in suggestion.config.items()})

    def begin(self, proposal: Proposal, trial: StartedTrial) -> None:
        """The trial's W&B run (local mode; the agent's own in server mode), current while the trial
        trains ("finish_previous"), for the Trainer's W&B logging to join."""
        if proposal.tracking_run is None:
            proposal.tracking_run = wandb.init(
                mode="offline",
                dir=self.dir,
                project=self.project,
                entity=self.entity or None,
                group=self.config.get("name", self.settings.study_name),  # the runs of a sweep, as W&B shows them
                name=f"trial-{trial.number}",
                config=proposal.params,
                reinit="finish_previous",
                settings=self._settings(),
            )
        proposal.native = proposal.params
        config = {name: {"value": value} for name, value in proposal.params.items()}
        sweep_run = sweeps.SweepRun(name=str(trial.number), state=sweeps.RunState.running, config=config)
        self.runs.append(sweep_run)
        self._live[trial.number] = (proposal.tracking_run, sweep_run)

    def agent_run(self) -> Proposal:
        """Server mode, inside the agent: the run the agent started, with the parameters the sweep chose."""
        run = wandb.init(dir=self.dir, settings=self._settings())
        chosen = {name: value for name, value in dict(run.config).items() if not name.startswith("_")}
        return Proposal({name: plain(value, self.space.get(name)) for name, value in chosen.items()}, tracking_run=run)

    def report(self, proposal: Proposal, step: int, value: float) -> bool:
        run, sweep_run = self._live[proposal.number]
        # no `step=`: the Trainer's own W&B logging may share this run, with steps of its own
        run.log({self.metric: value, "hpsearch/step": step})
        sweep_run.history.append({self.metric: value, "_step": step})
        if not self.can_prune:
            return False
        return any(r.name == sweep_run.name for r in sweeps.stop_runs(self.config, self.runs))

    def tell(self, proposal: Proposal, state: TrialState, values: list[float] | None) -> None:
        run, sweep_run = self._live.pop(proposal.number)
        sweep_run.state = SWEEP_STATES[state]
        if values is not None:
            sweep_run.summary_metrics = {self.metric: values[0]}
            run.summary[self.metric] = values[0]
        run.finish(exit_code=1 if state is TrialState.FAILED else 0)
