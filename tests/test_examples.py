"""Every script in examples/ runs as a user runs it, at a tiny size (the real model, 32 reviews, 2 trials).
`backends.py`'s Ray space runs through `ray_cluster.py`, on a real cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import hpsearch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = ["--train-size", "32", "--eval-size", "16", "--max-length", "16", "--trials", "2"]


def run_example(command: list[str], output_dir: Path) -> str:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(output_dir)}
    done = subprocess.run(
        [*command, *TINY, "--output-dir", str(output_dir)],
        cwd=output_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize(
    "script",
    [
        ["backends.py", "--backend", "optuna"],
        ["backends.py", "--backend", "sigopt"],
        ["backends.py", "--backend", "wandb"],
        ["lora.py"],
        ["parallel.py", "--n-jobs", "2"],
    ],
    ids=lambda script: "-".join(script).replace(".py", "").replace("--backend-", ""),
)
def test_an_example_searches_two_distinct_points_and_says_the_best(script, tmp_path):
    out = run_example([sys.executable, str(EXAMPLES / script[0]), *script[1:]], tmp_path / "out")
    assert out.splitlines()[-1].startswith("best run ")
    trials = hpsearch.load_trials(tmp_path / "out")
    finished = [t for t in trials if t.state in (hpsearch.TrialState.COMPLETE, hpsearch.TrialState.PRUNED)]
    assert len(finished) == 2 and finished[0].params != finished[1].params


def test_the_several_objectives_example_prints_its_pareto_front(tmp_path):
    out = run_example([sys.executable, str(EXAMPLES / "several_objectives.py")], tmp_path / "out")
    front = [line for line in out.splitlines() if line.startswith("run ")]
    assert 1 <= len(front) <= 2 and all("accuracy, loss [" in line for line in front)


def test_the_ddp_example_runs_under_torchrun_on_two_ranks(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--nproc_per_node=2", str(EXAMPLES / "ddp.py")]
    out = run_example(command, tmp_path / "out")
    assert sum(line.startswith("best run ") for line in out.splitlines()) == 1  # rank 0 only
    assert len(hpsearch.load_trials(tmp_path / "out")) == 2


def test_the_ray_cluster_example_joins_the_cluster_it_is_given(ray_cluster, tmp_path):
    out = run_example([sys.executable, str(EXAMPLES / "ray_cluster.py"), "--address", ray_cluster], tmp_path / "out")
    assert out.splitlines()[-1].startswith("best run ")
    assert len(hpsearch.load_trials(tmp_path / "out")) == 2
