"""Multi-fidelity search: where a trial is scored on its way (rungs), in what unit, and the default
rule that stops the worse trials there is `hpsearch.loop.halving`'s (asynchronous successive halving, ASHA).

Intermediate values of a Trainer search are keyed by progress, the part of the trial's training
done, in thousandths (333: a third), so that trials with different batch sizes or epochs are
compared at the same point. The rungs form a geometric ladder (1/9, 1/3, then the end), as
successive halving with a reduction factor of 3 wants them (`hpsearch.loop.halving`: the rule there).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna


PROGRESS_END = 1000  # progress of a finished trial's training
REDUCTION_FACTOR = 3  # each rung keeps the best third (ASHA's eta)
DEFAULT_EVALS_PER_TRIAL = 3  # rungs at 1/9 and 1/3 of training, then the trial's own final evaluation
MAX_EVALS_PER_TRIAL = 7  # the finest rung at 1/729 of training: one thousandth, the unit of progress


def rung_points(evals_per_trial: int) -> tuple[int, ...]:
    """The progress points of the rung evaluations for `evals_per_trial` evaluations a trial (the last
    being the trial's own final one): 3 -> (111, 333). None below 2; up to `MAX_EVALS_PER_TRIAL`."""
    count = max(evals_per_trial - 1, 0)
    return tuple(round(PROGRESS_END / REDUCTION_FACTOR**k) for k in range(count, 0, -1))


def progress(step: int, max_steps: int) -> int:
    """The progress of training at `step` of `max_steps`, in thousandths."""
    return round(PROGRESS_END * step / max(max_steps, 1))


def step_at(point: int, max_steps: int) -> int:
    """The first training step at which `point` thousandths of `max_steps` are done (at least 1)."""
    return max(math.ceil(point * max_steps / PROGRESS_END), 1)


def prunes(pruner: optuna.pruners.BasePruner) -> bool:
    """Whether an optuna pruner may stop a trial (`NopPruner` never does)."""
    import optuna

    return not isinstance(pruner, optuna.pruners.NopPruner)
