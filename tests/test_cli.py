"""The `hpsearch` command on studies recorded by each of the four backends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import hpsearch
from hpsearch.cli import main
from hpsearch.space import Float, Int

SPACE = {"x": Float(0.0, 1.0), "n": Int(1, 3)}


def curve(trial):
    for step in range(1, 4):
        if trial.report(step, trial.params["x"] * trial.params["n"] + 1 / step):
            return None
    return trial.params["x"] * trial.params["n"]


@pytest.fixture(scope="module", params=["optuna", "sigopt", "wandb", "ray"])
def study_dir(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param)
    env = pytest.MonkeyPatch()
    env.setenv("WANDB_MODE", "offline")
    env.delenv("WANDB_API_KEY", raising=False)
    env.delenv("SIGOPT_API_TOKEN", raising=False)
    hpsearch.search(curve, SPACE, n_trials=4, backend=request.param, output_dir=str(directory), show_progress=False)
    env.undo()
    return directory


def test_show_lists_every_trial(study_dir):
    result = CliRunner().invoke(main, ["show", str(study_dir), "--json"])
    assert result.exit_code == 0, result.output
    trials = json.loads(result.output)
    assert len(trials) == 4 and all({"x", "n"} <= set(t["params"]) for t in trials)
    table = CliRunner().invoke(main, ["show", str(study_dir)])
    assert table.exit_code == 0 and "objective" in table.output


def test_best_is_the_lowest_objective(study_dir):
    result = CliRunner().invoke(main, ["best", str(study_dir), "--json"])
    assert result.exit_code == 0, result.output
    best = json.loads(result.output)
    completed = [t.objective for t in hpsearch.load_trials(study_dir) if t.state.value == "complete"]
    assert best["objective"] == min(completed)


def test_report_writes_plots_and_a_page(study_dir):
    result = CliRunner().invoke(main, ["report", str(study_dir)])
    assert result.exit_code == 0, result.output
    report = study_dir / "report"
    page = (report / "report.md").read_text()
    for name in ("optimization_history", "intermediate_values", "parallel_coordinates"):
        png = report / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert f"({name}.png)" in page
    assert page.count("\n| ") >= 5  # the leaderboard: a header and 4 trials


def test_a_directory_without_a_study_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("hpsearch")), "show", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: No hpsearch study in '{tmp_path}': hpsearch.db is missing."
