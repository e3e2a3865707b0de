"""What transformers' own hyperparameter-search tests ask of a Trainer, in our words: define-by-run
`model_init(trial)`, `hp_name` seeing the trial, each backend's trial object in `model_init`, the
W&B environment and `sweep_id=run_summary`, and a search over Ray Client."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification, TrainerCallback

import hpsearch
from hpsearch import TrialState


@pytest.fixture(autouse=True)
def no_accounts(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("SIGOPT_API_TOKEN", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    for name in ("WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(name, raising=False)


class Steps(TrainerCallback):
    def __init__(self):
        self.trained = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.trained += 1


def dropout_model_init(model_dir, read):
    """A `model_init(trial)` whose dropout comes from `read(trial)` (0.1 for the Trainer's own call)."""

    def model_init(trial):
        dropout = read(trial) if trial is not None else 0.1
        return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2, hidden_dropout_prob=dropout)

    return model_init


@pytest.mark.parametrize("backend", ["optuna", "wandb"])
def test_searched_model_keys_the_model_never_gets_are_named_once_before_training(
    backend, make_trainer, tiny_model_dir, caplog
):
    """`classifier_dropout_rate` is nowhere in the model (BERT's is `classifier_dropout`), and `model_init(trial)`
    passes `attention_probs_dropout_prob` on but not `hidden_dropout_prob`: the two unread keys are named once."""
    keys = ("classifier_dropout_rate", "hidden_dropout_prob", "attention_probs_dropout_prob")

    def read(trial):
        return (trial.params if backend == "optuna" else trial)["attention_probs_dropout_prob"]

    def model_init(trial):
        dropout = read(trial) if trial is not None else 0.1
        return AutoModelForSequenceClassification.from_pretrained(
            tiny_model_dir, num_labels=2, attention_probs_dropout_prob=dropout
        )

    if backend == "optuna":
        space = lambda trial: {key: trial.suggest_float(key, 0.2, 0.3) for key in keys}  # noqa: E731
    else:
        space = {"method": "random", "metric": {}, "parameters": {key: {"min": 0.2, "max": 0.3} for key in keys}}
    trainer = make_trainer(model_init=model_init, max_steps=2)
    with caplog.at_level("WARNING", logger="hpsearch"):
        trainer.hyperparameter_search(hp_space=space, backend=backend, n_trials=2, show_progress=False)
    unread = [m for m in caplog.messages if m.startswith("hp_space searches")]
    assert len(unread) == 2, unread  # once per key, not per trial
    assert "'classifier_dropout_rate', which is neither a `TrainingArguments` field nor in the model" in unread[0]
    assert "Did you mean the config's 'classifier_dropout'?" in unread[0]
    assert "'hidden_dropout_prob', but the first trial's model has config.hidden_dropout_prob=0.1" in unread[1]
    trials = hpsearch.load_trials(trainer.args.output_dir)  # told, not refused: a key may be used in a way of one's own
    assert TrialState.COMPLETE in {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}


def test_define_by_run_model_init_is_searched_and_named_after(make_trainer, tiny_model_dir):
    named = []

    def hp_name(trial):  # called once model_init has suggested: it sees the trial's parameters
        named.append((trial.number, dict(trial.params)))
        return f"dropout-{trial.params['hidden_dropout_prob']:.4f}"

    model_init = dropout_model_init(tiny_model_dir, lambda trial: trial.suggest_float("hidden_dropout_prob", 0.0, 0.3))
    trainer = make_trainer(
        model_init=model_init,
        num_train_epochs=2,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        run_name="test",
        logging_steps=1,
    )
    best = trainer.hyperparameter_search(
        hp_space=lambda trial: {},
        hp_name=hp_name,
        n_trials=3,
        compute_objective=lambda m: m["eval_loss"],
        show_progress=False,
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}  # pruned at a rung, or not
    # named once per run: a trial paused at a rung is named again, the same, when it resumes
    assert sorted(set((n, tuple(p.items())) for n, p in named)) == [(t.number, tuple(t.params.items())) for t in trials]
    assert len({name for _, params in named for name in params}) == 1
    assert set(best.hyperparameters) == {"hidden_dropout_prob"}
    kept = AutoModelForSequenceClassification.from_pretrained(best.run_summary.best_model_dir)
    assert kept.config.hidden_dropout_prob == pytest.approx(best.hyperparameters["hidden_dropout_prob"])


def test_define_by_run_with_several_objectives_and_fp16_evaluation(make_trainer, tiny_model_dir):
    model_init = dropout_model_init(tiny_model_dir, lambda trial: trial.suggest_float("hidden_dropout_prob", 0.0, 0.3))
    trainer = make_trainer(model_init=model_init, max_steps=4, eval_strategy="steps", eval_steps=2, fp16_full_eval=True)
    front = trainer.hyperparameter_search(
        hp_space=lambda trial: {},
        n_trials=3,
        direction=["minimize", "maximize"],
        compute_objective=lambda m: (m["eval_loss"], m["eval_accuracy"]),
        show_progress=False,
    )
    assert front and all(set(b.hyperparameters) == {"hidden_dropout_prob"} and len(b.objective) == 2 for b in front)


def test_an_empty_space_whose_model_init_suggests_nothing_stops_before_training(make_trainer, tiny_model_dir):
    trainer = make_trainer(model_init=dropout_model_init(tiny_model_dir, lambda trial: 0.1))  # suggests nothing
    steps = Steps()
    trainer.add_callback(steps)
    with pytest.raises(ValueError, match=r"Trial 0 has no parameters to search.*`model_init\(trial\)` suggested none"):
        trainer.hyperparameter_search(hp_space=lambda trial: {}, n_trials=3, show_progress=False)
    assert steps.trained == 0
    (trial,) = hpsearch.load_trials(trainer.args.output_dir)
    assert trial.state is TrialState.FAILED


@pytest.mark.parametrize(
    ("backend", "hp_space", "read"),
    [
        (
            "sigopt",
            [{"name": "hidden_dropout_prob", "type": "double", "bounds": {"min": 0.0, "max": 0.3}}],
            lambda trial: trial.assignments["hidden_dropout_prob"],
        ),
        (
            "wandb",
            {"method": "random", "metric": {}, "parameters": {"hidden_dropout_prob": {"min": 0.0, "max": 0.3}}},
            lambda config: config["hidden_dropout_prob"],
        ),
    ],
)
def test_model_init_and_hp_name_get_the_backends_trial(make_trainer, tiny_model_dir, backend, hp_space, read):
    """SigOpt's is its suggestion (`.assignments`), W&B's (and Ray's) the trial's config dict."""
    built = []

    def model_init(trial):
        model = dropout_model_init(tiny_model_dir, read)(trial)
        built.append(model.config.hidden_dropout_prob)
        return model

    trainer = make_trainer(model_init=model_init, max_steps=2)
    trainer.hyperparameter_search(
        backend=backend, hp_space=hp_space, n_trials=2, show_progress=False, hp_name=lambda trial: f"p{read(trial):.5f}"
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert built[1:] == pytest.approx([t.params["hidden_dropout_prob"] for t in trials])


def test_wandb_sets_its_environment_and_continues_the_sweep_given_back(make_trainer, monkeypatch):
    sweep = {"method": "random", "metric": {}, "parameters": {"learning_rate": {"min": 1e-3, "max": 3e-2}}}
    trainer = make_trainer(max_steps=2)
    first = trainer.hyperparameter_search(
        backend="wandb", hp_space=lambda trial: sweep, n_trials=2, show_progress=False
    )
    assert os.environ["WANDB_PROJECT"] == "hpsearch" and "WANDB_ENTITY" in os.environ  # as wandb.agent sets them
    assert set(first.hyperparameters) == {"learning_rate"}  # the searched parameters only: TrainingArguments-ready
    monkeypatch.delenv("WANDB_PROJECT")  # a new process: the environment is gone, the study is not
    monkeypatch.delenv("WANDB_ENTITY")
    again = trainer.hyperparameter_search(
        backend="wandb", hp_space=lambda trial: sweep, n_trials=3, sweep_id=first.run_summary, show_progress=False
    )
    assert again.run_summary == first.run_summary and again.run_summary.native == first.run_summary.native
    assert len(hpsearch.load_trials(trainer.args.output_dir)) == 3  # the same sweep, one trial more


def test_a_trainer_search_over_ray_client_records_every_trial(make_trainer, ray_client_server):
    import ray
    from ray import tune

    trainer = make_trainer(max_steps=4, eval_strategy="steps", eval_steps=2)
    best = trainer.hyperparameter_search(
        backend="ray",
        hp_space={"learning_rate": tune.loguniform(1e-3, 3e-2)},
        n_trials=2,
        show_progress=False,
        address=ray_client_server,
        compute_objective=lambda m: m["eval_loss"],
        scheduler=tune.schedulers.FIFOScheduler(),  # no pruning, so no rungs: the user's evaluations are reported
    )
    assert not ray.is_initialized()  # hpsearch connected, and disconnected
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert all(sorted(t.intermediate) == [500, 1000] and t.objective == t.intermediate[1000] for t in trials)
    assert Path(best.run_summary.best_model_dir, "model.safetensors").is_file()
