"""The study stays consistent across calls: no trial left running by nobody, one space per study,
and one answer to "which trial is best" where the best values tie."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

import hpsearch
from hpsearch import TrialState
from hpsearch.space import Float, Int
from hpsearch.tools.cli import main
from hpsearch.trainer.fingerprint import describe_dataset
from tests.conftest import ListDataset, make_sentences


def test_a_running_trial_that_no_process_owns_is_recovered_by_the_next_run(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    hpsearch.search(lambda trial: trial.params["x"], {"x": Float(0, 1)}, n_trials=1, storage=storage)
    optuna.load_study(study_name="hpsearch", storage=storage).ask()  # made, never claimed (a process that died)
    hpsearch.search(lambda trial: trial.params["x"], {"x": Float(0, 1)}, n_trials=3, storage=storage)
    trials = hpsearch.load_trials(storage=storage)
    assert sum(t.counts for t in trials) == 3
    assert [(t.state, t.interrupted) for t in trials if t.number == 1] == [(TrialState.FAILED, True)]


def test_a_second_call_with_another_space_fails_before_training_and_names_the_change(make_trainer):
    trainer = make_trainer(max_steps=2)
    trainer.hyperparameter_search(
        hp_space={"learning_rate": Float(1e-3, 1e-2, log=True)}, n_trials=2, show_progress=False
    )
    changed = {"learning_rate": Float(1e-4, 1e-2, log=True), "seed": Int(1, 40)}
    with pytest.raises(ValueError) as info:
        trainer.hyperparameter_search(hp_space=changed, n_trials=4, show_progress=False)
    message = str(info.value)
    assert "'seed' is new" in message and "'learning_rate' was Float(low=0.001" in message
    assert "now Float(low=0.0001" in message and "new `study_name`" in message
    assert len(hpsearch.load_trials(trainer.args.output_dir)) == 2  # no trial ran, no slot was used
    trainer.hyperparameter_search(
        hp_space={"learning_rate": Float(1e-3, 1e-2, log=True)}, n_trials=3, show_progress=False
    )  # the same space continues the study
    assert len(hpsearch.load_trials(trainer.args.output_dir)) == 3


def test_a_rerun_on_other_data_or_arguments_is_told_before_its_first_trial_and_goes_on(make_trainer, tokenizer, caplog):
    space = {"learning_rate": Float(1e-3, 1e-2, log=True)}
    trainer = make_trainer(max_steps=2)
    trainer.hyperparameter_search(hp_space=space, n_trials=1, show_progress=False)
    with caplog.at_level("WARNING", logger="hpsearch"):
        trainer.hyperparameter_search(hp_space=space, n_trials=2, show_progress=False)  # the same set-up
        assert not [m for m in caplog.messages if "another set-up" in m]
        changed = make_trainer(max_steps=3, learning_rate=0.5, report_to="tensorboard")  # only max_steps scores
        changed.train_dataset = ListDataset(tokenizer, make_sentences(80, seed=1))
        changed.hyperparameter_search(hp_space=space, n_trials=3, show_progress=False)
    (message,) = [m for m in caplog.messages if "another set-up" in m]
    assert "'train_dataset' was 96 examples, content " in message and "now 80 examples, content " in message
    assert "'TrainingArguments.max_steps' was 2, now 3" in message and "new `study_name`" in message
    assert "learning_rate" not in message and "report_to" not in message and "eval_dataset" not in message
    assert len(hpsearch.load_trials(trainer.args.output_dir)) == 3  # the user decides: the study went on
    edited = make_sentences(96, seed=1)
    edited[50] = ("an edited sentence", 1 - edited[50][1])
    assert describe_dataset(ListDataset(tokenizer, edited)) != describe_dataset(trainer.train_dataset)


def test_another_backend_on_the_same_study_is_refused_before_any_trial(tmp_path):
    storage, space = f"sqlite:///{tmp_path / 's.db'}", {"x": Float(0, 1)}

    def objective(trial):
        return trial.params["x"]

    hpsearch.search(objective, space, n_trials=2, storage=storage)
    with pytest.raises(hpsearch.ConfigError, match="searched with backend='optuna', not 'sigopt'") as info:
        hpsearch.search(objective, space, n_trials=4, storage=storage, backend="sigopt")
    assert "new `study_name`" in str(info.value)
    assert len(hpsearch.load_trials(storage=storage)) == 2  # no trial ran
    hpsearch.search(objective, space, n_trials=3, storage=storage)  # optuna continues it
    assert len(hpsearch.load_trials(storage=storage)) == 3
    hpsearch.search(objective, space, n_trials=2, storage=storage, backend="sigopt", study_name="b")
    assert len(hpsearch.load_trials(storage=storage, study_name="b")) == 2


def test_among_tied_best_trials_the_one_whose_model_is_kept_is_named(tmp_path):
    def tied(trial):  # every trial scores 1.0; each offers its model
        trial.offer_model(
            1.0,
            lambda directory: (
                Path(directory).mkdir(parents=True) or (Path(directory) / "trial.txt").write_text(str(trial.number))
            ),
        )
        return 1.0

    best = hpsearch.search(tied, {"x": Float(0, 1)}, n_trials=3, output_dir=str(tmp_path), show_progress=False)
    kept = json.loads((tmp_path / "best_model" / "hpsearch_trial.json").read_text())["trial"]
    assert best.run_id == str(kept) == (tmp_path / "best_model" / "trial.txt").read_text()
    shown = CliRunner().invoke(main, ["best", str(tmp_path), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["number"] == kept  # one trial, not the three tied ones
    assert f"(trial {kept})" in CliRunner().invoke(main, ["best", str(tmp_path)]).output
