"""A Trainer search under torchrun, for the DDP tests.

Usage: torchrun --nproc_per_node=2 tests/ddp_search.py SEARCHES OUTPUT_DIR MODEL_DIR [prune|kill|agent]
SEARCHES is a backend, or several searches one after another in the same launch, comma-separated, each a backend
or BACKEND/MODE (`sigopt,wandb,wandb/agent`), each then in OUTPUT_DIR/<its name, / as ->. For each search each rank
prints one line `RESULT {json}`: the search's name, the trials it trained, each as [number, the step training ended
at, its planned steps], and the best run's id (None off rank 0). With `prune`, an optuna pruner stops trial 1 at its
second evaluation; with `kill`, rank 1 SIGKILLs itself in the middle of trial 1; with `agent`, W&B runs in server
mode through the agent stand-in.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
import torch.distributed as dist  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainerCallback,
    TrainingArguments,
)

from hpsearch import Trainer  # noqa: E402
from tests.conftest import ListDataset, compute_metrics, make_sentences  # noqa: E402

gc.freeze()  # the libraries' objects: each trial's release of its model then collects only the trial's

searches, output_root, model_dir = sys.argv[1:4]
default_mode = sys.argv[4] if len(sys.argv) > 4 else ""
os.environ.update(WANDB_MODE="offline", WANDB_CONFIG_DIR=str(Path(output_root) / "wandb-config"))
mode = default_mode  # the running search's
trained: list[list[int]] = []


class Watch(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        # step 1: before the trial's first rung, where the default pruning could end it
        if mode == "kill" and dist.get_rank() == 1 and len(trained) == 2 and state.global_step == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_end(self, args, state, control, **kwargs):
        trained[-1] += [state.global_step, state.max_steps]


def model_init(trial):
    if trial is not None:
        number = trial.number if hasattr(trial, "number") else len(trained)
        trained.append([number])
    return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)


class PruneSecondTrial(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return trial.number == 1 and len(trial.intermediate_values) >= 2


spaces = {
    "optuna": lambda trial: {
        "learning_rate": trial.suggest_float("learning_rate", 1e-6, 1e-4, log=True),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [16, 32, 64, 128]),
    },
    "sigopt": lambda trial: [
        {"bounds": {"min": 1e-6, "max": 1e-4}, "name": "learning_rate", "type": "double"},
        {"categorical_values": ["16", "32", "64", "128"], "name": "per_device_train_batch_size", "type": "categorical"},
    ],
    "ray": {"learning_rate": {"grid_search": [1e-4]}},
    "wandb": lambda trial: {
        "method": "random",
        "metric": {"name": "objective", "goal": "minimize"},
        "parameters": {
            "learning_rate": {"distribution": "uniform", "min": 1e-6, "max": 1e-4},
            "per_device_train_batch_size": {"values": [16, 32, 64, 128]},
        },
    },
}

tokenizer = AutoTokenizer.from_pretrained(model_dir)


def search(backend: str, output_dir: str) -> str | None:
    """One search of the seed's example on `backend`: the best run's id (None off rank 0)."""
    trainer = Trainer(
        model=None,
        args=TrainingArguments(
            output_dir=output_dir,
            use_cpu=True,
            ddp_backend="gloo",
            report_to="none",
            disable_tqdm=True,
            per_device_train_batch_size=8,
            learning_rate=1e-2,
        ),
        train_dataset=ListDataset(tokenizer, make_sentences(64, seed=1)),
        eval_dataset=ListDataset(tokenizer, make_sentences(128, seed=2)),
        compute_metrics=compute_metrics,
        tokenizer=tokenizer,
        model_init=model_init,
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[Watch()],
    )
    options = {"pruner": PruneSecondTrial()} if mode == "prune" else {}
    if mode == "agent":  # W&B server mode, through the stand-in for wandb.agent (rank 0 runs the agent)
        from tests.wandb_helpers import StandInAgent

        options = {"sweep_id": "ddp-sweep", "agent": StandInAgent(spaces["wandb"](None), Path(output_dir))}
    best = trainer.hyperparameter_search(
        direction="minimize",
        backend=backend,
        hp_space=spaces[backend],
        n_trials=3,
        compute_objective=lambda metrics: metrics["eval_loss"],
        show_progress=False,
        **options,
    )
    return best and best.run_id


names = searches.split(",")
for name in names:
    backend, _, mode = name.partition("/")
    mode = mode or default_mode
    trained.clear()
    best = search(backend, str(Path(output_root, name.replace("/", "-"))) if len(names) > 1 else output_root)
    result = {"search": name, "rank": dist.get_rank(), "trials": trained, "best": best}
    # One write, newline included: under torchrun's `python -u` print writes its end apart, and the ranks' lines
    # interleave
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
dist.destroy_process_group()  # exiting with gloo's threads still up can abort the process (pytorch#190489)
sys.stdout.flush()
os._exit(0)  # even after it, torch's C++ teardown at exit now and then aborts the process ("terminate called
# without an active exception", seen once in a whole suite run): the search has ended and said its result by now
