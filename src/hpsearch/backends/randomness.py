"""An optimizer's own random state, apart from the global generators that user code reseeds.

transformers calls `set_seed(args.seed)` in `Trainer.__init__` and at every `train()`, which
reseeds Python's `random` and NumPy's global generator. W&B's `sweeps` engine and sigoptlite
draw their suggestions from those same generators, so without a state of their own every trial
of a Trainer search would get the same point.
"""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import Iterator

import numpy as np


def stream_seed(seed: int | None, stream: int, worker: int = 0) -> int:
    """The seed of draw stream `stream` of a search seeded with `seed` (None: the operating
    system's entropy). Pass the number of trials the study already holds as `stream`, so that a
    resumed search draws anew, and reproducibly; and the worker's index (`n_jobs`), so that
    workers starting together draw apart."""
    base = secrets.randbits(32) if seed is None else seed
    return int(np.random.SeedSequence([base, stream, *([worker] if worker else [])]).generate_state(1)[0])


class PrivateRandomState:
    """Python's and NumPy's global generators as one optimizer sees them, kept between its draws.

    Inside `active()` the global generators are the optimizer's; outside, the caller's, untouched
    by the optimizer. The same `seed` and `stream` give the same draws (see `stream_seed`).
    """

    def __init__(self, seed: int | None, stream: int = 0, worker: int = 0):
        own = stream_seed(seed, stream, worker)
        self._numpy = np.random.RandomState(own).get_state()
        self._python = random.Random(own).getstate()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Swap the optimizer's state into the global generators for the block, and back out after."""
        outside = random.getstate(), np.random.get_state()
        random.setstate(self._python)
        np.random.set_state(self._numpy)
        try:
            yield
        finally:
            self._python, self._numpy = random.getstate(), np.random.get_state()
            random.setstate(outside[0])
            np.random.set_state(outside[1])
