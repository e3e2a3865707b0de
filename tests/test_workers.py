"""Several trials at once on one machine (`n_jobs`): worker processes on one study, each with its
share of the machine; a killed worker replaced, Ctrl-C ending them all, bad input refused."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

import hpsearch
from hpsearch import ConfigError, TrialState
from hpsearch.executors.in_process import InProcess
from hpsearch.executors.resources import Machine, plan
from hpsearch.study import schema, store
from tests.reliability.spaces import native_space

SCRIPT = Path(__file__).with_name("parallel_search.py")
IN_PROCESS_BACKENDS = ["optuna", "sigopt", "wandb"]


def run_script(backend: str, output_dir: Path, fault: str = "") -> subprocess.Popen:
    env = dict(os.environ, FAULT=fault)
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), backend, str(output_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def started(output_dir: Path) -> list[tuple[int, ...]]:
    """(trial number, worker pid[, torch threads]) of each trial that started."""
    return [tuple(map(int, line.split())) for line in (output_dir / "started.log").read_text().splitlines()]


def worker_processes() -> list[psutil.Process]:
    """This process's hpsearch workers still alive (other tests' children, Ray's or W&B's, are not)."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "hpsearch.executors.workers" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
    return alive


def owners(trials) -> set[int]:
    return {schema.fact(t, schema.OWNER)["pid"] for t in trials}


@pytest.mark.parametrize("backend", IN_PROCESS_BACKENDS)
def test_two_workers_finish_exactly_n_trials_apart_and_never_wait_for_each_other(backend, tmp_path):
    """Trial 0 holds its worker until the other has finished two trials (pruned or not): workers
    that waited for each other (a synchronous rung) would never get there."""
    storage = f"sqlite:///{tmp_path / 'hpsearch.db'}"

    def objective(trial):
        import torch

        with open(tmp_path / "started.log", "a") as log:
            log.write(f"{trial.number} {os.getpid()} {torch.get_num_threads()}\n")
        for step in (1, 3):  # the default pruning's rungs
            if trial.report(step, trial.params["x"]):
                return trial.params["x"]
        if trial.number == 0:
            deadline = time.monotonic() + 60
            while sum(t.counts for t in hpsearch.load_trials(storage=storage)) < 2:
                assert time.monotonic() < deadline, "the other worker waited for this one"
                time.sleep(0.2)
        time.sleep(0.2)
        return trial.params["x"]

    options = {"sampler": __import__("optuna").samplers.RandomSampler(seed=0)} if backend == "optuna" else {"seed": 0}
    os.environ.update(WANDB_MODE="offline", WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"))
    best = hpsearch.search(
        objective, native_space(backend), n_trials=6, n_jobs=2, backend=backend, output_dir=str(tmp_path), **options
    )
    trials = hpsearch.load_trials(tmp_path)
    counted = [t for t in trials if t.counts]
    assert len(counted) == 6 and not [t for t in trials if t.state is TrialState.RUNNING]
    assert len({t.params["x"] for t in counted}) == 6  # the workers' copies of the sampler drew apart
    ran = started(tmp_path)
    assert sorted(n for n, _, _ in ran) == sorted(t.number for t in counted)  # none ran twice
    assert len({pid for _, pid, _ in ran}) == 2 and os.getpid() not in {pid for _, pid, _ in ran}
    cores = len(os.sched_getaffinity(0))
    assert {threads for _, _, threads in ran} == {max(1, cores // 2)}  # the cores split between the workers
    assert best.objective == min(t.objective for t in counted if t.state is TrialState.COMPLETE)
    assert not worker_processes()


@pytest.mark.parametrize("backend", ["optuna", "sigopt"])  # SigOpt: the new worker's experiment is told the store
def test_a_killed_worker_is_replaced_and_its_trial_run_again(backend, tmp_path):
    search = run_script(backend, tmp_path, "sigkill")
    out, err = search.communicate(timeout=300)
    assert search.returncode == 0, err[-3000:]
    assert re.search(r"Worker \d died \(signal SIGKILL\); a new worker takes its place", err)
    trials = hpsearch.load_trials(tmp_path)
    assert sum(t.counts for t in trials) == 4 and not [t for t in trials if t.state is TrialState.RUNNING]
    killed = trials[1]
    assert killed.state is TrialState.FAILED and killed.interrupted and "died" in killed.error
    assert len({pid for _, pid, *_ in started(tmp_path)}) == 3  # two workers, then the one in the dead one's place
    assert not any(psutil.pid_exists(pid) for _, pid, *_ in started(tmp_path))


def test_ctrl_c_ends_every_worker_with_one_line_and_the_rerun_finishes(tmp_path):
    """The watcher stops the workers whatever the backend (each backend's own Ctrl-C: tests/reliability)."""
    search = run_script("optuna", tmp_path, "sigint")
    deadline = time.monotonic() + 120
    while search.poll() is None and (not (tmp_path / "started.log").exists() or len(started(tmp_path)) < 2):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    interrupted_at = time.monotonic()  # trial 1 sends the Ctrl-C as it starts (the search may have ended already)
    out, err = search.communicate(timeout=30)
    assert time.monotonic() - interrupted_at < 10
    assert search.returncode != 0 and "Traceback" not in err, err[-3000:]
    assert (
        err.strip().splitlines()[-1]
        == "hpsearch: Search interrupted during trial 0, 1; rerun the same call to resume it."
    )
    assert not any(psutil.pid_exists(pid) for _, pid, *_ in started(tmp_path))
    trials = hpsearch.load_trials(tmp_path)
    assert [(t.state, t.interrupted) for t in trials[:2]] == [(TrialState.FAILED, True)] * 2
    rerun = run_script("optuna", tmp_path)
    assert rerun.wait(timeout=300) == 0
    assert sum(t.counts for t in hpsearch.load_trials(tmp_path)) == 4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_jobs": 0}, r"`n_jobs` must be an int >= 1 .* Received: n_jobs=0"),
        ({"n_jobs": "2"}, r"Received: n_jobs='2'"),
        ({"n_jobs": -2}, r"Received: n_jobs=-2"),
        ({"n_jobs": 2}, r"kept in memory. Pass `output_dir=`"),
        ({"n_jobs": 2, "trials_per_gpu": 2}, r"`trials_per_gpu=2` shares GPUs .* this machine has none"),
        ({"trials_per_gpu": 0}, r"`trials_per_gpu` must be an int >= 1"),
        ({"n_jobs": 2, "backend": "ray", "trials_per_gpu": 2}, r"resources_per_trial=\{'cpu': threads, 'gpu'"),
        ({"n_jobs": 2, "backend": "ray", "max_concurrent_trials": 3}, r"Pass `n_jobs` or `max_concurrent_trials`"),
    ],
)
def test_bad_parallel_input_fails_before_any_trial(options, message):
    ran = []
    with pytest.raises(ConfigError, match=message):
        hpsearch.search(ran.append, {"x": hpsearch.space.Float(0.0, 1.0)}, n_trials=2, show_progress=False, **options)
    assert not ran


def test_the_machine_is_shared_out_between_the_workers():
    gpus = Machine(cores=16, gpus=2)
    shares, line = plan(-1, 2, None, gpus)  # two per GPU
    assert [(s.gpu, s.threads) for s in shares] == [(0, 4), (0, 4), (1, 4), (1, 4)]
    assert line == "4 worker(s) on 2 GPU(s), 2 per GPU, 4 CPU thread(s) each"
    assert shares[3].environment(4)["CUDA_VISIBLE_DEVICES"] == "1"
    assert [s.gpu for s in plan(3, None, None, gpus)[0]] == [0, 0, 1]  # spread evenly by default
    assert [s.gpu for s in plan(2, None, None, gpus)[0]] == [0, 1]
    with pytest.raises(ConfigError, match=r"`n_jobs=5` workers do not fit 2 GPU\(s\) at trials_per_gpu=2"):
        plan(5, 2, None, gpus)
    cpu = Machine(cores=8, gpus=0)
    assert [(s.gpu, s.threads) for s in plan(-1, None, 2, cpu)[0]] == [(None, 2)] * 4
    assert [s.threads for s in plan(3, None, None, cpu)[0]] == [2, 2, 2]
    assert [s.threads for s in plan(-1, None, None, Machine(cores=16, gpus=0))[0]] == [2] * 8
    one = plan(-1, None, None, Machine(cores=2, gpus=0))[1]
    assert one == "1 worker(s), 2 CPU thread(s) each (2 cores): the trials run in this process"
    assert "CUDA_VISIBLE_DEVICES" not in plan(2, None, None, cpu)[0][0].environment(2)


def test_a_trainer_search_on_two_workers_keeps_the_best_model(make_trainer, tiny_model_dir, tmp_path):
    """As users run it: checkpoints, `load_best_model_at_end`, a fixed `args.seed`, TensorBoard logging, and
    `model_init(trial)` suggesting a model hyperparameter of its own (define-by-run). Each worker's first trial
    waits for the other worker to start one: under the suite's load one worker finished all four before the other
    had started."""
    from transformers import AutoModelForSequenceClassification

    workers = tmp_path / "workers"
    workers.mkdir()

    def model_init(trial):
        dropout = trial.suggest_float("hidden_dropout_prob", 0.0, 0.3) if trial is not None else 0.1
        if trial is not None:
            (workers / str(os.getpid())).touch()
            deadline = time.monotonic() + 120
            while len(list(workers.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        return AutoModelForSequenceClassification.from_pretrained(
            tiny_model_dir, num_labels=2, hidden_dropout_prob=dropout
        )

    trainer = make_trainer(
        model_init=model_init,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        report_to="tensorboard",
    )
    best = trainer.hyperparameter_search(
        hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)},
        n_trials=4,
        n_jobs=2,
        direction="minimize",
    )
    study = hpsearch.load_trials(trainer.args.output_dir)
    counted = [t for t in study if t.counts]
    assert len(counted) == 4 and len({t.params["learning_rate"] for t in counted}) == 4
    assert len({t.params["hidden_dropout_prob"] for t in counted}) == 4  # suggested in each worker's model_init
    optuna_trials = store.load_study(trainer.args.output_dir).trials
    assert len(owners(t for t in optuna_trials if t.state.is_finished())) == 2
    assert best.run_id in {str(t.number) for t in counted}
    model = AutoModelForSequenceClassification.from_pretrained(best.run_summary.best_model_dir)
    assert model.num_labels == 2
    runs = {p.parent.name for p in Path(trainer.args.output_dir).rglob("events.out.tfevents.*")}
    assert len(runs) >= 4  # each trial its own TensorBoard run, from either worker


@pytest.mark.parametrize(("backend", "options"), [("wandb", {"server": True}), ("sigopt", {"api_token": "token"})])
def test_a_backend_server_is_refused_before_any_trial(backend, options, tmp_path):
    """W&B's and SigOpt's servers run parallel agents their own way."""
    ran = []
    os.environ.update(WANDB_MODE="offline", WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"))
    with pytest.raises(ConfigError, match=r"`n_jobs` with a (W&B|SigOpt) server"):
        hpsearch.search(
            ran.append,
            native_space(backend),
            n_trials=2,
            n_jobs=2,
            backend=backend,
            output_dir=str(tmp_path),
            **options,
        )
    assert not ran and not [t for t in hpsearch.load_trials(tmp_path) if t.counts]
    assert not worker_processes()


def test_ray_takes_n_jobs_as_its_concurrency_and_torchrun_refuses_it(tmp_path, caplog):
    space = {"x": hpsearch.space.Float(0.0, 1.0)}
    with caplog.at_level("INFO", logger="hpsearch"):
        hpsearch.Search(space, n_jobs=-1, output_dir=str(tmp_path))
    cores = len(os.sched_getaffinity(0))
    assert f"hpsearch: n_jobs=-1: {max(1, cores // 2)} worker(s), " in caplog.text  # said in the log
    assert hpsearch.Search(space, backend="ray", n_jobs=2).backend.max_concurrent_trials == 2
    assert hpsearch.Search(space, backend="ray", n_jobs=-1).backend.max_concurrent_trials is None
    with pytest.raises(ConfigError, match="`n_jobs` cannot run under torchrun"):
        hpsearch.Search(space, n_jobs=2, output_dir=str(tmp_path), executor=InProcess())


def test_an_objective_that_does_not_pickle_fails_before_any_trial(tmp_path):
    lock = threading.Lock()

    def objective(trial):
        with lock:
            return trial.params["x"]

    with pytest.raises(ConfigError, match=r"`n_jobs` sends the objective .* do not pickle"):
        hpsearch.search(
            objective, {"x": hpsearch.space.Float(0.0, 1.0)}, n_trials=2, n_jobs=2, output_dir=str(tmp_path)
        )
    assert not hpsearch.load_trials(tmp_path)


def test_workers_end_when_the_search_process_is_killed_and_the_rerun_recovers(tmp_path):
    search = run_script("optuna", tmp_path, "kill-search")
    assert search.wait(timeout=120) == -signal.SIGKILL
    workers = {pid for _, pid, *_ in started(tmp_path)}
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived the search"
        time.sleep(0.2)
    assert run_script("optuna", tmp_path).wait(timeout=300) == 0
    trials = hpsearch.load_trials(tmp_path)
    assert sum(t.counts for t in trials) == 4 and not [t for t in trials if t.state is TrialState.RUNNING]


def test_a_search_of_a_function_that_never_uses_torch_never_imports_it(tmp_path):
    """Workers and the plan that shares the machine out import torch only for trials that use it (seconds a
    short search of a plain function would pay, per process); the workers still run one thread each."""
    script = f"""
import os, sys
import hpsearch
from hpsearch.space import Float

def objective(trial):
    with open({str(tmp_path / "seen.log")!r}, "a") as log:
        log.write(f"{{os.environ['OMP_NUM_THREADS']}} {{'torch' in sys.modules}}\\n")
    return trial.params["x"] ** 2

hpsearch.search(objective, {{"x": Float(-1.0, 1.0)}}, n_trials=4, n_jobs=2, seed=0, show_progress=False,
                storage="sqlite:///{tmp_path}/study.db")
print("torch imported:", "torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "torch imported: False" in done.stdout
    seen = (tmp_path / "seen.log").read_text().splitlines()
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    assert seen == [f"{threads} False"] * 4  # each worker's share of the cores, set before any torch
