"""Showing a search's trials: the leaderboard table printed at the end of a search."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpsearch.trial import TrialRecord, TrialState


def format_value(value: Any) -> str:
    """A short, readable form of a parameter or objective value."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# The leaderboard's order of states: finished trials first, the ones still to end last.
_STATE_ORDER = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED, TrialState.RUNNING, TrialState.WAITING)


def leaderboard(records: Sequence[TrialRecord], directions: Sequence[str]) -> list[TrialRecord]:
    """Completed trials best first (by the first direction), then pruned, failed, running and waiting ones;
    ties by trial number."""
    sign = -1 if directions[0] == "maximize" else 1
    order = {state: i for i, state in enumerate(_STATE_ORDER)}

    def key(r: TrialRecord) -> tuple:
        first = r.values[0] * sign if r.state is TrialState.COMPLETE else 0.0
        return (order[r.state], first, r.number)

    return sorted(records, key=key)


def print_leaderboard(records: Sequence[TrialRecord], directions: Sequence[str], limit: int = 20) -> None:
    """Print the trials as a table, best first."""
    from rich.console import Console
    from rich.table import Table

    names = sorted({name for r in records for name in r.params})
    table = Table(title=f"hpsearch: {len(records)} trials ({', '.join(directions)})")
    for column in ["trial", "state", "objective", *names, "seconds"]:
        table.add_column(column, justify="left" if column == "state" else "right")
    for r in leaderboard(records, directions)[:limit]:
        state = "interrupted" if r.interrupted else r.state.value
        objective = format_value(r.objective) if r.objective is not None else "-"
        duration = f"{r.duration:.1f}" if r.duration is not None else "-"
        table.add_row(str(r.number), state, objective, *[format_value(r.params.get(n, "-")) for n in names], duration)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def markdown_table(records: Sequence[TrialRecord], directions: Sequence[str]) -> str:
    """The leaderboard as a Markdown table."""
    names = sorted({name for r in records for name in r.params})
    rows = [["trial", "state", "objective", *names, "seconds"]]
    for r in leaderboard(records, directions):
        state = "interrupted" if r.interrupted else r.state.value
        rows.append(
            [
                str(r.number),
                state,
                format_value(r.objective) if r.objective is not None else "-",
                *[format_value(r.params.get(n, "-")) for n in names],
                f"{r.duration:.1f}" if r.duration is not None else "-",
            ]
        )
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return "\n".join(lines)


def _plots(study: Any) -> dict[str, Any]:
    """The optuna plots that explain a study, by file name (each a function of the study)."""
    from optuna.visualization import matplotlib as plots

    if len(study.directions) > 1:
        return {"pareto_front": plots.plot_pareto_front}
    return {
        "optimization_history": plots.plot_optimization_history,
        "intermediate_values": plots.plot_intermediate_values,
        "parameter_importances": plots.plot_param_importances,
        "parallel_coordinates": plots.plot_parallel_coordinate,
    }


def write_report(study: Any, out_dir: str | Path) -> Path:
    """Write PNG plots of `study` and a Markdown page embedding them with the leaderboard.

    A plot the study cannot have (too few completed trials, no intermediate values) is named on
    the page with the reason instead. Returns the page's path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import warnings

    import matplotlib.pyplot as plt

    from hpsearch import store

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = store.records(study)
    directions = [d.name.lower() for d in study.directions]
    sections = [
        f"# hpsearch report: study `{study.study_name}`",
        "",
        f"{len(records)} trials, direction {', '.join(directions)}.",
        "",
        "## Leaderboard",
        "",
        markdown_table(records, directions),
        "",
    ]
    for name, plot in _plots(study).items():
        title = name.replace("_", " ").capitalize()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
                axes = plot(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
            figure.set_size_inches(9, 5.5)
            figure.tight_layout()
            figure.savefig(out / f"{name}.png", dpi=110)
            plt.close(figure)
            sections += [f"## {title}", "", f"![{title}]({name}.png)", ""]
        except Exception as e:  # a plot the study cannot have; say why on the page
            plt.close("all")
            sections += [f"## {title}", "", f"Not drawn: {e}", ""]
    page = out / "report.md"
    page.write_text("\n".join(sections))
    return page
