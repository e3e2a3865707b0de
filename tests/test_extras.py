"""`hpsearch.extras`: each backend's optional libraries, and the one command that installs each."""

from __future__ import annotations

from pathlib import Path

from hpsearch import extras

ROOT = Path(__file__).resolve().parent.parent


def test_an_extra_is_installed_by_its_pip_extra_then_its_no_deps_engine():
    """From where this hpsearch came: the suite's is installed from this checkout (`pip install -e .`), whose folder
    pip takes an extra from, where `hpsearch[wandb]` would ask the package index for another hpsearch."""
    assert extras.installed_from() == str(ROOT)
    sweeps = next(library for library in extras.EXTRAS["wandb"] if library.module == "sweeps")
    assert (
        extras.install_command("wandb", sweeps) == f'pip install "{ROOT}[wandb]" && pip install --no-deps sweeps==0.3.0'
    )
    ray = extras.EXTRAS["ray"][0]
    assert extras.install_command("ray", ray) == f'pip install "{ROOT}[ray]"'


def test_every_no_deps_engine_is_pinned():
    for libraries in extras.EXTRAS.values():
        for library in libraries:
            assert library.no_deps is None or all("==" in pin for pin in library.no_deps.split())


def test_what_is_missing_is_what_cannot_be_imported(uninstall):
    assert extras.missing("wandb") == []
    uninstall("sweeps")
    (missing,) = extras.missing("wandb")
    assert missing.module == "sweeps" and isinstance(extras.import_error(missing), ImportError)


def test_a_version_is_read_from_the_distribution_and_none_when_absent():
    assert extras.version("optuna").count(".") >= 1
    assert extras.version("no-such-distribution-hpsearch") is None
