"""Which optuna sampler finds a good point in few trials: a surrogate benchmark, built from real trials.

The real trials of `bench/rung_signals.py` (random points of the docs' space, each trained to the
end) give a surrogate of the final accuracy over the space: a Gaussian process on (log learning
rate, log batch size), fitted to them. Each sampler then searches the surrogate many times (a
trial's observed accuracy is the surrogate's value plus the evaluation set's binomial noise), and
we compare the true accuracy of the point each search ends with (its best observed trial) after 8
and 20 trials. This ranks samplers in seconds; the benchmark (`bench/compare.py`) is what decides.

    .venv/bin/python bench/sampler_surrogate.py bench/rung_signals-tweets.json [more files] --searches 100
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BATCHES = (16, 32, 64, 128)
LR = (1e-6, 1e-4)


def surrogate(results: dict[str, Any]) -> Callable[[float, int], float]:
    """The final accuracy at (learning rate, batch size), as a GP fitted to the real trials predicts it."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    def features(lr: float, batch: int) -> list[float]:
        return [math.log10(lr), math.log2(batch)]

    trials = results["trials"]
    x = np.array([features(t["learning_rate"], t["per_device_train_batch_size"]) for t in trials])
    y = np.array([np.mean(t["final"]["correct"]) for t in trials])
    kernel = ConstantKernel(0.01) * RBF([1.0, 1.0], (0.1, 10.0)) + WhiteKernel(1e-4, (1e-6, 1e-2))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(x, y)
    return lambda lr, batch: float(gp.predict(np.array([features(lr, batch)]))[0])


def _samplers() -> dict[str, Callable[[int], Any]]:
    import optuna

    return {
        "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
        "tpe (optuna's defaults: 10 random)": lambda seed: optuna.samplers.TPESampler(seed=seed),
        "tpe, 5 random": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
        "tpe, 3 random": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=3),
        "gp (optuna's GPSampler)": lambda seed: optuna.samplers.GPSampler(seed=seed),
        "gp, 5 random": lambda seed: optuna.samplers.GPSampler(seed=seed, n_startup_trials=5),
    }


def search(make_sampler: Callable[[int], Any], truth: Callable[[float, int], float], eval_size: int, seed: int):
    """The true accuracy of the best observed point after each trial of a 20-trial search."""
    import optuna

    noise = np.random.default_rng(seed)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(seed))
    best_true, best_seen, curve = None, -1.0, []
    for _ in range(20):
        trial = study.ask()
        lr = trial.suggest_float("learning_rate", *LR, log=True)
        batch = trial.suggest_categorical("per_device_train_batch_size", list(BATCHES))
        value = min(max(truth(lr, batch), 0.0), 1.0)
        seen = noise.binomial(eval_size, value) / eval_size
        study.tell(trial, seen)
        if seen > best_seen:
            best_seen, best_true = seen, value
        curve.append(best_true)
    return curve


def main(argv: list[str] | None = None) -> None:
    import optuna

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="bench/rung_signals.py results files")
    parser.add_argument("--searches", type=int, default=100, help="searches per sampler and dataset")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    for path in args.results:
        results = json.loads(Path(path).read_text())
        truth = surrogate(results)
        eval_size = results["settings"]["eval_size"]
        grid = [truth(math.exp(v), b) for v in np.linspace(math.log(LR[0]), math.log(LR[1]), 60) for b in BATCHES]
        print(f"\n{results['settings']}: the surrogate's best {max(grid):.3f}, majority {results['majority']:.3f}")
        print("| sampler | true accuracy of the best point after 8 trials | after 20 | regret after 20 |")
        print("|---|---|---|---|")
        for name, make in _samplers().items():
            curves = np.array([search(make, truth, eval_size, seed) for seed in range(args.searches)])
            at8, at20 = curves[:, 7], curves[:, 19]
            print(
                f"| {name} | {np.median(at8):.3f} (mean {at8.mean():.3f}) | {np.median(at20):.3f} "
                f"(mean {at20.mean():.3f}) | {max(grid) - at20.mean():.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
