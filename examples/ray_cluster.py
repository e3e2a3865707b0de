"""A search on a Ray cluster: its trials spread over the cluster's machines and GPUs.

    ray start --head --port=6379                     # on the head machine
    ray start --address=HEAD_IP:6379                 # on every other machine (same environment, hpsearch installed)
    python examples/ray_cluster.py --address HEAD_IP:6379

Without --address (and RAY_ADDRESS), hpsearch starts a local Ray. Each trial gets 1 CPU (and 1 GPU where the
cluster has them); the study store stays on this machine, which records every trial as it ends.
"""

from backends import ray_hp_space  # this folder's example: the docs' Ray Tune space

from hpsearch.tools.demo import review_trainer, size_parser

if __name__ == "__main__":
    parser = size_parser(__doc__, "runs/ray_cluster")
    parser.add_argument("--address", default=None, help="the cluster's address (default: RAY_ADDRESS, else local)")
    args = parser.parse_args()
    trainer = review_trainer(args)
    best_run = trainer.hyperparameter_search(
        direction="maximize",
        backend="ray",
        hp_space=ray_hp_space,
        n_trials=args.trials,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        address=args.address,  # each trial: 1 CPU, and 1 GPU where the cluster has GPUs (resources_per_trial=...)
    )
    print(f"best run {best_run.run_id}: accuracy {best_run.objective:.4f}, {best_run.hyperparameters}")
