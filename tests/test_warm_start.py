"""Warm start (`warm_start=`): an earlier study's best trials run first in a new study, projected onto its space."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

import hpsearch
from hpsearch import ConfigError, TrialState
from hpsearch.space import Categorical, Float, Int
from hpsearch.study import store
from hpsearch.study.schema import WARM_START

SPACE = {"x": Float(-3.0, 3.0), "n": Int(0, 3), "kind": Categorical(["a", "b"])}


def objective(trial):
    params = trial.params
    return (params.get("x", 1.0) - 1) ** 2 + params.get("n", 0) + (params.get("kind") == "b") + params.get("q", 0.0)


def search(out, space, n_trials, **kwargs):
    return hpsearch.search(objective, space, n_trials=n_trials, output_dir=str(out), show_progress=False, **kwargs)


def ranked(out, study_name=None):
    """The earlier search's completed trials, best first (ties: the lower number)."""
    complete = [t for t in hpsearch.load_trials(out, study_name=study_name) if t.state is TrialState.COMPLETE]
    return sorted(complete, key=lambda t: (t.objective, t.number))


def earlier_study(out, trials, directions=("minimize",), study_name="hpsearch"):
    """A study in `out`/hpsearch.db holding `trials`: (params, their dimensions, value(s)) each."""
    out.mkdir(exist_ok=True)
    study = optuna.create_study(storage=store.storage_url(out), study_name=study_name, directions=list(directions))
    for params, space, values in trials:
        fixed = optuna.trial.FixedTrial(params)
        for name in params:
            store.suggest(fixed, name, space[name])
        values = values if isinstance(values, list) else [values]
        study.add_trial(optuna.trial.create_trial(params=params, distributions=fixed.distributions, values=values))
    return study


def warm_started(out):
    """The new study's queued trials: number -> the earlier trial it came from, as its attribute says."""
    study = store.load_study(out)
    return {t.number: t.user_attrs[WARM_START] for t in study.trials if WARM_START in t.user_attrs}


def test_the_earlier_best_trials_run_first_in_best_order_and_the_rest_is_sampled(tmp_path, caplog):
    search(tmp_path / "a", SPACE, n_trials=8, seed=0)
    best = ranked(tmp_path / "a")[:3]
    new_space = {"x": Float(-3.0, 3.0), "n": Int(0, 3), "lr": Float(0.0, 1.0)}  # `kind` gone, `lr` new
    with caplog.at_level("INFO", logger="hpsearch"):
        search(tmp_path / "b", new_space, n_trials=6, seed=1, warm_start=str(tmp_path / "a"))
    trials = hpsearch.load_trials(tmp_path / "b")
    assert [{k: t.params[k] for k in ("x", "n")} for t in trials[:3]] == [
        {k: t.params[k] for k in ("x", "n")} for t in best
    ]
    assert all(sorted(t.params) == ["lr", "n", "x"] and 0.0 <= t.params["lr"] <= 1.0 for t in trials)
    assert len({t.params["lr"] for t in trials[:3]}) == 3  # sampled, not copied
    assert not {t.params["x"] for t in trials[3:]} & {t.params["x"] for t in best}  # the others sampled
    assert all(t.state is TrialState.COMPLETE for t in trials) and len(trials) == 6
    source = f"study 'hpsearch' in {(tmp_path / 'a').resolve()}"
    assert warm_started(tmp_path / "b") == {i: f"trial {t.number} of {source}" for i, t in enumerate(best)}
    attribute = store.load_study(tmp_path / "b").user_attrs[WARM_START]
    assert attribute == {"source": source, "trials": [{"trial": i, "from": t.number} for i, t in enumerate(best)]}
    assert any(f"its trials {[t.number for t in best]} run first, as trials [0, 1, 2]" in m for m in caplog.messages)


def test_spaces_with_no_parameter_in_common_queue_nothing_with_a_warning(tmp_path, caplog):
    search(tmp_path / "a", SPACE, n_trials=3, seed=0)
    with caplog.at_level("WARNING", logger="hpsearch"):
        search(tmp_path / "b", {"q": Float(0.0, 1.0)}, n_trials=2, seed=0, warm_start=str(tmp_path / "a"))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "queued nothing" in warnings[0]
    assert "['kind', 'n', 'x']" in warnings[0] and "['q']" in warnings[0]
    assert warm_started(tmp_path / "b") == {} and len(hpsearch.load_trials(tmp_path / "b")) == 2
    assert store.load_study(tmp_path / "b").user_attrs[WARM_START]["trials"] == []


def test_values_outside_the_new_space_are_dropped_and_sampled_inside_it(tmp_path):
    space = {"x": Float(0.0, 10.0), "kind": Categorical(["a", "b", "c"])}
    earlier_study(
        tmp_path / "a",
        [
            ({"x": 9.0, "kind": "a"}, space, 1.0),  # the best: x outside the narrower range
            ({"x": 4.0, "kind": "c"}, space, 2.0),  # "c" no longer a choice
            ({"x": 2.0, "kind": "b"}, space, 3.0),  # inside
            ({"x": 1.0, "kind": "a"}, space, 4.0),  # not among the best 3
        ],
    )
    new_space = {"x": Float(0.0, 5.0, log=False), "kind": Categorical(["a", "b"])}
    search(tmp_path / "b", new_space, n_trials=4, seed=0, warm_start=str(tmp_path / "a"))
    trials = hpsearch.load_trials(tmp_path / "b")
    assert trials[0].params["kind"] == "a" and 0.0 <= trials[0].params["x"] <= 5.0 and trials[0].params["x"] != 9.0
    assert trials[1].params["x"] == 4.0 and trials[1].params["kind"] in ("a", "b")
    assert trials[2].params == {"x": 2.0, "kind": "b"}
    assert trials[3].params["x"] != 1.0 and sorted(warm_started(tmp_path / "b")) == [0, 1, 2]


def test_points_identical_once_projected_run_once(tmp_path):
    space = {"x": Float(0.0, 10.0), "kind": Categorical(["a", "b"])}
    earlier_study(
        tmp_path / "a",
        [
            ({"x": 1.0, "kind": "a"}, space, 1.0),
            ({"x": 1.0, "kind": "b"}, space, 2.0),
            ({"x": 2.0, "kind": "a"}, space, 3.0),
        ],
    )
    search(tmp_path / "b", {"x": Float(0.0, 10.0)}, n_trials=3, seed=0, warm_start=str(tmp_path / "a"))
    trials = hpsearch.load_trials(tmp_path / "b")
    assert [t.params["x"] for t in trials[:2]] == [1.0, 2.0] and trials[2].params["x"] not in (1.0, 2.0)
    assert sorted(warm_started(tmp_path / "b")) == [0, 1]


def test_a_rerun_of_the_same_call_queues_nothing_again(tmp_path, caplog):
    search(tmp_path / "a", SPACE, n_trials=5, seed=0)
    search(tmp_path / "b", SPACE, n_trials=4, seed=0, warm_start=str(tmp_path / "a"))
    attribute = store.load_study(tmp_path / "b").user_attrs[WARM_START]
    caplog.clear()  # what the first call said
    with caplog.at_level("INFO", logger="hpsearch"):
        search(tmp_path / "b", SPACE, n_trials=7, seed=0, warm_start=str(tmp_path / "a"))
    trials = hpsearch.load_trials(tmp_path / "b")
    assert len(trials) == 7 and all(t.state is TrialState.COMPLETE for t in trials)
    assert sorted(warm_started(tmp_path / "b")) == [0, 1, 2]
    assert store.load_study(tmp_path / "b").user_attrs[WARM_START] == attribute
    assert not [m for m in caplog.messages if "Warm start" in m]
    best = {tuple(sorted(t.params.items())) for t in ranked(tmp_path / "a")[:3]}
    assert not {tuple(sorted(t.params.items())) for t in trials[4:]} & best


def test_a_multi_objective_study_gives_its_pareto_fronts_first_trials(tmp_path):
    def two(trial):
        return [trial.params["x"] ** 2, (trial.params["x"] - 2) ** 2]

    space = {"x": Float(-3.0, 3.0)}
    hpsearch.search(
        two,
        space,
        n_trials=8,
        direction=["minimize", "minimize"],
        output_dir=str(tmp_path / "a"),
        seed=0,
        show_progress=False,
    )
    earlier = hpsearch.load_trials(tmp_path / "a")

    def dominated(t):
        return any(all(o <= v for o, v in zip(u.values, t.values)) and u.values != t.values for u in earlier)

    front = [t for t in earlier if not dominated(t)][:3]
    assert len(front) >= 2  # else this test shows nothing
    search(tmp_path / "b", space, n_trials=len(front) + 1, seed=0, warm_start=str(tmp_path / "a"))
    trials = hpsearch.load_trials(tmp_path / "b")
    assert [t.params["x"] for t in trials[: len(front)]] == [t.params["x"] for t in front]


def test_a_study_object_and_a_storage_url_are_sources_too_and_the_default_study_is_chosen(tmp_path):
    search(tmp_path / "a", SPACE, n_trials=4, seed=0)  # study 'hpsearch', beside another one
    search(tmp_path / "a", SPACE, n_trials=4, seed=5, study_name="other")
    best = ranked(tmp_path / "a", "hpsearch")[0].params
    url = store.storage_url(tmp_path / "a")
    search(tmp_path / "b", SPACE, n_trials=1, warm_start=url)
    other = optuna.load_study(study_name="other", storage=url)
    search(tmp_path / "c", SPACE, n_trials=1, warm_start=other)
    assert hpsearch.load_trials(tmp_path / "b")[0].params == best
    assert hpsearch.load_trials(tmp_path / "c")[0].params == other.best_trial.params != best


@pytest.mark.parametrize("whole_only", ["sigopt", "wandb"])
def test_backends_that_run_whole_points_only_skip_the_partial_ones_and_say_so(
    whole_only, tmp_path, caplog, monkeypatch
):
    monkeypatch.delenv("SIGOPT_API_TOKEN", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    space = {"x": Float(0.0, 3.0), "n": Int(0, 3)}
    earlier_study(
        tmp_path / "a",
        [({"x": 0.5, "n": 1}, space, 1.0), ({"x": 2.5, "n": 2}, space, 2.0), ({"x": 1.5, "n": 3}, space, 3.0)],
    )
    new_space = {"x": Float(0.0, 2.0), "n": Int(0, 3)}  # trial 1's x is outside: a partial point
    with caplog.at_level("INFO", logger="hpsearch"):
        search(tmp_path / "b", new_space, n_trials=3, backend=whole_only, seed=0, warm_start=str(tmp_path / "a"))
    trials = hpsearch.load_trials(tmp_path / "b")
    assert [t.params for t in trials[:2]] == [{"x": 0.5, "n": 1}, {"x": 1.5, "n": 3}]
    assert all(t.state is TrialState.COMPLETE for t in trials) and sorted(warm_started(tmp_path / "b")) == [0, 1]
    skipped = [m for m in caplog.messages if "skipped trial 1:" in m]
    assert len(skipped) == 1 and "['x']" in skipped[0] and f"{whole_only!r} runs whole points only" in skipped[0]


def _errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    optuna.create_study(storage=store.storage_url(empty), study_name="hpsearch")  # no trial
    several = tmp_path / "several"
    for name in ("first", "second"):
        earlier_study(several, [({"x": 1.0}, SPACE, 1.0)], study_name=name)
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    store.open_storage(store.storage_url(nothing))  # a store with no study
    return [
        (str(tmp_path / "missing"), {}, "holds no hpsearch.db"),
        (f"sqlite:///{tmp_path / 'missing.db'}", {}, "does not exist"),
        (str(nothing), {}, "holds 0 studies"),
        (str(empty), {}, "has no completed trial"),
        (str(several), {}, r"2 studies \['first', 'second'\].*optuna.load_study\(study_name=\.\.\., storage="),
        (42, {}, "must be an earlier search's output_dir"),
        (str(several), {"backend": "wandb", "server": True}, "search locally"),
    ]


def test_a_source_that_cannot_warm_start_fails_before_any_trial_creating_nothing(tmp_path):
    for warm_start, options, message in _errors(tmp_path):
        with pytest.raises(ConfigError, match=message):
            search(tmp_path / "new", SPACE, n_trials=1, warm_start=warm_start, **options)
        assert not (tmp_path / "new" / store.STORE_FILE).exists(), message
    assert not (tmp_path / "missing.db").exists()


def test_ray_refuses_a_warm_start_with_the_fix(tmp_path):
    search(tmp_path / "a", SPACE, n_trials=1, seed=0)
    with pytest.raises(ConfigError, match=r"'ray' backend runs its trials its own way.*points_to_evaluate"):
        search(tmp_path / "b", SPACE, n_trials=1, backend="ray", warm_start=str(tmp_path / "a"))
    assert not (tmp_path / "b" / store.STORE_FILE).exists()


def test_warm_starting_the_very_study_being_searched_fails(tmp_path):
    search(tmp_path / "a", SPACE, n_trials=2, seed=0)
    with pytest.raises(ConfigError, match="very study this search continues.*rerunning the same call already resumes"):
        search(tmp_path / "a", SPACE, n_trials=4, seed=0, warm_start=str(tmp_path / "a"))
    assert len(hpsearch.load_trials(tmp_path / "a")) == 2


def test_a_trainer_search_runs_the_earlier_best_learning_rate_first(make_trainer, tmp_path):
    from transformers import TrainerCallback

    class LearningRates(TrainerCallback):
        def __init__(self):
            self.seen = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.seen.append(args.learning_rate)

    def hp_space(trial):
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)}

    first = make_trainer(output_dir=str(tmp_path / "first"), max_steps=3)
    best = first.hyperparameter_search(hp_space=hp_space, n_trials=2, seed=0, evals_per_trial=0)
    second = make_trainer(output_dir=str(tmp_path / "second"), max_steps=3)
    rates = LearningRates()
    second.add_callback(rates)
    second.hyperparameter_search(
        hp_space=hp_space, n_trials=2, seed=1, evals_per_trial=0, warm_start=str(tmp_path / "first")
    )
    trials = hpsearch.load_trials(tmp_path / "second")
    assert trials[0].params["learning_rate"] == best.hyperparameters["learning_rate"] == rates.seen[0]
    assert rates.seen[1] != rates.seen[0] and trials[1].params["learning_rate"] == rates.seen[1]


def test_what_was_queued_and_skipped_is_said_where_a_user_without_logging_set_up_sees_it(tmp_path):
    space = {"x": Float(0.0, 3.0)}
    earlier_study(tmp_path / "a", [({"x": 0.5}, space, 1.0), ({"x": 2.5}, space, 2.0), ({"x": 1.5}, space, 3.0)])
    script = (
        "import hpsearch\nfrom hpsearch.space import Float\n"
        f"hpsearch.search(lambda t: t.params['x'], {{'x': Float(0.0, 3.0)}}, n_trials=2, show_progress=False, "
        f"output_dir={str(tmp_path / 'b')!r}, warm_start={str(tmp_path / 'a')!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    source = f"Warm start from study 'hpsearch' in {(tmp_path / 'a').resolve()}"
    assert f"{source}: skipped trial 2: n_trials=2 leaves it no slot." in done.stderr
    assert f"{source}: its trials [0, 1] run first, as trials [0, 1]." in done.stderr


def test_the_users_own_values_inside_the_space_are_the_first_trial_and_the_others_sampled(tmp_path, caplog):
    values = {"x": 0.5, "n": 7, "kind": "b", "not_searched": 1}
    with caplog.at_level("INFO", logger="hpsearch"):
        search(tmp_path, SPACE, n_trials=3, seed=0, user_values=values)
    first, *others = hpsearch.load_trials(tmp_path)
    assert first.params["x"] == 0.5 and first.params["kind"] == "b" and first.params["n"] in range(4)  # 7: sampled
    assert warm_started(tmp_path) == {0: "the user's values"}
    assert all(t.params["x"] != 0.5 for t in others)
    assert "Trial 0 runs your own values first: {'x': 0.5, 'kind': 'b'}; n=7 lie outside the space, sampled." in (
        caplog.messages
    )


def test_the_users_values_run_first_in_a_new_study_only_and_a_warm_start_comes_instead(tmp_path):
    search(tmp_path / "a", SPACE, n_trials=1, seed=0, user_values={"x": 0.5})
    search(tmp_path / "a", SPACE, n_trials=3, seed=0, user_values={"x": 0.5})  # a rerun queues nothing again
    assert [t.params["x"] == 0.5 for t in hpsearch.load_trials(tmp_path / "a")] == [True, False, False]
    search(tmp_path / "b", SPACE, n_trials=1, seed=0, user_values={"x": -2.0}, warm_start=str(tmp_path / "a"))
    assert list(warm_started(tmp_path / "b").values()) == [f"trial 0 of study 'hpsearch' in {tmp_path / 'a'}"]
    search(tmp_path / "c", SPACE, n_trials=1, seed=0, user_values={"x": 9.0, "n": -1})  # none inside: sampled
    assert warm_started(tmp_path / "c") == {}


@pytest.mark.parametrize("whole_only", ["sigopt", "wandb"])
def test_a_backend_that_runs_whole_points_only_takes_the_users_values_where_each_parameter_has_one(
    whole_only, tmp_path, monkeypatch
):
    monkeypatch.delenv("SIGOPT_API_TOKEN", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    space = {"x": Float(0.0, 2.0), "n": Int(0, 3)}
    search(tmp_path / "partial", space, n_trials=1, backend=whole_only, seed=0, user_values={"x": 0.5, "n": 9})
    search(tmp_path / "whole", space, n_trials=1, backend=whole_only, seed=0, user_values={"x": 0.5, "n": 2})
    assert warm_started(tmp_path / "partial") == {}  # `n` has no value inside
    assert hpsearch.load_trials(tmp_path / "whole")[0].params == {"x": 0.5, "n": 2}


def test_a_trainer_search_runs_its_training_arguments_first_when_asked_unless_given_a_sampler(make_trainer, tmp_path):
    def hp_space(trial):
        return {
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
            "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [4, 16]),
        }

    def first_trial(name, **options):
        trainer = make_trainer(output_dir=str(tmp_path / name), max_steps=2, learning_rate=1e-2)  # batch size 8
        trainer.hyperparameter_search(hp_space=hp_space, n_trials=1, evals_per_trial=0, **options)
        return hpsearch.load_trials(tmp_path / name)[0].params

    ours = first_trial("asked", seed=0, user_values_first=True)
    assert ours["learning_rate"] == 1e-2 and ours["per_device_train_batch_size"] in (4, 16)
    assert first_trial("default", seed=0)["learning_rate"] != 1e-2  # off by default
    own_sampler = optuna.samplers.RandomSampler(0)
    assert first_trial("sampler", sampler=own_sampler, user_values_first=True)["learning_rate"] != 1e-2
