"""The fault tests' search space, x in [0, 1], in each backend's own format."""

from __future__ import annotations

from typing import Any


def native_space(backend: str) -> Any:
    """The space x in [0, 1] in the backend's own format."""
    if backend == "ray":
        from ray import tune

        return {"x": tune.uniform(0.0, 1.0)}
    return {
        "optuna": lambda trial: {"x": trial.suggest_float("x", 0.0, 1.0)},
        "sigopt": [{"name": "x", "type": "double", "bounds": {"min": 0.0, "max": 1.0}}],
        "wandb": {"method": "bayes", "parameters": {"x": {"min": 0.0, "max": 1.0}}},
    }[backend]
