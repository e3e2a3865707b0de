"""hpsearch against transformers' own `Trainer.hyperparameter_search`, side by side on one task.

The task is the demo's: all-MiniLM-L6-v2 fine-tuned on rotten-tomatoes reviews, 1 epoch per
trial, accuracy maximised. Both searches get the same data, the same optuna hp_space and the
same TPE sampler seed; each runs in a fresh process, in alternating order over the repeats
(this machine is noisy), and the medians are reported as ratios hpsearch / transformers.

    .venv/bin/python bench/compare.py                 # defaults: 6 trials, 2 repeats (~20 min, 2 CPUs)
    .venv/bin/python bench/compare.py --trials 20 --repeats 1 --train-size 500   # RSS over 20 trials

Measured per search: wall time; best accuracy; wall time until an evaluation first reaches
`--target`; engine overhead per trial (wall time outside training and evaluation, model
loading included, the same for both); peak RSS and RSS growth from the second trial's start to
the last's. Results go to `bench/results.json` and a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

SYSTEMS = ("transformers", "hpsearch")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--eval-size", type=int, default=300)
    parser.add_argument("--target", type=float, default=0.75, help="accuracy for 'time to target'")
    parser.add_argument("--out", default="bench/results.json")
    parser.add_argument("--one", choices=SYSTEMS, help=argparse.SUPPRESS)  # a child: run one search
    return parser.parse_args(argv)


def hp_space(trial: Any) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-4, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 0.0, 0.1),
    }


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One search in this process, measured."""
    import optuna
    import psutil
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    import hpsearch
    from hpsearch.demo import TextDataset, accuracy, minilm_dir, rotten_tomatoes, training_arguments

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    process = psutil.Process()
    peak = {"rss": process.memory_info().rss}
    done = threading.Event()

    def sample_rss() -> None:
        while not done.wait(0.2):
            peak["rss"] = max(peak["rss"], process.memory_info().rss)

    threading.Thread(target=sample_rss, daemon=True).start()
    model_dir = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = rotten_tomatoes()
    train = TextDataset(tokenizer, rows[: args.train_size])
    evaluation = TextDataset(tokenizer, rows[args.train_size : args.train_size + args.eval_size])
    timeline: dict[str, Any] = {"inside": 0.0, "trial_rss": [], "evals": [], "in_train": False}

    class Timeline(transformers.TrainerCallback):
        def on_train_begin(self, *a, **k):
            timeline["in_train"], timeline["train_start"] = True, time.monotonic()

        def on_train_end(self, *a, **k):
            timeline["in_train"] = False
            timeline["inside"] += time.monotonic() - timeline["train_start"]

        def on_evaluate(self, args_, state, control, metrics=None, **k):
            timeline["evals"].append((time.monotonic() - start, metrics["eval_accuracy"]))
            if not timeline["in_train"]:
                timeline["inside"] += metrics["eval_runtime"]

    def model_init(trial: Any) -> Any:
        if trial is not None:
            timeline["trial_rss"].append(process.memory_info().rss)
        return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)

    trainer_class = hpsearch.Trainer if args.one == "hpsearch" else transformers.Trainer
    output_dir = tempfile.mkdtemp(prefix=f"bench-{args.one}-")
    trainer = trainer_class(
        model=None,
        args=training_arguments(output_dir, 1, per_device_train_batch_size=16),
        train_dataset=train,
        eval_dataset=evaluation,
        compute_metrics=accuracy,
        processing_class=tokenizer,
        model_init=model_init,
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[Timeline()],
    )
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    options: dict[str, Any] = {"sampler": optuna.samplers.TPESampler(seed=0)}
    if args.one == "hpsearch":
        options.update(pruner=optuna.pruners.MedianPruner(n_startup_trials=2), show_progress=False)
    start = time.monotonic()
    best = trainer.hyperparameter_search(
        direction="maximize",
        backend="optuna",
        hp_space=hp_space,
        n_trials=args.trials,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        **options,
    )
    wall = time.monotonic() - start
    done.set()
    reached = [t for t, acc in timeline["evals"] if acc >= args.target]
    rss = timeline["trial_rss"]
    return {
        "system": args.one,
        "wall_s": wall,
        "best_accuracy": best.objective,
        "time_to_target_s": reached[0] if reached else None,
        "overhead_per_trial_s": (wall - timeline["inside"]) / args.trials,
        "peak_rss_mb": peak["rss"] / 2**20,
        "rss_growth_pct": 100 * (rss[-1] - rss[1]) / rss[1] if len(rss) > 2 else None,
        "evaluations": len(timeline["evals"]),
    }


def median(results: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in results if r[key] is not None]
    return statistics.median(values) if values else None


def table(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    rows = [
        ("wall time for the same trials (s)", "wall_s"),
        ("best accuracy", "best_accuracy"),
        (f"time to accuracy >= {args.target} (s)", "time_to_target_s"),
        ("engine overhead per trial (s)", "overhead_per_trial_s"),
        ("peak RSS (MiB)", "peak_rss_mb"),
        ("RSS growth, 2nd to last trial (%)", "rss_growth_pct"),
        ("evaluations", "evaluations"),
    ]
    lines = ["| measure (median) | transformers | hpsearch | hpsearch / transformers |", "|---|---|---|---|"]
    for label, key in rows:
        theirs = median([r for r in runs if r["system"] == "transformers"], key)
        ours = median([r for r in runs if r["system"] == "hpsearch"], key)
        ratio = f"{ours / theirs:.2f}" if theirs and ours is not None else "-"
        lines.append(f"| {label} | {_fmt(theirs)} | {_fmt(ours)} | {ratio} |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.4g}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args)), flush=True)
        return
    runs = []
    for repeat in range(args.repeats):
        order = SYSTEMS if repeat % 2 == 0 else SYSTEMS[::-1]
        for system in order:
            child = [sys.executable, __file__, "--one", system, *sys.argv[1:]]
            out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
            result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
            runs.append(result)
            print(f"repeat {repeat + 1}: {json.dumps(result)}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "runs": runs}, indent=1))
    print(table(runs, args))


if __name__ == "__main__":
    main()
