"""Per-trial experiment tracking: each trial of a Trainer search is its own run in every
`report_to` integration (TensorBoard, W&B, MLflow, ...), named after the trial, grouped by study,
with the trial's parameters, and its logs kept after the search.

transformers' integration callbacks make one run per `Trainer` (W&B, MLflow) or one log directory
per `output_dir` (TensorBoard). So each trial gets fresh instances of them, and hpsearch opens the
trial's W&B and MLflow runs itself (the callbacks then log into the open run) and points
TensorBoard at `<output_dir>/runs/<trial name>`, outside the trial's own directory, which the
search deletes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import transformers
from transformers.integrations import MLflowCallback, TensorBoardCallback, WandbCallback

from hpsearch.study import schema
from hpsearch.trial import Trial


class TrialTracking:
    """The tracking of one trial: `start` before it trains (its model built, its name known), `end`
    once it ended."""

    def __init__(self, trainer: transformers.Trainer, output_dir: Path, group: str):
        self.trainer, self.output_dir, self.group = trainer, output_dir, group
        self._ends: list[Any] = []

    def start(self, trial: Trial, name: str, args: transformers.TrainingArguments) -> None:
        handler = self.trainer.callback_handler
        integrations = tuple(transformers.integrations.get_reporting_integration_callbacks(args.report_to))
        handler.callbacks = [type(c)() if type(c) in integrations else c for c in handler.callbacks]
        if not self.trainer.is_world_process_zero():
            return
        fields = set(args.to_dict())
        # a TrainingArguments field as the Trainer will log it (cast), so no integration sees two values
        params = {key: getattr(args, key) if key in fields else value for key, value in trial.params.items()}
        for callback in handler.callbacks:
            if isinstance(callback, TensorBoardCallback):
                base = os.environ.get("TENSORBOARD_LOGGING_DIR") or self.output_dir / "runs"
                callback.logging_dir = os.path.join(os.path.expanduser(base), name)
            elif isinstance(callback, WandbCallback):
                self._start_wandb(trial, name, params)
            elif isinstance(callback, MLflowCallback):
                self._start_mlflow(trial, name, params)

    def end(self, failed: bool) -> None:
        """Close the runs `start` opened (not a backend's own)."""
        for close in self._ends:
            close(failed)
        self._ends.clear()

    def _start_wandb(self, trial: Trial, name: str, params: dict[str, Any]) -> None:
        import wandb

        run = trial.tracking_run
        if run is not None:  # the backend's run for this trial (a W&B sweep's): the trial logs there
            run.name = name
            run.config.update(params, allow_val_change=True)
            return
        # the current run (as `wandb.init` makes it by default) is what transformers' W&B callback logs to
        run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "huggingface"),
            name=name,
            group=self.group,
            config=params,
            dir=os.environ.get("WANDB_DIR") or str(self.output_dir),
            reinit="finish_previous",
            mode=os.environ.get("WANDB_MODE"),  # as it is now: W&B reads its environment once per process
        )
        self._ends.append(lambda failed: run.finish(exit_code=1 if failed else 0))

    def _start_mlflow(self, trial: Trial, name: str, params: dict[str, Any]) -> None:
        import mlflow

        if os.environ.get("MLFLOW_EXPERIMENT_NAME"):
            mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
        # inside a run the user opened, trials are its children; the study tag groups them either way
        mlflow.start_run(
            run_name=name,
            nested=mlflow.active_run() is not None,
            tags={schema.TRACKING_STUDY: self.group, schema.TRACKING_TRIAL: str(trial.number)},
        )
        mlflow.log_params(params)
        self._ends.append(lambda failed: mlflow.end_run("FAILED" if failed else "FINISHED"))
