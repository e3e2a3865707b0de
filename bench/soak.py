"""Soak: RSS over a long search of a tiny model, through the function API and through the Trainer.

    .venv/bin/python bench/soak.py                          # 50 trials per API (about 3 min on 2 CPUs)
    .venv/bin/python bench/soak.py --trials 8 --warmup 3    # what the test runs

Each API searches in a fresh process. RSS is read as each trial starts (the previous trial has
been released by then; glibc is asked to hand back what it freed first) and once more after the
search; growth is from the first trial after the warm-up to that last reading, and must stay
under 5%. Results go to `--out` (JSON) and a
Markdown table to stdout; the exit status is 1 if an API grew 5% or more.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from children import commit  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
APIS = ("function", "trainer")
LIMIT_PCT = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5, help="trials before growth is measured")
    parser.add_argument("--out", default=str(ROOT / "bench" / "soak.json"))
    parser.add_argument("--one", choices=APIS, help=argparse.SUPPRESS)  # run one API in this process
    return parser.parse_args(argv)


def soak(api: str, n_trials: int) -> list[int]:
    """Run one search of `n_trials` trials; RSS (bytes) at each trial's start, then after the search."""
    import psutil
    import torch
    from tests.conftest import ListDataset, build_tiny_model, compute_metrics, make_sentences
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        TrainingArguments,
    )

    import hpsearch

    process, rss = psutil.Process(), []
    libc = ctypes.CDLL(ctypes.util.find_library("c"))

    def read_rss() -> int:
        """Live memory: glibc keeps freed blocks mapped and reuses them, which RSS would count."""
        libc.malloc_trim(0)
        return process.memory_info().rss

    work = Path(tempfile.mkdtemp(prefix="hpsearch-soak-"))
    # big enough that a trial's model and optimizer left behind (about 30 MiB) would show as growth
    model_dir = build_tiny_model(work / "tiny-bert", hidden_size=512, layers=4)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    train = ListDataset(tokenizer, make_sentences(64, seed=1))
    collate = DataCollatorWithPadding(tokenizer)

    def model_init(trial: Any = None) -> Any:
        if trial is not None:
            rss.append(read_rss())
        return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)

    if api == "function":

        def objective(trial: hpsearch.Trial) -> float:
            model = model_init(trial)
            optimizer = torch.optim.AdamW(model.parameters(), lr=trial.params["learning_rate"])
            loader = torch.utils.data.DataLoader(train, batch_size=16, collate_fn=collate)
            for batch in loader:
                loss = model(**batch).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            return float(loss)

        space = {"learning_rate": hpsearch.space.Float(1e-4, 1e-2, log=True)}
        hpsearch.search(objective, space, n_trials=n_trials, output_dir=str(work / "out"), show_progress=False)
    else:
        trainer = hpsearch.Trainer(
            model_init=model_init,
            args=TrainingArguments(
                output_dir=str(work / "out"),
                max_steps=4,
                per_device_train_batch_size=16,
                report_to="none",
                disable_tqdm=True,
                use_cpu=True,
                save_strategy="no",
            ),
            train_dataset=train,
            eval_dataset=ListDataset(tokenizer, make_sentences(128, seed=2)),
            compute_metrics=compute_metrics,
            processing_class=tokenizer,
            data_collator=collate,
        )
        trainer.hyperparameter_search(
            hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)},
            n_trials=n_trials,
            show_progress=False,
        )
    rss.append(read_rss())
    return rss


def growth_pct(rss: list[int], warmup: int) -> float:
    return 100 * (rss[-1] - rss[warmup]) / rss[warmup]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        print("RSS " + json.dumps(soak(args.one, args.trials)), flush=True)
        return 0
    results = {}
    for api in APIS:
        child = [sys.executable, __file__, "--one", api, "--trials", str(args.trials)]
        out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
        rss = json.loads(next(line for line in out.splitlines() if line.startswith("RSS "))[4:])
        results[api] = {"rss_mb": [r / 2**20 for r in rss], "growth_pct": growth_pct(rss, args.warmup)}
    Path(args.out).write_text(json.dumps({"settings": vars(args), "commit": commit(), "results": results}, indent=1))
    print(f"| API | trials | RSS after warm-up (MiB) | RSS at the end (MiB) | growth (%), limit {LIMIT_PCT} |")
    print("|---|---|---|---|---|")
    for api, result in results.items():
        mb = result["rss_mb"]
        print(f"| {api} | {args.trials} | {mb[args.warmup]:.0f} | {mb[-1]:.0f} | {result['growth_pct']:+.2f} |")
    return 0 if all(r["growth_pct"] < LIMIT_PCT for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
