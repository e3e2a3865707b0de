"""What a user sees of the package itself: its version, and its use where POSIX-only modules are missing
(`fcntl` on Windows, `os.sched_getaffinity` on macOS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata

from click.testing import CliRunner

import hpsearch
from hpsearch.tools.cli import main

# Run first in every process of the search (a sitecustomize on PYTHONPATH): the modules a Linux
# machine has and the other systems do not are made absent.
HIDE_POSIX_ONLY = """
import os, sys
sys.modules["fcntl"] = None  # `import fcntl` raises ImportError, as on Windows
del os.sched_getaffinity  # as on macOS
"""

SEARCH = """
import json, os, sys
import hpsearch
from hpsearch.study.best_model import BestModelKeeper
from hpsearch.space import Float

def objective(trial):  # in a worker process
    if hasattr(os, "sched_getaffinity") or sys.modules.get("fcntl", "absent") is not None:
        raise RuntimeError("the POSIX-only modules are not hidden in this worker")
    return (trial.params["x"] - 0.3) ** 2

out = sys.argv[1]
best = hpsearch.search(objective, {"x": Float(0, 1)}, n_trials=4, n_jobs=2, output_dir=out, show_progress=False)
keeper = BestModelKeeper(out)
keeper.promote(0, best.objective, best.hyperparameters, source=keeper.staging_dir(0))
complete = [t for t in hpsearch.load_trials(output_dir=out) if t.state == hpsearch.TrialState.COMPLETE]
print(json.dumps({"trials": len(complete), "kept": keeper.kept_trial()}))
"""


def test_the_version_is_the_installed_distribution_s():
    assert hpsearch.__version__ == metadata.version("hpsearch")
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == f"hpsearch, version {hpsearch.__version__}\n"


def test_a_search_in_worker_processes_runs_without_fcntl_and_sched_getaffinity(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(HIDE_POSIX_ONLY)
    staged = tmp_path / "out" / ".staging" / "trial-0"
    staged.mkdir(parents=True)
    (staged / "weights.bin").write_text("w")
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SEARCH), str(tmp_path / "out")],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"trials": 4, "kept": 0}
