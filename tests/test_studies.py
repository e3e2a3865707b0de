"""Several studies in one `output_dir`: each keeps its own best model, and every `hpsearch` command reads the study
it is given (`--study`), its best trial and its model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import hpsearch
from hpsearch.settings import DEFAULT_STUDY_NAME
from hpsearch.space import Float
from hpsearch.tools.cli import main

SPACES = {"first": {"learning_rate": Float(1e-4, 3e-4)}, "second": {"learning_rate": Float(2e-2, 5e-2)}}


def evaluated_loss(model_dir: str, eval_dataset, tokenizer, tmp_path: Path) -> float:
    """The evaluation loss of the model saved in `model_dir`, loaded as a user loads it."""
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    args = TrainingArguments(str(tmp_path / "evaluate"), per_device_eval_batch_size=32, report_to="none", use_cpu=True)
    collator = DataCollatorWithPadding(tokenizer)
    return Trainer(model=model, args=args, eval_dataset=eval_dataset, data_collator=collator).evaluate()["eval_loss"]


def invoke(*arguments: str) -> str:
    result = CliRunner().invoke(main, list(arguments))
    assert result.exit_code == 0, result.output
    return result.output


def test_two_trainer_studies_in_one_output_dir_each_keep_and_name_their_own_best_model(
    make_trainer, eval_dataset, tokenizer, tmp_path
):
    output_dir = tmp_path / "out"
    schedule = dict(eval_strategy="steps", eval_steps=6, save_strategy="steps", save_steps=6)
    best = {}
    for name, space in SPACES.items():
        trainer = make_trainer(**schedule, load_best_model_at_end=True, output_dir=str(output_dir))
        best[name] = trainer.hyperparameter_search(
            hp_space=space,
            n_trials=2,
            direction="minimize",
            compute_objective=lambda metrics: metrics["eval_loss"],
            study_name=name,
            show_progress=False,
        )
    first, second = best["first"], best["second"]
    assert first.run_summary.best_model_dir != second.run_summary.best_model_dir
    assert first.objective != pytest.approx(second.objective)
    for run in (first, second):  # each study's model is the one its best trial scored
        model_dir = run.run_summary.best_model_dir
        assert evaluated_loss(model_dir, eval_dataset, tokenizer, tmp_path) == pytest.approx(run.objective, rel=1e-5)

    for name, run in best.items():  # each command reads the study it is given
        named = json.loads(invoke("best", str(output_dir), "--study", name, "--json"))
        assert named["number"] == int(run.run_id) and named["objective"] == pytest.approx(run.objective)
        said = invoke("best", str(output_dir), "--study", name)
        assert f"best model: {run.run_summary.best_model_dir} (trial {run.run_id})" in said
        shown = json.loads(invoke("show", str(output_dir), "--study", name, "--json"))
        assert shown[0]["number"] == int(run.run_id) and shown[0]["params"] == run.hyperparameters
        invoke("report", str(output_dir), "--study", name, "--out", str(tmp_path / f"report-{name}"))
        assert f"study {name}" in (tmp_path / f"report-{name}" / "report.md").read_text()


def offering(trial):
    """An objective whose trials offer their model: a file naming the trial."""

    def save(directory: str) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "model.txt").write_text(str(trial.number))

    trial.offer_model(trial.params["x"], save)
    return trial.params["x"]


def search(output_dir: Path, study_name: str, n_trials: int = 3, seed: int = 0) -> hpsearch.BestRun:
    space = {"x": Float(0.0, 1.0)}
    return hpsearch.search(
        offering,
        space,
        n_trials=n_trials,
        output_dir=str(output_dir),
        study_name=study_name,
        show_progress=False,
        seed=seed,
    )


def test_the_default_study_keeps_its_best_model_where_it_always_did(tmp_path):
    default = search(tmp_path, DEFAULT_STUDY_NAME)
    other = search(tmp_path, "other", seed=1)
    assert default.run_summary.best_model_dir == str(tmp_path / "best_model")
    assert (tmp_path / "best_model" / "model.txt").read_text() == default.run_id
    assert Path(other.run_summary.best_model_dir, "model.txt").read_text() == other.run_id
    said = invoke("best", str(tmp_path), "--study", DEFAULT_STUDY_NAME)
    assert f"best model: {tmp_path / 'best_model'} (trial {default.run_id})" in said


def test_a_study_kept_by_an_earlier_hpsearch_in_the_shared_best_model_is_still_named(tmp_path):
    """Before one best model per study, every study kept its model in `<output_dir>/best_model`: it is still that
    study's when it names the study's trial, objective and parameters, and no other study's."""
    first = search(tmp_path, "first")
    kept = Path(first.run_summary.best_model_dir)
    legacy = tmp_path / "best_model"  # the earlier layout: one `best_model` for the whole output_dir
    shutil.copytree(kept, legacy)
    info = json.loads((legacy / "hpsearch_trial.json").read_text())
    del info["study"]  # an earlier hpsearch did not write it
    (legacy / "hpsearch_trial.json").write_text(json.dumps(info))
    shutil.rmtree(tmp_path / "studies")
    second = search(tmp_path, "second", n_trials=1, seed=5)

    said = invoke("best", str(tmp_path), "--study", "first")
    assert f"best model: {legacy} (trial {first.run_id})" in said
    again = search(tmp_path, "first")  # its 3 trials are there: the search returns what it kept
    assert again.run_summary.best_model_dir == str(legacy) and again.run_id == first.run_id
    second_said = invoke("best", str(tmp_path), "--study", "second")  # its own model, not the one `first` kept
    assert f"best model: {second.run_summary.best_model_dir} (trial 0)" in second_said
    assert second.run_summary.best_model_dir != str(legacy)


def test_the_cli_names_its_own_option_and_the_studies_in_the_store(tmp_path):
    search(tmp_path, "first", n_trials=1)
    search(tmp_path, "second", n_trials=1)
    for command in ("show", "best", "report"):
        several = CliRunner().invoke(main, [command, str(tmp_path)])
        assert several.exit_code == 1
        assert "holds 2 studies ['first', 'second']; pass one of them with `--study`" in several.output
        unknown = CliRunner().invoke(main, [command, str(tmp_path), "--study", "third"])
        assert unknown.exit_code == 1
        assert "Record does not exist" not in unknown.output
        assert "holds no study 'third'; its studies are ['first', 'second']" in unknown.output
    with pytest.raises(hpsearch.ConfigError, match="pass one of them with `study_name`"):
        hpsearch.load_trials(tmp_path)
    with pytest.raises(hpsearch.ConfigError, match="holds no study 'third'; its studies are"):
        hpsearch.load_trials(tmp_path, study_name="third")
