"""The trials of a search as a table, best first: one row shape for every view of it (the terminal's,
Markdown, HTML in a notebook, CSV, JSON, a pandas DataFrame), so that they all agree.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Sequence
from typing import Any

from hpsearch.trial import TrialRecord, TrialState

PARAM_PREFIX = "params_"  # as optuna's `trials_dataframe()` names parameter columns
# Columns too long for a table on screen: in CSV, JSON and DataFrames only.
_DETAIL_COLUMNS = ("intermediate", "error")
RUNG_SCORES = "rung scores"  # on screen only: a trial's intermediate values, apart from its objective
_RUNGS_SHOWN = 3  # the latest ones


def format_value(value: Any) -> str:
    """A short, readable form of a parameter or objective value."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# The leaderboard's order of states: finished trials first, the ones still to end last.
_STATE_ORDER = (
    *(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED),
    *(TrialState.RUNNING, TrialState.PAUSED, TrialState.WAITING),
)


def leaderboard(records: Sequence[TrialRecord], directions: Sequence[str]) -> list[TrialRecord]:
    """Completed trials best first (by the first direction), then pruned, failed, running, paused and waiting ones;
    ties by trial number."""
    sign = -1 if directions[0] == "maximize" else 1
    order = {state: i for i, state in enumerate(_STATE_ORDER)}

    def key(r: TrialRecord) -> tuple:
        first = r.values[0] * sign if r.state is TrialState.COMPLETE else 0.0
        return (order[r.state], first, r.number)

    return sorted(records, key=key)


def state_name(record: TrialRecord) -> str:
    return "interrupted" if record.interrupted else record.state.value


def columns(records: Sequence[TrialRecord], directions: Sequence[str]) -> list[str]:
    """The table's columns: number, state, the objective (one column per direction; a completed trial's only, not a
    pruned trial's last intermediate value), each parameter (`params_<name>`), duration in seconds, intermediate
    values (the rung scores, keyed by step: progress in thousandths in a Trainer search) and error text."""
    objectives = ["objective"] if len(directions) == 1 else [f"objective_{i}" for i in range(len(directions))]
    params = sorted({PARAM_PREFIX + name for r in records for name in r.params})
    return ["number", "state", *objectives, *params, "duration", *_DETAIL_COLUMNS]


def rows(records: Sequence[TrialRecord], directions: Sequence[str]) -> list[dict[str, Any]]:
    """A dict per trial, best first, keyed by `columns` (None where a trial has no value)."""
    names = columns(records, directions)
    table = []
    for r in leaderboard(records, directions):
        values = r.values if r.values is not None and r.state is TrialState.COMPLETE else [None] * len(directions)
        row = {"number": r.number, "state": state_name(r), "duration": r.duration, "error": r.error}
        row["intermediate"] = {step: value for step, value in sorted(r.intermediate.items())}
        if len(directions) == 1:
            row["objective"] = values[0]
        else:
            row.update({f"objective_{i}": v for i, v in enumerate(values)})
        row.update({name: r.params.get(name[len(PARAM_PREFIX) :]) for name in names if name.startswith(PARAM_PREFIX)})
        table.append({name: row[name] for name in names})
    return table


def as_json(record: TrialRecord) -> dict[str, Any]:
    """One trial for `hpsearch show --json` / `best --json`: its parameters and intermediate values nested."""
    return {
        "number": record.number,
        "state": state_name(record),
        "params": record.params,
        "objective": record.objective if record.state is TrialState.COMPLETE else None,
        "intermediate": {str(step): value for step, value in sorted(record.intermediate.items())},
        "duration": record.duration,
        "error": record.error,
    }


def csv_cell(value: Any) -> Any:
    """A CSV cell: nothing for None, JSON for intermediate values, the value itself otherwise."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps({str(k): v for k, v in value.items()})
    return value


def _screen(records: Sequence[TrialRecord], directions: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """The headers and cells of the on-screen table: parameters by their own names, values shortened, the rung scores
    (the latest few intermediate values, `step: value`) beside the objective."""
    names = [c for c in columns(records, directions) if c not in _DETAIL_COLUMNS]
    if any(r.intermediate for r in records):
        names.insert(names.index("duration"), RUNG_SCORES)
    headers = [n[len(PARAM_PREFIX) :] if n.startswith(PARAM_PREFIX) else n for n in names]
    table = rows(records, directions)
    for row in table:
        latest = list(row["intermediate"].items())[-_RUNGS_SHOWN:]
        row[RUNG_SCORES] = ", ".join(f"{step}: {format_value(value)}" for step, value in latest) or None
    cells = [
        ["-" if row[n] is None else f"{row[n]:.1f}" if n == "duration" else format_value(row[n]) for n in names]
        for row in table
    ]
    return headers, cells


def print_leaderboard(records: Sequence[TrialRecord], directions: Sequence[str], limit: int = 20) -> None:
    """Print the trials as a table, best first."""
    from rich.console import Console
    from rich.table import Table

    headers, cells = _screen(records, directions)
    table = Table(title=f"hpsearch: {len(records)} trials ({', '.join(directions)})")
    for header in headers:
        table.add_column(header, justify="left" if header == "state" else "right")
    for row in cells[:limit]:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def markdown_table(records: Sequence[TrialRecord], directions: Sequence[str]) -> str:
    """The leaderboard as a Markdown table."""
    headers, cells = _screen(records, directions)
    lines = ["| " + " | ".join(row) + " |" for row in [headers, *cells]]
    lines.insert(1, "|" + "---|" * len(headers))
    return "\n".join(lines)


def html_table(records: Sequence[TrialRecord], directions: Sequence[str]) -> str:
    """The leaderboard as an HTML table (a notebook's view of a search)."""
    headers, cells = _screen(records, directions)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
