"""The transformers docs' search on each backend, each with its own native search space.

    python examples/backends.py --backend sigopt      # optuna (default), sigopt, ray or wandb

all-MiniLM-L6-v2 on rotten-tomatoes reviews (from PyPI packages, offline), accuracy maximised; W&B runs
offline with W&B's own sweep engine, SigOpt with its embedded optimizer, Ray on a local Ray.
"""

import os

from hpsearch.tools.demo import review_trainer, size_parser


def optuna_hp_space(trial):
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-6, 1e-4, log=True),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [16, 32, 64, 128]),
    }


def sigopt_hp_space(trial):
    return [
        {"bounds": {"min": 1e-6, "max": 1e-4}, "name": "learning_rate", "type": "double"},
        {"categorical_values": ["16", "32", "64", "128"], "name": "per_device_train_batch_size", "type": "categorical"},
    ]


def ray_hp_space(trial):
    from ray import tune  # the ray extra, needed by this backend only

    return {
        "learning_rate": tune.loguniform(1e-6, 1e-4),
        "per_device_train_batch_size": tune.choice([16, 32, 64, 128]),
    }


def wandb_hp_space(trial):
    return {
        "method": "random",
        "metric": {"name": "objective", "goal": "maximize"},
        "parameters": {
            "learning_rate": {"distribution": "uniform", "min": 1e-6, "max": 1e-4},
            "per_device_train_batch_size": {"values": [16, 32, 64, 128]},
        },
    }


SPACES = {"optuna": optuna_hp_space, "sigopt": sigopt_hp_space, "ray": ray_hp_space, "wandb": wandb_hp_space}

if __name__ == "__main__":
    parser = size_parser(__doc__, "runs/backends-<backend>")
    parser.add_argument("--backend", choices=SPACES, default="optuna")
    args = parser.parse_args()
    args.output_dir = args.output_dir.replace("<backend>", args.backend)  # a study per backend
    os.environ.setdefault("WANDB_MODE", "offline")  # no W&B account needed; `wandb sync` uploads the runs later
    trainer = review_trainer(args)
    best_run = trainer.hyperparameter_search(
        direction="maximize",
        backend=args.backend,
        hp_space=SPACES[args.backend],
        n_trials=args.trials,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
    )
    print(f"best run {best_run.run_id}: accuracy {best_run.objective:.4f}, {best_run.hyperparameters}")
