"""Showing a search's trials: the leaderboard table printed at the end of a search."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from hpsearch.trial import TrialRecord, TrialState


def format_value(value: Any) -> str:
    """A short, readable form of a parameter or objective value."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def leaderboard(records: Sequence[TrialRecord], directions: Sequence[str]) -> list[TrialRecord]:
    """Completed trials best first (by the first direction), then pruned, failed and running ones."""
    sign = -1 if directions[0] == "maximize" else 1
    order = {state: i for i, state in enumerate([TrialState.COMPLETE, TrialState.PRUNED, *TrialState])}

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
