"""Search under DDP: `torchrun --nproc_per_node=2` on CPU (gloo), rank 0 deciding for both ranks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import hpsearch
from hpsearch import TrialState

SCRIPT = Path(__file__).with_name("ddp_search.py")


def torchrun(searches: str, output_dir: Path, model_dir: Path, mode: str = "") -> subprocess.CompletedProcess:
    """`tests/ddp_search.py` on two ranks: one search (a backend), or several in the same launch (`ddp_search`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
        str(SCRIPT),
        searches,
        str(output_dir),
        str(model_dir),
        mode,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def results(run: subprocess.CompletedProcess, search: str) -> dict[int, dict]:
    """What each rank said of `search` (a backend, or BACKEND/MODE), by rank."""
    lines = [json.loads(line[len("RESULT ") :]) for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    return {r["rank"]: r for r in lines if r["search"] == search}


# optuna's seed example runs under torchrun in the pruning test below
SEED_EXAMPLES = ("sigopt", "wandb", "wandb/agent")  # one launch: torchrun and two ranks' imports once


def test_seed_examples_under_torchrun_train_the_same_trials_on_every_rank(tiny_model_dir, tmp_path):
    run = torchrun(",".join(SEED_EXAMPLES), tmp_path, tiny_model_dir)
    assert run.returncode == 0, run.stderr[-3000:]
    for search in SEED_EXAMPLES:
        by_rank = results(run, search)
        assert by_rank[0]["trials"] == by_rank[1]["trials"] and len(by_rank[0]["trials"]) == 3, search
        assert by_rank[0]["best"] is not None and by_rank[1]["best"] is None, search  # other ranks return None
        trials = hpsearch.load_trials(tmp_path / search.replace("/", "-"))  # only rank 0 wrote the store
        assert len(trials) == 3 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}, search


def test_a_pruned_trial_stops_every_rank_at_the_same_step(tiny_model_dir, tmp_path):
    run = torchrun("optuna", tmp_path, tiny_model_dir, "prune")
    assert run.returncode == 0, run.stderr[-3000:]
    by_rank = results(run, "optuna")
    assert by_rank[0]["trials"] == by_rank[1]["trials"]
    assert by_rank[0]["best"] is not None and by_rank[1]["best"] is None  # other ranks return None
    ended = [(step, planned) for _, step, planned in by_rank[0]["trials"]]
    assert ended[1][0] < ended[1][1] and ended[0][0] == ended[0][1]  # trial 1 stopped early, on both ranks
    assert [t.state for t in hpsearch.load_trials(tmp_path)] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.COMPLETE,
    ]


def test_a_paused_trial_resumes_from_its_checkpoint_on_every_rank(tiny_model_dir, tmp_path):
    """optuna's seed example with the default pruning: trials 0 and 1 pause at their first rung; the best at the rung
    resumes, on both ranks, and runs to the end. (The tiny task's losses differ in their sixth digit or not at all:
    trials that tie at a rung all go on, so how many end pruned varies.)"""
    run = torchrun("optuna", tmp_path, tiny_model_dir)
    assert run.returncode == 0, run.stderr[-3000:]
    by_rank = results(run, "optuna")
    assert by_rank[0]["trials"] == by_rank[1]["trials"]  # [number, step it ended at, planned steps] per run
    runs = by_rank[0]["trials"]
    numbers = [number for number, _, _ in runs]
    resumed = {n for n in numbers if numbers.count(n) > 1}
    assert resumed and runs[-1][0] in resumed and runs[-1][1] == runs[-1][2], runs  # the last run ended a resumed one
    assert all(runs[numbers.index(n)][1] < runs[-1][1] for n in resumed), runs  # each paused before the end
    finished = {number for number, ended, planned in runs if ended == planned}
    trials = hpsearch.load_trials(tmp_path)
    assert [t.state for t in trials] == [
        TrialState.COMPLETE if t.number in finished else TrialState.PRUNED for t in trials
    ], runs


def test_killing_one_rank_ends_the_other_within_a_minute(tiny_model_dir, tmp_path):
    start = time.monotonic()
    run = torchrun("optuna", tmp_path, tiny_model_dir, "kill")
    assert run.returncode != 0
    assert time.monotonic() - start < 60 + 20  # a minute for the ranks, plus torchrun's own start
    trials = hpsearch.load_trials(tmp_path)  # the store stays readable: trial 0 waits at its rung, and trial 1 is
    # running (torchrun stopped rank 0 first) or failed (rank 0's collective raised first, and the trial was recorded)
    assert [t.state for t in trials][0] == TrialState.PAUSED
    assert trials[1].state in (TrialState.RUNNING, TrialState.FAILED)


def test_ray_under_torchrun_is_refused_on_every_rank(tiny_model_dir, tmp_path):
    run = torchrun("ray", tmp_path, tiny_model_dir)
    assert run.returncode != 0
    assert "runs trials in its own workers" in run.stderr  # rank 0's reason
    assert "The search stopped on rank 0" in run.stderr  # and rank 1 was told, not left hanging
