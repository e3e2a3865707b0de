"""Bad input to `Trainer.hyperparameter_search` fails before any training, naming the value and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import transformers
from transformers import AutoModelForSequenceClassification

import hpsearch


@pytest.fixture
def counted(make_trainer, tiny_model_dir):
    """A Trainer whose model_init counts its calls (one is the Trainer's own, at construction)."""
    calls = []

    def model_init():
        calls.append(1)
        return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)

    return make_trainer(model_init=model_init), calls


def lr_space(trial):
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True)}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"backend": "hyperopt"}, ValueError, r"must be one of \['optuna', 'sigopt', 'ray', 'wandb'\]"),
        ({"n_trials": 0}, ValueError, "n_trials` must be an int >= 1. Received: n_trials=0"),
        ({"direction": "maximise"}, ValueError, "direction` must be 'minimize', 'maximize'.*'maximise'"),
        ({"compute_objective": "accuracy"}, ValueError, "compute_objective` must be a function"),
        ({"objective_at": "first"}, ValueError, "objective_at` must be 'last' or 'best'"),
        (
            {"hp_space": lambda t: {"learning_rat": t.suggest_float("learning_rat", 1e-3, 1e-2)}},
            ValueError,
            r"\['learning_rat'\] are not `TrainingArguments` fields.*Did you mean 'learning_rate'.*model_init\(trial\)",
        ),
        (
            {"hp_space": lambda t: {"dropout": t.suggest_float("dropout", 0.0, 0.3)}},
            ValueError,
            r"\['dropout'\].*`model_init` takes no trial",
        ),
    ],
)
def test_bad_input_fails_before_training(counted, kwargs, error, message):
    trainer, calls = counted
    with pytest.raises(error, match=message):
        trainer.hyperparameter_search(**{"hp_space": lr_space, "n_trials": 2, **kwargs})
    assert calls == [1]  # only the Trainer's own call at construction: no trial trained
    assert not (Path(trainer.args.output_dir) / "hpsearch.db").exists()  # and no study to trip a corrected rerun


def test_backend_not_installed_names_the_extra(counted, uninstall):
    trainer, calls = counted
    uninstall("ray")
    with pytest.raises(ImportError, match=r'pip install "hpsearch\[ray\]"'):
        trainer.hyperparameter_search(backend="ray", n_trials=2)
    assert calls == [1]


def test_a_trainer_without_model_init_is_told_to_pass_one(tiny_model_dir, train_dataset, eval_dataset, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    trainer = transformers.Trainer(
        model=model,
        args=transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
    )
    with pytest.raises(ValueError, match="needs a `model_init`"):
        hpsearch.hyperparameter_search(trainer, n_trials=2)


def test_tokenizer_and_processing_class_together_are_refused(make_trainer, tokenizer):
    trainer = make_trainer()
    with pytest.raises(ValueError, match="either `tokenizer` or `processing_class`"):
        hpsearch.Trainer(model_init=trainer.model_init, args=trainer.args, tokenizer=tokenizer,
                         processing_class=tokenizer)


def test_stock_trainer_gets_the_same_search(make_trainer):
    trainer = make_trainer(trainer_class=transformers.Trainer)
    best = hpsearch.hyperparameter_search(trainer, hp_space=lr_space, n_trials=2, show_progress=False)
    assert set(best.hyperparameters) == {"learning_rate"}
    assert len(hpsearch.load_trials(trainer.args.output_dir)) == 2


@pytest.mark.parametrize("name", ["../escape", "/tmp/elsewhere", "a/b", ".."])
def test_hp_name_cannot_write_outside_output_dir(make_trainer, tmp_path, name):
    trainer = make_trainer()
    with pytest.raises(RuntimeError, match="All 1 trials") as info:
        trainer.hyperparameter_search(hp_space=lr_space, n_trials=1, hp_name=lambda trial: name,
                                      show_progress=False)
    assert "`hp_name` must return a plain directory name" in str(info.value)
    assert not (tmp_path / "escape").exists() and not Path("/tmp/elsewhere").exists()
