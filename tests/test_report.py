"""The leaderboard's order (completed trials best first, then pruned, failed, running and waiting ones), its columns,
and the report's pages."""

from __future__ import annotations

import re

import pytest

from hpsearch.study import store
from hpsearch.study.leaderboard import RUNG_SCORES, leaderboard, markdown_table, rows
from hpsearch.tools.report import write_report
from hpsearch.trial import TrialRecord, TrialState


def trials() -> list[TrialRecord]:
    """Trials of every state, the ones still to end numbered first and ties among the completed."""
    states_values = [
        (TrialState.WAITING, None),
        (TrialState.RUNNING, None),
        (TrialState.FAILED, None),
        (TrialState.PRUNED, None),
        (TrialState.COMPLETE, [0.5]),
        (TrialState.RUNNING, None),
        (TrialState.COMPLETE, [0.2]),
        (TrialState.WAITING, None),
        (TrialState.COMPLETE, [0.9]),
        (TrialState.PRUNED, None),
        (TrialState.COMPLETE, [0.5]),
        (TrialState.FAILED, None),
    ]
    return [TrialRecord(number, state, {}, values) for number, (state, values) in enumerate(states_values)]


@pytest.mark.parametrize(
    ("direction", "completed"),
    [("minimize", [6, 4, 10, 8]), ("maximize", [8, 4, 10, 6])],
)
def test_leaderboard_orders_completed_best_first_then_pruned_failed_running_waiting(direction, completed):
    numbers = [r.number for r in leaderboard(trials(), [direction])]
    assert numbers == [*completed, 3, 9, 2, 11, 1, 5, 0, 7]


def test_leaderboard_ranks_by_the_first_of_several_directions():
    records = trials()
    for r in records:
        if r.values is not None:
            r.values = [*r.values, -r.values[0]]  # the second direction would rank them the other way
    numbers = [r.number for r in leaderboard(records, ["maximize", "minimize"])]
    assert numbers == [8, 4, 10, 6, 3, 9, 2, 11, 1, 5, 0, 7]


def test_the_objective_column_holds_final_objectives_and_the_rung_scores_their_own():
    """A pruned trial's last rung score (optuna records it as the trial's value) is not an objective: the objective
    column holds the completed trials' final objectives only, the rung scores (a negated loss here) their own."""
    records = [
        TrialRecord(0, TrialState.COMPLETE, {}, [0.81], intermediate={111: -0.69, 333: -0.52}),
        TrialRecord(1, TrialState.PRUNED, {}, [-0.71], intermediate={111: -0.71}),
    ]
    table = rows(records, ["maximize"])
    assert [row["objective"] for row in table] == [0.81, None]
    lines = markdown_table(records, ["maximize"]).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    cells = {n: [cell.strip() for cell in line.strip("|").split("|")] for n, line in enumerate(lines[2:])}
    objective, rungs = header.index("objective"), header.index(RUNG_SCORES)
    assert [cells[0][objective], cells[1][objective]] == ["0.81", "-"]
    assert [cells[0][rungs], cells[1][rungs]] == ["111: -0.69, 333: -0.52", "111: -0.71"]


def test_a_report_of_several_objectives_draws_the_pareto_front_and_each_objectives_plots(tmp_path):
    import optuna

    study = optuna.create_study(directions=["minimize", "maximize"], storage=store.storage_url(tmp_path))
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=5)
    written = write_report(study, tmp_path / "report")
    html = (tmp_path / "report" / "report.html").read_text()
    sections = {part.split("</h2>")[0]: part for part in html.split("<h2>")[2:]}
    assert list(sections) == [
        "Pareto front",
        "Parameter importances",
        "Optimization history 0",
        "Slices 0",
        "Optimization history 1",
        "Slices 1",
    ]
    assert all(part.count('class="plotly-graph-div"') == 1 for part in sections.values())
    assert "objective 1" in sections["Optimization history 1"]  # drawn against the second objective
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert all(f"({name}.png)" in markdown for name in ("pareto_front", "optimization_history_1", "slices_0"))
    assert written == [tmp_path / "report" / name for name in ("report.html", "report.md", *pngs(markdown))]
    assert "| objective_0 | objective_1 |" in markdown  # the leaderboard, a column per objective


def test_a_plot_the_study_cannot_have_says_why_on_both_pages(tmp_path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a user's quiet optuna: the pages still say why
    try:
        study = optuna.create_study(storage=store.storage_url(tmp_path))
        study.optimize(lambda t: 1 / 0, n_trials=1, catch=(ZeroDivisionError,))  # no trial completed
        written = write_report(study, tmp_path / "report")
    finally:
        optuna.logging.set_verbosity(optuna.logging.INFO)
    html = (tmp_path / "report" / "report.html").read_text()
    sections = {part.split("</h2>")[0]: part for part in html.split("<h2>")[2:]}
    assert len(sections) == 5 and "plotly-graph-div" not in html
    assert "Not drawn: There are no complete trials." in sections["Optimization history"]
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert markdown.count("Not drawn: ") == 5 and not list((tmp_path / "report").glob("*.png"))
    assert written == [tmp_path / "report" / "report.html", tmp_path / "report" / "report.md"]


def pngs(markdown: str) -> list[str]:
    """The PNG files a report's Markdown page shows, in its order."""
    return re.findall(r"\]\(([\w.]+\.png)\)", markdown)
