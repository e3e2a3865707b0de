"""The `hpsearch` command: look at any study any backend recorded, write its report, run the demo."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click

from hpsearch.errors import ConfigError, MissingExtra
from hpsearch.study import store
from hpsearch.study.best_model import kept_model
from hpsearch.study.leaderboard import as_json, columns, csv_cell, leaderboard, print_leaderboard, rows
from hpsearch.tools import dashboard
from hpsearch.tools.report import write_report
from hpsearch.trial import TrialState

_STUDY = click.option("--study", "study_name", default=None, help="Study name, when the store holds several.")


def _load(directory: str, study_name: str | None) -> Any:
    try:
        return store.load_study(directory, study_name=study_name, option="--study")
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise click.ClickException(str(e).strip("'\"")) from None


@click.group()
@click.version_option(package_name="hpsearch", prog_name="hpsearch")
def main() -> None:
    """Hyperparameter search for 🤗 Transformers: inspect and report searches."""


@main.command()
@click.argument("directory", type=click.Path())
@_STUDY
@click.option("--json", "as_json_", is_flag=True, help="Print the trials as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the trials as CSV (the columns of trials_dataframe()).")
def show(directory: str, study_name: str | None, as_json_: bool, as_csv: bool) -> None:
    """The trials of the search in DIRECTORY (its output_dir), best first."""
    if as_json_ and as_csv:
        raise click.UsageError("Pass one of --json and --csv.")
    study = _load(directory, study_name)
    records, directions = store.records(study), store.study_directions(study)
    if as_json_:
        click.echo(json.dumps([as_json(r) for r in leaderboard(records, directions)], indent=1, default=str))
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns(records, directions), lineterminator="\n")
        writer.writeheader()
        writer.writerows({name: csv_cell(value) for name, value in row.items()} for row in rows(records, directions))
    else:
        print_leaderboard(records, directions, limit=len(records))


@main.command()
@click.argument("directory", type=click.Path())
@_STUDY
@click.option("--json", "as_json_", is_flag=True, help="Print the best trial as JSON.")
def best(directory: str, study_name: str | None, as_json_: bool) -> None:
    """The best trial of the search in DIRECTORY (the Pareto front for several directions)."""
    study = _load(directory, study_name)
    if not any(r.state is TrialState.COMPLETE for r in store.records(study)):
        raise click.ClickException(f"No trial of the study in {directory!r} completed.")
    kept = None
    if len(study.directions) == 1:  # among tied trials, the one whose model (the study's own) is kept
        kept = kept_model(directory, study)
        records = [store.best_record(study, kept[1] if kept else None)]
    else:
        records = [store.to_record(t) for t in study.best_trials]
    if as_json_:
        click.echo(
            json.dumps(
                [as_json(r) for r in records] if len(records) > 1 else as_json(records[0]), indent=1, default=str
            )
        )
        return
    for r in records:
        click.echo(f"trial {r.number}: objective {r.objective}, params {r.params}")
    if kept:
        click.echo(f"best model: {kept[0]} (trial {kept[1]})")


@main.command()
@click.argument("directory", type=click.Path())
@_STUDY
@click.option("--out", default=None, type=click.Path(), help="Where to write it (default: DIRECTORY/report).")
def report(directory: str, study_name: str | None, out: str | None) -> None:
    """Write the report of the search in DIRECTORY: report.html (interactive plots, opens offline), and
    report.md with the same plots as PNG files. Prints each file written."""
    study = _load(directory, study_name)
    for path in write_report(study, out or Path(directory) / "report"):
        click.echo(f"wrote {path}")


@main.command("dashboard")
@click.argument("target", metavar="OUTPUT_DIR_OR_STORAGE_URL")
@click.option("--host", default=dashboard.DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=dashboard.DEFAULT_PORT, show_default=True, type=int, help="Port to listen on.")
def dashboard_command(target: str, host: str, port: int) -> None:
    """Serve the search's study live with optuna-dashboard (trials, values, intermediate values, errors)."""
    try:
        dashboard.serve(target, host=host, port=port)
    except (ConfigError, MissingExtra) as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.option("--storage", default=None, help="Also check that this storage URL is reachable.")
@click.option("--fix", "fix_", is_flag=True, help="Install what pip cannot from the extras (the --no-deps libraries).")
def doctor(storage: str | None, fix_: bool) -> None:
    """What this environment can run: each backend, torch's build and GPUs, a storage."""
    from hpsearch.tools import doctor as checkup

    click.echo(checkup.header())
    for done in checkup.fix() if fix_ else ():
        click.echo(f"fix      {done}")
    found = checkup.checks(storage)
    for check in found:
        click.echo(check.line())
    if any(not check.ok and check.required for check in found):
        raise SystemExit(1)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False)
@click.pass_context
def demo(ctx: click.Context) -> None:
    """The main job: a real search of MiniLM on rotten-tomatoes reviews (options: --help of the demo)."""
    from hpsearch.tools.demo import main as run_demo

    run_demo(ctx.args)
