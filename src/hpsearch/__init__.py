"""hpsearch: hyperparameter search for 🤗 Transformers on optuna, SigOpt, Ray Tune and W&B.

`import hpsearch` imports no backend library and not transformers: `Trainer` and
`hyperparameter_search` load it when first used.

The public API is `__all__` below (the API reference documents each name of it), with `hpsearch.space` and, for a
backend of one's own, `hpsearch.backends.base`. Every other module is internal: it may change in any release.
"""

from importlib import metadata
from typing import Any

from hpsearch import space
from hpsearch.engine import Search, search
from hpsearch.errors import (
    ConfigError,
    HpsearchError,
    MissingExtra,
    ObjectiveError,
    RankFailed,
    SearchFailed,
    SearchInterrupted,
    TrialError,
)
from hpsearch.objective import default_compute_objective
from hpsearch.result import BestRun, SearchSummary
from hpsearch.study.store import load_trials
from hpsearch.trial import Trial, TrialPruned, TrialRecord, TrialState

try:
    __version__ = metadata.version("hpsearch")
except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__all__ = [
    "BestRun",
    "ConfigError",
    "HpsearchError",
    "MissingExtra",
    "ObjectiveError",
    "RankFailed",
    "Search",
    "SearchFailed",
    "SearchInterrupted",
    "SearchSummary",
    "Trainer",
    "Trial",
    "TrialError",
    "TrialPruned",
    "TrialRecord",
    "TrialState",
    "default_compute_objective",
    "hyperparameter_search",
    "load_trials",
    "search",
    "space",
]


def __getattr__(name: str) -> Any:
    if name in ("Trainer", "hyperparameter_search"):
        from hpsearch import transformers

        return getattr(transformers, name)
    raise AttributeError(f"module 'hpsearch' has no attribute {name!r}")
