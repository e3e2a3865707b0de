"""The documentation works as a reader uses it: the docstrings' examples run and say what they return, the
README's Quickstart runs as written from an empty folder, and the docs site builds with no warning."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import hpsearch

ROOT = Path(__file__).resolve().parents[1]

# where the public API (`search`, `Search`, `hyperparameter_search`, `Trainer`, `load_trials`,
# the backend base classes) is documented; the Trainer's examples need a model and data: skipped
DOCUMENTED = ["hpsearch.engine", "hpsearch.study.store", "hpsearch.backends.base", "hpsearch.transformers"]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name != "hpsearch.transformers":
        assert result.attempted > 0


def readme_block(section: str) -> str:
    """The first ```python block under the README's `## <section>` heading."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", body, flags=re.DOTALL).group(1)


def test_the_readme_quickstart_runs_as_written_in_an_empty_folder(tmp_path):
    script = tmp_path / "quickstart.py"
    script.write_text(readme_block("Quickstart"))
    done = subprocess.run([sys.executable, script.name], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    best_model_dir = tmp_path / done.stdout.splitlines()[-1]  # as printed: relative to the script's folder
    assert (best_model_dir / "config.json").is_file() and (best_model_dir / "tokenizer.json").is_file()
    trials = hpsearch.load_trials(tmp_path / "quickstart")
    assert len({t.params["learning_rate"] for t in trials}) == len(trials) >= 4  # it searched: distinct points


def test_the_docs_site_builds_with_no_warning(tmp_path):
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reference = (site / "reference" / "index.html").read_text()
    assert "hyperparameter_search" in reference and "warm_start" in reference  # the docstrings, rendered
    assert 'src="../bench/anytime.png"' in (site / "benchmarks" / "index.html").read_text()
    assert (site / "bench" / "anytime.png").is_file()
    assert "Coming from transformers" in (site / "index.html").read_text()  # the README's part, included


def test_the_api_reference_documents_the_public_api_and_nothing_else():
    """The public API is listed once, `hpsearch.__all__`; the reference documents each of its names (the errors and
    the backend contract as whole modules, the space's dimensions under `hpsearch.space`) and no internal name."""
    reference = (ROOT / "docs" / "reference.md").read_text()
    entries = re.findall(r"^::: ([\w.]+)$", reference, flags=re.MULTILINE)
    whole = {"hpsearch.errors", "hpsearch.backends.base"}  # documented as modules: every error; a backend's base
    named = {entry.rsplit(".", 1)[1]: entry.rsplit(".", 1)[0] for entry in entries if entry not in whole}
    public = {name: getattr(hpsearch, name) for name in hpsearch.__all__}
    errors = {name for name, value in public.items() if getattr(value, "__module__", "") == "hpsearch.errors"}
    dimensions = {name for name, module in named.items() if module == "hpsearch.space"}
    assert set(named) - dimensions == set(public) - errors - {"space"}
    (documented_errors,) = re.findall(r"^::: hpsearch.errors\n.*\n\s+members: \[(.*)\]$", reference, flags=re.MULTILINE)
    assert set(documented_errors.split(", ")) == errors  # every error a user can catch, and only those
    for name, module in named.items():
        where = hpsearch.space if name in dimensions else hpsearch
        assert getattr(where, name) is getattr(importlib.import_module(module), name), f"{module}.{name}"


def test_the_search_over_time_picture_shows_a_real_search_that_paused_resumed_and_pruned(tmp_path):
    """docs/pruning.md's picture: the training runs of a real search (`make docs` reruns it), drawn again here."""
    saved = ROOT / "docs" / "search-over-time.json"
    runs = json.loads(saved.read_text())
    assert {run["fate"] for run in runs} == {"paused", "pruned", "finished"}
    trials = [run["trial"] for run in runs]
    assert len(set(trials)) == 9 and len(trials) > 9  # a paused trial went on from its checkpoint
    assert any(run["pruned"] for run in runs)  # one waited at its rung until its peers ranked it out
    picture = tmp_path / "picture.png"
    script = ROOT / "docs" / "search_over_time.py"
    done = subprocess.run(
        [sys.executable, script, "--runs", saved, "--out", picture], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert picture.stat().st_size > 10_000 and "9 trials" in done.stdout


def test_the_command_line_reference_is_each_commands_help_as_printed():
    """docs/cli.md is what `make docs` writes from the commands' `--help`: a new option shows there once it is run."""
    hooks = runpy.run_path(str(ROOT / "docs" / "hooks.py"))
    assert (ROOT / "docs" / "cli.md").read_text() == hooks["cli_reference"](), "docs/cli.md is stale: run make docs"


def test_the_spaces_page_writes_one_space_on_every_backend():
    """docs/spaces.md: each backend's block is the `hpsearch.space` block to its backend (SigOpt's values strings)."""
    from hpsearch.backends.base import get_backend
    from hpsearch.settings import SearchSettings
    from hpsearch.space import Categorical

    text = (ROOT / "docs" / "spaces.md").read_text()
    namespace: dict = {}
    for body in re.findall(r"\n## .+?\n\n```python\n(.*?)```", text, flags=re.DOTALL):
        exec(body, namespace)
    neutral, settings = namespace["space"], SearchSettings(directions=("maximize",))
    for backend in ("optuna", "sigopt", "ray", "wandb"):
        space = get_backend(backend)(namespace[f"{backend}_hp_space"], settings).param_space()
        if backend == "sigopt":
            choices = space["per_device_train_batch_size"].choices
            space["per_device_train_batch_size"] = Categorical([int(choice) for choice in choices])
        assert space == neutral, backend
