"""A search under DDP: every rank trains each trial together; only rank 0 asks the backend for trials.

    torchrun --nproc_per_node=2 examples/ddp.py          # on GPUs; on CPUs it uses the gloo backend

Rank 0 proposes each trial and passes its parameters to the other ranks, which build the same model;
"prune now" and "search over" reach them the same way, so no rank waits on another for ever.
"""

import torch
from transformers import TrainingArguments

from hpsearch.tools.demo import review_trainer, size_parser


def hp_space(trial):
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-6, 1e-4, log=True)}


if __name__ == "__main__":
    args = size_parser(__doc__, "runs/ddp").parse_args()
    arguments = TrainingArguments(
        args.output_dir,
        num_train_epochs=1,
        eval_strategy="epoch",
        ddp_backend=None if torch.cuda.is_available() else "gloo",
    )
    trainer = review_trainer(args, arguments)
    best_run = trainer.hyperparameter_search(
        direction="maximize",
        hp_space=hp_space,
        n_trials=args.trials,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
    )
    if best_run is not None:  # rank 0; the other ranks get None, as in transformers
        print(f"best run {best_run.run_id}: accuracy {best_run.objective:.4f}, {best_run.hyperparameters}")
    if torch.distributed.is_initialized():  # as PyTorch asks of every DDP script (docs/parallel.md)
        torch.distributed.destroy_process_group()
