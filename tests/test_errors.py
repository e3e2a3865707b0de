"""`hpsearch.errors`: one base class, and the one validator of whole-number arguments (a bool is no number)."""

from __future__ import annotations

import pytest

import hpsearch
from hpsearch.errors import ConfigError, check_number


@pytest.mark.parametrize(
    ("value", "allowed", "accepted"),
    [(3, (), True), (0, (), False), (True, (), False), (2.0, (), False), ("3", (), False), (None, (None,), True)]
    + [(-1, (-1,), True), (-2, (-1,), False), ("auto", ("auto",), True), (None, (), False)],
)
def test_an_int_at_least_the_minimum_or_exactly_an_allowed_value(value, allowed, accepted):
    if accepted:
        check_number("n", value, 1, allowed=allowed)
    else:
        with pytest.raises(ConfigError, match=rf"^`n` must be an int >= 1, or so\. Received: n={value!r}\.$"):
            check_number("n", value, 1, allowed=allowed, says=", or so")


def test_a_number_above_the_minimum_where_fractions_are_fine():
    check_number("timeout", 0.5, 0, integer=False)
    for value in (0, -1, True, "5"):
        with pytest.raises(ConfigError, match=r"`timeout` must be a number > 0\."):
            check_number("timeout", value, 0, integer=False)


@pytest.mark.parametrize(
    "arguments",
    [{"n_trials": True}, {"timeout": True}, {"max_consecutive_failed_trials": True}, {"n_jobs": True}]
    + [{"heartbeat_interval": True, "storage": "sqlite:///:memory:"}, {"retry_stale_trials": True}],
)
def test_no_search_argument_takes_a_bool_for_a_number(arguments):
    with pytest.raises(ConfigError, match=f"Received: {next(iter(arguments))}=True"):
        hpsearch.search(lambda trial: 0.0, {"x": hpsearch.space.Float(0, 1)}, show_progress=False, **arguments)


def test_every_error_of_hpsearch_is_an_hpsearch_error_and_the_builtin_a_caller_expects():
    assert issubclass(ConfigError, hpsearch.HpsearchError) and issubclass(ConfigError, ValueError)
    assert issubclass(hpsearch.SearchFailed, RuntimeError) and issubclass(hpsearch.MissingExtra, ImportError)
