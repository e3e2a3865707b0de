"""`hpsearch.compat`: each library internal hpsearch relies on, checked against the installed library, so that an
upgrade that changes one fails here by name."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy
import transformers
from transformers.trainer_callback import ProgressCallback, TrainerCallback, TrainerControl, TrainerState

from hpsearch import compat


@pytest.fixture
def study(tmp_path):
    """A study on the storage object optuna makes of a database (its cache around it), as hpsearch's are."""
    database = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=60)
    storage = compat.storage_object(database)
    study = optuna.create_study(storage=storage)
    study.new_trial = lambda template=None: storage.create_new_trial(  # as `lifecycle.Trials` creates one
        storage.get_study_id_from_name(study.study_name), template_trial=template
    )
    return study


def test_optuna_keeps_an_enqueued_trials_values_where_compat_reads_and_writes_them(study):
    study.enqueue_trial({"x": 0.5})
    assert compat.fixed_params(study.get_trials()[0]) == {"x": 0.5}
    template = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, system_attrs=compat.fixing({"x": 0.25}))
    trial_id = study.new_trial(template)
    assert compat.running_trial(study, trial_id).suggest_float("x", 0.0, 1.0) == 0.25


def test_a_running_trial_built_directly_sees_the_study_as_it_is(study):
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    trial = compat.running_trial(study, study.new_trial())
    assert trial.number == 2 and len(trial.study.get_trials(deepcopy=False)) == 3


def test_the_database_under_optunas_cache_and_its_heartbeat_tables(study):
    storage = compat.database(study)
    assert isinstance(storage, optuna.storages.RDBStorage)
    assert isinstance(compat.storage_object(storage.url), optuna.storages.BaseStorage)
    trial_id = study.ask()._trial_id  # noqa: SLF001  (only to read back what the query finds)
    study_id = storage.get_study_id_from_name(study.study_name)

    def never_beaten() -> list[int]:
        with storage.engine.connect() as connection:
            return [row[0] for row in connection.execute(sqlalchemy.text(compat.NEVER_BEATEN), {"study": study_id})]

    assert never_beaten() == [trial_id]
    storage.record_heartbeat(trial_id)
    assert never_beaten() == []


def test_the_trainers_batch_size_follows_what_compat_sets(make_trainer):
    trainer = make_trainer(per_device_train_batch_size=4)
    compat.set_train_batch_size(trainer, 2)
    assert trainer.get_train_dataloader().total_batch_size == 2


def test_a_trainers_own_callbacks_are_told_from_the_users(make_trainer):
    class Users(TrainerCallback):
        pass

    trainer = make_trainer(report_to="none")
    trainer.add_callback(Users())
    own = compat.trainers_own_callbacks("none")
    assert [type(c) for c in trainer.callback_handler.callbacks if not isinstance(c, own)] == [Users]
    assert transformers.trainer.DefaultFlowCallback in own


def test_the_prediction_bar_an_evaluation_leaves_open_is_closed():
    callback, args = ProgressCallback(), transformers.TrainingArguments("out", report_to="none")
    callback.on_prediction_step(args, TrainerState(), TrainerControl(), eval_dataloader=[1, 2])
    assert callback.prediction_bar is not None
    compat.close_prediction_bar(callback)
    assert callback.prediction_bar is None


def test_accelerates_state_is_forgotten():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    Accelerator(cpu=True)
    assert AcceleratorState._shared_state
    compat.reset_accelerator_state()
    assert not AcceleratorState._shared_state


def test_ray_trials_still_have_what_the_recorder_reads():
    from ray.tune.experiment import Trial

    for name in ("error_file", "get_error", "last_result", "checkpoint"):
        assert hasattr(Trial, name), name


def test_wandb_still_takes_its_experimental_stats_switch():
    import pydantic

    assert compat.quiet_wandb_settings().x_disable_stats is True
    with pytest.raises(pydantic.ValidationError):  # a setting it no longer has would be refused, not ignored
        __import__("wandb").Settings(x_no_such_setting=True)


class StopAt(TrainerCallback):
    """Stops training at `step`; counts the saves the user's callbacks see, and the steps training begins at."""

    def __init__(self, step: int):
        self.step, self.saves, self.began = step, 0, []

    def on_train_begin(self, args, state, control, **kwargs):
        self.began.append(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = control.should_training_stop or state.global_step == self.step

    def on_save(self, args, state, control, **kwargs):
        self.saves += 1


def test_a_trainer_paused_where_training_ends_saves_what_resumes_it_outside_its_checkpoints(make_trainer, tmp_path):
    """The pause saves after the step's own checkpoint, with no `on_save`, no best model loaded, no rotation; training
    resumed from that save goes on from its step, with the Trainer's state (its best checkpoint) as it was."""
    import json

    trainer = make_trainer(
        max_steps=6, save_strategy="steps", save_steps=2, eval_strategy="steps", eval_steps=2, save_total_limit=1,
        load_best_model_at_end=True, metric_for_best_model="accuracy",
    )  # fmt: skip
    stop = StopAt(4)
    trainer.add_callback(stop)
    pause = tmp_path / "pause"
    with compat.pausing_where_training_ends(trainer, lambda: True, lambda: compat.save_resumable(trainer, str(pause))):
        trainer.train()
    assert stop.saves == 2 and trainer.args.load_best_model_at_end  # the user's own checkpoints at steps 2 and 4
    assert {"model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"} <= {p.name for p in pause.iterdir()}
    state = json.loads((pause / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and state["best_model_checkpoint"].endswith("checkpoint-2")
    assert not state["stateful_callbacks"]["TrainerControl"]["args"]["should_training_stop"]
    assert (tmp_path / "out" / "checkpoint-2").is_dir()  # the best checkpoint: not deleted under save_total_limit=1
    assert "_finalize_training" not in vars(trainer)

    stop.step = None
    trainer.train(resume_from_checkpoint=str(pause))
    assert stop.began == [0, 4] and trainer.state.global_step == 6


def test_libsigopt_calls_no_numpy_1_name_but_those_the_shim_gives():
    """The shim covers every name missing from this numpy that libsigopt and sigoptlite call, and only theirs: a
    release that drops them, or calls another, fails here."""
    import importlib.util
    import re
    from pathlib import Path

    import numpy

    missing = set()
    for package in ("libsigopt", "sigoptlite"):
        root = Path(importlib.util.find_spec(package).submodule_search_locations[0])
        for path in root.rglob("*.py"):
            code = "\n".join(line.split("#")[0] for line in path.read_text().splitlines())
            module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
            missing |= {(module, n) for n in re.findall(r"\bnumpy\.(\w+)", code) if not hasattr(numpy, n)}
    assert missing == {(module, name) for module in compat.NUMPY_1_CALLERS for name in compat.NUMPY_1_NAMES}


def test_libsigopt_sees_numpy_1_names_and_numpy_stays_as_it_is():
    import numpy
    from libsigopt.compute import probabilistic_failures
    from sigoptlite import validators

    compat.numpy_1_for_libsigopt()
    compat.numpy_1_for_libsigopt()  # once is enough; twice changes nothing
    seen = probabilistic_failures.numpy
    assert seen.product([[2.0, 3.0], [4.0, 5.0]], axis=0).tolist() == [8.0, 15.0]
    assert seen.zeros is numpy.zeros and seen.ndarray is numpy.ndarray
    assert validators.numpy is seen and not hasattr(numpy, "product")
