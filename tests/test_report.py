"""The leaderboard's order: completed trials best first, then pruned, failed, running and waiting ones."""

from __future__ import annotations

import pytest

from hpsearch.leaderboard import leaderboard
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
