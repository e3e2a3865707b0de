"""Rung evaluations: a Trainer trial scored at fixed points of its training, for pruning only.

At each rung point (`hpsearch.loop.fidelity`: 1/9 and 1/3 of the trial's steps by default) the model is
evaluated quietly: no log, no `on_evaluate` for the callbacks, no best-checkpoint bookkeeping, so
the user's own evaluations, logs and objective stay as the user configured them. A rung scores at
most `subset_size` examples of each evaluation set: a fixed subset, the same for every trial of a
study (drawn from the study's name). What it reports (`RUNG_METRICS`) is the evaluation loss by
default, which ranks trials early in training better than the objective does on few examples
(bench/rung_signals.py), or the objective.
"""

from __future__ import annotations

import contextlib
import math
import random
import statistics
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import transformers
from transformers.trainer_utils import has_length

from hpsearch import compat
from hpsearch.errors import ConfigError
from hpsearch.loop.fidelity import step_at
from hpsearch.objective import check_values
from hpsearch.trainer.pausing import estimated_bytes
from hpsearch.trial import Trial

AUTO = "auto"  # the default `rung_eval_size`: sized from the trial's training (`auto_subset_size`)
# No rung on noise: a rung scores at least this many examples, the fewest on which the evaluation loss kept the best
# trial among the top third in 94% of subsets or more at every rung measured, from a trial's first optimizer step to
# its 32nd (32 examples: 68-98%, 64: 81-100%; bench/rung_signals.py --steps, BENCHMARKS.md "No rung on noise")
MIN_RUNG_EXAMPLES = 128
AUTO_FRACTION, AUTO_MIN, AUTO_MAX = 20, MIN_RUNG_EXAMPLES, 1000
RUNG_METRICS = ("loss", "objective")
DEFAULT_RUNG_METRIC = "loss"


def rung_score(
    rung_metric: str, compute_objective: Callable[[dict[str, float]], Any], direction: str
) -> Callable[[dict[str, float]], Any]:
    """What a rung reports of its metrics: the objective, or the evaluation loss (the mean over the
    evaluation sets), negated where the objective is maximised so that the pruner's better is the search's."""
    if rung_metric == "objective":
        return compute_objective
    sign = -1.0 if direction == "maximize" else 1.0

    def loss(metrics: dict[str, float]) -> float:
        losses = [value for name, value in metrics.items() if name.endswith("_loss")]
        if not losses:
            raise ConfigError(
                "The rungs score the evaluation loss (rung_metric='loss'), but the evaluation gave none (does the "
                "evaluation set have the labels the model takes?). Pass rung_metric='objective'."
            )
        return sign * sum(losses) / len(losses)

    return loss


def auto_subset_size(args: transformers.TrainingArguments, train_dataset: Any) -> int:
    """How many examples a rung scores by default: 1/20 of the examples a trial trains on (so that a trial's two
    rungs cost ~3% of its training: an example evaluated costs about a third of one trained), at least
    `MIN_RUNG_EXAMPLES` (fewer rank trials on noise) and at most 1,000. From the Trainer's own arguments, so that it
    is the same for every trial of the study."""
    if args.max_steps > 0:
        trained = args.max_steps * args.train_batch_size * args.gradient_accumulation_steps
    elif has_length(train_dataset):
        trained = len(train_dataset) * args.num_train_epochs
    else:
        return AUTO_MAX
    return int(min(max(trained / AUTO_FRACTION, AUTO_MIN), AUTO_MAX))


def rungs_that_fit(
    points: Sequence[int], trainer: transformers.Trainer, size: int | str | None
) -> tuple[tuple[int, ...], str]:
    """The rung points, none where an evaluation set (its subset sized automatically) has fewer than
    `MIN_RUNG_EXAMPLES` examples, too few to tell trials apart; and why they fell (else "")."""
    sets = trainer.eval_dataset.values() if isinstance(trainer.eval_dataset, dict) else [trainer.eval_dataset]
    smallest = min((len(d) for d in sets if has_length(d)), default=None)
    if points and size == AUTO and smallest is not None and smallest < MIN_RUNG_EXAMPLES:
        return (), (
            f"the evaluation set has {smallest} examples, too few to rank trials on before they end (a rung scores "
            f"at least {MIN_RUNG_EXAMPLES}; pass rung_eval_size to score it anyway)"
        )
    return tuple(points), ""


def fixed_subset(dataset: Any, size: int | None, study_name: str) -> Any:
    """At most `size` examples of `dataset`, the same ones for every trial of the study (None: all)."""
    if size is None or not has_length(dataset) or len(dataset) <= size:
        return dataset
    draw = random.Random(zlib.crc32(f"{study_name}/{len(dataset)}".encode()))
    indices = sorted(draw.sample(range(len(dataset)), size))
    return dataset.select(indices) if hasattr(dataset, "select") else torch.utils.data.Subset(dataset, indices)


def rung_sources(trainer: transformers.Trainer, size: int | str | None, study_name: str) -> list[tuple[str, Any]]:
    """What a rung scores: (metric prefix, what `get_eval_dataloader` takes) per evaluation set, named as
    `Trainer.evaluate` names them, each the study's fixed subset of at most `size` examples ("auto":
    `auto_subset_size`; None: all)."""
    if size == AUTO:
        size = auto_subset_size(trainer.args, trainer.train_dataset)
    if trainer.args.dataloader_persistent_workers:
        size = None  # the Trainer keeps one loader per evaluation set: a subset's would replace the user's
    sets = trainer.eval_dataset
    if isinstance(sets, dict):
        return [(f"eval_{n}", n if size is None else fixed_subset(d, size, study_name)) for n, d in sets.items()]
    return [("eval", None if size is None else fixed_subset(sets, size, study_name))]


class RungEvaluations(transformers.TrainerCallback):
    """Scores the trial at each rung point of its training and reports the score at that point's
    progress. When the backend says prune, training stops there and nothing more is evaluated or saved; when it
    says pause, training stops after what the user's schedule does at that step (an evaluation, a checkpoint, and
    those of an epoch's end where the step ends one), and the trial's own checkpoint is saved (`pausing`)."""

    def __init__(
        self,
        trainer: transformers.Trainer,
        trial: Trial,
        points: Sequence[int],
        score: Callable[[dict[str, float]], Any],
        sources: list[tuple[str, Any]],
        loss_only: bool = False,
    ):
        self.trainer, self.trial, self.score, self.sources = trainer, trial, score, sources
        self.loss_only = loss_only  # the score needs no predictions: none are gathered
        self.pending = list(points)
        self._latest: tuple[int, float] | None = None  # (step, score): two rungs on one step evaluate once

    def on_train_begin(self, args, state, control, **kwargs):
        """Resumed from a checkpoint: the rungs it passed were scored and reported before the crash."""
        self.pending = [point for point in self.pending if step_at(point, state.max_steps) > state.global_step]

    def on_step_end(self, args, state, control, **kwargs):
        while self.pending and state.global_step >= step_at(self.pending[0], state.max_steps):
            score = self._score_at(state.global_step)
            self.trial.pause_bytes = estimated_bytes(self.trainer)
            if self.trial.report(self.pending.pop(0), score):
                control.should_training_stop = True
                if not self.trial.pausing:  # a pruned trial's model is not evaluated or saved again
                    control.should_evaluate = control.should_save = False
                return

    def on_epoch_end(self, args, state, control, **kwargs):
        """A trial stopped mid-epoch has no epoch end to evaluate or save at; one paused at an epoch's last step
        has, as the user's schedule says."""
        if self.trial.should_stop and not (self.trial.pausing and float(state.epoch).is_integer()):
            control.should_evaluate = control.should_save = False

    def _score_at(self, step: int) -> float:
        if self._latest is None or self._latest[0] != step:
            self._latest = (step, self._evaluate())
        return self._latest[1]

    def _evaluate(self) -> float:
        """The rung's score; the trial's `score_error` its standard error where the score is the loss."""
        trainer = self.trainer
        metrics: dict[str, float] = {}
        errors: list[float | None] = []
        for prefix, source in self.sources:
            with batch_losses(trainer) as losses:
                output = trainer.evaluation_loop(
                    trainer.get_eval_dataloader(source),
                    description="Rung evaluation",
                    prediction_loss_only=True if self.loss_only or trainer.compute_metrics is None else None,
                    metric_key_prefix=prefix,
                )
            metrics.update(output.metrics)
            errors.append(standard_error(losses))
        for callback in trainer.callback_handler.callbacks:  # the progress bar `on_evaluate` would close
            compat.close_prediction_bar(callback)
        (value,) = check_values(self.score(metrics), 1)
        known = self.loss_only and None not in errors  # the score is the mean of the sets' losses
        self.trial.score_error = math.hypot(*errors) / len(errors) if known else None
        return value


@contextlib.contextmanager
def batch_losses(trainer: transformers.Trainer) -> Iterator[list[float]]:
    """The mean loss of each batch `trainer` evaluates meanwhile (what its `prediction_step` returns), from which
    the evaluation's standard error is measured (under DDP: this rank's batches, which overstates it)."""
    losses: list[float] = []
    own = vars(trainer).get("prediction_step")  # a step set on the instance, kept
    step = trainer.prediction_step

    def recorded(*args: Any, **kwargs: Any) -> Any:
        output = step(*args, **kwargs)
        if output[0] is not None:
            losses.append(float(output[0].float().mean()))
        return output

    trainer.prediction_step = recorded
    try:
        yield losses
    finally:
        if own is None:
            del trainer.prediction_step
        else:
            trainer.prediction_step = own


def standard_error(batch_means: Sequence[float]) -> float | None:
    """The standard error of the mean of an evaluation from its batches' means (None below two batches)."""
    if len(batch_means) < 2:
        return None
    return statistics.stdev(batch_means) / math.sqrt(len(batch_means))
