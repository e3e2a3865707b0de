"""The study store: opening it, and reading its trials back.

The store is an optuna study in optuna's own storage (a SQLite file in `output_dir` by
default, or any optuna storage URL), whichever backend chose the trials: optuna keeps it
crash-safe, and `load_trials` reads it back the same way for every backend. Only
`hpsearch.study.lifecycle` writes trials to it.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy

from hpsearch import compat
from hpsearch.errors import ConfigError
from hpsearch.space import Categorical, Dimension, Float, Int
from hpsearch.study import liveness, schema
from hpsearch.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    import optuna

STORE_FILE = "hpsearch.db"


def storage_url(output_dir: str | os.PathLike) -> str:
    """The default storage of a search writing to `output_dir`: a SQLite file inside it."""
    return f"sqlite:///{Path(output_dir).resolve() / STORE_FILE}"


def open_storage(
    storage: str | optuna.storages.BaseStorage | None,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    retry_stale_trials: int = 0,
    checked: bool = False,
) -> optuna.storages.BaseStorage:
    """An optuna storage from a URL (SQLite waits for locks held by other workers), a storage object,
    or None (in memory): the very object the study then writes through, a database one behind
    optuna's cache of finished trials, as `optuna.create_study` wraps it.

    A URL's database gets optuna's heartbeats: a running trial whose worker has not beaten for
    `grace_period` seconds is failed by the next worker that checks (`fail_stale_trials`), and its
    slot runs again (with its parameters, up to `retry_stale_trials` times); a storage object keeps its
    own. A database `checked` already (by the search's process, for its workers) skips optuna's schema
    check: a second of a worker's start."""

    if isinstance(storage, str):
        beats = {}
        if heartbeat_interval is not None:
            beats = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
            beats["heartbeat_stale_trial_callback"] = liveness.on_stale(retry_stale_trials)
        storage = _database(storage, {**beats, "skip_compatibility_check": checked})
    return compat.storage_object(storage)


def _database(storage: str, beats: dict[str, Any]) -> optuna.storages.RDBStorage:
    import optuna

    engine_kwargs = None
    if storage.startswith("sqlite:///"):
        Path(storage[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60}}
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # optuna calls its heartbeats experimental, since 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs, **beats)
        except sqlalchemy.exc.ArgumentError as e:
            raise ConfigError(
                f"Cannot open the study storage {hide_password(storage)} ({e}). `storage` must be an optuna "
                "storage URL such as 'sqlite:///path/hpsearch.db' or 'postgresql://user@host/db'."
            ) from None
        except ImportError as e:
            raise ConfigError(
                f"Cannot open the study storage {hide_password(storage)}: its database driver is not installed "
                f"({e}). Install the driver the URL names (postgresql:// means psycopg 3: `pip install "
                "'psycopg[binary]'`; postgresql+psycopg2:// means psycopg2-binary; mysql+pymysql:// PyMySQL)."
            ) from None
        except sqlalchemy.exc.SQLAlchemyError as e:
            # another worker creating the tables at the same moment: "table ... already exists"
            racing = isinstance(e, sqlalchemy.exc.IntegrityError) or "already exists" in str(e)
            if not racing or attempt == 4:
                raise ConfigError(
                    f"Cannot open the study storage {hide_password(storage)} ({_reason(e)}). Check `storage`: "
                    "the URL, that its database server runs and can be reached, and its user and password."
                ) from None
            time.sleep(0.2 * (attempt + 1))


def hide_password(url: str) -> str:
    """`url` with its password, if any, replaced by ***: safe to print."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return "<not a database URL>"


def _reason(error: sqlalchemy.exc.SQLAlchemyError) -> str:
    """The database's own words, without SQLAlchemy's statement dump (which may hold values)."""
    original = getattr(error, "orig", None)
    return str(original if original is not None else error).strip().splitlines()[0]


def open_study(
    storage: str | optuna.storages.BaseStorage | None,
    study_name: str,
    directions: Sequence[str],
    load_if_exists: bool = True,
    **create_kwargs: Any,
) -> optuna.Study:
    """Create the study, or load it to continue a search; its directions must not have changed."""
    import optuna

    with quiet_optuna():
        study = optuna.create_study(
            storage=open_storage(storage),
            study_name=study_name,
            directions=list(directions),
            load_if_exists=load_if_exists,
            **create_kwargs,
        )
    stored = study_directions(study)
    if stored != list(directions):
        raise ConfigError(
            f"The study {study_name!r} in this storage was made with direction={stored}, not {list(directions)}. "
            "Pass the same `direction`, or a new `study_name` / `output_dir`."
        )
    schema.check_format(study)
    return study


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """optuna's INFO lines ("A new study created in memory", "Using an existing study") unsaid: hpsearch opens
    studies for its own bookkeeping. A verbosity the user chose (`optuna.logging.set_verbosity`) stays."""
    import optuna

    default = optuna.logging.get_verbosity() == optuna.logging.INFO
    if default:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        if default:
            optuna.logging.set_verbosity(optuna.logging.INFO)


def study_directions(study: optuna.Study) -> list[str]:
    """The study's directions as hpsearch names them ("minimize", "maximize")."""
    return [d.name.lower() for d in study.directions]


def suggest(trial: optuna.Trial, name: str, dim: Dimension) -> Any:
    """Sample one neutral dimension on an optuna trial (its fixed value, if it has one)."""
    if isinstance(dim, Categorical):
        return trial.suggest_categorical(name, dim.choices)
    if isinstance(dim, Float):
        return trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    return trial.suggest_int(name, dim.low, dim.high, log=dim.log)


def dimension(distribution: optuna.distributions.BaseDistribution | None) -> Dimension | None:
    """The neutral dimension of an optuna distribution (None for none, or a fixed value)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    try:
        if isinstance(distribution, CategoricalDistribution):
            return Categorical(distribution.choices)
        if isinstance(distribution, FloatDistribution):
            return Float(distribution.low, distribution.high, log=distribution.log)
        if isinstance(distribution, IntDistribution):
            return Int(distribution.low, distribution.high, log=distribution.log)
    except ValueError:  # low == high: optuna's way of fixing a value
        return None
    return None


def to_record(frozen: optuna.trial.FrozenTrial, stale: bool = False) -> TrialRecord:
    """The store's view of one optuna trial (`stale`: failed by the heartbeat check)."""
    error = schema.fact(frozen, schema.ERROR) or (liveness.STALE_ERROR if stale else None)
    state = "FAIL" if frozen.constraints.get(schema.OUT_OF_MEMORY) else frozen.state.name  # pruned to optuna only
    return TrialRecord(
        number=frozen.number,
        state=TrialState.PAUSED if schema.fact(frozen, schema.PAUSED) else schema.FROM_OPTUNA[state],
        params={**frozen.params, **(schema.fact(frozen, schema.EXTRA_PARAMS) or {})},
        values=list(frozen.values) if frozen.values is not None else None,
        intermediate=dict(frozen.intermediate_values),
        error=error,
        interrupted=stale or bool(schema.fact(frozen, schema.INTERRUPTED)),
        started=frozen.datetime_start,
        ran_before=schema.fact(frozen, schema.RAN) or 0.0,
        finished=frozen.datetime_complete,
    )


def best_record(study: optuna.Study, kept: int | None = None) -> TrialRecord:
    """The best trial of a single-objective study; of those tied with it, `kept` (whose model is kept) or the first."""
    import optuna

    best_value = study.best_value
    tied = [
        t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)) if t.value == best_value
    ]
    return to_record(next((t for t in tied if t.number == kept), min(tied, key=lambda t: t.number)))


def records(study: optuna.Study) -> list[TrialRecord]:
    """Every trial of `study`, as records, in trial-number order."""
    stale = liveness.stale_trials(study)
    return [to_record(t, t.number in stale) for t in study.get_trials(deepcopy=False)]


def load_study(
    output_dir: str | os.PathLike | None = None,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    option: str = "study_name",
) -> optuna.Study:
    """The study of a search, from its `output_dir` (or its `storage`), whichever backend ran it.

    `study_name` may be left out when the storage holds one study; `option` is what the caller calls it
    in its messages (the command line's `--study`).
    """
    import optuna

    if storage is None:
        if output_dir is None:
            raise ConfigError("Pass `output_dir` (the search's output directory) or `storage` (its storage URL).")
        if not (Path(output_dir) / STORE_FILE).is_file():
            raise FileNotFoundError(f"No hpsearch study in {str(output_dir)!r}: {STORE_FILE} is missing.")
        storage = storage_url(output_dir)
    storage = open_storage(storage)
    names = optuna.get_all_study_names(storage)
    if not names:
        raise ConfigError("The storage holds no study: no search has recorded a trial there yet.")
    if study_name is None:
        if len(names) != 1:
            raise ConfigError(f"The storage holds {len(names)} studies {names}; pass one of them with `{option}`.")
        study_name = names[0]
    elif study_name not in names:
        raise ConfigError(
            f"The storage holds no study {study_name!r}; its studies are {names}. Pass one of them with `{option}`."
        )
    return optuna.load_study(study_name=study_name, storage=storage)


def load_trials(
    output_dir: str | os.PathLike | None = None,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
) -> list[TrialRecord]:
    """The recorded trials of a search, whichever backend ran it, in trial-number order.

    Args:
        output_dir: the search's output directory (its store is `hpsearch.db` there).
        storage: or the study's storage (an optuna storage URL or object).
        study_name: needed only when the storage holds several studies.

    Returns:
        A `TrialRecord` per trial: `number`, `state`, `params`, `objective` / `values`,
        `intermediate` (step -> value), `error`, `interrupted`, `duration`.

    Raises:
        FileNotFoundError: no study in `output_dir`.
        ConfigError: neither given, or which study is unclear.

    Examples:
        >>> import tempfile, hpsearch
        >>> from hpsearch.space import Float
        >>> out = tempfile.mkdtemp()
        >>> _ = hpsearch.search(lambda t: t.params["x"], {"x": Float(0.0, 1.0)}, n_trials=3, output_dir=out,
        ...                     show_progress=False)
        >>> [(t.number, t.state.value) for t in hpsearch.load_trials(out)]
        [(0, 'complete'), (1, 'complete'), (2, 'complete')]
    """
    return records(load_study(output_dir, storage, study_name))
