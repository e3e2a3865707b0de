"""Bad input to `Trainer.hyperparameter_search` fails before any training, naming the value and the fix.

The matrix runs every case on every backend, each in its own native format; the README's
"Bad input" table lists the same cases and their messages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import transformers
from ray import tune
from transformers import AutoModelForSequenceClassification

import hpsearch
from hpsearch import extras

BACKENDS = ["optuna", "sigopt", "wandb", "ray"]
NAMES = {"optuna": "optuna", "sigopt": "SigOpt", "wandb": "W&B", "ray": "Ray Tune"}


def optuna_space(suggest, name, *args, **kwargs):
    return lambda trial: {name: getattr(trial, f"suggest_{suggest}")(name, *args, **kwargs)}


def wandb_space(name, **parameter):
    return {"method": "random", "parameters": {name: parameter}}


def sigopt_space(name, kind, **fields):
    return [{"name": name, "type": kind, **fields}]


# case -> (the space in each backend's format, built when the test runs; the error it must raise)
SPACES = {
    "a well-formed space": {
        "optuna": lambda: optuna_space("float", "learning_rate", 1e-5, 1e-3, log=True),
        "sigopt": lambda: sigopt_space("learning_rate", "double", bounds={"min": 1e-5, "max": 1e-3}),
        "wandb": lambda: wandb_space("learning_rate", min=1e-5, max=1e-3),
        "ray": lambda: {"learning_rate": tune.loguniform(1e-5, 1e-3)},
    },
    "a misspelled TrainingArguments key": (
        {
            "optuna": lambda: optuna_space("float", "learning_rat", 1e-5, 1e-3),
            "sigopt": lambda: sigopt_space("learning_rat", "double", bounds={"min": 1e-5, "max": 1e-3}),
            "wandb": lambda: wandb_space("learning_rat", min=1e-5, max=1e-3),
            "ray": lambda: {"learning_rat": tune.uniform(1e-5, 1e-3)},
        },
        r"\['learning_rat'\] are not `TrainingArguments` fields.*Did you mean 'learning_rate'",
    ),
    "floats for an int field": (
        {
            "optuna": lambda: optuna_space("float", "per_device_train_batch_size", 8, 32),
            "sigopt": lambda: sigopt_space("per_device_train_batch_size", "double", bounds={"min": 8, "max": 32}),
            "wandb": lambda: wandb_space("per_device_train_batch_size", min=8.0, max=32.0),
            "ray": lambda: {"per_device_train_batch_size": tune.uniform(8, 32)},
        },
        r"samples 'per_device_train_batch_size' as a float .* is an int: sample it as an int",
    ),
    "words for a float field": (
        {
            "optuna": lambda: optuna_space("categorical", "learning_rate", ["fast", "slow"]),
            "sigopt": lambda: sigopt_space("learning_rate", "categorical", categorical_values=["fast", "slow"]),
            "wandb": lambda: wandb_space("learning_rate", values=["fast", "slow"]),
            "ray": lambda: {"learning_rate": tune.choice(["fast", "slow"])},
        },
        r"gives 'learning_rate' the value 'fast', which `TrainingArguments.learning_rate` cannot take.*float",
    ),
    "an empty space": (
        {
            "optuna": lambda: lambda trial: {},
            "sigopt": lambda: [],
            "wandb": lambda: {"method": "random", "parameters": {}},
            "ray": lambda: {},
        },
        r"`hp_space`.*(no parameters|non-empty)",
    ),
    "min >= max": (
        {
            "optuna": lambda: optuna_space("float", "learning_rate", 1e-3, 1e-5),
            "sigopt": lambda: sigopt_space("learning_rate", "double", bounds={"min": 1e-3, "max": 1e-5}),
            "wandb": lambda: wandb_space("learning_rate", min=1e-3, max=1e-5),
            "ray": lambda: {"learning_rate": tune.uniform(1e-3, 1e-5)},
        },
        r"'?learning_rate'?.*(low <= high|min < max|min 0.001 is not less than max 1e-05|low < high)",
    ),
    "a log scale from min <= 0": (
        {
            "optuna": lambda: optuna_space("float", "learning_rate", 0.0, 1e-3, log=True),
            "sigopt": lambda: sigopt_space(
                "learning_rate", "double", bounds={"min": 0.0, "max": 1e-3}, transformation="log"
            ),
            "wandb": lambda: wandb_space("learning_rate", distribution="log_uniform_values", min=0.0, max=1e-3),
            "ray": lambda: {"learning_rate": tune.loguniform(0.0, 1e-3)},
        },
        r"(learning_rate.*(low > 0|min > 0|log_uniform_values.*not valid)|LogUniform requires a lower bound greater)",
    ),
    "an empty categorical": (
        {
            "optuna": lambda: optuna_space("categorical", "seed", []),
            "sigopt": lambda: sigopt_space("seed", "categorical", categorical_values=[]),
            "wandb": lambda: wandb_space("seed", values=[]),
            "ray": lambda: {"seed": tune.choice([])},
        },
        r"'?seed'?.*(one or more elements|non-empty list|\[\].*not valid)",
    ),
}
GOOD = SPACES.pop("a well-formed space")
OTHER_FORMATS = [(backend, other) for backend in BACKENDS for other in BACKENDS if other != backend]
ARGUMENTS = [
    ({"n_trials": 0}, "`n_trials` must be an int >= 1. Received: n_trials=0"),
    ({"n_trials": -2}, "`n_trials` must be an int >= 1. Received: n_trials=-2"),
    ({"n_trials": 2.5}, "`n_trials` must be an int >= 1. Received: n_trials=2.5"),
    ({"direction": "maximise"}, "`direction` must be 'minimize', 'maximize' or a list of them. .*'maximise'"),
    ({"compute_objective": "eval_accuracy"}, "`compute_objective` must be a function of the metrics"),
    ({"show_progres": False}, r"Unknown argument\(s\) \['show_progres'\] .* Did you mean 'show_progress'"),
    (
        {"storage": "postgresql+psycopg2://alice:s3cret@127.0.0.1:1/db"},
        r"Cannot open the study storage postgresql\+psycopg2://alice:\*\*\*@127.0.0.1:1/db \(connection .* refused",
    ),
    ({"storage": "not a url"}, "Cannot open the study storage <not a database URL>"),
]


def refused_before_training(counted, message: str, **kwargs) -> str:
    """Run the search expecting a ValueError matching `message`; check nothing trained or stayed behind."""
    import ray

    trainer, calls = counted
    with pytest.raises(ValueError, match=message) as info:
        trainer.hyperparameter_search(n_trials=kwargs.pop("n_trials", 2), show_progress=False, **kwargs)
    assert calls == [1]  # only the Trainer's own call at construction: no trial trained
    assert not (Path(trainer.args.output_dir) / "hpsearch.db").exists()  # no study to trip a corrected rerun
    assert not ray.is_initialized()
    return str(info.value)


@pytest.mark.parametrize("case", list(SPACES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_bad_space_fails_before_training_on_every_backend(counted, backend, case):
    spaces, message = SPACES[case]
    try:
        hp_space = spaces[backend]()
    except ValueError as e:  # Ray's own space objects refuse some at construction, before any search
        assert re.search(message, str(e))
        return
    refused_before_training(counted, message, backend=backend, hp_space=hp_space)


@pytest.mark.parametrize(("backend", "other"), OTHER_FORMATS)
def test_another_backends_format_is_named_before_training(counted, backend, other):
    error = refused_before_training(counted, NAMES[other], backend=backend, hp_space=GOOD[other]())
    assert "hp_space" in error and f"which backend={other!r} takes" in error


@pytest.mark.parametrize("other", ["sigopt", "wandb", "ray"])
def test_an_optuna_function_returning_another_format_is_named(counted, other):
    """The docs write every backend's space as a function of a trial: optuna calls it with one."""
    space = GOOD[other]()
    error = refused_before_training(counted, NAMES[other], hp_space=lambda trial: space)
    assert f"which backend={other!r} takes" in error


@pytest.mark.parametrize(
    ("kwargs", "message"), ARGUMENTS, ids=[next(iter(k)) + "=" + repr(v)[:20] for k, _ in ARGUMENTS for v in k.values()]
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_bad_argument_fails_before_training_on_every_backend(counted, backend, kwargs, message):
    refused_before_training(counted, message, backend=backend, hp_space=GOOD[backend](), **kwargs)


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
    ("kwargs", "message"),
    [
        ({"backend": "hyperopt"}, r"must be one of \['optuna', 'sigopt', 'ray', 'wandb'\]"),
        ({"objective_at": "first"}, "objective_at` must be 'last' or 'best'"),
        ({"evals_per_trial": -1}, r"`evals_per_trial` must be an int from 0 to 7 .* Received: evals_per_trial=-1"),
        (
            {"evals_per_trial": 8},
            r"`evals_per_trial` must be an int from 0 to 7 \(its finest rung: 1/3\*\*6 of training\)",
        ),
        ({"evals_per_trial": True}, r"`evals_per_trial` must be an int from 0 to 7 .* Received: evals_per_trial=True"),
        ({"rung_eval_size": 0}, r"`rung_eval_size` must be an int >= 1, 'auto', or None .* Received: rung_eval_size=0"),
        ({"rung_metric": "accuracy"}, r"`rung_metric` must be one of \['loss', 'objective'\]. Received: rung_metric="),
        (
            {"hp_space": lambda t: {"dropout": t.suggest_float("dropout", 0.0, 0.3)}},
            r"\['dropout'\].*`model_init` takes no trial",
        ),
    ],
)
def test_bad_input_fails_before_training(counted, kwargs, message):
    refused_before_training(counted, message, **{"hp_space": lr_space, **kwargs})


def test_backend_not_installed_names_the_extra(counted, uninstall):
    trainer, calls = counted
    uninstall("ray")
    with pytest.raises(ImportError, match=re.escape(extras.extra_command("ray"))):
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
        hpsearch.Trainer(
            model_init=trainer.model_init, args=trainer.args, tokenizer=tokenizer, processing_class=tokenizer
        )


def test_stock_trainer_gets_the_same_search(make_trainer):
    trainer = make_trainer(trainer_class=transformers.Trainer)
    best = hpsearch.hyperparameter_search(trainer, hp_space=lr_space, n_trials=2, show_progress=False)
    assert set(best.hyperparameters) == {"learning_rate"}
    assert len(hpsearch.load_trials(trainer.args.output_dir)) == 2


@pytest.mark.parametrize("name", ["../escape", "/tmp/elsewhere", "a/b", ".."])
def test_hp_name_cannot_write_outside_output_dir(make_trainer, tmp_path, name):
    trainer = make_trainer()
    with pytest.raises(RuntimeError, match="All 1 trials") as info:
        trainer.hyperparameter_search(hp_space=lr_space, n_trials=1, hp_name=lambda trial: name, show_progress=False)
    assert "`hp_name` must return a plain directory name" in str(info.value)
    assert not (tmp_path / "escape").exists() and not Path("/tmp/elsewhere").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_non_number_objective_stops_the_search_at_the_first_evaluation(make_trainer, backend, ray_on_cluster):
    trainer = make_trainer(eval_strategy="steps", eval_steps=2, max_steps=8)
    options = {"max_concurrent_trials": 1} if backend == "ray" else {}
    with pytest.raises(ValueError, match=r"must be a number. Received: \{'eval_loss'.*return a float"):
        trainer.hyperparameter_search(
            backend=backend,
            hp_space=GOOD[backend](),
            n_trials=3,
            show_progress=False,
            compute_objective=lambda metrics: metrics,
            **options,
        )
    trials = hpsearch.load_trials(trainer.args.output_dir)  # a mistake in the code: no trial after it
    (failed,) = [trial for trial in trials if trial.state is hpsearch.TrialState.FAILED]
    assert "must be a number" in failed.error
    # optuna's default halving stops the first trials at their first rung, before any user evaluation: the first
    # to go on meets the mistake; the others, paused or already judged, never train past the rung. Elsewhere: one.
    others = [trial for trial in trials if trial is not failed]
    assert len(others) == (2 if backend == "optuna" else 0)
    for trial in others:
        assert trial.state in (hpsearch.TrialState.PAUSED, hpsearch.TrialState.PRUNED) and len(trial.intermediate) == 1


def test_model_init_returning_none_fails_when_the_trainer_is_built(make_trainer):
    with pytest.raises(RuntimeError, match="model_init should not return None"):
        make_trainer(model_init=lambda: None)


def test_both_model_and_model_init_fail_when_the_trainer_is_built(make_trainer, tiny_model_dir):
    trainer = make_trainer()
    with pytest.raises(ValueError, match="either a `model` or `model_init` argument, but not both"):
        hpsearch.Trainer(model=trainer.model, model_init=trainer.model_init, args=trainer.args)
