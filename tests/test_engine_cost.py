"""The engine's cost per trial, counted in SQL statements (`bench/trial_cost.py` times it): a trivial trial costs
hpsearch's loop what it costs optuna's own `study.optimize` on the same SQLite storage, heartbeats on, and no more
as the study grows."""

from __future__ import annotations

import statistics
from collections import Counter

import optuna
import pytest
import sqlalchemy

import hpsearch
from hpsearch.space import Float

TRIALS = 120
WARM_UP = 10  # the study's creation, the first reads of each kind


@pytest.fixture
def statements():
    """SQL statements run so far, per database URL, on every SQLAlchemy engine."""
    counted: Counter[str] = Counter()

    def count(conn, cursor, statement, parameters, context, executemany):
        counted[str(conn.engine.url)] += 1

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", count)
    yield counted
    sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", count)


def per_trial(marks: list[int]) -> list[int]:
    """Statements between one trial's objective call and the next's: the tell of one trial, the ask of the next."""
    return [after - before for before, after in zip(marks[WARM_UP:], marks[WARM_UP + 1 :])]


def test_a_trivial_trial_costs_no_more_sql_than_in_optunas_own_loop_and_stays_flat(statements, tmp_path):
    optuna_url, hpsearch_url = f"sqlite:///{tmp_path / 'optuna.db'}", f"sqlite:///{tmp_path / 'hpsearch.db'}"
    marks: dict[str, list[int]] = {optuna_url: [], hpsearch_url: []}

    def objective(url):
        def trivial(trial):
            marks[url].append(statements[url])
            return trial.params["x"] ** 2

        return trivial

    storage = optuna.storages.RDBStorage(optuna_url, heartbeat_interval=60, grace_period=600)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda trial: objective(optuna_url)(_Suggested(trial)), n_trials=TRIALS)
    hpsearch.search(  # a database URL: hpsearch's heartbeats (60 s) and stale checks are on
        objective(hpsearch_url),
        {"x": Float(-10, 10)},
        n_trials=TRIALS,
        storage=hpsearch_url,
        sampler=optuna.samplers.RandomSampler(seed=0),
        show_progress=False,
    )
    theirs, ours = per_trial(marks[optuna_url]), per_trial(marks[hpsearch_url])
    assert statistics.mean(ours) <= 1.2 * statistics.mean(theirs), (statistics.mean(ours), statistics.mean(theirs))
    half = len(ours) // 2
    assert statistics.mean(ours[half:]) <= statistics.mean(ours[:half]) + 1  # flat: no read grows with the study


class _Suggested:
    """optuna's trial with `x` suggested, read as `trial.params` like hpsearch's."""

    def __init__(self, trial: optuna.Trial):
        self.params = {"x": trial.suggest_float("x", -10, 10)}
