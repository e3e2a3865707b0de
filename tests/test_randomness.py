"""`hpsearch.backends.randomness`: the seed of each draw stream (a search's seed, the trials its study holds, the
worker), and an optimizer's own Python and NumPy random state, kept apart from the global generators that
transformers' `set_seed` reseeds at every trial."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hpsearch.backends.randomness import PrivateRandomState, stream_seed


@pytest.fixture(autouse=True)
def global_generators_kept():
    """These tests reseed the global generators: the tests after them find them as they were."""
    saved = random.getstate(), np.random.get_state()
    yield
    random.setstate(saved[0])
    np.random.set_state(saved[1])


def seed_globals(seed: int) -> None:
    """Reseed Python's and NumPy's global generators, as `transformers.set_seed` does."""
    random.seed(seed)
    np.random.seed(seed)


def draws(n: int = 4) -> tuple[list[float], list[float]]:
    """`n` draws of Python's global generator and `n` of NumPy's."""
    return [random.random() for _ in range(n)], list(np.random.random_sample(n))


def test_a_stream_seed_is_a_32_bit_int_that_the_same_seed_stream_and_worker_give_again():
    seed = stream_seed(42, 3, worker=2)
    assert isinstance(seed, int) and 0 <= seed < 2**32
    assert stream_seed(42, 3, worker=2) == seed
    assert stream_seed(42, 3) == stream_seed(42, 3, worker=0)  # the first worker's: a single process's


def test_each_seed_stream_and_worker_draws_apart():
    seeds = {(s, k, w): stream_seed(s, k, w) for s in (0, 1, 42) for k in range(5) for w in range(4)}
    assert len(set(seeds.values())) == len(seeds)  # no two alike: a resumed search or a second worker draws anew


def test_without_a_seed_every_stream_seed_is_new():
    assert len({stream_seed(None, 0) for _ in range(8)}) == 8


def test_the_same_seed_and_stream_draw_the_same_values_and_another_stream_others():
    first, again, other = PrivateRandomState(7, stream=1), PrivateRandomState(7, stream=1), PrivateRandomState(7, 2)
    with first.active():
        drawn = draws()
    with again.active():
        assert draws() == drawn
    with other.active():
        python, numpy = draws()
    assert python != drawn[0] and numpy != drawn[1]


def test_the_callers_generators_are_as_they_were_after_the_optimizer_draws():
    seed_globals(123)
    expected = draws()
    seed_globals(123)
    with PrivateRandomState(0).active():
        draws(10)
    assert draws() == expected


def test_the_optimizer_draws_on_where_it_stopped_whatever_reseeds_the_globals_between():
    continuous = PrivateRandomState(5)
    with continuous.active():
        expected = draws(6)
    state = PrivateRandomState(5)
    with state.active():
        head = draws(3)
    seed_globals(0)  # transformers' set_seed(args.seed), before the next trial
    with state.active():
        tail = draws(3)
    assert (head[0] + tail[0], head[1] + tail[1]) == expected


def test_the_optimizer_draws_inside_are_not_the_callers():
    seed_globals(0)
    callers = draws()
    seed_globals(0)
    with PrivateRandomState(0).active():
        inside = draws()
    assert inside[0] != callers[0] and inside[1] != callers[1]


def test_an_error_inside_still_gives_the_caller_its_generators_back_and_keeps_the_draws_made():
    continuous = PrivateRandomState(9)
    with continuous.active():
        expected = draws(2)
    seed_globals(1)
    callers = draws()
    seed_globals(1)
    state = PrivateRandomState(9)
    with pytest.raises(KeyError), state.active():
        draws(1)
        raise KeyError("the optimizer failed")
    assert draws() == callers
    with state.active():
        python, numpy = draws(1)
    assert (python[0], numpy[0]) == (expected[0][1], expected[1][1])  # the next draw after the one made
