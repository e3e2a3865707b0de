"""The disk a search takes at its peak: hpsearch (its paused trials' checkpoints, its best model) against
transformers' own search, with no checkpoints and with the user's checkpoints every `--save-steps` steps.

    .venv/bin/python bench/pause_disk.py                          # 20 trials each: writes bench/pause_disk.json
    .venv/bin/python bench/pause_disk.py --hpsearch-src /work/before/src --systems hpsearch \\
        --out bench/pause_disk-before.json                        # hpsearch at another commit (a git worktree's src)
    .venv/bin/python bench/pause_disk.py --report bench/pause_disk.json bench/pause_disk-before.json

Each search runs in a fresh process on the benchmark's tweets set-up (all-MiniLM-L6-v2, 600 tweets, one epoch, the
docs' optuna space; bench/compare.py), while a thread of its own adds up the bytes under the search's `output_dir`
every 0.2 s: the peak, and what is left at the end. With `--save-steps`, the user's arguments are those of
USER-SCENARIOS.md: evaluation and a checkpoint every N steps, `save_total_limit=2`, `load_best_model_at_end=True`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from children import commit, machine, print_result, run_child  # noqa: E402

SYSTEMS = ("transformers", "hpsearch")
SAVES = ("no", "steps")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--saves", nargs="+", choices=SAVES, default=list(SAVES))
    parser.add_argument("--save-steps", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=600)
    parser.add_argument("--eval-size", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--model-dir", help="default: all-MiniLM-L6-v2 from PyPI")
    parser.add_argument("--hpsearch-src", help="import hpsearch from this `src` folder (another commit's worktree)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "pause_disk.json"))
    parser.add_argument("--report", nargs="+", metavar="RESULTS", help="print the table of results files, run nothing")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "<system> <save>": one search in this process
    return parser.parse_args(argv)


class Peak:
    """The most bytes under `directory` at any of its reads, every `every` seconds, in a thread."""

    def __init__(self, directory: Path, every: float = 0.2):
        self.directory, self.every, self.peak = directory, every, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(self.every):
            self.peak = max(self.peak, self.now())

    def now(self) -> int:
        total = 0
        for folder, _, files in os.walk(self.directory):
            for name in files:
                with contextlib.suppress(OSError):  # removed while read
                    total += os.lstat(os.path.join(folder, name)).st_size
        return total

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return max(self.peak, self.now())


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    import transformers
    from compare import DATASETS, optuna_space, text_task
    from transformers import AutoModelForSequenceClassification

    import hpsearch
    from hpsearch.tools.demo import text_trainer, training_arguments

    system, save = args.one.split()
    rows = DATASETS["tweets"][0]()
    labels = len({label for _, label in rows})
    sizes = (args.train_size, args.eval_size, args.max_length)
    model_dir, tokenizer, train, evaluation = text_task(args.model_dir, rows, *sizes)

    def model_init(trial: Any) -> Any:
        return AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=labels, ignore_mismatched_sizes=True
        )

    output_dir = Path(tempfile.mkdtemp(prefix=f"pause-disk-{system}-"))
    steps = dict(eval_strategy="steps", eval_steps=args.save_steps, save_strategy="steps", save_steps=args.save_steps)
    users = {"eval_strategy": "epoch"} if save == "no" else {
        **steps, "save_total_limit": 2, "load_best_model_at_end": True, "metric_for_best_model": "accuracy",
    }  # fmt: skip
    arguments = training_arguments(str(output_dir), 1, **users)
    trainer_class = hpsearch.Trainer if system == "hpsearch" else transformers.Trainer
    trainer = text_trainer(trainer_class, arguments, tokenizer, train, evaluation, model_init)
    options = {"seed": 0, "show_progress": False} if system == "hpsearch" else {}
    import optuna

    if system == "transformers":
        options["sampler"] = optuna.samplers.TPESampler(seed=0)
    peak = Peak(output_dir)
    start = time.time()
    best = trainer.hyperparameter_search(
        direction="maximize", hp_space=optuna_space, n_trials=args.trials, backend="optuna", **options
    )
    wall = time.time() - start
    result = {
        "system": system,
        "save": save,
        "trials": args.trials,
        "peak_bytes": peak.stop(),
        "end_bytes": Peak(output_dir).stop(),
        "wall_s": wall,
        "objective": best.objective,
        "hpsearch": str(Path(hpsearch.__file__).parents[1]),
    }
    if system == "hpsearch" and hasattr(best.run_summary, "peak_pause_bytes"):
        result["pause_peak_bytes"] = best.run_summary.peak_pause_bytes
    shutil.rmtree(output_dir, ignore_errors=True)
    return result


def report(paths: list[str]) -> str:
    from hpsearch.study.disk import size_text

    columns = "system (commit) | checkpoints | peak disk | left at the end | paused trials' peak | best accuracy | wall"
    lines = [f"| {columns} |"]
    lines.append("|---|---|---|---|---|---|---|")
    for path in paths:
        results = json.loads(Path(path).read_text())
        for run in results["runs"]:
            save = "none" if run["save"] == "no" else f"every {results['save_steps']} steps"
            paused = size_text(run["pause_peak_bytes"]) if "pause_peak_bytes" in run else "-"
            system = f"hpsearch ({results['commit']})" if run["system"] == "hpsearch" else run["system"]
            lines.append(
                f"| {system} | {save} | {size_text(run['peak_bytes'])} | "
                f"{size_text(run['end_bytes'])} | {paused} | {run['objective']:.3f} | {run['wall_s']:.0f} s |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        print_result(run_one(args))
        return
    if args.report:
        print(report(args.report))
        return
    environment = {"HF_HUB_OFFLINE": "1"}
    if args.hpsearch_src:
        environment["PYTHONPATH"] = os.pathsep.join([args.hpsearch_src, str(ROOT / "bench")])
    shared = ["--trials", str(args.trials), "--save-steps", str(args.save_steps), "--train-size", str(args.train_size)]
    shared += ["--eval-size", str(args.eval_size), "--max-length", str(args.max_length)]
    shared += ["--model-dir", args.model_dir] if args.model_dir else []
    runs = []
    for save in args.saves:
        for system in args.systems:
            runs.append(run_child(__file__, [*shared, "--one", f"{system} {save}"], f"{system} {save}", **environment))
            print(json.dumps(runs[-1]), flush=True)
    hpsearch_commit = commit() if not args.hpsearch_src else _commit_of(args.hpsearch_src)
    results = {"runs": runs, "save_steps": args.save_steps, "commit": hpsearch_commit, "machine": machine()}
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(report([args.out]))


def _commit_of(src: str) -> str:
    import subprocess

    done = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
