"""`hpsearch.loop.failures`: when failed trials stop a search, the same rule on every path."""

from __future__ import annotations

import logging

import pytest

from hpsearch.errors import SearchFailed
from hpsearch.loop.failures import FailurePolicy, check_run, nothing_completed, workers_died
from hpsearch.trial import TrialRecord, TrialState


def test_failures_in_a_row_stop_a_search_with_trials_left_raised_from_the_first():
    policy = FailurePolicy(max_in_a_row=2)
    policy.ended({"x": 1}, None)
    first = KeyError("x")
    policy.ended({"x": 3}, first)
    with pytest.raises(SearchFailed, match=r"The last 2 trials .*every one had x=3; the first error: KeyError") as info:
        policy.ended({"x": 3}, ValueError("again"))
    assert info.value.__cause__ is first
    assert "max_consecutive_failed_trials=2" in str(info.value)


def test_a_success_breaks_the_run_and_no_trials_left_means_no_stop():
    policy = FailurePolicy(max_in_a_row=2)
    for error in (KeyError("a"), None, KeyError("b")):
        policy.ended({}, error)
    policy.ended({}, KeyError("c"), trials_left=False)  # the budget is spent: the search ends as it would
    assert policy.in_a_row == 2 and len(policy.failed) == 3 and policy.ran == 4


def test_without_a_limit_nothing_stops_the_run_and_after_it_all_failed_is_an_error():
    policy = FailurePolicy(max_in_a_row=None)
    for _ in range(5):
        policy.ended({"lr": 0.1}, "CUDA out of memory")  # a Ray or worker trial's error: its text
    with pytest.raises(SearchFailed, match="All 5 trials .*every one had lr=0.1; the first error: CUDA out of memory"):
        policy.after_run()


def test_after_a_run_some_failed_is_a_warning_naming_what_they_shared(caplog):
    with caplog.at_level(logging.WARNING, logger="hpsearch"):
        check_run([({"bs": 64, "lr": 1}, "OOM"), ({"bs": 64, "lr": 2}, "OOM")], ran=5)
    assert [r.message for r in caplog.records] == [
        "2 of 5 trials of this search failed; every one had bs=64; the first error: OOM"
    ]
    assert caplog.records[0].name == "hpsearch.loop.failures"


def test_dying_workers_and_a_study_with_nothing_completed_are_search_failures():
    with pytest.raises(SearchFailed, match="4 workers died in a row .*signal SIGKILL.*\nKilled"):
        workers_died(4, "signal SIGKILL", "Killed")
    with pytest.raises(SearchFailed, match=r"No trial of the study completed \(3 recorded\)"):
        nothing_completed([TrialRecord(n, TrialState.PRUNED, {}) for n in range(3)])
