"""The Ray Tune backend with the real Ray: a local Ray started by hpsearch (the seed's example, a script), and a real
cluster (the test process's, `on_ray_cluster`, which the other searches here join rather than each start a Ray)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator
from transformers import AutoModelForSequenceClassification

import hpsearch
from hpsearch import TrialState
from hpsearch.study import schema, store

RAY = Path(sys.executable).with_name("ray")


def test_seed_ray_example_runs_as_written(make_trainer):
    trainer = make_trainer()

    def ray_hp_space(trial):
        return {
            "learning_rate": tune.loguniform(1e-6, 1e-4),
            "per_device_train_batch_size": tune.choice([16, 32, 64, 128]),
        }

    best_trial = trainer.hyperparameter_search(
        direction="maximize",
        backend="ray",
        hp_space=ray_hp_space,
        n_trials=5,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert len(trials) == 5 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}  # ASHA's
    assert len({t.params["learning_rate"] for t in trials}) == 5  # args.seed fixed, yet 5 points searched
    assert all(t.params["per_device_train_batch_size"] in (16, 32, 64, 128) for t in trials)
    assert best_trial.objective == max(t.objective for t in trials if t.state is TrialState.COMPLETE)
    assert isinstance(best_trial.run_summary.native, tune.ResultGrid) and len(best_trial.run_summary.native) == 5


def test_asha_stops_a_bad_trial_early_and_the_best_model_reloads(make_trainer, on_ray_cluster):
    trainer = make_trainer()
    best = trainer.hyperparameter_search(
        backend="ray",
        hp_space={"learning_rate": tune.uniform(1e-12, 1.0)},
        n_trials=3,
        compute_objective=lambda metrics: metrics["eval_loss"],
        # lr 1e-12 leaves the loss at its start; lr 0.5 blows it up at the first evaluation
        # one trial at a time, so ASHA compares each with the earlier ones' results whatever the timing
        # (Tune ignores `max_concurrent_trials` beside a search generator: the generator's own is set)
        search_alg=BasicVariantGenerator(
            points_to_evaluate=[{"learning_rate": 1e-12}, {"learning_rate": 0.5}, {"learning_rate": 0.7}],
            max_concurrent=1,
        ),
        scheduler=ASHAScheduler(max_t=10, grace_period=1, reduction_factor=2),
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    stopped = [t for t in trials if t.state is TrialState.PRUNED]
    assert stopped and all(len(t.intermediate) < 2 for t in stopped)  # 2 rungs a trial unless stopped
    assert best.hyperparameters == {"learning_rate": 1e-12}

    best_dir = Path(best.run_summary.best_model_dir)
    assert json.loads((best_dir / "hpsearch_trial.json").read_text())["trial"] == int(best.run_id)
    kept = store.load_study(trainer.args.output_dir).user_attrs[schema.BEST_MODEL]  # what the dashboard shows
    assert kept == {"trial": int(best.run_id), "path": str(best_dir.absolute())}
    reloaded = make_trainer(model_init=lambda: AutoModelForSequenceClassification.from_pretrained(best_dir))
    assert reloaded.evaluate()["eval_loss"] == pytest.approx(best.objective, rel=1e-5)
    checkpoints = list((Path(trainer.args.output_dir) / "ray").rglob("checkpoint_*"))
    assert not [c for c in checkpoints if any(c.iterdir())]  # models do not pile up per trial


def test_a_ray_worker_keeps_each_trials_best_evaluation_and_its_model_with_checkpoints_and_tensorboard(
    make_trainer, on_ray_cluster
):
    """A Ray worker stages a trial's model at each evaluation that beats the trial's earlier ones, as the loop does,
    with checkpoints saved and a `report_to` integration on: the kept model scores the best trial's best evaluation,
    which is not its last."""
    trainer = make_trainer(
        num_train_epochs=3, learning_rate=5e-2, eval_strategy="steps", eval_steps=1 / 5, save_strategy="steps",
        save_steps=1 / 5, report_to="tensorboard",
    )  # fmt: skip
    best = trainer.hyperparameter_search(
        backend="ray",
        hp_space={"learning_rate": tune.uniform(2e-2, 5e-2)},
        n_trials=2,
        direction="maximize",
        compute_objective=lambda m: m["eval_accuracy"] - m["eval_loss"],
        objective_at="best",
        scheduler=FIFOScheduler(),  # no stopping: every evaluation of the user's is recorded
        seed=0,
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert len({t.params["learning_rate"] for t in trials}) == 2
    for t in trials:
        assert len(t.intermediate) == 5 and t.objective == max(t.intermediate.values())
    (chosen,) = [t for t in trials if t.number == int(best.run_id)]
    assert chosen.objective != chosen.intermediate[max(chosen.intermediate)]  # a model offered before the last
    reloaded = make_trainer(
        model_init=lambda: AutoModelForSequenceClassification.from_pretrained(best.run_summary.best_model_dir)
    )
    metrics = reloaded.evaluate()
    assert metrics["eval_accuracy"] - metrics["eval_loss"] == pytest.approx(best.objective, rel=1e-5)


def test_search_runs_on_a_ray_cluster_given_by_address(ray_cluster, tmp_path):
    seen = tmp_path / "seen"
    seen.mkdir()

    def objective(trial):
        import ray

        (seen / f"{trial.number}").write_text(ray.get_runtime_context().gcs_address)
        return trial.params["x"]

    best = hpsearch.search(
        objective,
        {"x": tune.uniform(0, 1)},
        n_trials=3,
        backend="ray",
        address=ray_cluster,
        output_dir=str(tmp_path / "out"),
    )
    assert {p.read_text() for p in seen.iterdir()} == {ray_cluster}
    assert len(best.run_summary.trials) == 3
    status = subprocess.run(
        [str(RAY), "status", f"--address={ray_cluster}"],
        capture_output=True,
        timeout=60,
        env=dict(os.environ, RAY_AUTH_MODE="disabled"),
    )
    assert status.returncode == 0  # hpsearch left the cluster running


@pytest.mark.parametrize(
    ("hp_space", "hint"),
    [
        (lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-6, 1e-4)}, "optuna"),
        ({"method": "random", "parameters": {"learning_rate": {"min": 1e-6, "max": 1e-4}}}, "W&B"),
        ([{"name": "learning_rate", "type": "double", "bounds": {"min": 1e-6, "max": 1e-4}}], "SigOpt"),
    ],
)
def test_ray_rejects_other_backends_formats_before_starting_ray(hp_space, hint):
    import ray

    with pytest.raises(ValueError, match=rf"ray backend takes .*tune.*{hint}"):
        hpsearch.search(lambda t: 0.0, hp_space, n_trials=1, backend="ray")
    assert not ray.is_initialized()


SCRIPT = """
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "helpers"))  # the script's own modules, as users keep them

from ray import tune
from scoring import objective

import hpsearch

best = hpsearch.search(objective, {"x": tune.uniform(0, 1)}, n_trials=2, backend="ray",
                       output_dir=sys.argv[1], show_progress=False)
print("BEST", best.objective)
"""


def test_a_script_importing_from_a_folder_it_added_to_sys_path_runs_on_local_ray(tmp_path):
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "scoring.py").write_text("def objective(trial):\n    return trial.params['x']\n")
    (tmp_path / "search.py").write_text(SCRIPT)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    run = subprocess.run(
        [sys.executable, str(tmp_path / "search.py"), str(tmp_path / "out")],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, RAY_AUTH_MODE="disabled"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert [t.state for t in hpsearch.load_trials(tmp_path / "out")] == [TrialState.COMPLETE] * 2


def test_ray_space_converts_to_the_neutral_space_and_back():
    from hpsearch.backends.ray import to_neutral, to_ray
    from hpsearch.space import Categorical, Float, Int

    for dim in (Float(1e-6, 1e-4, log=True), Float(0.0, 1.0), Int(1, 40), Int(1, 64, log=True), Categorical([16, 32])):
        assert to_neutral(to_ray(dim)) == dim
    assert to_neutral(tune.grid_search([1, 2])) == Categorical([1, 2])
    assert to_neutral(tune.sample_from(lambda spec: 1)) is None


def test_ray_default_space_is_transformers_default_with_an_integer_seed():
    from transformers.trainer_utils import default_hp_space_ray

    from hpsearch.backends.ray import RayBackend, to_neutral

    theirs = {name: to_neutral(d) for name, d in default_hp_space_ray(None).items()}
    ours = {name: to_neutral(d) for name, d in RayBackend.default_space().items()}
    assert {n: d for n, d in ours.items() if n != "seed"} == {n: d for n, d in theirs.items() if n != "seed"}
    assert ours["seed"] == hpsearch.space.Int(1, 40)


def test_trials_ray_finished_but_the_store_missed_are_recorded_after_the_run(tmp_path, on_ray_cluster):
    """The driver can die between Ray ending a trial and the store hearing of it."""
    from hpsearch.executors.ray_tune import Mirror
    from hpsearch.settings import SearchSettings
    from hpsearch.space import Float
    from hpsearch.study.lifecycle import Trials

    def curve(trial):
        trial.report(1, trial.params["x"] + 1)
        return trial.params["x"]

    best = hpsearch.search(curve, {"x": tune.uniform(0, 1)}, n_trials=2, backend="ray", output_dir=str(tmp_path))
    missed = Trials(SearchSettings(directions=("minimize",), study_name="missed"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Mirror(missed, {"x": Float(0, 1)}).reconcile(best.run_summary.native)
    assert not [w for w in caught if "already reported" in str(w.message)]  # the final result repeats the last step
    recorded = sorted((t.params["x"], t.values, t.intermediate) for t in missed.records())
    expected = sorted((t.params["x"], t.values, {1: t.params["x"] + 1}) for t in best.run_summary.trials)
    assert recorded == expected


def test_rerun_with_more_trials_adds_only_the_missing_ones(tmp_path, on_ray_cluster):
    seen = tmp_path / "seen.log"

    def objective(trial):
        with open(seen, "a") as f:
            f.write(f"{trial.params['x']}\n")
        return trial.params["x"]

    options = dict(backend="ray", output_dir=str(tmp_path), storage=f"sqlite:///{tmp_path / 's.db'}")
    hpsearch.search(objective, {"x": tune.uniform(0, 1)}, n_trials=2, **options)
    best = hpsearch.search(objective, {"x": tune.uniform(0, 1)}, n_trials=3, **options)
    assert len(best.run_summary.trials) == 3 and len(seen.read_text().split()) == 3
    assert (tmp_path / "ray" / "hpsearch-1").is_dir()  # Ray's first experiment was complete: a second one ran


def test_with_no_rungs_the_default_asha_ends_no_trial_at_a_late_step(tmp_path, on_ray_cluster):
    """With no rungs (the function API, a Trainer's `evals_per_trial=0`), ASHA judges the reported steps but has no
    last one: a trial whose own evaluation lands at a Trainer's end of training (progress 1000) or beyond runs on
    to its end and completes."""

    def even_curve(trial):  # equal values at every step: ASHA stops no trial for being worse
        for step in (500, 1000, 5000):
            if trial.report(step, 0.5):
                return None
        return 0.5

    best = hpsearch.search(
        even_curve, {"x": tune.uniform(0, 1)}, n_trials=2, backend="ray", max_concurrent_trials=1, seed=0,
        output_dir=str(tmp_path),
    )  # fmt: skip
    trials = best.run_summary.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert all(sorted(t.intermediate) == [500, 1000, 5000] for t in trials)


def test_population_based_training_exploits_a_trial_from_another_trials_checkpoint(tmp_path, on_ray_cluster):
    """PBT on Ray: at each perturbation the worse trial restarts from the better one's latest
    checkpoint (`Trial.resume_from`) with a mutated config, and goes on from that trial's step."""
    from ray.tune.schedulers import PopulationBasedTraining

    log = tmp_path / "steps.jsonl"

    def objective(trial):
        step, total, origin = 0, 0.0, trial.number
        if trial.resume_from is not None:  # Ray restored it, from its own checkpoint or another trial's
            state = json.loads((Path(trial.resume_from) / "state.json").read_text())
            step, total, origin = state["step"], state["total"], state["trial"]
        while step < 11:  # the last step not a perturbation point: the edge there is left alone (issue 23's note)
            step, total = step + 1, total + trial.params["rate"]
            checkpoint = Path(tempfile.mkdtemp(dir=tmp_path))
            (checkpoint / "state.json").write_text(json.dumps({"step": step, "total": total, "trial": trial.number}))
            trial.note_checkpoint(str(checkpoint))
            with log.open("a") as f:
                f.write(json.dumps({"trial": trial.number, "step": step, "from": origin}) + "\n")
            trial.report(step, total)
            origin = trial.number
            time.sleep(0.2)
        return total

    scheduler = PopulationBasedTraining(
        time_attr="hpsearch_step",
        perturbation_interval=3,
        hyperparam_mutations={"rate": tune.choice([0.1, 1.0])},
        quantile_fraction=0.5,
        resample_probability=1.0,
        synch=True,  # exploits at the same steps for every trial, whatever the timing
    )
    hpsearch.search(
        objective,
        {"rate": tune.choice([0.1, 1.0])},
        n_trials=2,
        direction="maximize",
        backend="ray",
        output_dir=str(tmp_path / "out"),
        show_progress=False,
        scheduler=scheduler,
        search_alg=BasicVariantGenerator(points_to_evaluate=[{"rate": 0.1}, {"rate": 1.0}], max_concurrent=2),
    )
    steps = [json.loads(line) for line in log.read_text().splitlines()]
    exploited = [s for s in steps if s["from"] != s["trial"]]  # the first step after starting from another's
    assert exploited, steps
    for step in exploited:
        source = max(s["step"] for s in steps if s["trial"] == step["from"] and s["step"] < step["step"])
        assert step["step"] == source + 1  # it went on from the source trial's step, not from 0
    trials = hpsearch.load_trials(tmp_path / "out")
    assert len(trials) == 2  # one store trial each, however often Ray paused, restored or exploited it
    # Under two test processes on 2 cores, Ray's synchronous PBT once ended an exploited trial with no final
    # result (CI, 2026-12-03; not reproduced since): the mirror then records it pruned, never failed or twice.
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert any(t.state is TrialState.COMPLETE for t in trials)


def test_store_trial_n_is_run_n_in_its_run_directory_and_arguments_and_reports_each_step_once(
    make_trainer, recwarn, on_ray_cluster
):
    """Two trials at once on 2 CPUs: Ray may start its trial 1 before its trial 0; the store numbers them in
    Ray's order all the same, so that each trial's run (directory, `run_name`, tracking) bears its store number."""
    trainer = make_trainer(max_steps=2, save_strategy="steps", save_steps=1)
    trainer.hyperparameter_search(
        backend="ray",
        hp_space={"learning_rate": tune.loguniform(1e-5, 1e-2)},
        n_trials=4,
        keep_checkpoints=True,  # each trial's run directory stays, its arguments in each checkpoint
        scheduler=tune.schedulers.FIFOScheduler(),  # no trial stopped before its first checkpoint
        show_progress=False,
    )
    trials = hpsearch.load_trials(trainer.args.output_dir)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    for trial in trials:
        (checkpoint, *_) = sorted((Path(trainer.args.output_dir) / f"run-{trial.number}").glob("checkpoint-*"))
        args = torch.load(checkpoint / "training_args.bin", weights_only=False)
        assert (args.run_name, args.learning_rate) == (f"run-{trial.number}", trial.params["learning_rate"])
    assert not [w for w in recwarn if "is already reported" in str(w.message)]  # optuna's, for a step told twice


def test_trials_ray_starts_out_of_order_are_numbered_in_rays_order():
    """Tune may start its trial 1 before its trial 0 (two at once): the store still numbers them 0 and 1, as
    the worker names their runs (`store_number`); trial 0, told before its turn, is recorded with its own config."""
    from types import SimpleNamespace

    from hpsearch.executors.ray_client import mirroring
    from hpsearch.executors.ray_trainable import NEXT, store_number
    from hpsearch.executors.ray_tune import Mirror, Recorder, ray_numbers
    from hpsearch.settings import SearchSettings
    from hpsearch.space import Float
    from hpsearch.study.lifecycle import Trials

    trials = Trials(SearchSettings(directions=("minimize",), study_name="out-of-order"))
    numbers = {**ray_numbers(trials.study), NEXT: trials.created()}
    tune_trials = [SimpleNamespace(trial_id=f"a1b2c_0000{i}", config={"x": i / 10}) for i in range(3)]
    recorder = Recorder("out-of-order", None)
    with mirroring(Mirror(trials, {"x": Float(0, 1)})):
        recorder.on_trial_start(0, tune_trials, tune_trials[1])
        recorder.on_trial_start(0, tune_trials, tune_trials[0])  # told already: recorded once
        recorder.on_trial_start(0, tune_trials, tune_trials[2])
    recorded = {t.number: t.params["x"] for t in trials.records()}
    assert recorded == {0: 0.0, 1: 0.1, 2: 0.2}
    assert [store_number(t.trial_id, numbers) for t in tune_trials] == [0, 1, 2]


def test_an_error_outside_catch_stops_a_ray_search_as_it_stops_the_engines_loop(tmp_path, on_ray_cluster):
    """How a trial ends is decided by the same code on Ray's workers as in the engine's loop (`run_objective`): an
    error of `catch` fails the trial and the search goes on; one outside it stops the search, with its text."""

    def objective(trial):
        if trial.params["kind"] == "value":
            raise ValueError("not a KeyError")
        raise KeyError("caught")

    space = {"kind": tune.grid_search(["key", "value"])}
    with pytest.raises(hpsearch.TrialError, match=r"raised ValueError\('not a KeyError'\), which is not one of catch"):
        hpsearch.search(
            objective, space, n_trials=2, backend="ray", catch=(KeyError,), max_consecutive_failed_trials=None,
            output_dir=str(tmp_path), show_progress=False, search_alg=BasicVariantGenerator(max_concurrent=1),
        )  # fmt: skip
    states = {t.params["kind"]: t.state for t in hpsearch.load_trials(tmp_path)}
    assert states == {"key": TrialState.FAILED, "value": TrialState.FAILED}


def test_the_mirror_ends_a_trial_as_its_last_report_says_and_keeps_a_completed_trials_model(tmp_path):
    """One ending for every way Tune tells it: a last report marked final completes the trial (its model offered to
    the engine's keeper), one without it is a trial the scheduler stopped (pruned), an error fails it."""
    from hpsearch.executors.ray_tune import Mirror
    from hpsearch.settings import SearchSettings
    from hpsearch.space import Float
    from hpsearch.study import schema
    from hpsearch.study.lifecycle import Trials

    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("trial 0")
    settings = SearchSettings(directions=("minimize",), study_name="ends", output_dir=str(tmp_path / "out"))
    trials = Trials(settings)
    mirror = Mirror(trials, {"x": Float(0, 1)})
    for i in range(3):
        mirror.started(f"a1b2c_0000{i}", {"x": i / 10})
    mirror.completed("a1b2c_00000", {"objective": 0.5, schema.RAY_FINAL: True, schema.RAY_MODEL: True},
                     tune.Checkpoint.from_directory(str(model)))  # fmt: skip
    mirror.completed("a1b2c_00001", {"objective": 0.1}, None)  # stopped by the scheduler: no final report
    mirror.failed("a1b2c_00002", "ValueError: boom")
    ended = {t.number: (t.state, t.values, t.error) for t in trials.records()}
    assert ended == {
        0: (TrialState.COMPLETE, [0.5], None),
        1: (TrialState.PRUNED, None, None),
        2: (TrialState.FAILED, None, "ValueError: boom"),
    }
    assert (tmp_path / "out" / "studies" / "ends" / "best_model" / "weights.txt").read_text() == "trial 0"
    assert not model.exists()  # the model's checkpoint is not left beside the kept copy
