"""How a machine is split between a search's worker processes (`n_jobs`): CPU threads, and GPUs.

Each worker gets an equal share of the CPU cores as its threads (the OpenMP/MKL variables, which torch
reads as it starts: a worker imports torch only if its trials do), and on a GPU machine one GPU, or a share of one
with `trials_per_gpu=k` (k workers on each GPU, through `CUDA_VISIBLE_DEVICES`).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpsearch.errors import ConfigError, check_number

if TYPE_CHECKING:
    from hpsearch.backends.base import Backend

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# `n_jobs=-1` on CPU: a worker per 2 cores. A MiniLM trial on 2 threads trains 1.67x as fast as on 1
# (bench/parallel.py), so two 1-thread workers gain little over one 2-thread trial and hold twice the memory.
CPU_THREADS_PER_TRIAL = 2


@dataclass(frozen=True)
class WorkerShare:
    """One worker's part of the machine: its CPU threads, and its GPU (None: no GPU)."""

    index: int
    threads: int
    gpu: int | None = None

    def environment(self, workers: int) -> dict[str, str]:
        """The variables the worker process starts with: its share, and who it is (its own random draws)."""
        variables = dict.fromkeys(THREAD_VARIABLES, str(self.threads))
        variables.update(HPSEARCH_WORKER=str(self.index), HPSEARCH_WORKERS=str(workers))
        if self.gpu is not None:
            variables["CUDA_VISIBLE_DEVICES"] = str(self.gpu)
        return variables


@dataclass(frozen=True)
class Machine:
    """What this process may use: its CPU cores and its GPUs."""

    cores: int
    gpus: int

    @classmethod
    def here(cls) -> Machine:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()  # not on macOS
        return cls(cores=cores or 1, gpus=_gpu_count())


def _gpu_count() -> int:
    """The CUDA GPUs torch sees; on a Linux machine with no NVIDIA driver, 0 without importing torch (seconds
    that a search of a function that never uses torch would pay)."""
    if "torch" not in sys.modules and sys.platform == "linux" and not os.path.exists("/proc/driver/nvidia"):
        return 0
    import torch

    return torch.cuda.device_count()


def check_n_jobs(n_jobs: object, trials_per_gpu: object, threads_per_trial: object) -> None:
    """The arguments' types and ranges, whatever the machine."""
    at_once = " (trials at once, each in a worker process), or -1 for as many as this machine holds"
    check_number("n_jobs", n_jobs, 1, allowed=(-1,), says=at_once)
    for name, value in (("trials_per_gpu", trials_per_gpu), ("threads_per_trial", threads_per_trial)):
        check_number(name, value, 1, allowed=(None,), says=", or None")


def plan(
    n_jobs: int, trials_per_gpu: int | None, threads_per_trial: int | None, machine: Machine
) -> tuple[list[WorkerShare], str]:
    """The workers of a search and each one's share, with the line that says so in the log.

    On GPUs, `n_jobs=-1` is GPUs x `trials_per_gpu` workers, and by default the workers spread evenly
    over the GPUs; on CPU it is a worker per `threads_per_trial` cores (default `CPU_THREADS_PER_TRIAL`).
    Threads default to the cores split evenly between the workers.
    """
    if trials_per_gpu is not None and machine.gpus == 0:
        raise ConfigError(
            f"`trials_per_gpu={trials_per_gpu}` shares GPUs between trials, but this machine has none "
            "(torch.cuda.device_count() is 0). Leave it out to run on the CPU."
        )
    if n_jobs == -1:
        if machine.gpus:
            n_jobs = machine.gpus * (trials_per_gpu or 1)
        else:
            n_jobs = max(1, machine.cores // (threads_per_trial or CPU_THREADS_PER_TRIAL))
    threads = threads_per_trial or max(1, machine.cores // n_jobs)
    if not machine.gpus:
        shares = [WorkerShare(i, threads) for i in range(n_jobs)]
        where = "" if n_jobs > 1 else ": the trials run in this process"
        return shares, f"{n_jobs} worker(s), {threads} CPU thread(s) each ({machine.cores} cores){where}"
    per_gpu = trials_per_gpu or math.ceil(n_jobs / machine.gpus)
    if n_jobs > machine.gpus * per_gpu:
        raise ConfigError(
            f"`n_jobs={n_jobs}` workers do not fit {machine.gpus} GPU(s) at trials_per_gpu={per_gpu}. Raise "
            f"`trials_per_gpu`, or pass n_jobs <= {machine.gpus * per_gpu} (or -1)."
        )
    shares = [WorkerShare(i, threads, gpu=i // per_gpu) for i in range(n_jobs)]
    used = len({s.gpu for s in shares})
    return shares, f"{n_jobs} worker(s) on {used} GPU(s), {per_gpu} per GPU, {threads} CPU thread(s) each"


def plan_for(
    backend_class: type[Backend],
    n_jobs: Any,
    trials_per_gpu: Any,
    threads_per_trial: Any,
    options: dict[str, Any],
) -> tuple[list[WorkerShare], str]:
    """The worker processes a search runs (none: its trials run in this process), with its log line.

    A backend with a loop of its own (Ray Tune) schedules its trials itself: `n_jobs` is its
    `max_concurrent_trials`, set in `options`."""
    from hpsearch.backends.base import AskTellBackend

    check_n_jobs(n_jobs, trials_per_gpu, threads_per_trial)
    if not issubclass(backend_class, AskTellBackend):
        if trials_per_gpu is not None or threads_per_trial is not None:
            raise ConfigError(
                f"The {backend_class.name!r} backend gives each trial its resources itself: pass "
                "resources_per_trial={'cpu': threads, 'gpu': 1 / trials_per_gpu} instead of `trials_per_gpu` "
                "and `threads_per_trial`."
            )
        if n_jobs != 1:
            concurrent = None if n_jobs == -1 else n_jobs
            if options.get("max_concurrent_trials", concurrent) != concurrent:
                raise ConfigError(
                    f"Pass `n_jobs` or `max_concurrent_trials`, not both. Received: n_jobs={n_jobs!r}, "
                    f"max_concurrent_trials={options['max_concurrent_trials']!r}."
                )
            options["max_concurrent_trials"] = concurrent
        return [], ""
    if n_jobs == 1 and trials_per_gpu is None and threads_per_trial is None:
        return [], ""
    shares, line = plan(n_jobs, trials_per_gpu, threads_per_trial, Machine.here())
    return (shares if len(shares) > 1 else []), line


def check_shareable(storage: Any, executor: Any) -> None:
    """Worker processes share the study through its storage: a database URL or a storage that pickles; and they are
    where the trials run, so no other `executor` is (DDP's ranks)."""
    if executor is not None:
        raise ConfigError(
            "`n_jobs` cannot run under torchrun: each DDP rank is a process of the one trial already. Launch "
            "the search with `n_jobs` as one process, or under torchrun with n_jobs=1."
        )
    import optuna

    if storage is None or isinstance(storage, optuna.storages.InMemoryStorage):
        raise ConfigError(
            "`n_jobs` runs trials in worker processes, which share the study through its storage, but this "
            "study is kept in memory. Pass `output_dir=` (the study goes to its hpsearch.db) or "
            "storage='sqlite:///path/hpsearch.db'."
        )


def worker_identity() -> dict[str, int]:
    """Which worker of how many this process is (0 of 1 outside a search's workers): its random draws."""
    return {"worker": int(os.environ.get("HPSEARCH_WORKER", 0)), "workers": int(os.environ.get("HPSEARCH_WORKERS", 1))}
