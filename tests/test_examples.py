"""Every script in examples/ runs as a user runs it, at a tiny size (the real model, 32 reviews, 2 trials), one
after another in one folder, each into its own default output directory. `backends.py`'s Ray space runs through
`ray_cluster.py`, on a real cluster."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hpsearch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = ["--train-size", "32", "--eval-size", "16", "--max-length", "16", "--trials", "2"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The one folder every example of this module runs in, as a user runs one after another."""
    return tmp_path_factory.mktemp("examples")


def run_example(command: list[str], folder: Path) -> str:
    """Run an example in `folder` with its default `--output-dir`."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(folder)}
    done = subprocess.run([*command, *TINY], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
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
def test_an_example_searches_two_distinct_points_and_says_the_best(script, folder):
    out = run_example([sys.executable, str(EXAMPLES / script[0]), *script[1:]], folder)
    assert out.splitlines()[-1].startswith("best run ")
    name = Path(script[0]).stem + (f"-{script[2]}" if script[0] == "backends.py" else "")
    trials = hpsearch.load_trials(folder / "runs" / name)
    finished = [t for t in trials if t.state in (hpsearch.TrialState.COMPLETE, hpsearch.TrialState.PRUNED)]
    assert len(finished) == 2 and finished[0].params != finished[1].params


def test_the_several_objectives_example_prints_its_pareto_front(folder):
    out = run_example([sys.executable, str(EXAMPLES / "several_objectives.py")], folder)
    front = [line for line in out.splitlines() if line.startswith("run ")]
    assert 1 <= len(front) <= 2 and all("accuracy, loss [" in line for line in front)


def test_the_ddp_example_runs_under_torchrun_on_two_ranks(folder):
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--nproc_per_node=2", str(EXAMPLES / "ddp.py")]
    out = run_example(command, folder)
    assert sum(line.startswith("best run ") for line in out.splitlines()) == 1  # rank 0 only
    assert len(hpsearch.load_trials(folder / "runs" / "ddp")) == 2


def test_the_ray_cluster_example_joins_the_cluster_it_is_given(ray_cluster, folder):
    out = run_example([sys.executable, str(EXAMPLES / "ray_cluster.py"), "--address", ray_cluster], folder)
    assert out.splitlines()[-1].startswith("best run ")
    assert len(hpsearch.load_trials(folder / "runs" / "ray_cluster")) == 2


# Each script's `--help` as `python SCRIPT --help` prints it, one script after another in one process (what they
# import, imported once): the script's name, its exit status and its help, as a JSON line each.
HELPS = """
import contextlib, io, json, os, runpy, sys

for script in sys.argv[1:]:
    sys.argv, out, status = [script, "--help"], io.StringIO(), None
    sys.path[0] = os.path.dirname(script)  # as `python SCRIPT` has it: the script's folder first
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exit:
            status = exit.code
    print(json.dumps([script, status, out.getvalue()]))
"""


def test_each_example_has_an_output_dir_of_its_own_by_default():
    """Any two examples run one after another in one folder are two searches, not one refused as another space."""
    scripts = [str(script) for script in sorted(EXAMPLES.glob("*.py"))]
    done = subprocess.run([sys.executable, "-c", HELPS, *scripts], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    defaults = {}
    for script, status, text in map(json.loads, done.stdout.splitlines()):
        assert status in (0, None), (script, status)  # argparse's --help exits with 0
        defaults[Path(script).name] = re.search(r"\(default: (runs/[^)]+)\)", " ".join(text.split())).group(1)
    assert len(set(defaults.values())) == len(defaults) == len(scripts) == 6, defaults


def test_the_backends_example_imports_a_backend_library_only_where_it_searches_with_it():
    """The optuna run of `backends.py` needs no ray, wandb or sigopt extra."""
    check = "import sys, backends; print(sorted({'ray', 'wandb', 'sigopt'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", check], cwd=EXAMPLES, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-3000:]
