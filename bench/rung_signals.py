"""Which rung signal ranks trials best: the objective or the evaluation loss, on how many examples,
or the training loss, at 1/9 and 1/3 of a trial's training.

Trials at random points of the docs' space (learning rate 1e-6..1e-4 log, batch size 16..128) run
to the end on the docs' set-up (all-MiniLM-L6-v2, 1 epoch). At each rung point every trial's model
is evaluated on the whole evaluation set, keeping each example's loss and whether it was right, so
that any subset's score can be computed afterwards; the training loss of every step is logged. Then
each signal is scored by how well it foretells the trials' final accuracy (on the whole set):

- Spearman's rank correlation with the final accuracy;
- whether successive halving keeping the top third by the signal (ties kept, as optuna's pruner
  keeps them) keeps the trial that ends best, and how many trials it keeps;
- subsets are drawn 200 times (a study draws one fixed subset): the means over the draws.

    .venv/bin/python bench/rung_signals.py --dataset tweets --trials 20          # writes bench/rung_signals-tweets.json
    .venv/bin/python bench/rung_signals.py --report bench/rung_signals-tweets.json

With `--steps`, the rungs are at fixed counts of optimizer steps instead, to tell how many steps a trial must
have taken before a rung ranks it (`trainer.rungs.MIN_RUNG_STEPS`); `--space quickstart` draws from the README's
Quickstart space (learning rate 1e-5..1e-4 log, batch size 16 or 32), where trials differ less than in the docs':

    .venv/bin/python bench/rung_signals.py --dataset rotten_tomatoes --space quickstart --train-size 1600 \
        --steps 1 2 4 8 16 32 --trials 12 --out bench/rung_signals-steps.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from children import commit, measured_at  # noqa: E402

from hpsearch.loop.fidelity import step_at  # noqa: E402

RUNGS = (111, 333)  # hpsearch's default rung points, in thousandths of training
SUBSETS = (32, 64, 128, 256)
SPACES = {  # learning rates (log-uniform) and batch sizes
    "docs": ((1e-6, 1e-4), [16, 32, 64, 128]),
    "quickstart": ((1e-5, 1e-4), [16, 32]),
}
DRAWS = 200


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("rotten_tomatoes", "tweets", "convention"), default="tweets")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--space", choices=list(SPACES), default="docs")
    parser.add_argument("--steps", type=int, nargs="+", help="rungs at these optimizer steps, not at 1/9 and 1/3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--eval-size", type=int)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--model-dir")
    parser.add_argument("--out")
    parser.add_argument("--report", metavar="RESULTS", help="print the analysis of a results file, run nothing")
    return parser.parse_args(argv)


def points(count: int, seed: int, space: str = "docs") -> list[dict[str, Any]]:
    """Random points of an optuna space of `SPACES`."""
    draw = random.Random(seed)
    (low, high), batch_sizes = SPACES[space]
    return [
        {
            "learning_rate": math.exp(draw.uniform(math.log(low), math.log(high))),
            "per_device_train_batch_size": draw.choice(batch_sizes),
        }
        for _ in range(count)
    ]


def rung_steps(args: argparse.Namespace, max_steps: int) -> dict[str, int]:
    """Each rung's name (its progress in thousandths, or `s<steps>`) and the step it is taken at."""
    if args.steps:
        return {f"s{steps}": steps for steps in args.steps if steps <= max_steps}
    return {str(point): step_at(point, max_steps) for point in RUNGS}


def per_example(trainer: Any) -> dict[str, list]:
    """Each evaluation example's loss and whether the model got it right."""
    output = trainer.evaluation_loop(trainer.get_eval_dataloader(), description="signals", prediction_loss_only=False)
    logits, labels = np.asarray(output.predictions, dtype=np.float64), np.asarray(output.label_ids)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    loss = -log_probs[np.arange(len(labels)), labels]
    return {"loss": loss.tolist(), "correct": (logits.argmax(-1) == labels).astype(int).tolist()}


def run_trials(args: argparse.Namespace) -> dict[str, Any]:
    import transformers
    from compare import DATASETS, text_task
    from transformers import AutoModelForSequenceClassification

    from hpsearch.tools.demo import text_trainer, training_arguments

    load, train_size, eval_size, _ = DATASETS[args.dataset]
    train_size, eval_size = args.train_size or train_size, args.eval_size or eval_size
    rows = load()
    labels = len({label for _, label in rows})
    model_dir, tokenizer, train, evaluation = text_task(args.model_dir, rows, train_size, eval_size, args.max_length)
    eval_labels = [label for _, label in rows[train_size : train_size + eval_size]]
    majority = max(eval_labels.count(c) for c in set(eval_labels)) / len(eval_labels)

    def model_init() -> Any:
        return AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=labels, ignore_mismatched_sizes=True
        )

    class Signals(transformers.TrainerCallback):
        def __init__(self) -> None:
            self.rungs: dict[int, dict[str, Any]] = {}
            self.trainer: Any = None

        def on_step_end(self, args_, state, control, **kwargs):
            for point, step in rung_steps(args, state.max_steps).items():
                if point not in self.rungs and state.global_step >= step:
                    began = time.time()
                    self.rungs[point] = {"step": state.global_step, **per_example(self.trainer)}
                    self.rungs[point]["seconds"] = time.time() - began

    trials = []
    for number, point in enumerate(points(args.trials, args.seed, args.space)):
        signals = Signals()
        output_dir = tempfile.mkdtemp(prefix="rung-signals-")
        arguments = training_arguments(output_dir, 1, eval_strategy="no", logging_steps=1, **point)
        trainer = text_trainer(transformers.Trainer, arguments, tokenizer, train, evaluation, model_init, [signals])
        signals.trainer = trainer
        began = time.time()
        trainer.train()
        final = per_example(trainer)
        losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
        trials.append(
            {
                **point,
                "max_steps": trainer.state.max_steps,
                "seconds": time.time() - began,
                "rungs": signals.rungs,
                "final": final,
                "train_losses": losses,
            }
        )
        print(
            f"trial {number}: lr {point['learning_rate']:.2e} batch {point['per_device_train_batch_size']}: "
            f"final accuracy {np.mean(final['correct']):.3f} ({time.time() - began:.0f} s)",
            flush=True,
        )
    settings = {"dataset": args.dataset, "train_size": train_size, "eval_size": eval_size, "seed": args.seed}
    settings["space"] = args.space
    return {"settings": settings, "majority": majority, "trials": trials}


def _spearman(signal: np.ndarray, final: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.all(signal == signal[0]):
        return 0.0
    return float(spearmanr(signal, final).statistic)


def _keeps_best(signal: np.ndarray, final: np.ndarray) -> tuple[bool, int]:
    """Whether keeping the top third by `signal` (higher is better; ties with the last kept kept) keeps
    a trial that ends at the best final accuracy, and how many trials it keeps."""
    keep = max(len(signal) // 3, 1)
    threshold = np.sort(signal)[::-1][keep - 1]
    kept = signal >= threshold
    return bool(final[kept].max() >= final.max()), int(kept.sum())


def _train_loss(trial: dict[str, Any], point: str) -> float:
    """The mean training loss of the steps since the previous rung (what a log at each rung gives)."""
    steps = {p: rung["step"] for p, rung in trial["rungs"].items()}
    end = steps[point]
    start = max([step for step in steps.values() if step < end], default=0)
    window = [loss for step, loss in trial["train_losses"] if start < step <= end]
    return float(np.mean(window or [loss for step, loss in trial["train_losses"] if step <= end][-1:]))


def analyse(results: dict[str, Any]) -> str:
    trials = results["trials"]
    final = np.array([np.mean(t["final"]["correct"]) for t in trials])
    size = len(trials[0]["final"]["correct"])
    draw = np.random.default_rng(0)
    rows = []
    for point in trials[0]["rungs"]:
        if any(point not in t["rungs"] for t in trials):
            continue  # a rung past some trial's end
        at = [t["rungs"][point] for t in trials]
        correct, loss = np.array([r["correct"] for r in at]), np.array([r["loss"] for r in at])
        cases = {f"accuracy, all {size}": correct.mean(1), f"eval loss, all {size}": -loss.mean(1)}
        cases["training loss since the last rung"] = -np.array([_train_loss(t, point) for t in trials])
        for name, signal in cases.items():
            keeps, kept = _keeps_best(signal, final)
            rows.append((point, name, _spearman(signal, final), float(keeps), kept))
        for n in (s for s in SUBSETS if s < size):
            scores = {"accuracy": [], "eval loss": []}
            for _ in range(DRAWS):
                subset = draw.choice(size, n, replace=False)
                for name, signal in (("accuracy", correct[:, subset].mean(1)), ("eval loss", -loss[:, subset].mean(1))):
                    scores[name].append((_spearman(signal, final), *_keeps_best(signal, final)))
            for name, values in scores.items():
                rho, keeps, kept = (float(np.mean(column)) for column in zip(*values))
                rows.append((point, f"{name}, {n} examples", rho, keeps, kept))
    lines = [
        f"{results['settings']}: {len(trials)} trials, majority {results['majority']:.3f}, "
        f"final accuracy {final.min():.3f}..{final.max():.3f} (median {np.median(final):.3f})",
        "",
        "| rung | signal | Spearman with final accuracy | top third keeps the best | trials kept |",
        "|---|---|---|---|---|",
    ]
    for point, name, rho, keeps, kept in rows:
        at = f"{point[1:]} steps" if point.startswith("s") else f"{int(point) / 1000:.3f}"
        lines.append(f"| {at} | {name} | {rho:+.2f} | {keeps:.2f} | {kept:.1f} |")
    seconds = [t["seconds"] for t in trials]
    evals = [r["seconds"] for t in trials for r in t["rungs"].values()]
    lines.append(
        f"\ntrial time (training + 2 full rung evaluations) median {np.median(seconds):.1f} s; "
        f"a full rung evaluation of {size} examples median {np.median(evals):.2f} s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        results = json.loads(Path(args.report).read_text())
        print(analyse(results) + "\n" + measured_at(results))
        return
    results = run_trials(args)
    out = Path(args.out or f"bench/rung_signals-{args.dataset}.json")
    out.write_text(json.dumps({**results, "commit": commit()}))
    print(analyse(json.loads(out.read_text())))


if __name__ == "__main__":
    main()
