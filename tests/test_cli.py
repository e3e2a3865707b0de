"""The `hpsearch` command on studies recorded by each of the four backends."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import hpsearch
from hpsearch.space import Float, Int
from hpsearch.tools.cli import main

SPACE = {"x": Float(0.0, 1.0), "n": Int(1, 3)}


def curve(trial):
    for step in range(1, 4):
        if trial.report(step, trial.params["x"] * trial.params["n"] + 1 / step):
            return None
    return trial.params["x"] * trial.params["n"]


@pytest.fixture(scope="module", params=["optuna", "sigopt", "wandb", "ray"])
def searched(request, tmp_path_factory):
    """A search of each backend: its output directory and what it returned."""
    directory = tmp_path_factory.mktemp(request.param)
    env = pytest.MonkeyPatch()
    env.setenv("WANDB_MODE", "offline")
    env.delenv("WANDB_API_KEY", raising=False)
    env.delenv("SIGOPT_API_TOKEN", raising=False)
    if request.param == "ray":  # on the test process's Ray cluster, rather than a local Ray of its own
        env.setenv("RAY_ADDRESS", request.getfixturevalue("shared_ray").address)
    best = hpsearch.search(
        curve, SPACE, n_trials=4, backend=request.param, output_dir=str(directory), show_progress=False
    )
    env.undo()
    return directory, best


@pytest.fixture
def study_dir(searched):
    return searched[0]


def test_show_lists_every_trial(study_dir):
    result = CliRunner().invoke(main, ["show", str(study_dir), "--json"])
    assert result.exit_code == 0, result.output
    trials = json.loads(result.output)
    assert len(trials) == 4 and all({"x", "n"} <= set(t["params"]) for t in trials)
    table = CliRunner().invoke(main, ["show", str(study_dir)])
    assert table.exit_code == 0 and "objective" in table.output


def _show(study_dir, *options):
    result = CliRunner().invoke(main, ["show", str(study_dir), *options])
    assert result.exit_code == 0, result.output
    return result.output


def test_show_csv_holds_the_rows_of_show_json(study_dir):
    trials = json.loads(_show(study_dir, "--json"))
    table = list(csv.DictReader(io.StringIO(_show(study_dir, "--csv"))))
    assert [int(row["number"]) for row in table] == [t["number"] for t in trials]  # best first, both
    for row, trial in zip(table, trials):
        assert row["state"] == trial["state"]
        assert (float(row["objective"]) if row["objective"] else None) == trial["objective"]
        assert float(row["params_x"]) == trial["params"]["x"] and int(row["params_n"]) == trial["params"]["n"]
        assert float(row["duration"]) == pytest.approx(trial["duration"])
        assert json.loads(row["intermediate"]) == trial["intermediate"]
        assert (row["error"] or None) == trial["error"]


def test_run_summary_dataframe_has_the_columns_and_rows_of_show(searched):
    study_dir, best = searched
    header = next(csv.reader(io.StringIO(_show(study_dir, "--csv"))))
    frame = best.run_summary.trials_dataframe()
    assert list(frame.columns) == header
    trials = json.loads(_show(study_dir, "--json"))
    assert list(frame["number"]) == [t["number"] for t in trials]
    assert list(frame["state"]) == [t["state"] for t in trials]
    assert list(frame["params_x"]) == [t["params"]["x"] for t in trials]
    objectives = [math.nan if t["objective"] is None else t["objective"] for t in trials]  # a pruned trial has none
    assert frame["objective"].tolist() == pytest.approx(objectives, nan_ok=True)
    html = best.run_summary._repr_html_()  # a notebook's view: the leaderboard
    assert html.count("<tr>") == 1 + len(trials) and "<th>objective</th>" in html


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
    lines = result.output.splitlines()  # every file it wrote, the page to open first
    assert lines[:2] == [f"wrote {report / 'report.html'}", f"wrote {report / 'report.md'}"]
    assert sorted(lines[2:]) == sorted(f"wrote {png}" for png in report.glob("*.png"))
    said = " ".join(CliRunner().invoke(main, ["report", "--help"]).output.split())
    assert "report.html (interactive plots, opens offline), and report.md with the same plots as PNG files" in said
    page = (report / "report.md").read_text()
    for name in ("optimization_history", "intermediate_values", "parallel_coordinates"):
        png = report / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert f"({name}.png)" in page
    assert page.count("\n| ") >= 5  # the leaderboard: a header and 4 trials
    assert "](report.html)" in page


def test_report_html_opens_offline_with_one_figure_per_plot(study_dir):
    assert CliRunner().invoke(main, ["report", str(study_dir)]).exit_code == 0
    page = (study_dir / "report" / "report.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert not [s for s in scripts if "src=" in s]  # nothing fetched: plotly.js is inline
    assert page.count("Plotly.newPlot(") == page.count('class="plotly-graph-div"')
    sections = {part.split("</h2>")[0]: part for part in page.split("<h2>")[2:]}  # after the leaderboard's
    # 4 trials, 2 or more completed: every plot can be drawn, the intermediate values included
    assert list(sections) == [
        "Optimization history",
        "Intermediate values",
        "Parameter importances",
        "Parallel coordinates",
        "Slices",
    ]
    assert all(part.count('class="plotly-graph-div"') == 1 for part in sections.values())
    assert page.count("<tr>") == 1 + 4  # the leaderboard


def test_a_directory_without_a_study_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("hpsearch")), "show", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: No hpsearch study in '{tmp_path}': hpsearch.db is missing."
