"""`tune.run`'s keywords, as transformers' own Ray search forwards them: each taken with Ray's meaning (translated
where hpsearch does the job itself) or refused before any trial; Ray's PBT example for transformers runs as Ray's
docs write it; a trial whose worker dies runs again (`max_failures`), one whose own code fails does not."""

from __future__ import annotations

import inspect
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from ray import tune
from ray.tune import CLIReporter
from ray.tune.schedulers import FIFOScheduler, PopulationBasedTraining
from ray.tune.search.basic_variant import BasicVariantGenerator
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, TrainingArguments

import hpsearch
from hpsearch import TrialState
from hpsearch.backends.ray import RayBackend
from hpsearch.backends.ray_options import REFUSED


def test_rays_pbt_example_for_transformers_runs_as_rays_docs_write_it(
    tiny_model_dir, tokenizer, train_dataset, eval_dataset, tmp_path, monkeypatch, capsys
):
    """Ray's `tune/examples/pbt_transformers` (its smoke test), the tiny model for bert-base and its task for RTE."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the example keeps Ray's results in ~/ray_results/
    num_samples, gpus_per_trial, smoke_test = 2, 0, True

    def get_model():
        return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)

    def compute_metrics(p):  # the example's `build_compute_metrics_fn("rte")`: its accuracy, named "acc"
        return {"acc": float((np.argmax(p.predictions, axis=1) == p.label_ids).mean())}

    training_args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        learning_rate=1e-5,  # config
        do_train=True,
        do_eval=True,
        use_cpu=gpus_per_trial <= 0,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        num_train_epochs=2,  # config
        max_steps=-1,
        per_device_train_batch_size=16,  # config
        per_device_eval_batch_size=16,  # config
        warmup_steps=0,
        weight_decay=0.1,  # config
        skip_memory_metrics=True,
        report_to="none",
    )  # (the example's `logging_dir="./logs"` is not a field of transformers 5's arguments)
    trainer = hpsearch.Trainer(
        model_init=get_model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        compute_metrics=compute_metrics,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    tune_config = {
        "per_device_train_batch_size": 32,
        "per_device_eval_batch_size": 32,
        "num_train_epochs": tune.choice([2, 3, 4, 5]),
        "max_steps": 1 if smoke_test else -1,  # Used for smoke test.
    }
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration",
        metric="eval_acc",
        mode="max",
        perturbation_interval=1,
        hyperparam_mutations={
            "weight_decay": tune.uniform(0.0, 0.3),
            "learning_rate": tune.uniform(1e-5, 5e-5),
            "per_device_train_batch_size": [16, 32, 64],
        },
    )
    reporter = CLIReporter(
        parameter_columns={
            "weight_decay": "w_decay",
            "learning_rate": "lr",
            "per_device_train_batch_size": "train_bs/gpu",
            "num_train_epochs": "num_epochs",
        },
        metric_columns=["eval_acc", "eval_loss", "epoch", "training_iteration"],
    )
    best = trainer.hyperparameter_search(
        hp_space=lambda _: tune_config,
        backend="ray",
        n_trials=num_samples,
        resources_per_trial={"cpu": 1, "gpu": gpus_per_trial},
        scheduler=scheduler,
        keep_checkpoints_num=1,
        checkpoint_score_attr="training_iteration",
        stop={"training_iteration": 1} if smoke_test else None,
        progress_reporter=reporter,
        local_dir="~/ray_results/",
        name="tune_transformer_pbt",
        log_to_file=True,
    )
    trials = hpsearch.load_trials(tmp_path / "out")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * num_samples
    for trial in trials:  # the objective: the trial's evaluation (its accuracy), the one Ray's `stop` ended it at
        assert 0.0 <= trial.objective <= 1.0 and trial.params["max_steps"] == 1
        assert trial.params["num_train_epochs"] in (2, 3, 4, 5) and 0.0 <= trial.params["weight_decay"] <= 0.3
    assert best.objective == min(t.objective for t in trials)  # transformers' default direction: minimize
    experiment = tmp_path / "home" / "ray_results" / "tune_transformer_pbt"
    assert len([d for d in experiment.iterdir() if d.is_dir()]) == num_samples  # `local_dir` and `name`
    for result in best.run_summary.native:  # log_to_file: each trial's output in its working directory
        pattern = f"session_2*/artifacts/*/tune_transformer_pbt/working_dirs/*{result.metrics['trial_id']}*/stderr"
        (stderr,) = Path("/tmp/ray").glob(pattern)
        assert "Loading weights" in stderr.read_text()
    assert "== Status ==" in capsys.readouterr().out  # the example's reporter (Ray's older output) printed the search


def test_every_tune_run_keyword_is_taken_or_refused_with_its_reason():
    """Whatever transformers forwards to `tune.run`: no keyword of it is an unknown argument."""
    keywords = [name for name in inspect.signature(tune.run).parameters if not name.startswith("_")]
    taken = [name for name in inspect.signature(RayBackend.__init__).parameters]
    for name in keywords:
        if name in REFUSED:
            with pytest.raises(ValueError, match=rf"does not take `{name}` \(tune.run's\): .+ Received: {name}="):
                RayBackend.check_options({name: "x"}, [])
        else:
            assert name in taken, name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_samples": 8}, r"does not take `num_samples` .*pass it as `n_trials`. Received: num_samples=8"),
        ({"config": {"lr": 1}}, r"does not take `config` .*pass it as `hp_space`"),
        ({"resume": "AUTO"}, r"does not take `resume` .*rerunning the same call resumes"),
        ({"checkpoint_freq": 2}, r"does not take `checkpoint_freq` .*`save_strategy`"),
        ({"keep_checkpoints_num": 0}, r"`keep_checkpoints_num` must be an int >= 1, or None. Received: .*=0"),
        ({"checkpoint_score_attr": 3}, r"`checkpoint_score_attr` must be the name of a reported metric"),
        ({"local_dir": "a", "storage_path": "b"}, r"Pass `storage_path` or `local_dir` .*not both"),
        ({"time_budget_s": 5, "timeout": 5}, r"Pass `timeout` or `time_budget_s` .*not both"),
        ({"max_failures": -2}, r"`max_failures` must be an int >= -1 \(-1: no limit\). Received: max_failures=-2"),
        ({"mode": "max"}, r"`mode` \('min' or 'max'\) goes with `metric`.* Received: metric=None, mode='max'"),
    ],
)
def test_tune_run_keywords_refused_before_any_trial_with_what_to_pass(options, message):
    import ray

    with pytest.raises(ValueError, match=message):
        hpsearch.Search({"x": tune.uniform(0, 1)}, n_trials=2, backend="ray", **options)
    assert not ray.is_initialized()


def test_tune_run_keywords_are_translated_into_the_tuners_configs(tmp_path):
    backend = hpsearch.Search(
        {"x": tune.uniform(0, 1)},
        backend="ray",
        direction="maximize",
        keep_checkpoints_num=3,
        checkpoint_score_attr="min-eval_loss",
        local_dir=str(tmp_path / "results"),
        name="mine",
        max_failures=5,
        scheduler="fifo",
    ).backend
    config = backend.checkpoint_config
    assert (config.num_to_keep, config.checkpoint_score_attribute, config.checkpoint_score_order) == (
        3, "eval_loss", "min"
    )  # fmt: skip
    assert (backend.storage_path, backend.experiment_name, backend.max_failures) == (
        str(tmp_path / "results"), "mine", 5
    )  # fmt: skip
    assert isinstance(backend.scheduler, FIFOScheduler)
    assert backend.metric_and_mode() == ("objective", "max")
    pbt = PopulationBasedTraining(metric="eval_acc", mode="max", hyperparam_mutations={"x": [0, 1]})
    judging = hpsearch.Search({"x": tune.uniform(0, 1)}, backend="ray", scheduler=pbt).backend
    assert judging.metric_and_mode() == (None, None) and judging.judged() == ("eval_acc",)
    assert not judging.can_prune  # it judges the user's evaluations: no rung has their metrics


KINDS = ["dies", "raises", "fine"]


def objective_of_kinds(marks: Path):
    """Trials by kind: one whose worker dies at its first start, one whose own code fails, one that completes;
    each start leaves a mark."""

    def objective(trial):
        kind = trial.params["kind"]
        attempt = len(list(marks.glob(f"{kind}-*")))
        (marks / f"{kind}-{attempt}").touch()
        trial.report(1, 0.5)
        if kind == "dies" and attempt == 0:
            os.kill(os.getpid(), signal.SIGKILL)  # its worker process dies, as on a lost node
        if kind == "raises":
            raise ValueError("the trial's own failure")
        return 1.0

    return objective


@pytest.mark.parametrize("max_failures", [None, 0])
def test_a_trial_whose_worker_dies_runs_again_and_one_whose_code_fails_does_not(tmp_path, max_failures, on_ray_cluster):
    marks = tmp_path / "marks"
    marks.mkdir()
    options = {} if max_failures is None else {"max_failures": max_failures}  # None: the default
    hpsearch.search(
        objective_of_kinds(marks),
        {"kind": tune.choice(KINDS)},
        n_trials=3,
        backend="ray",
        output_dir=str(tmp_path / "out"),
        show_progress=False,
        scheduler=FIFOScheduler(),
        search_alg=BasicVariantGenerator(points_to_evaluate=[{"kind": kind} for kind in KINDS], max_concurrent=1),
        **options,
    )
    states = {t.params["kind"]: t.state for t in hpsearch.load_trials(tmp_path / "out")}
    starts = sorted(m.name for m in marks.iterdir())
    if max_failures is None:
        assert states == {"dies": TrialState.COMPLETE, "raises": TrialState.FAILED, "fine": TrialState.COMPLETE}
        assert starts == ["dies-0", "dies-1", "fine-0", "raises-0"]  # the failing code ran once, not retried
    else:  # Ray's own default: a dead worker fails its trial
        assert states == {"dies": TrialState.FAILED, "raises": TrialState.FAILED, "fine": TrialState.COMPLETE}
        assert starts == ["dies-0", "fine-0", "raises-0"]
