"""A Trainer trial paused at a rung (`hpsearch.loop.halving`) keeps a checkpoint of its own, apart from the user's.

Where a trial pauses, the user's evaluation and checkpoint of that step happen as without hpsearch; then the trial's
state is saved where its training ends (`compat.save_resumable`), under `<output_dir>/.paused/<study>/trial-<n>`: no
callback of the user's sees that save and `save_total_limit` does not count it. The trial resumes from it; it is
removed once the trial runs on to its end, and, with the trial's run directory (unless `keep_checkpoints`), when the
trial is pruned while it waits (`Trials.claim_paused`).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import transformers

from hpsearch import compat
from hpsearch.study import disk
from hpsearch.trial import Trial


def estimated_bytes(trainer: transformers.Trainer) -> int:
    """What the trial's pause checkpoint will take on disk: its model as `save_model` writes it (only the trained
    parameters of a PEFT model: its adapter) and its optimizer's state (Adam: two tensors a trained parameter)."""
    model = trainer.model
    adapter_only = hasattr(model, "peft_config")
    weights = sum(_bytes(p) for p in model.parameters() if p.requires_grad or not adapter_only)
    optimizer = trainer.optimizer
    states = optimizer.state.values() if optimizer is not None else ()
    return weights + sum(_bytes(v) for state in states for v in state.values() if hasattr(v, "element_size"))


def _bytes(tensor: Any) -> int:
    return tensor.numel() * tensor.element_size()


def save(trainer: transformers.Trainer, trial: Trial, directory: Path, run_dir: str | None) -> None:
    """Save the trial's pause checkpoint to `directory` (replacing an earlier pause's) and tell the trial what it
    takes: its bytes, the seconds its save took, and what to remove if the trial never resumes (`run_dir` too).
    Under DDP the rank that writes the model clears the directory, and every rank waits for it before saving its
    part: a rank clearing it later deleted the model another had just written."""
    if trainer.args.should_save:
        shutil.rmtree(directory, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    start = time.monotonic()
    compat.save_resumable(trainer, str(directory))
    seconds = time.monotonic() - start
    leftovers = [str(directory), *([run_dir] if run_dir else [])]
    if trainer.is_world_process_zero():
        trial.note_pause(str(directory), disk.directory_bytes(directory), seconds, leftovers)
