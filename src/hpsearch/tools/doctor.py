"""`hpsearch doctor`: what this environment can run (each backend and its versions, torch's build and the
GPUs it sees, a storage), and, with `--fix`, the installs pip cannot do from hpsearch's extras alone.

A backend that imports may still fail when its engine first suggests (libsigopt on numpy 2 did, at a two-objective
experiment's 6th suggestion): each installed backend's engine is asked for a few suggestions, in a second or two."""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from hpsearch import extras

# the backend each extra brings (the dashboard is a command, not a backend)
USES = {extra: f'backend "{extra}"' for extra in ("ray", "wandb", "sigopt")} | {"dashboard": "hpsearch dashboard"}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: what was checked, whether it works, what it found or how to fix it."""

    what: str
    ok: bool
    detail: str
    required: bool = False  # hpsearch cannot run at all without it
    broken: bool = False  # installed, yet it fails when it runs

    def line(self) -> str:
        return f"{'ok' if self.ok else 'broken' if self.broken else 'missing':8} {self.what}: {self.detail}"


def checks(storage: str | None = None) -> list[Check]:
    """Every check, in the order the report prints them."""
    found = [_core("transformers"), _tried(_core("optuna"), _optuna_suggests), _torch()]
    found += [_tried(_extra(extra), SUGGESTS[extra]) if extra in SUGGESTS else _extra(extra) for extra in extras.EXTRAS]
    return [*found, _storage(storage)] if storage else found


def fix() -> list[str]:
    """Install the `--no-deps` libraries of every extra whose own libraries are here; what was done, or
    what the user must run first."""
    done = []
    for extra in extras.EXTRAS:
        absent = extras.missing(extra)
        if any(library.no_deps is None for library in absent):
            then = ", then hpsearch doctor --fix" if any(library.no_deps for library in extras.EXTRAS[extra]) else ""
            done.append(f"{USES[extra]}: not installed by --fix; run {extras.extra_command(extra)}{then}")
            continue
        for library in absent:
            extras.install_no_deps(library)
            done.append(f"{USES[extra]}: installed {library.no_deps} (--no-deps)")
    return done


def header() -> str:
    import hpsearch

    return f"hpsearch {hpsearch.__version__} on Python {platform.python_version()} ({sys.executable})"


def _core(distribution: str) -> Check:
    version = extras.version(distribution)
    fix = f'pip install "{extras.installed_from()}" (it depends on {distribution})'
    return Check(distribution, version is not None, version or fix, required=True)


def _torch() -> Check:
    try:
        import torch
    except ImportError:
        return Check("torch", False, "not installed: pip install torch", required=True)
    gpus = torch.cuda.device_count()
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    seen = ", ".join(torch.cuda.get_device_name(i) for i in range(gpus)) if gpus else "no GPU visible"
    return Check("torch", True, f"{torch.__version__}, {build}, {seen}", required=True)


def _extra(extra: str) -> Check:
    absent = extras.missing(extra)
    if absent:
        fixes = "; ".join(extras.install_command(extra, library) for library in absent)
        can_fix = all(library.no_deps for library in absent)
        return Check(USES[extra], False, fixes + (" (or: hpsearch doctor --fix)" if can_fix else ""))
    versions = (f"{library.distribution} {extras.version(library.distribution)}" for library in extras.EXTRAS[extra])
    return Check(USES[extra], True, ", ".join(versions))


def _storage(url: str) -> Check:
    from hpsearch.study import store

    what = f"storage {store.hide_password(url)}"
    try:
        studies = store.open_storage(url).get_all_studies()
    except Exception as e:  # what the database driver says is the diagnosis (store's errors hide the password)
        return Check(what, False, f"not reachable: {e}")
    return Check(what, True, f"reachable, {len(studies)} studies")


def _tried(check: Check, suggest: Callable[[], str]) -> Check:
    """`check` of an installed backend once its engine has made a few suggestions (`suggest` says which): broken, with
    the engine's error, if it raised."""
    if not check.ok:
        return check
    try:
        with warnings.catch_warnings(), _one_blas_thread():
            warnings.simplefilter("ignore")  # the libraries' notices to their authors (pydantic, Ray's space advice)
            done = suggest()
    except Exception as e:  # whatever the engine raised is the diagnosis
        failed = f"{check.detail}, but its engine fails when asked for suggestions: {type(e).__name__}: {e}"
        return dataclasses.replace(check, ok=False, broken=True, detail=failed)
    return dataclasses.replace(check, detail=f"{check.detail} ({done})")


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """One BLAS thread for the engines' tiny matrices: more only wait on each other, for seconds on a busy machine
    (`threadpoolctl`, where scikit-learn brought it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _optuna_suggests() -> str:
    """hpsearch's default sampler, asked and told as the engine does, in memory."""
    import optuna

    from hpsearch.backends.optuna import default_sampler
    from hpsearch.study import store

    with store.quiet_optuna():
        study = optuna.create_study(sampler=default_sampler(seed=0, parallel=False, n_trials=3))
    for _ in range(3):
        trial = study.ask()
        study.tell(trial, (trial.suggest_float("x", 1e-6, 1e-4, log=True) - 5e-5) ** 2 + trial.suggest_int("n", 1, 3))
    return "3 trials asked and told"


def _sigopt_suggests() -> str:
    """The embedded optimizer with two objectives, past the 6th suggestion: the first that is not random."""
    from hpsearch.backends.sigopt import embedded_connection

    connection = embedded_connection()
    experiment = connection.experiments().create(
        name="hpsearch doctor",
        parameters=[{"name": "x", "type": "double", "bounds": {"min": 0.0, "max": 1.0}}],
        metrics=[{"name": "low", "objective": "minimize"}, {"name": "high", "objective": "maximize"}],
        observation_budget=6,
    )
    for _ in range(6):
        suggestion = connection.experiments(experiment.id).suggestions().create()
        x = suggestion.assignments["x"]
        values = [{"name": "low", "value": x}, {"name": "high", "value": x * x}]
        connection.experiments(experiment.id).observations().create(suggestion=suggestion.id, values=values)
    return "6 suggestions of two objectives"


def _wandb_suggests() -> str:
    """W&B's sweep engine, bayes: its third run is the first its Gaussian process proposes."""
    import sweeps

    config = {
        "method": "bayes",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"min": 0.0, "max": 1.0}},
    }
    runs = []
    for number in range(3):
        run = sweeps.next_run(config, runs)
        run.name, run.state = str(number), sweeps.RunState.finished
        run.summary_metrics = {"loss": (run.config["x"]["value"] - 0.3) ** 2}
        runs.append(run)
    return "3 bayes runs"


def _ray_suggests() -> str:
    """Ray Tune's random search (the default) and a searcher (what `search_alg=` takes), with no cluster."""
    import numpy
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch
    from ray.tune.search.variant_generator import generate_variants

    from hpsearch.study import store

    space = {"x": tune.uniform(0.0, 1.0), "n": tune.choice([1, 2])}
    random = numpy.random.default_rng(0)
    for _ in range(3):
        list(generate_variants(space, random_state=random))
    with store.quiet_optuna():
        searcher = OptunaSearch(space=OptunaSearch.convert_search_space(space), metric="loss", mode="min", seed=0)
    for trial_id in ("0", "1", "2"):
        config = searcher.suggest(trial_id)
        searcher.on_trial_complete(trial_id, {"loss": config["x"] * config["n"]})
    return "3 random variants, 3 suggestions of a searcher"


# what asks each extra's backend for a few suggestions (the dashboard is no backend)
SUGGESTS = {"ray": _ray_suggests, "wandb": _wandb_suggests, "sigopt": _sigopt_suggests}
