"""Each trial is its own run in every `report_to` integration: TensorBoard, W&B (offline) and
MLflow (a local store), read back from what they wrote."""

from __future__ import annotations

import json

import mlflow
import optuna
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import hpsearch
from tests.wandb_helpers import offline_runs


@pytest.fixture(autouse=True)
def local_tracking(monkeypatch, tmp_path):
    """W&B offline with no account, MLflow in a local SQLite store, nothing under ~."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for name in ("TENSORBOARD_LOGGING_DIR", "WANDB_PROJECT", "WANDB_DIR", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    yield
    mlflow.set_tracking_uri(None)


def lr_space(trial):
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True)}


def trial_name(trial):
    return f"lr-{trial.params['learning_rate']:.6f}"


class NeverPrune(optuna.pruners.BasePruner):
    """A pruner that looks at every rung and stops nothing: every trial runs its rungs and all of its evaluations."""

    def prune(self, study, trial):
        return False


def search(make_trainer, report_to, **kwargs):
    trainer = make_trainer(report_to=report_to, num_train_epochs=2, eval_strategy="epoch", logging_steps=6)
    trainer.hyperparameter_search(
        n_trials=3, show_progress=False, compute_objective=lambda m: m["eval_loss"], **{"hp_space": lr_space, **kwargs}
    )
    return trainer, hpsearch.load_trials(trainer.args.output_dir)


def test_each_trial_is_its_own_run_in_tensorboard_wandb_and_mlflow(make_trainer):
    """...and holds the user's evaluations only (one an epoch), not the rung evaluations."""
    trainer, trials = search(
        make_trainer,
        ["tensorboard", "wandb", "mlflow"],
        hp_name=trial_name,
        study_name="lr-study",
        pruner=NeverPrune(),
    )
    names = sorted(trial_name(t) for t in trials)
    assert all(sorted(t.intermediate) == [111, 333] for t in trials)  # the rungs happened

    def logged(losses, t):  # two evaluations (one an epoch), the last one the objective
        return len(losses) == 2 and losses[-1] == pytest.approx(t.objective)

    for t in trials:  # TensorBoard: <output_dir>/runs/<trial name>, kept after the search
        log = EventAccumulator(f"{trainer.args.output_dir}/runs/{trial_name(t)}").Reload()
        assert logged([e.value for e in log.Scalars("eval/loss")], t)
        args = json.loads(log.Tensors("args/text_summary")[0].tensor_proto.string_val[0])
        assert args["learning_rate"] == pytest.approx(t.params["learning_rate"])

    runs = {run["name"]: run for run in offline_runs(trainer.args.output_dir)}  # W&B, offline
    assert sorted(runs) == names
    for t in trials:
        run = runs[trial_name(t)]
        assert run["group"] == "lr-study"
        assert run["config"]["learning_rate"] == pytest.approx(t.params["learning_rate"])
        assert logged([h["eval/loss"] for h in run["history"] if "eval/loss" in h], t)

    client = mlflow.MlflowClient()  # MLflow, in a local store
    experiments = [e.experiment_id for e in client.search_experiments()]
    by_name = {run.info.run_name: run for run in client.search_runs(experiments)}
    assert sorted(by_name) == names
    for t in trials:
        run = by_name[trial_name(t)]
        assert run.data.tags["hpsearch.study"] == "lr-study" and run.data.tags["hpsearch.trial"] == str(t.number)
        assert float(run.data.params["learning_rate"]) == pytest.approx(t.params["learning_rate"])
        losses = [m.value for m in client.get_metric_history(run.info.run_id, "eval_loss")]
        assert logged(losses, t) and run.info.status == "FINISHED"


def test_with_the_wandb_backend_each_trial_logs_into_its_sweep_run(make_trainer):
    sweep = {
        "method": "random",
        "early_terminate": None,  # no pruning, so no rungs: the objective's history is the user's evaluations
        "parameters": {"learning_rate": {"distribution": "log_uniform_values", "min": 1e-3, "max": 3e-2}},
    }
    trainer, trials = search(make_trainer, ["wandb"], backend="wandb", hp_space=sweep)
    runs = offline_runs(trainer.args.output_dir)
    assert len(runs) == len(trials) == 3  # one run a trial: the sweep's, which the Trainer's logging joined
    for t, run in zip(trials, sorted(runs, key=lambda r: r["name"])):
        assert run["config"]["learning_rate"] == pytest.approx(t.params["learning_rate"])
        assert [h["objective"] for h in run["history"] if "objective" in h] == list(t.intermediate.values())
        assert len([h for h in run["history"] if "eval/loss" in h]) == 2
        assert run["summary"]["objective"] == pytest.approx(t.objective)
