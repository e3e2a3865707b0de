"""A Trainer as a recipe that travels to another process (a Ray worker), and the Trainer rebuilt from it there:
the Trainer itself does not pickle."""

from __future__ import annotations

import dataclasses
from typing import Any

import transformers

from hpsearch import compat


def trainer_recipe(trainer: transformers.Trainer) -> dict[str, Any]:
    """What rebuilds `trainer` in another process (a Ray worker): its constructor's inputs (the Trainer
    does not travel); the callbacks, except those the Trainer makes for itself, afresh there."""
    args = trainer.args
    own = compat.trainers_own_callbacks(args.report_to)
    return {
        "trainer_class": type(trainer),
        "args_class": type(args),
        "args": {f.name: getattr(args, f.name) for f in dataclasses.fields(args) if f.init},
        "callbacks": [type(c) if isinstance(c, own) else c for c in trainer.callback_handler.callbacks],
        "kwargs": {
            name: getattr(trainer, name)
            for name in (
                "model_init",
                "data_collator",
                "train_dataset",
                "eval_dataset",
                "processing_class",
                "compute_metrics",
                "preprocess_logits_for_metrics",
                "compute_loss_func",
            )
        },
    }


def rebuild_trainer(recipe: dict[str, Any]) -> transformers.Trainer:
    """The Trainer of a `trainer_recipe`, its callbacks in their places."""
    trainer = recipe["trainer_class"](model=None, args=recipe["args_class"](**recipe["args"]), **recipe["kwargs"])
    fresh = {type(c): c for c in trainer.callback_handler.callbacks}
    trainer.callback_handler.callbacks = [fresh.get(c, c) if isinstance(c, type) else c for c in recipe["callbacks"]]
    return trainer
