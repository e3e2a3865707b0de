"""hpsearch's own errors: one base class, so `except HpsearchError` catches every one of them.

Each message names the argument or value at fault and the fix. They also derive from the
built-in error a caller would expect (a bad argument is a `ValueError`), as optuna's do.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


class HpsearchError(Exception):
    """Base class of the errors hpsearch raises itself."""


class ConfigError(HpsearchError, ValueError):
    """Bad input to a search (an argument, a space, a storage), found before any training."""


class ObjectiveError(ConfigError):
    """The objective is not a number, or not one per direction: a mistake in the code, not in a
    trial, so the search stops at once instead of failing every trial."""


class MissingExtra(HpsearchError, ImportError):
    """A backend or feature needs a library that is not installed; the message names the install."""


class SearchFailed(HpsearchError, RuntimeError):
    """The search stopped for its failures (`hpsearch.loop.failures`, the one place that raises it): every trial of the
    run failed, or `max_consecutive_failed_trials` in a row while trials remained (raised from the first of those
    trials' errors), or worker processes kept dying with no trial finished between; or a study with no completed
    trial was asked for its best run."""


class TrialError(HpsearchError, RuntimeError):
    """A trial in another process (a Ray worker) raised an error outside `catch`: the search stops, as it would have
    with the error itself in this process. Raised from it where it ran; the driver gets its message."""


class RankFailed(HpsearchError, RuntimeError):
    """Under DDP, on a rank other than 0: rank 0 failed (the search, or a trial's `model_init`)."""


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search: the running trial is recorded as interrupted; rerun the same call to resume.

    A `KeyboardInterrupt` (not an `HpsearchError`), so that `except Exception` does not swallow it.
    Left uncaught, it ends the process (non-zero, as Ctrl-C does) with its one-line message
    rather than a traceback.
    """

    def __init__(self, message: str):
        super().__init__(message)
        if not getattr(sys.excepthook, "_hpsearch", False):
            sys.excepthook = _one_line_for_interrupts(sys.excepthook)


def _one_line_for_interrupts(previous: Callable[..., Any]) -> Callable[..., Any]:
    def excepthook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        if issubclass(kind, SearchInterrupted):
            print(f"hpsearch: {error}", file=sys.stderr)
        else:
            previous(kind, error, tb)

    excepthook._hpsearch = True
    return excepthook


def check_number(
    name: str,
    value: Any,
    minimum: float,
    maximum: float | None = None,
    *,
    integer: bool = True,
    allowed: Sequence[Any] = (),
    says: str = "",
) -> None:
    """Refuse, before any training, an argument that is not an int from `minimum` (to `maximum`; `integer=False`: a
    number above `minimum`) nor one of `allowed` (None, -1, "auto": exactly those); a bool is no number. The message
    names the argument, what it takes (`says` what the rest mean: ", or None to never stop"), and what it received."""
    if any(value is a or (type(value) is type(a) and value == a) for a in allowed):
        return
    kinds = int if integer else (int, float)
    if isinstance(value, kinds) and not isinstance(value, bool):
        above = value >= minimum if integer else value > minimum
        if above and (maximum is None or value <= maximum):
            return
    what = f"an int >= {minimum}" if integer else f"a number > {minimum}"
    what = f"an int from {minimum} to {maximum}" if maximum is not None else what
    raise ConfigError(f"`{name}` must be {what}{says}. Received: {name}={value!r}.")


def interrupted_message(trials: Sequence[int]) -> str:
    """The one line a Ctrl-C'd search ends with (`SearchInterrupted`), naming the trials it stopped."""
    during = f"during trial {', '.join(map(str, trials))}" if trials else "between trials"
    return f"Search interrupted {during}; rerun the same call to resume it."


def failures_message(failed: Sequence[Mapping[str, Any]], ran: int, first_error: str, which: str = "") -> str:
    """What to tell of failed trials (`failed`: their parameters, of `ran`; `which` of them: default "All 3",
    "2 of 8"): the values every one of them had where two or more failed (a batch size that runs out of memory),
    and the first error."""
    which = which or (f"All {ran}" if len(failed) == ran else f"{len(failed)} of {ran}")
    shared = {k: v for k, v in failed[0].items() if all(k in p and p[k] == v for p in failed[1:])}
    had = ", ".join(f"{k}={v!r}" for k, v in shared.items())
    also = f"; every one had {had}" if had and len(failed) > 1 else ""
    return f"{which} trials of this search failed{also}; the first error: {first_error}"


_OUT_OF_MEMORY = ("OutOfMemoryError", "out of memory", "can't allocate memory", "MemoryError")


def out_of_memory(error: str) -> bool:
    """Whether a trial's error (its traceback) is running out of memory: torch's `OutOfMemoryError` (CUDA, MPS),
    the CPU allocator's, Python's `MemoryError`."""
    return any(marker in error for marker in _OUT_OF_MEMORY)
