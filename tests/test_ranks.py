"""DDP's executor between two real gloo ranks: rank 0's `LeadRank` decides, rank 1's `follow` obeys."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpsearch.errors import ConfigError
from hpsearch.executors.ranks import LeadRank, Ranks, follow, leading
from hpsearch.trial import Decision, Trial, TrialSink

JOIN_TIMEOUT_S = 60  # a rank that hangs (a collective the other rank never makes) fails the test
COLLECTIVE_TIMEOUT_S = 20  # gloo's own limit, so that a stuck rank errors out before the join gives up


class Suggesting:
    """Rank 0's backend trial: `suggest` picks a value and adds the parameter (define-by-run), as optuna's does."""

    def __init__(self, number: int, params: dict[str, Any]) -> None:
        self.number = number
        self.params = dict(params)

    def suggest(self, name: str, choices: list[Any]) -> Any:
        self.params[name] = choices[self.number % len(choices)]  # a pick only rank 0 makes
        return self.params[name]


class Fixed:
    """What the other ranks' `model_init` gets: the parameters rank 0 chose, and no others (optuna's FixedTrial)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = dict(params)

    def suggest(self, name: str, choices: list[Any]) -> Any:
        if name not in self.params:
            raise ValueError(f"{name!r} was not suggested on rank 0")
        return self.params[name]


def build_adding_layers(native: Any) -> dict[str, Any]:
    """A `model_init(trial)` that suggests `layers` on the trial: rank 0 picks it, the others get rank 0's pick."""
    layers = native.suggest("layers", [2, 4, 8])
    return {"built_by": type(native).__name__, "layers": layers}


def build_failing(native: Any) -> None:
    raise ValueError("no GPU memory for the model")


def reporting_objective(build: Callable[[Any], Any], log: list[dict[str, Any]]) -> Callable[[Trial], None]:
    """The trainer's part of a trial, the same on every rank: build the model, then report until told to stop."""

    def objective(trial: Trial) -> None:
        entry: dict[str, Any] = {"number": trial.number, "params_before_define": dict(trial.params)}
        log.append(entry)
        try:
            entry["model"] = trial.define(build)
        except Exception as e:
            entry["define_error"] = f"{type(e).__name__}: {e}"
            raise
        entry["params"] = dict(trial.params)
        entry["decisions"] = []
        for step in range(10):
            entry["decisions"].append(trial.report(step, 1.0 / (step + 1)))
            if trial.should_stop:
                break

    return objective


class Rank0Loop(TrialSink):
    """What the loop gives rank 0's trial: the backend's decision at each report, its trial's parameters (grown by
    define-by-run), the trial the other ranks' `model_init` gets."""

    def __init__(self, native: Suggesting, decisions: list[bool]) -> None:
        self.native, self.answers = native, iter(decisions)

    def report(self, trial: Trial, step: int, value: float) -> Decision:
        return Decision.PRUNE if next(self.answers) else Decision.CONTINUE

    def suggested(self) -> dict[str, Any]:
        return dict(self.native.params)

    def portable_native(self) -> Fixed:
        return Fixed(self.native.params)


def lead_trial(
    ranks: Ranks,
    number: int,
    params: dict[str, Any],
    decisions: list[bool],  # whether each report stops the trial
    objective: Callable[[Trial], Any],
) -> None:
    """What rank 0's executor does with each trial the loop runs: the objective run on every rank."""
    native = Suggesting(number, params)
    trial = Trial(number, params, native, Rank0Loop(native, decisions))
    LeadRank(ranks).on_every_rank(objective)(trial)


def follow_and_record(ranks: Ranks, log: list[dict[str, Any]], build: Callable[[Any], Any]) -> None:
    """Rank 1: `follow` until rank 0 ends the search; how it ended is the log's last entry."""
    try:
        follow(ranks, reporting_objective(build, log))
    except Exception as e:
        log.append({"follow": "raised", "error": f"{type(e).__name__}: {e}"})
    else:
        log.append({"follow": "returned"})


# Each scenario: (rank 0's script, rank 1's script), each called as script(ranks, log).


def lead_two_trials(ranks: Ranks, log: list[dict[str, Any]]) -> None:
    with leading(ranks):
        ranks.share({"evals_per_trial": 3})  # the Trainer's run settings
        objective = reporting_objective(build_adding_layers, log)
        lead_trial(ranks, 4, {"learning_rate": 0.01}, [False, False, True], objective)
        lead_trial(ranks, 5, {"learning_rate": 0.2}, [False, True], objective)
    log.append({"finished": True})


def follow_two_trials(ranks: Ranks, log: list[dict[str, Any]]) -> None:
    log.append({"settings": ranks.received()})
    follow_and_record(ranks, log, build_adding_layers)


def lead_then_abort(ranks: Ranks, log: list[dict[str, Any]]) -> None:
    with pytest.raises(OSError), leading(ranks):
        lead_trial(ranks, 0, {"learning_rate": 0.1}, [True], reporting_objective(build_adding_layers, log))
        raise OSError("the study store's disk is full")


def follow_until_abort(ranks: Ranks, log: list[dict[str, Any]]) -> None:
    follow_and_record(ranks, log, build_adding_layers)


def lead_failing_model_init(ranks: Ranks, log: list[dict[str, Any]]) -> None:
    with leading(ranks):
        try:
            lead_trial(ranks, 0, {"learning_rate": 0.1}, [], reporting_objective(build_failing, log))
        except ValueError as e:  # the engine records the trial as failed and asks for the next one
            log.append({"rank 0 trial failed": str(e)})
        lead_trial(ranks, 1, {"learning_rate": 0.3}, [False, True], reporting_objective(build_adding_layers, log))


def follow_past_failed_model_init(ranks: Ranks, log: list[dict[str, Any]]) -> None:
    follow_and_record(ranks, log, build_adding_layers)


def run_rank(rank: int, rendezvous: str, out: str, script: Callable[[Ranks, list], None]) -> None:
    """A spawned rank: join the gloo group, run `script`, and write what it observed to `out` (JSON)."""
    import torch.distributed as dist

    if sys.platform == "linux":  # gloo on loopback, not on whatever the host name resolves to
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    log: list[dict[str, Any]] = []
    error = None
    try:
        dist.init_process_group(
            "gloo",
            init_method=f"file://{rendezvous}",
            world_size=2,
            rank=rank,
            timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S),
        )
        ranks = Ranks()
        log.append({"rank": ranks.rank, "leads": ranks.leads})
        script(ranks, log)
    except BaseException:
        error = traceback.format_exc()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    Path(out).write_text(json.dumps({"log": log, "error": error}, default=repr))


def rank_processes() -> multiprocessing.context.BaseContext:
    """Where the ranks start: a fork server that imported torch once for every test (a fresh interpreter
    per rank spends seconds importing it), else spawn. Never a plain fork of the test session's threads."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch.distributed", __name__])  # heeded when the fork server starts
    return context


def run_ranks(tmp_path: Path, lead: Callable, other: Callable) -> tuple[list[dict], list[dict]]:
    """Run `lead` on rank 0 and `other` on rank 1, in two processes; each rank's log."""
    context = rank_processes()
    rendezvous = tmp_path / "rendezvous"  # tmp_path is fresh for each test, so is the rendezvous file
    outs = [tmp_path / f"rank{rank}.json" for rank in (0, 1)]
    processes = [
        context.Process(target=run_rank, args=(rank, str(rendezvous), str(outs[rank]), script), daemon=True)
        for rank, script in enumerate((lead, other))
    ]
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        hung = [rank for rank, process in enumerate(processes) if process.is_alive()]
        assert not hung, f"rank(s) {hung} still running after {JOIN_TIMEOUT_S}s"
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(5)
    results = []
    for rank, (process, out) in enumerate(zip(processes, outs)):
        assert process.exitcode == 0, f"rank {rank} exited with {process.exitcode}"
        result = json.loads(out.read_text())
        assert result["error"] is None, f"rank {rank} failed:\n{result['error']}"
        assert result["log"][0] == {"rank": rank, "leads": rank == 0}
        results.append(result["log"][1:])
    return results[0], results[1]


def test_ranks_need_torch_distributed_initialised():
    with pytest.raises(ConfigError, match="needs torch.distributed initialised"):
        Ranks()


@pytest.fixture(scope="module")
def two_trials(tmp_path_factory) -> tuple[list[dict], list[dict]]:
    """Both ranks' logs of one search: settings, trial 4 (stopped at its 3rd report), trial 5 (its 2nd), finish."""
    return run_ranks(tmp_path_factory.mktemp("two_trials"), lead_two_trials, follow_two_trials)


def test_rank_1_runs_each_trial_rank_0_announces_with_its_number_and_define_by_run_params(two_trials):
    rank0, rank1 = two_trials
    assert rank1[0] == {"settings": {"evals_per_trial": 3}}
    trials0, trials1 = rank0[:2], rank1[1:3]
    assert [t["number"] for t in trials1] == [t["number"] for t in trials0] == [4, 5]
    # announced before the build: rank 1 starts with the parameters rank 0 proposed
    assert [t["params_before_define"] for t in trials1] == [{"learning_rate": 0.01}, {"learning_rate": 0.2}]
    # rank 0's build picked `layers` after the announce; rank 1's build gets rank 0's pick
    assert [t["model"] for t in trials0] == [
        {"built_by": "Suggesting", "layers": 4},
        {"built_by": "Suggesting", "layers": 8},
    ]
    assert [t["model"] for t in trials1] == [{"built_by": "Fixed", "layers": 4}, {"built_by": "Fixed", "layers": 8}]
    assert [t["params"] for t in trials1] == [t["params"] for t in trials0]
    assert trials1[0]["params"] == {"learning_rate": 0.01, "layers": 4}


def test_rank_1s_report_returns_rank_0s_stop_decision_at_each_step(two_trials):
    rank0, rank1 = two_trials
    assert [t["decisions"] for t in rank0[:2]] == [[False, False, True], [False, True]]
    assert [t["decisions"] for t in rank1[1:3]] == [[False, False, True], [False, True]]


def test_rank_0s_finish_ends_rank_1s_follow_normally(two_trials):
    rank0, rank1 = two_trials
    assert rank0[-1] == {"finished": True}
    assert rank1[-1] == {"follow": "returned"}
    assert len(rank1) == 4  # settings, two trials, the end: nothing ran after rank 0's finish


def test_rank_0s_finish_with_an_error_makes_rank_1s_follow_raise_naming_it(tmp_path):
    rank0, rank1 = run_ranks(tmp_path, lead_then_abort, follow_until_abort)
    assert rank1[0]["decisions"] == rank0[0]["decisions"] == [True]
    assert rank1[-1] == {
        "follow": "raised",
        "error": "RankFailed: The search stopped on rank 0: OSError: the study store's disk is full",
    }


def test_a_model_init_failing_on_rank_0_fails_rank_1s_define_and_rank_1_follows_to_the_next_trial(tmp_path):
    rank0, rank1 = run_ranks(tmp_path, lead_failing_model_init, follow_past_failed_model_init)
    assert rank0[0]["define_error"] == "ValueError: no GPU memory for the model"
    assert rank0[1] == {"rank 0 trial failed": "no GPU memory for the model"}
    failed, next_trial, end = rank1
    assert failed["number"] == 0 and "model" not in failed
    assert failed["define_error"] == (
        "RankFailed: The trial's model_init failed on rank 0: ValueError: no GPU memory for the model"
    )
    assert next_trial["number"] == 1
    assert next_trial["params"] == rank0[2]["params"] == {"learning_rate": 0.3, "layers": 4}
    assert next_trial["decisions"] == rank0[2]["decisions"] == [False, True]
    assert end == {"follow": "returned"}
