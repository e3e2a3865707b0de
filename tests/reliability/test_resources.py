"""Running out of resources: a trial out of memory is recorded and the search goes on; a full
disk fails before any training."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

import hpsearch
from hpsearch import TrialState


def lr_space(trial):
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True)}


class RunOutOfMemoryInTrial1(TrainerCallback):
    """Asks the allocator for more memory than any machine has, at trial 1's first step (before its first rung,
    where the default pruning may stop it)."""

    def __init__(self):
        self.trial = -1

    def on_train_begin(self, args, state, control, **kwargs):
        self.trial += 1

    def on_step_end(self, args, state, control, **kwargs):
        if self.trial == 1 and state.global_step == 1:
            torch.empty(2**60, dtype=torch.uint8)


def test_a_trial_out_of_memory_is_recorded_and_the_search_goes_on(make_trainer):
    trainer = make_trainer(max_steps=4)
    trainer.add_callback(RunOutOfMemoryInTrial1())
    best = trainer.hyperparameter_search(hp_space=lr_space, n_trials=3, show_progress=False)
    trials = hpsearch.load_trials(trainer.args.output_dir)
    ended = (TrialState.COMPLETE, TrialState.PRUNED)  # run to the end, or stopped at a rung
    assert [t.state in ended for t in trials] == [True, False, True] and trials[1].state is TrialState.FAILED
    assert "can't allocate memory" in trials[1].error or "out of memory" in trials[1].error.lower()
    assert best.run_id in ("0", "2")


@contextlib.contextmanager
def mounted_tmpfs(options: str):
    """A small file system of its own (tmpfs): a real full or read-only disk, not a simulated error."""
    path = Path(tempfile.mkdtemp(prefix="hpsearch-tmpfs-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    assert mounted.returncode == 0, f"this test mounts a tmpfs (it needs root): {mounted.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True)  # lazy: a store may hold a file open
        path.rmdir()


@pytest.fixture
def small_disk():
    with mounted_tmpfs("size=64k") as path:
        yield path


def fill(directory: Path, leave: int) -> None:
    """Write to `directory` until at most `leave` bytes are free."""
    with open(directory / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
                if shutil.disk_usage(directory).free <= leave:
                    return
        except OSError:
            return


@pytest.mark.parametrize("leave", [0, 32 * 1024], ids=["full", "almost-full"])
def test_a_full_disk_fails_before_any_training(make_trainer, small_disk, leave):
    fill(small_disk, leave)
    calls = []
    trainer = make_trainer(output_dir=str(small_disk))
    init = trainer.model_init
    trainer.model_init = lambda trial: calls.append(1) or init(trial)
    with pytest.raises(ValueError, match=r"(not writable \(No space left on device\)|database or disk is full)"):
        trainer.hyperparameter_search(hp_space=lr_space, n_trials=2, show_progress=False)
    assert calls == []


def test_a_read_only_output_dir_fails_before_any_training(make_trainer):
    with mounted_tmpfs("ro,size=64k") as read_only:  # read-only even for root, unlike a chmod
        trainer = make_trainer(output_dir=str(read_only))
        with pytest.raises(ValueError, match=r"`output_dir` .* is not writable \(Read-only file system\)"):
            trainer.hyperparameter_search(hp_space=lr_space, n_trials=2, show_progress=False)
