"""`hpsearch doctor`: what this environment can run, and the fix for what it cannot."""

from __future__ import annotations

import re

import torch
from click.testing import CliRunner

from hpsearch import extras
from hpsearch.tools.cli import main


def test_the_doctor_reports_every_backend_torch_and_a_storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = CliRunner().invoke(main, ["doctor", "--storage", url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("hpsearch ") and " on Python 3." in lines[0]
    for backend in ("ray", "wandb", "sigopt"):
        assert any(re.match(rf'ok +backend "{backend}": {backend} \d', line) for line in lines), result.output
    assert any(re.match(r"ok +backend \"wandb\": .*sweeps 0\.3\.0 \(3 bayes runs\)$", line) for line in lines)
    assert any(line.endswith("(6 suggestions of two objectives)") for line in lines if '"sigopt"' in line)
    assert any(line.endswith("(3 random variants, 3 suggestions of a searcher)") for line in lines if '"ray"' in line)
    assert re.search(r"^ok +optuna: 5\.\S+ \(3 trials asked and told\)$", result.output, re.MULTILINE)
    gpus = "no GPU visible" if not torch.cuda.is_available() else torch.cuda.get_device_name(0)
    assert f"ok       torch: {torch.__version__}, " in result.output and gpus in result.output
    assert f"ok       storage {url}: reachable, 0 studies" in lines


def test_a_missing_library_is_named_with_the_install_that_fixes_it(uninstall):
    uninstall("sweeps")
    uninstall("ray")
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0  # optional extras: told, not a failure
    assert (
        f'missing  backend "wandb": {extras.extra_command("wandb")} && pip install --no-deps sweeps==0.3.0 '
        "(or: hpsearch doctor --fix)"
    ) in result.output
    assert f'missing  backend "ray": {extras.extra_command("ray")}\n' in result.output


def test_fix_names_the_pip_install_it_leaves_to_the_user_and_what_follows_it(uninstall):
    """`--fix` installs only the `--no-deps` engines; an extra's own library missing is the user's pip install, followed
    by `doctor --fix` again only where that extra also has a `--no-deps` engine."""
    uninstall("optuna_dashboard")
    uninstall("wandb")
    result = CliRunner().invoke(main, ["doctor", "--fix"])
    assert result.exit_code == 0, result.output
    assert (
        f"fix      hpsearch dashboard: not installed by --fix; run {extras.extra_command('dashboard')}\n"
        in result.output
    )
    assert (
        f'fix      backend "wandb": not installed by --fix; run {extras.extra_command("wandb")}, '
        "then hpsearch doctor --fix\n"
    ) in result.output


def test_an_unreachable_storage_is_said_with_the_driver_s_reason(free_port):
    url = f"postgresql+psycopg2://hpsearch:secret@127.0.0.1:{free_port}/studies"  # no server listens there
    result = CliRunner().invoke(main, ["doctor", "--storage", url])
    assert result.exit_code == 0 and "secret" not in result.output
    shown = url.replace("secret", "***")
    assert f"missing  storage {shown}: not reachable: " in result.output and "Connection refused" in result.output


def test_a_backend_whose_engine_fails_when_it_suggests_is_reported_broken_with_the_error(libsigopt_as_released):
    """libsigopt's own release on numpy 2 imports, and fails at a two-objective experiment's 6th suggestion."""
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output  # an optional backend: told, not a failure
    sigopt = next(line for line in result.output.splitlines() if '"sigopt"' in line)
    assert sigopt.startswith('broken   backend "sigopt": sigopt ')
    assert sigopt.endswith(
        ", but its engine fails when asked for suggestions: SigOptException: module 'numpy' has no attribute 'product'"
    )
    assert 'ok       backend "wandb": ' in result.output
