"""A rerun continues the study it finds: over the same space and with the same backend, or it is refused before any
trial (its trials would not be comparable, its proposals not the backend's); on another set-up (data, fixed
arguments: `hpsearch.trainer.fingerprint`), the user is told and decides. What a study was first run with is kept beside
it, as optuna study user attributes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from hpsearch.errors import ConfigError
from hpsearch.space import Dimension
from hpsearch.study import schema

if TYPE_CHECKING:
    import optuna


def check_space(study: optuna.Study, space: Mapping[str, Dimension | None], backend: str) -> None:
    """Record the space and backend of a new study; refuse, naming what changed, another space or backend than an
    earlier run of the study searched with (its trials would not be comparable, its proposals not the backend's)."""
    described = {name: repr(dim) if dim is not None else "fixed" for name, dim in space.items()}
    changes = changed_since(study, schema.SPACE, described)
    if changes:
        raise ConfigError(
            f"The study {study.study_name!r} in this storage was searched over another space: {'; '.join(changes)}. "
            "Search it over the same space to continue it, or pass a new `study_name` (or `output_dir`) for this one."
        )
    if changed_since(study, schema.BACKEND, {"backend": backend}):
        earlier = schema.study_fact(study.user_attrs, schema.BACKEND)["backend"]
        raise ConfigError(
            f"The study {study.study_name!r} in this storage was searched with backend={earlier!r}, not {backend!r}. "
            f"Continue it with backend={earlier!r}, or pass a new `study_name` (or `output_dir`) for this search."
        )


def changed_since(study: optuna.Study, key: str, described: Mapping[str, str]) -> list[str]:
    """What differs in `described` (name -> its description) from what the study's first run recorded under `key`;
    on that first run, records it and returns nothing."""
    earlier = schema.study_fact(study.user_attrs, key)
    if earlier is None:
        study.set_user_attr(key, dict(described))
        return []
    changes = [f"{name!r} is new" for name in described if name not in earlier]
    changes += [f"{name!r} is gone" for name in earlier if name not in described]
    changes += [
        f"{name!r} was {earlier[name]}, now {now}"
        for name, now in described.items()
        if name in earlier and earlier[name] != now
    ]
    return changes
