"""The SigOpt backend: the official `sigopt` client, embedded (`sigoptlite`) and over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import TrainingArguments

import hpsearch
from hpsearch import TrialState
from tests.sigopt_server import SigOptServer


@pytest.fixture(autouse=True)
def no_sigopt_account(monkeypatch):
    monkeypatch.delenv("SIGOPT_API_TOKEN", raising=False)
    monkeypatch.delenv("SIGOPT_API_URL", raising=False)


def sigopt_hp_space(trial):  # the seed's
    return [
        {"bounds": {"min": 1e-6, "max": 1e-4}, "name": "learning_rate", "type": "double"},
        {
            "categorical_values": ["16", "32", "64", "128"],
            "name": "per_device_train_batch_size",
            "type": "categorical",
        },
    ]


def test_seed_sigopt_example_runs_as_written_embedded(make_trainer):
    trainer = make_trainer()
    best_trial = trainer.hyperparameter_search(
        direction="maximize",
        backend="sigopt",
        hp_space=sigopt_hp_space,
        n_trials=5,
        compute_objective=lambda metrics: -metrics["eval_loss"],
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert len(trials) == 5 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}  # the rule's
    assert len({t.params["learning_rate"] for t in trials}) == 5  # args.seed fixed, yet 5 points searched
    assert all(t.params["per_device_train_batch_size"] in ("16", "32", "64", "128") for t in trials)
    assert best_trial.objective == max(t.objective for t in trials if t.state is TrialState.COMPLETE)
    assert Path(best_trial.run_summary.best_model_dir, "model.safetensors").is_file()
    # SigOpt's categorical values are strings; the best run's are typed as the fields they set
    assert type(best_trial.hyperparameters["per_device_train_batch_size"]) is int
    args = TrainingArguments(output_dir=str(Path(trainer.args.output_dir, "again")), **best_trial.hyperparameters)
    assert args.per_device_train_batch_size == int(trials[int(best_trial.run_id)].params["per_device_train_batch_size"])


def test_the_same_search_runs_against_a_sigopt_api_server(make_trainer, monkeypatch):
    with SigOptServer(token="test-token") as server:
        monkeypatch.setenv("SIGOPT_API_TOKEN", "test-token")
        monkeypatch.setenv("SIGOPT_API_URL", server.url)
        trainer = make_trainer()
        best = trainer.hyperparameter_search(
            direction="maximize",
            backend="sigopt",
            hp_space=sigopt_hp_space,
            n_trials=3,
            compute_objective=lambda metrics: -metrics["eval_loss"],
        )
    experiment = best.run_summary.native
    assert experiment in server.experiments
    routes = [(method, path.split("?")[0]) for method, path in server.requests]
    assert routes[0] == ("POST", "/v1/experiments")
    assert routes.count(("POST", f"/v1/experiments/{experiment}/suggestions")) == 3
    assert routes.count(("POST", f"/v1/experiments/{experiment}/observations")) == 3
    observed = server.experiments[experiment].request("GET", ["experiments", "-1", "observations"], {}, None)
    trials = hpsearch.load_trials(trainer.args.output_dir)
    values = sorted(o["values"][0]["value"] for o in observed["data"] if not o.get("failed"))
    assert values == pytest.approx(sorted(t.objective for t in trials if t.state is TrialState.COMPLETE))
    pruned = [t for t in trials if t.state is TrialState.PRUNED]  # stopped at a rung: observed as failed
    assert sum(bool(o.get("failed")) for o in observed["data"]) == len(pruned)


def test_a_wrong_token_is_refused_by_the_server(monkeypatch):
    with SigOptServer(token="right") as server, pytest.raises(Exception, match="Invalid API token"):
        hpsearch.search(
            lambda t: 0.0, sigopt_hp_space, n_trials=1, backend="sigopt", api_token="wrong", api_url=server.url
        )


@pytest.mark.parametrize(
    ("hp_space", "message"),
    [
        ([{"name": "x", "type": "float", "bounds": {"min": 0, "max": 1}}], "`type` must be one of"),
        ([{"name": "x", "type": "double", "bounds": {"min": 1, "max": 1}}], "min < max"),
        ([{"name": "x", "type": "categorical", "categorical_values": []}], "non-empty list"),
        ([{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}, "transformation": "log"}], "min > 0"),
        (lambda trial: {"x": trial.suggest_float("x", 0, 1)}, "optuna"),
        ({"method": "random", "parameters": {"x": {"values": [1]}}}, "W&B"),
        ({"x": object()}, "Ray Tune"),
    ],
)
def test_bad_sigopt_spaces_fail_before_any_trial(hp_space, message):
    ran = []
    with pytest.raises(ValueError, match=message):
        hpsearch.search(lambda t: ran.append(1) or 0.0, hp_space, n_trials=1, backend="sigopt")
    assert ran == []


def test_neutral_space_round_trips_with_its_types():
    from hpsearch.space import Categorical, Float, Int

    space = {"lr": Float(1e-5, 1e-3, log=True), "layers": Int(1, 4), "batch": Categorical([16, 32])}
    best = hpsearch.search(
        lambda t: t.params["lr"] * t.params["layers"] * t.params["batch"],
        space,
        n_trials=4,
        backend="sigopt",
        show_progress=False,
    )
    for t in best.run_summary.trials:
        assert isinstance(t.params["layers"], int) and t.params["batch"] in (16, 32) and 1e-5 <= t.params["lr"] <= 1e-3


def dominated(values, by, directions) -> bool:
    """Whether `by` is at least as good as `values` in every direction, and not the same point."""
    better = [b <= v if d == "minimize" else b >= v for v, b, d in zip(values, by, directions)]
    return all(better) and list(by) != list(values)


def test_two_objectives_run_past_the_sixth_suggestion_to_a_pareto_front():
    """libsigopt's two-objective phases call numpy 1's `numpy.product` from the 6th suggestion on."""
    from hpsearch.space import Float

    directions = ["minimize", "maximize"]
    front = hpsearch.search(
        lambda trial: ((trial.params["x"] - 0.3) ** 2, trial.params["x"] * trial.params["y"]),
        {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)},
        n_trials=8,
        backend="sigopt",
        direction=directions,
        seed=0,
        show_progress=False,
    )
    trials = front[0].run_summary.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
    on_front = {int(run.run_id) for run in front}
    for t in trials:  # the front: the trials no other dominates
        beaten = any(dominated(t.values, other.values, directions) for other in trials)
        assert beaten is (t.number not in on_front), (t.number, t.values)


def test_a_two_objective_trainer_search_runs_past_the_sixth_suggestion(make_trainer):
    trainer = make_trainer(num_train_epochs=1)
    front = trainer.hyperparameter_search(
        direction=["minimize", "maximize"],
        backend="sigopt",
        hp_space=sigopt_hp_space,
        n_trials=6,
        compute_objective=lambda metrics: (metrics["eval_loss"], metrics["eval_accuracy"]),
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert front and {run.run_id for run in front} <= {str(t.number) for t in trials}
    assert all(run.objective == trials[int(run.run_id)].values for run in front)
