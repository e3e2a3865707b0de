"""Engine cost per trial: hpsearch's search loop against optuna's `study.optimize`, 2,000 trivial trials each.

    .venv/bin/python bench/trial_cost.py                                # 2,000 trials each, RandomSampler(seed=0)
    .venv/bin/python bench/trial_cost.py --repeats 3 --out bench/trial_cost-before.json   # BENCHMARKS.md's, 10 min
    .venv/bin/python bench/trial_cost.py --sampler tpe --trials 500     # TPE's own cost grows with the study

Both sides run the same trivial objective (x**2 of one float in [-10, 10]) with the same sampler on a fresh
SQLite file (`sqlite:///<tmp>/optuna.db`, `sqlite:///<tmp>/hpsearch.db`), each in a fresh process, in
alternating order over `--repeats`. A trial's time is from the previous trial's end (for the first: from the
call that creates the study) to its own end, so it holds the engine's tell of the previous trial and ask of this
one. Reported: the first trial (with the study's creation: the tables of a fresh SQLite file, ~0.5-1 s, which
would swamp a window's mean), mean ms/trial over trials 2-100, 401-500, the last 100 and overall (the whole call,
study creation and what runs after the last trial included, over N), the ratio hpsearch / optuna for each, and the
flatness (ms/trial in the last 100 / in trials 2-100). The target: hpsearch at most 1.3x optuna overall, and flat.
Results go to `--out` (JSON: every trial's time, the windows, the ratios) and a table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from children import commit  # noqa: E402

ENGINES = ("optuna", "hpsearch")
TARGET_RATIO = 1.3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--sampler", choices=("random", "tpe"), default="random", help="seed 0 for both")
    parser.add_argument("--repeats", type=int, default=1, help="runs per engine, in alternating order")
    parser.add_argument("--out", default=str(ROOT / "bench" / "trial_cost.json"))
    parser.add_argument("--one", choices=ENGINES, help=argparse.SUPPRESS)  # run one engine in this process
    parser.add_argument("--dir", help=argparse.SUPPRESS)  # where --one puts its store and its result
    args = parser.parse_args(argv)
    if args.trials < 2 or args.repeats < 1:
        parser.error("--trials must be at least 2 and --repeats at least 1")
    return args


def make_sampler(name: str) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=0) if name == "random" else optuna.samplers.TPESampler(seed=0)


def run_one(engine: str, n_trials: int, sampler: str, directory: Path) -> dict[str, Any]:
    """One search of `n_trials` trivial trials: when each trial ended and when the call returned (s from its start)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{directory / f'{engine}.db'}"
    ends: list[float] = []

    if engine == "optuna":

        def objective(trial: Any) -> float:
            x = trial.suggest_float("x", -10, 10)
            ends.append(time.perf_counter())
            return x**2

        start = time.perf_counter()
        study = optuna.create_study(storage=storage, sampler=make_sampler(sampler))
        study.optimize(objective, n_trials=n_trials)
        version = optuna.__version__
    else:
        import hpsearch

        def objective(trial: Any) -> float:
            x = trial.params["x"]
            ends.append(time.perf_counter())
            return x**2

        space = {"x": hpsearch.space.Float(-10, 10)}
        start = time.perf_counter()
        hpsearch.search(
            objective,
            space,
            n_trials=n_trials,
            backend="optuna",
            storage=storage,
            show_progress=False,
            sampler=make_sampler(sampler),
        )
        version = str(Path(hpsearch.__file__).parent)
    total = time.perf_counter() - start
    if len(ends) != n_trials:
        raise RuntimeError(f"{engine}: {len(ends)} trials ran, expected {n_trials}")
    return {"total_s": total, "ends_s": [t - start for t in ends], "version": version}


def spawn(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one engine in a fresh process on a fresh store."""
    with tempfile.TemporaryDirectory(prefix="trial-cost-") as tmp:
        command = [sys.executable, __file__, "--one", engine, "--trials", str(args.trials)]
        subprocess.run([*command, "--sampler", args.sampler, "--dir", tmp], check=True)
        return json.loads((Path(tmp) / "result.json").read_text())


def per_trial_ms(run: dict[str, Any]) -> list[float]:
    ends = run["ends_s"]
    return [(end - before) * 1000 for before, end in zip([0.0, *ends[:-1]], ends)]


def windows(n_trials: int) -> dict[str, tuple[int, int]]:
    """Named windows of trials as (first, last), 1-based, both included; trial 1 is study creation's too."""
    first, last = 2, min(100, n_trials)
    named = {"first trial": (1, 1), f"{first}-{last}": (first, last)}
    if n_trials >= 500:
        named["401-500"] = (401, 500)
    first = max(2, n_trials - 99)
    named[f"{first}-{n_trials} (last 100)"] = (first, n_trials)
    return named


def summarise(runs: list[dict[str, Any]], n_trials: int) -> dict[str, float]:
    """Mean ms/trial per window and overall, the median over `runs`; flatness = last 100 / trials 2-100."""
    summary = {}
    for name, (first, last) in windows(n_trials).items():
        summary[name] = statistics.median(statistics.fmean(r["ms"][first - 1 : last]) for r in runs)
    summary["overall"] = statistics.median(r["total_s"] * 1000 / n_trials for r in runs)
    names = list(windows(n_trials))
    summary["flatness"] = summary[names[-1]] / summary[names[1]]
    return summary


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        result = run_one(args.one, args.trials, args.sampler, Path(args.dir))
        (Path(args.dir) / "result.json").write_text(json.dumps(result))
        return
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
    for repeat in range(args.repeats):
        for engine in ENGINES if repeat % 2 == 0 else ENGINES[::-1]:
            print(f"repeat {repeat + 1}/{args.repeats}: {engine}, {args.trials} trials ...", flush=True)
            run = spawn(engine, args)
            run["ms"] = per_trial_ms(run)
            print(f"  {run['total_s']:.1f} s", flush=True)
            runs[engine].append(run)
    summary = {e: summarise(runs[e], args.trials) for e in ENGINES}
    ratios = {k: summary["hpsearch"][k] / summary["optuna"][k] for k in summary["optuna"] if k != "flatness"}
    result = {
        "config": {
            "trials": args.trials,
            "sampler": args.sampler,
            "repeats": args.repeats,
            "objective": "x**2, x float in [-10, 10]",
            "storage": "SQLite file, fresh per run",
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "optuna": runs["optuna"][0]["version"],
            "hpsearch": runs["hpsearch"][0]["version"],
            "commit": commit(),  # the checkout's; "hpsearch" says where the hpsearch measured was
        },
        "ms_per_trial": summary,
        "ratio_hpsearch_to_optuna": ratios,
        "target": {"ratio_overall_max": TARGET_RATIO, "met": ratios["overall"] <= TARGET_RATIO},
        "runs": {
            e: [{"total_s": r["total_s"], "ms": [round(m, 3) for m in r["ms"]]} for r in rs] for e, rs in runs.items()
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"\n| ms per trial ({args.sampler}, {args.trials} trials) | optuna | hpsearch | hpsearch / optuna |")
    print("|---|---|---|---|")
    for name in summary["optuna"]:
        ratio = f"{ratios[name]:.2f}" if name in ratios else ""
        print(f"| {name} | {summary['optuna'][name]:.2f} | {summary['hpsearch'][name]:.2f} | {ratio} |")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
