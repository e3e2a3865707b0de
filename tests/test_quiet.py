"""Nothing a user did not ask for: no optuna lines about the studies hpsearch opens for itself, no empty folder
left in `output_dir`, and the study's objective named after its metric (optuna-dashboard's axis), not
"Objective 0"."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import hpsearch
from hpsearch.objective import default_compute_objective, objective_names
from hpsearch.space import Float
from hpsearch.study import store


def test_a_search_and_its_rerun_print_no_optuna_study_lines(tmp_path):
    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logging.getLogger("optuna").addHandler(handler)  # beside optuna's own, which prints what reaches it
    storage = f"sqlite:///{tmp_path / 's.db'}"
    try:
        for n_trials in (2, 3):  # a new study, then the same one continued
            hpsearch.search(lambda trial: trial.params["x"], {"x": Float(0, 1)}, n_trials=n_trials, storage=storage)
        optuna.create_study()  # the user's own study is announced as ever
    finally:
        logging.getLogger("optuna").removeHandler(handler)
    assert len(hpsearch.load_trials(storage=storage)) == 3
    assert len(said) == 1 and said[0].startswith("A new study created in memory with name: no-name-"), said


def test_a_trainer_search_names_its_objective_and_leaves_no_empty_folder(make_trainer):
    trainer = make_trainer(max_steps=2)
    trainer.hyperparameter_search(hp_space={"learning_rate": Float(1e-3, 1e-2)}, n_trials=2, show_progress=False)
    study = store.load_study(trainer.args.output_dir)
    assert study.metric_names == ["eval_accuracy"]  # the default objective: the sum of the metrics, here one
    names = {path.name for path in Path(trainer.args.output_dir).iterdir()}
    assert ".staging" not in names and "best_model" in names


METRICS = {"eval_loss": 0.5, "eval_accuracy": 0.8, "eval_f1": 0.7, "eval_runtime": 1.0}


@pytest.mark.parametrize(
    ("compute_objective", "metrics", "names"),
    [
        (default_compute_objective, {"eval_loss": 0.5, "eval_runtime": 1.0}, ["eval_loss"]),
        (default_compute_objective, METRICS, ["eval_accuracy + eval_f1"]),
        (lambda m: m["eval_f1"], METRICS, ["eval_f1"]),
        (lambda m: -m["eval_loss"], METRICS, ["-eval_loss"]),
        (lambda m: m["eval_accuracy"] * 2, METRICS, ["objective"]),
        (lambda m: (m["eval_loss"], m["eval_accuracy"] + 1), METRICS, ["eval_loss", "objective_1"]),
        (lambda m: {"not": "a number"}, METRICS, ["objective"]),  # `check_values` says what is wrong
    ],
)
def test_an_objective_is_named_after_the_metric_it_is(compute_objective, metrics, names):
    assert objective_names(compute_objective, metrics, compute_objective(metrics)) == names


def test_the_demo_prints_its_search_and_nothing_else(tmp_path):
    """`hpsearch demo` (the README's first command) at a toy size: no optuna study lines, no DeepSpeed warning
    about a GPU nobody asked for."""
    demo = [str(Path(sys.executable).with_name("hpsearch")), "demo", "--trials", "2", "--train-size", "24"]
    demo += ["--eval-size", "16", "--max-length", "16", "--output-dir", str(tmp_path / "demo")]
    run = subprocess.run(demo, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Best run: trial" in run.stdout
    for unasked in ("Setting accelerator", "A new study created", "Using an existing study", "[W "):
        assert unasked not in run.stderr, run.stderr
