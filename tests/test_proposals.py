"""Every backend proposes new points whatever the global random state.

transformers reseeds Python's and NumPy's global generators with `args.seed` in `Trainer.__init__`
and in every `train()`, and user code may reseed them too. The backends' optimizers keep random
states of their own, so a search searches; `seed=` makes their proposals reproducible. (Trainer
searches with a fixed `args.seed`: each backend's seed example, which checks 5 distinct points.)
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import ray

import hpsearch

BACKENDS = ["optuna", "sigopt", "wandb", "ray"]


def lr_space(backend: str):
    """learning_rate, log-uniform in [1e-4, 1e-2], in the backend's own format."""
    if backend == "ray":
        from ray import tune

        return {"learning_rate": tune.loguniform(1e-4, 1e-2)}
    return {
        "optuna": lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)},
        "sigopt": [
            {"name": "learning_rate", "type": "double", "bounds": {"min": 1e-4, "max": 1e-2}, "transformation": "log"}
        ],
        "wandb": {
            "method": "random",
            "parameters": {"learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}},
        },
    }[backend]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("SIGOPT_API_TOKEN", raising=False)


@pytest.fixture
def connected_to_ray(request):
    """On Ray, one connection to the test process's Ray cluster for the test's searches (hpsearch leaves a Ray it did
    not connect to connected)."""
    if request.node.callspec.params["backend"] != "ray":
        yield
        return
    ray.init(address=request.getfixturevalue("ray_cluster"))
    yield
    ray.shutdown()


def reseeding_objective(trial):
    """An objective that reseeds every global generator, as `set_seed` in user code does."""
    random.seed(0)
    np.random.seed(0)
    return trial.params["learning_rate"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_proposals_ignore_the_global_random_state_and_follow_seed(backend, tmp_path, connected_to_ray):
    def run(name: str, seed: int, n_trials: int) -> list[float]:
        storage = f"sqlite:///{tmp_path / name}.db"
        hpsearch.search(
            reseeding_objective,
            lr_space(backend),
            n_trials=n_trials,
            backend=backend,
            seed=seed,
            storage=storage,
            output_dir=str(tmp_path / name),
            show_progress=False,
            **({"max_concurrent_trials": 1} if backend == "ray" else {}),
        )
        return [t.params["learning_rate"] for t in hpsearch.load_trials(storage=storage)]

    first, again, other = run("a", seed=3, n_trials=3), run("b", seed=3, n_trials=3), run("c", seed=4, n_trials=3)
    assert len(set(first)) == 3, first  # a search searches, though the objective reseeds every generator
    assert again == first  # the same seed, the same proposals
    assert other != first
    resumed = run("a", seed=3, n_trials=5)  # the same call again, for more trials: new points
    assert resumed[:3] == first and len(set(resumed)) == 5, resumed


def test_tpes_start_up_is_half_the_budget_at_most_optunas_ten():
    """A search of 10 trials or fewer is not all random start-up: half of `n_trials`, at least one, and optuna's own
    10 from 20 trials on (transformers' search, the benchmark's 20-trial runs)."""
    import optuna

    from hpsearch.backends.optuna import startup_trials

    assert [startup_trials(n) for n in (1, 2, 3, 8, 9, 19, 20, 100)] == [1, 1, 1, 4, 4, 9, 10, 10]
    assert startup_trials(20) == optuna.samplers.TPESampler()._n_startup_trials


def test_optunas_default_sampler_is_optunas_tpe_seeded_and_the_users_own_wins(tmp_path):
    """The default is optuna's TPE, its random start-up half of `n_trials` (4 of 8); a seeded search proposes the
    same points again; a sampler passed in is used."""
    import optuna

    from hpsearch import Search
    from hpsearch.space import Categorical, Float

    space = {"lr": Float(1e-6, 1e-4, log=True), "batch": Categorical([16, 32, 64, 128])}

    def objective(trial):
        return -abs(np.log10(trial.params["lr"]) + 4.5) - trial.params["batch"] / 128

    def run(name, **options):
        search = Search(space, n_trials=8, direction="maximize", storage=f"sqlite:///{tmp_path}/{name}.db", **options)
        search.run(objective)
        return search.study

    seeded = run("a", seed=3, show_progress=False)
    sampler = seeded.sampler.base  # optuna's TPE, behind what keeps values that ran out of memory from coming back
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == 4  # half of the 8 trials
    again = run("b", seed=3, show_progress=False)
    assert [t.params for t in again.trials] == [t.params for t in seeded.trials]
    assert len({(t.params["lr"], t.params["batch"]) for t in seeded.trials}) == 8  # a search that searches
    own = optuna.samplers.RandomSampler(seed=0)
    assert run("c", sampler=own, show_progress=False).sampler is own
