"""When failed trials stop a search: the failure policy of every way a search runs its trials (this process, worker
processes, Ray), and the one place `SearchFailed` is made.

A trial that fails is recorded and the search goes on. A search whose trials keep failing has broken code (or a
space every point of which fails), so it stops: once `max_consecutive_failed_trials` trials in a row failed while
trials remain, and after its run when every trial of it failed; where only some failed, it warns with what they had
in common. Worker processes that keep dying with no trial finished between stop it too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from hpsearch.errors import SearchFailed, failures_message
from hpsearch.trial import TrialRecord, TrialState

logger = logging.getLogger(__name__)
Failure = tuple[Mapping[str, Any], BaseException | str]  # a failed trial's parameters, and its error (or its text)


def _text(error: BaseException | str) -> str:
    return repr(error) if isinstance(error, BaseException) else error


def _stop(message: str, error: BaseException | str) -> SearchFailed:
    """The search's end, raised from the first failed trial's error where there is one."""
    stop = SearchFailed(message)
    if isinstance(error, BaseException):  # as `raise stop from error`
        stop.__cause__, stop.__suppress_context__ = error, True
    return stop


class FailurePolicy:
    """A run's trials as they end: `SearchFailed` once `max_in_a_row` failed in a row with trials left
    (`ended`), and after the run if all failed (`after_run`)."""

    def __init__(self, max_in_a_row: int | None):
        self.max_in_a_row = max_in_a_row
        self.ran = 0
        self.failed: list[Failure] = []  # this run's failed trials
        self.in_a_row = 0

    def ended(self, params: Mapping[str, Any], error: BaseException | str | None, trials_left: bool = True) -> None:
        """One more trial ended, failed with `error` (None: it did not fail)."""
        self.ran += 1
        if error is None:
            self.in_a_row = 0
            return
        self.failed.append((params, error))
        self.in_a_row += 1
        if self.max_in_a_row is not None and self.in_a_row >= self.max_in_a_row and trials_left:
            in_a_row = self.failed[-self.in_a_row :]
            which = f"{'All' if self.in_a_row == self.ran else 'The last'} {self.in_a_row}"
            message = failures_message([p for p, _ in in_a_row], self.ran, _text(in_a_row[0][1]), which)
            raise _stop(
                f"{message} (max_consecutive_failed_trials={self.max_in_a_row}), so it stopped with trials left; "
                "rerun to go on.",
                in_a_row[0][1],
            )

    def after_run(self) -> None:
        check_run(self.failed, self.ran)


def check_run(failed: Sequence[Failure], ran: int) -> None:
    """After a run of `ran` trials, `failed` of them: `SearchFailed` if every one failed; a warning with what they
    had in common if some did."""
    if not failed:
        return
    message = failures_message([p for p, _ in failed], ran, _text(failed[0][1]))
    if len(failed) == ran:
        raise _stop(message, failed[0][1])
    logger.warning(message)


def workers_died(count: int, how: str, last_output: str) -> NoReturn:
    """`count` worker processes died in a row, the last by `how`, with no trial finished between: the search stops
    (each would recover the same trial, which likely kills it)."""
    raise SearchFailed(
        f"{count} workers died in a row (the last: {how}) with no trial finished between; its last output:\n"
        f"{last_output}"
    )


def nothing_completed(records: Sequence[TrialRecord], timeout: float | None = None) -> NoReturn:
    """Asked for the best run of a study none of whose `records` completed (in a search with `timeout`)."""
    within = f" within timeout={timeout} s" if timeout is not None else ""
    message = f"No trial of the study completed{within} ({len(records)} recorded); nothing to return."
    if paused := [r.number for r in records if r.state is TrialState.PAUSED]:
        longer = " (with a longer `timeout`, or None)" if timeout is not None else ""
        message += f" Trials {paused} wait at a rung with their checkpoints: rerun the same call{longer} to resume."
    raise SearchFailed(message)
