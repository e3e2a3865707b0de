"""Property tests: a neutral space converted to each backend's native format and back keeps the
user's bounds, choices and types, and each backend samples only inside them."""

from __future__ import annotations

import math

import optuna
from hypothesis import given, settings
from hypothesis import strategies as st

from hpsearch.backends import ray as ray_backend
from hpsearch.backends import sigopt as sigopt_backend
from hpsearch.backends import wandb_sweep as wandb_backend
from hpsearch.space import Categorical, Float, Int
from hpsearch.study.store import suggest

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def floats(draw):
    log = draw(st.booleans())
    low = draw(st.floats(min_value=1e-8, max_value=1e3) if log else finite)
    width = draw(st.floats(min_value=1e-3, max_value=1e4))
    return Float(low, low + width if not log else low * (1 + width), log=log)


@st.composite
def ints(draw):
    log = draw(st.booleans())
    low = draw(st.integers(min_value=1 if log else -1000, max_value=1000))
    return Int(low, draw(st.integers(min_value=low + 1, max_value=low + 5000)), log=log)


choices = st.lists(
    st.one_of(st.integers(-100, 100), st.text(min_size=1, max_size=5)), min_size=1, max_size=6, unique_by=str
)
dimensions = st.one_of(floats(), ints(), choices.map(Categorical))


@given(dimensions)
def test_ray_round_trip(dim):
    assert ray_backend.to_neutral(ray_backend.to_ray(dim)) == dim


@given(dimensions)
def test_wandb_round_trip(dim):
    assert wandb_backend.to_neutral(wandb_backend.to_wandb(dim)) == dim


@given(st.one_of(floats(), ints().map(lambda d: Int(d.low, d.high))))
def test_sigopt_round_trip_of_numbers(dim):
    assert sigopt_backend.to_neutral(sigopt_backend.to_sigopt("p", dim)) == dim


def inside(dim, value) -> bool:
    if isinstance(dim, Categorical):
        return value in dim.choices
    kind = float if isinstance(dim, Float) else int
    tolerance = 1e-9 * max(1.0, abs(dim.high))
    return isinstance(value, kind) and dim.low - tolerance <= value <= dim.high + tolerance


@settings(max_examples=50, deadline=None)
@given(dimensions)
def test_optuna_samples_inside_with_the_users_types(dim):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0))
    for _ in range(5):
        assert inside(dim, suggest(study.ask(), "p", dim))


@settings(max_examples=50, deadline=None)
@given(dimensions)
def test_ray_samples_inside_with_the_users_types(dim):
    from hpsearch.space import plain

    domain = ray_backend.to_ray(dim)
    for value in domain.sample(size=5):
        assert inside(dim, plain(value, dim)) or (isinstance(dim, Float) and math.isclose(value, dim.high))


@settings(max_examples=30, deadline=None)
@given(dimensions)
def test_wandb_sweep_engine_samples_inside_with_the_users_types(dim):
    import sweeps

    from hpsearch.space import plain

    config = {"method": "random", "parameters": {"p": wandb_backend.to_wandb(dim)}}
    for _ in range(3):
        value = sweeps.next_run(config, []).config["p"]["value"]
        assert inside(dim, plain(value, dim))
