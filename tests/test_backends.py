"""The backend registry, and what `import hpsearch` pulls in."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from transformers.trainer_utils import HPSearchBackend

from hpsearch import extras
from hpsearch.backends.base import BACKEND_NAMES, get_backend
from hpsearch.backends.optuna import OptunaBackend
from hpsearch.settings import SearchSettings


def test_the_four_backend_names():
    assert BACKEND_NAMES == ("optuna", "sigopt", "ray", "wandb")


@pytest.mark.parametrize("name", [None, "optuna", "OPTUNA", "Optuna", HPSearchBackend.OPTUNA, OptunaBackend])
def test_optuna_is_found_by_every_spelling(name):
    assert get_backend(name) is OptunaBackend


def test_unknown_backend_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"\['optuna', 'sigopt', 'ray', 'wandb'\].*backend='hyperopt'"):
        get_backend("hyperopt")


@pytest.mark.parametrize(
    ("name", "module", "extra"),
    [("ray", "ray", "ray"), ("wandb", "wandb", "wandb"), ("wandb", "sweeps", "wandb"), ("sigopt", "sigopt", "sigopt")],
)
def test_missing_backend_library_names_the_install_command(uninstall, name, module, extra):
    uninstall(module)
    with pytest.raises(ImportError, match=re.escape(extras.extra_command(extra))):
        get_backend(name)


def test_import_hpsearch_imports_no_backend_library_nor_transformers():
    code = (
        "import sys, hpsearch; "
        "print(sorted(m for m in ('optuna', 'ray', 'wandb', 'sigopt', 'transformers', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_optuna_default_space_is_transformers_default():
    import optuna
    from transformers.trainer_utils import default_hp_space_optuna

    study = optuna.create_study()
    theirs, ours = study.ask(), study.ask()
    default_hp_space_optuna(theirs)
    backend = OptunaBackend(None, SearchSettings(directions=("minimize",)))
    backend._sample(ours)
    assert ours.distributions == theirs.distributions


def test_the_four_backends_import_together_on_numpy_2():
    """sigopt's urllib3<2, sweeps' and sigoptlite's numpy<2 pins break none of them."""
    import numpy

    for name in BACKEND_NAMES:
        assert get_backend(name).name == name
    assert int(numpy.__version__.split(".")[0]) >= 2


def test_sigopt_without_its_embedded_optimizer_names_the_no_deps_install_and_the_doctor(uninstall):
    from hpsearch.backends.sigopt import embedded_connection

    uninstall("sigoptlite")
    command = f"{extras.extra_command('sigopt')} && pip install --no-deps sigoptlite==0.1.2 libsigopt==1.0.0 qmcpy==1.2"
    with pytest.raises(ImportError, match=re.escape(command) + r".*hpsearch doctor --fix.*SIGOPT_API_TOKEN"):
        embedded_connection()
