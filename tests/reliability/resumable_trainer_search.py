"""A Trainer search in a process of its own, for the kill-and-resume tests.

Usage: python tests/resumable_trainer_search.py OUTPUT_DIR MODEL_DIR N_TRIALS
With KILL_AT_TRIAL=k set, the process SIGKILLs itself at training step KILL_AT_STEP (default 1: before
its first rung, where it could be pruned) of trial k. With SAVE_STEPS=n the trials save a checkpoint
every n steps, evaluate there, and end on their "best" checkpoint (`load_best_model_at_end`), the one of
highest loss (the first one). Every trial
that starts appends its number to OUTPUT_DIR/started.log, and every step it trains `<trial> <global step>`
to OUTPUT_DIR/steps.log.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainerCallback,
    TrainingArguments,
)

import hpsearch  # noqa: E402
from tests.conftest import ListDataset, compute_metrics, make_sentences  # noqa: E402

gc.freeze()  # the libraries' objects: each trial's release of its model then collects only the trial's

output_dir, model_dir, n_trials = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
kill_at, kill_step = int(os.environ.get("KILL_AT_TRIAL", "-1")), int(os.environ.get("KILL_AT_STEP", "1"))
save_steps = int(os.environ.get("SAVE_STEPS", "0"))
running = {}


def model_init(trial):
    if trial is not None:
        running["trial"] = trial.number
        with open(output_dir / "started.log", "a") as log:
            log.write(f"{trial.number}\n")
    return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)


class KillMidTrial(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        with open(output_dir / "steps.log", "a") as log:
            log.write(f"{running.get('trial')} {state.global_step}\n")
        if running.get("trial") == kill_at and state.global_step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)


tokenizer = AutoTokenizer.from_pretrained(model_dir)
trainer = hpsearch.Trainer(
    model_init=model_init,
    args=TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=16,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        **(
            {"save_strategy": "steps", "save_steps": save_steps, "eval_strategy": "steps", "eval_steps": save_steps}
            # the "best" checkpoint the one of highest loss: the first, from before the kill at step 10
            | {"load_best_model_at_end": True, "metric_for_best_model": "loss", "greater_is_better": True}
            if save_steps
            else {}
        ),
    ),
    train_dataset=ListDataset(tokenizer, make_sentences(96, seed=1)),
    eval_dataset=ListDataset(tokenizer, make_sentences(128, seed=2)),
    compute_metrics=compute_metrics,
    processing_class=tokenizer,
    data_collator=DataCollatorWithPadding(tokenizer),
    callbacks=[KillMidTrial()],
)
best = trainer.hyperparameter_search(
    hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True)},
    n_trials=n_trials,
    compute_objective=lambda metrics: metrics["eval_loss"],
    seed=0,
    pause_trials=False,  # crash recovery alone: a trial paused, then stopped, has its own test (tests/test_halving.py)
)
print(f"best trial {best.run_id}: {best.objective}")
