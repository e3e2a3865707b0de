"""Warm start: a new search seeded with points known to be good, projected onto its space.

`WarmStart`: an earlier study's best completed trials (by its direction; for several, its Pareto front's first)
are queued in the new study before its first trial, so they run first, on the new data, as trials of
the new study: no value is copied across. A value the new space does not hold is dropped and sampled
(optuna), or its point skipped (the backends that run whole points only).

`FirstPoint`: where there is no earlier study, the values the user chose themselves (a Trainer's
`TrainingArguments`, transformers' defaults among them) are the new study's first trial, as tuned systems
start from defaults (optuna's `enqueue_trial`; priors as in piBO and PriorBand).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.backends.base import Backend
from hpsearch.errors import ConfigError
from hpsearch.settings import DEFAULT_STUDY_NAME
from hpsearch.space import Categorical, Dimension, Float, plain
from hpsearch.study import schema, store

if TYPE_CHECKING:
    import optuna

    from hpsearch.study.lifecycle import Trials

logger = logging.getLogger(__name__)
BEST_TRIALS = 3  # how many of the earlier study's best trials are queued, at most
_FIXES = {  # the way out, for the backends that never run a queued trial
    "ray": "give Tune's search algorithm the earlier points instead, e.g. search_alg=OptunaSearch("
    "points_to_evaluate=[...]) with their parameters from hpsearch.load_trials(...)",
    "wandb": "a W&B server's agents run the sweep's own runs only, so search locally (server=False, no sweep_id)",
}


@dataclass
class WarmStart:
    """The earlier study's best points projected onto the new space (`space`), to be queued once."""

    source: str  # the earlier study, in words
    identity: tuple[str, Any]  # its name and first trial's start: the very study being searched is refused
    space: Mapping[str, Dimension | None]
    points: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # an earlier trial's number, its point
    skipped: list[str] = field(default_factory=list)  # the earlier trials left out, and why
    disjoint: str | None = None  # the warning when the two spaces share no parameter

    @classmethod
    def load(
        cls, warm_start: Any, backend: Backend, space: Mapping[str, Dimension | None], n_trials: int
    ) -> WarmStart | None:
        """The earlier study `warm_start` names (an output_dir, a storage URL, an `optuna.Study`; None: none),
        checked and projected: ConfigError where it cannot be (no study, no completed trial, a backend with its
        own loop)."""
        if warm_start is None:
            return None
        whole_only = _runs_queued(backend, warm_start) == "whole"
        study, source = _load_study(warm_start)
        warm = cls(source, _identity(study), space)
        best = [store.to_record(t) for t in _best_trials(study, warm_start)]
        earlier = sorted({name for trial in best for name in trial.params})
        if not {name for name, dim in space.items() if dim is not None} & set(earlier):
            warm.disjoint = (
                f"Warm start from {source} queued nothing: its parameters {earlier} and this search's {sorted(space)} "
                "have none in common (only the parameters hp_space declares are warm-started)."
            )
        for trial in best:
            warm._take(trial.number, project(trial.params, space), backend.name if whole_only else None, n_trials)
        return warm

    def _take(self, number: int, point: dict[str, Any], whole_only: str | None, n_trials: int) -> None:
        """Keep earlier trial `number`'s projected point, or say why not (`whole_only`: the backend's name)."""
        lacks = sorted(name for name in self.space if name not in point)
        if not point:
            why = "none of its values lies inside this search's space"
        elif whole_only and lacks:
            why = f"it has no value for {lacks} inside this search's space, and {whole_only!r} runs whole points only"
        elif point in [p for _, p in self.points]:
            why = "once projected, it is the same point as a better trial"
        elif len(self.points) >= n_trials:
            why = f"n_trials={n_trials} leaves it no slot"
        else:
            self.points.append((number, point))
            return
        self.skipped.append(f"trial {number}: {why}")

    def enqueue(self, trials: Trials) -> None:
        """Queue the points in the new study, if it has no trial yet (a rerun queues nothing again), and say what
        was queued and skipped, as a warning: a user sees it before the first trial, whatever logging they set up."""
        if trials.created():
            if _identity(trials.study) == self.identity:
                raise ConfigError(
                    f"`warm_start` is the very study this search continues ({self.source}): rerunning the same call "
                    "already resumes it. Leave out `warm_start`, or pass another study."
                )
            return
        if self.disjoint:
            logger.warning(self.disjoint)
        for reason in [] if self.disjoint else self.skipped:
            logger.warning(f"Warm start from {self.source}: skipped {reason}.")
        queued = [
            (trials.enqueue(waiting(point, self.space, f"trial {n} of {self.source}")), n) for n, point in self.points
        ]
        trials.remember(
            schema.WARM_START, {"source": self.source, "trials": [{"trial": q, "from": n} for q, n in queued]}
        )
        if queued:
            logger.warning(
                f"Warm start from {self.source}: its trials {[n for _, n in queued]} run first, as trials "
                f"{[q for q, _ in queued]}."
            )
        elif not self.disjoint:
            logger.warning(f"Warm start from {self.source} queued nothing: each of its best trials was skipped.")


@dataclass
class FirstPoint:
    """The user's own values inside the space (`point`), queued once as a new study's first trial; the space's other
    parameters sampled (`outside`: the user's values it left out, in words)."""

    point: dict[str, Any]
    space: Mapping[str, Dimension | None]
    outside: list[str]

    @classmethod
    def of(
        cls, values: Mapping[str, Any] | None, backend: Backend, space: Mapping[str, Dimension | None]
    ) -> FirstPoint | None:
        """The `values` (a name -> value mapping, names beyond the space's ignored) that lie inside `space`; None
        where none does, or the backend runs no queued trial (Ray, a W&B server) or whole points only and some
        parameter has no value inside."""
        if not values:
            return None
        point = project({name: value for name, value in values.items() if name in space}, space)
        outside = [f"{name}={values[name]!r}" for name in space if name in values and name not in point]
        lacks = [name for name, dim in space.items() if dim is not None and name not in point]
        runs = backend.runs_queued()
        if not point or runs is None or (runs == "whole" and lacks):
            return None
        return cls(point, space, outside)

    def enqueue(self, trials: Trials) -> None:
        """Queue the point in the new study, if it has no trial yet (a rerun, or a warm start's, queues nothing)."""
        if trials.created():
            return
        number = trials.enqueue(waiting(self.point, self.space, "the user's values"))
        beyond = f"; {', '.join(self.outside)} lie outside the space, sampled" if self.outside else ""
        logger.info(f"Trial {number} runs your own values first: {self.point}{beyond}.")


def waiting(point: dict[str, Any], space: Mapping[str, Dimension | None], origin: str) -> optuna.trial.FrozenTrial:
    """A queued trial with `point`, recorded in `space`'s distributions, its `origin` kept beside it."""
    import optuna

    fixed = optuna.trial.FixedTrial(point)
    for name in point:
        store.suggest(fixed, name, space[name])
    return optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING,
        params=point,
        distributions=fixed.distributions,
        user_attrs={schema.WARM_START: origin},
    )


def project(params: Mapping[str, Any], space: Mapping[str, Dimension | None]) -> dict[str, Any]:
    """The parameters of `params` that `space` holds: one it lacks, gives no range, or whose value falls
    outside its dimension (a range, the choices) is left out."""
    point = {}
    for name, value in params.items():
        dim = space.get(name)
        value = plain(value, dim)
        if dim is None or (isinstance(value, bool) and not isinstance(dim, Categorical)):
            continue
        if isinstance(dim, Float) and isinstance(value, int):
            value = float(value)
        if dim.contains(value):
            point[name] = value
    return point


def _runs_queued(backend: Backend, warm_start: Any) -> str:
    """How `backend` runs a queued trial ("partial", "whole"); ConfigError where it never does."""
    runs = backend.runs_queued()
    if runs is None:
        fix = _FIXES.get(backend.name, "use backend='optuna'")
        raise ConfigError(
            f"The {backend.name!r} backend runs its trials its own way, so `warm_start` cannot queue any in it. "
            f"Received: warm_start={warm_start!r}; {fix}."
        )
    return runs


def _identity(study: optuna.Study) -> tuple[str, Any]:
    first = study.get_trials(deepcopy=False)[:1]
    return study.study_name, first[0].datetime_start if first else None


def _best_trials(study: optuna.Study, warm_start: Any) -> list[optuna.trial.FrozenTrial]:
    """Its best completed trials: by its direction, or its Pareto front's first, at most `BEST_TRIALS`."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ConfigError(
            f"`warm_start` study {study.study_name!r} has no completed trial to start from. Received: "
            f"warm_start={warm_start!r}; pass a study with at least one."
        )
    if len(study.directions) > 1:
        return sorted(study.best_trials, key=lambda t: t.number)[:BEST_TRIALS]
    sign = -1 if store.study_directions(study) == ["maximize"] else 1
    return sorted(complete, key=lambda t: (sign * t.value, t.number))[:BEST_TRIALS]


def _load_study(warm_start: Any) -> tuple[optuna.Study, str]:
    """The earlier study, and where it is, in words."""
    import optuna

    if isinstance(warm_start, optuna.Study):
        return warm_start, f"study {warm_start.study_name!r}"
    if not isinstance(warm_start, (str, os.PathLike)):
        raise ConfigError(
            f"`warm_start` must be an earlier search's output_dir, its storage URL or an optuna.Study. "
            f"Received: warm_start={warm_start!r}."
        )
    url, where = _storage_url(os.fspath(warm_start))
    try:
        storage = store.open_storage(url)
    except ConfigError as e:
        raise ConfigError(f"`warm_start`: {e}") from None
    names = optuna.get_all_study_names(storage)
    if len(names) != 1 and DEFAULT_STUDY_NAME not in names:
        raise ConfigError(
            f"`warm_start` storage {where} holds {len(names)} studies {names}, none named {DEFAULT_STUDY_NAME!r}. "
            "Pass the one to start from: warm_start=optuna.load_study(study_name=..., storage=...)."
        )
    name = names[0] if len(names) == 1 else DEFAULT_STUDY_NAME
    return optuna.load_study(study_name=name, storage=storage), f"study {name!r} in {where}"


def _storage_url(target: str) -> tuple[str, str]:
    """The storage URL of an output_dir (its hpsearch.db) or a URL, and where it is in words; never a new store."""
    if "://" not in target:
        if not (Path(target) / store.STORE_FILE).is_file():
            raise ConfigError(
                f"`warm_start` names no earlier search: {target!r} holds no {store.STORE_FILE}. Received: "
                f"warm_start={target!r}; pass an earlier search's output_dir, its storage URL or an optuna.Study."
            )
        return store.storage_url(target), str(Path(target).resolve())
    if target.startswith("sqlite:///") and not Path(target[len("sqlite:///") :].split("?", 1)[0]).is_file():
        raise ConfigError(
            f"`warm_start` names no earlier study: the SQLite file of {target!r} does not exist. Pass an earlier "
            "search's output_dir, its storage URL or an optuna.Study."
        )
    return target, store.hide_password(target)
