"""Several trials at once on one machine: `n_jobs` worker processes on one study.

    python examples/parallel.py --n-jobs 2       # -1: as many as the machine holds (a worker per GPU)

Each worker runs whole trials; the study store (SQLite in --output-dir) is what they share, so a worker
that dies loses only its running trial, and a rerun of the same command continues the study.
"""

from hpsearch.tools.demo import review_trainer, size_parser


def hp_space(trial):
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-6, 1e-4, log=True),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [16, 32]),
    }


if __name__ == "__main__":  # the workers import this file: the search starts only in the main process
    parser = size_parser(__doc__, "runs/parallel")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    trainer = review_trainer(args)
    best_run = trainer.hyperparameter_search(
        direction="maximize",
        hp_space=hp_space,
        n_trials=args.trials,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        n_jobs=args.n_jobs,
    )
    print(f"best run {best_run.run_id}: accuracy {best_run.objective:.4f}, {best_run.hyperparameters}")
