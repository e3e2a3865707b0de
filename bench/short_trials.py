"""Whether several trials at once pay off on short trials: `n_jobs=2` against `n_jobs=1`.

The function API (`hpsearch.search`), optuna, a SQLite study: `--trials` trials, each `--seconds` of
pure-Python work on one core (what a trial that cannot use a second core does), searched with
`n_jobs=1` and with `n_jobs=2`, each search in a fresh process, alternating `--repeats` times. The
wall time of the whole call is measured, worker start-up included.

    .venv/bin/python bench/short_trials.py --repeats 3      # writes bench/short_trials.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from children import alternating, commit, print_result  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench/short_trials.json")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: its n_jobs
    return parser.parse_args(argv)


def busy(seconds: float) -> float:
    """`seconds` of work on one core (a loop of arithmetic: it holds the GIL, as one thread of work)."""
    end, total = time.process_time() + seconds, 0.0
    while time.process_time() < end:
        for i in range(10_000):
            total += i * 0.5
    return total


def run_one(args: argparse.Namespace) -> dict[str, float]:
    import hpsearch
    from hpsearch.space import Float

    seconds = args.seconds

    def objective(trial):
        busy(seconds)
        return trial.params["x"] ** 2

    with tempfile.TemporaryDirectory() as folder:
        began = time.time()
        hpsearch.search(
            objective,
            {"x": Float(-1.0, 1.0)},
            n_trials=args.trials,
            storage=f"sqlite:///{folder}/study.db",
            n_jobs=args.one,
            seed=0,
            show_progress=False,
        )
        return {"n_jobs": args.one, "wall_s": time.time() - began}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        print_result(run_one(args))
        return
    passed = list(argv if argv is not None else sys.argv[1:])
    runs = alternating(
        __file__, passed, ("1", "2"), args.repeats, lambda r: f"n_jobs={r['n_jobs']}: {r['wall_s']:.2f} s"
    )
    Path(args.out).write_text(json.dumps({"argv": passed, "commit": commit(), "runs": runs}, indent=1))
    one, two = (statistics.median(r["wall_s"] for r in runs if r["n_jobs"] == n) for n in (1, 2))
    print(f"| median of {args.repeats} | n_jobs=1 | n_jobs=2 | ratio |\n|---|---|---|---|")
    print(f"| {args.trials} trials of {args.seconds} s (s) | {one:.2f} | {two:.2f} | **{two / one:.2f}** |")


if __name__ == "__main__":
    main()
