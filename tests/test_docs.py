"""The examples in the public API's docstrings run, and say what they return."""

from __future__ import annotations

import doctest
import importlib

import pytest

# where the public API (`search`, `Search`, `hyperparameter_search`, `Trainer`, `load_trials`,
# the backend base classes) is documented; the Trainer's examples need a model and data: skipped
DOCUMENTED = ["hpsearch.engine", "hpsearch.store", "hpsearch.backends.base", "hpsearch.transformers"]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name != "hpsearch.transformers":
        assert result.attempted > 0
