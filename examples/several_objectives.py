"""Two objectives at once: accuracy up and evaluation loss down; the search returns the Pareto front.

python examples/several_objectives.py
"""

from hpsearch.tools.demo import review_trainer, size_parser


def hp_space(trial):
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-6, 1e-4, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 0.0, 0.1),
    }


if __name__ == "__main__":
    args = size_parser(__doc__, "runs/several_objectives").parse_args()
    trainer = review_trainer(args)
    front = trainer.hyperparameter_search(
        direction=["maximize", "minimize"],
        hp_space=hp_space,
        n_trials=args.trials,
        compute_objective=lambda metrics: [metrics["eval_accuracy"], metrics["eval_loss"]],
    )
    for run in front:  # no run of the front is better on both objectives than another
        print(f"run {run.run_id}: accuracy, loss {run.objective}, {run.hyperparameters}")
