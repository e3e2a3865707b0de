"""A trial's life as the engine runs it, on a backend of the test's own: every end state, recorded
once in the study and told once to the backend; and a search that stops when its trials keep failing."""

from __future__ import annotations

import pytest

import hpsearch
from hpsearch import TrialPruned, TrialState
from hpsearch.backends.base import AskTellBackend, Proposal
from hpsearch.space import Float


class ListBackend(AskTellBackend):
    """Proposes the points it is given, in order; says "stop" at any value above 5; notes what it is told."""

    name = "list"

    def __init__(self, hp_space, settings, points=()):
        super().__init__(hp_space, settings)
        self.points = list(points)
        self.begun, self.told = [], []

    def param_space(self):
        return {"x": Float(0.0, 10.0)}

    def ask(self):
        return Proposal({"x": self.points.pop(0)}) if self.points else None

    def begin(self, proposal, trial):
        self.begun.append(trial.number)

    def report(self, proposal, step, value):
        return value > 5

    def tell(self, proposal, state, values):
        self.told.append((proposal.number, state, values))


def by_point(trial):
    """x = 1: completes; 2: raises TrialPruned; 3: fails; 4: Ctrl-C; 6: reported, and stopped by the backend."""
    x = trial.params["x"]
    if trial.report(1, x):
        return None
    if x == 2.0:
        raise TrialPruned()
    if x == 3.0:
        raise KeyError("three")
    if x == 4.0:
        raise KeyboardInterrupt
    return x


def run(points, n_trials, **kwargs):
    search = hpsearch.Search(None, n_trials=n_trials, backend=ListBackend, points=points, show_progress=False, **kwargs)
    return search, search.backend


def test_every_end_state_is_recorded_once_and_told_to_the_backend_once():
    search, backend = run([1.0, 2.0, 3.0, 6.0], n_trials=4)
    records = search.run(by_point)
    states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED, TrialState.PRUNED]
    assert [r.state for r in records] == states
    assert [(r.number, r.params) for r in records] == [(i, {"x": x}) for i, x in enumerate([1.0, 2.0, 3.0, 6.0])]
    assert records[0].values == [1.0] and "KeyError: 'three'" in records[2].error
    assert [r.intermediate for r in records] == [{1: x} for x in [1.0, 2.0, 3.0, 6.0]]  # the engine records them
    assert backend.begun == [0, 1, 2, 3]
    assert backend.told == [(0, states[0], [1.0]), (1, states[1], None), (2, states[2], None), (3, states[3], None)]
    table = search.study.trials_dataframe()  # optuna's own tools see what hpsearch keeps beside a trial
    assert "KeyError: 'three'" in table["user_attrs_hpsearch:error"][2]
    assert table["user_attrs_hpsearch:owner"].notna().all()


def test_ctrl_c_records_the_trial_interrupted_tells_the_backend_and_the_rerun_runs_its_slot_again(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    search, backend = run([1.0, 4.0], n_trials=2, storage=storage)
    with pytest.raises(hpsearch.SearchInterrupted, match="during trial 1"):
        search.run(by_point)
    assert backend.told == [(0, TrialState.COMPLETE, [1.0]), (1, TrialState.FAILED, None)]
    interrupted = hpsearch.load_trials(storage=storage)[1]
    assert interrupted.state is TrialState.FAILED and interrupted.interrupted and not interrupted.counts
    search, backend = run([5.0], n_trials=2, storage=storage)
    records = search.run(by_point)
    assert [(r.state, r.interrupted) for r in records][2:] == [(TrialState.COMPLETE, False)]
    assert backend.told == [(2, TrialState.COMPLETE, [5.0])]


def test_a_backend_with_nothing_left_ends_the_search_without_an_empty_trial():
    search, _ = run([1.0], n_trials=5)
    assert len(search.run(by_point)) == 1


def test_a_backend_that_cannot_begin_a_trial_stops_the_search_with_its_error_recorded():
    class Broken(ListBackend):
        def begin(self, proposal, trial):
            raise RuntimeError("sampler broke")

    search = hpsearch.Search(None, n_trials=2, backend=Broken, points=[1.0, 1.0], show_progress=False)
    with pytest.raises(RuntimeError, match="sampler broke"):
        search.run(by_point)
    (record,) = search.trials.records()
    assert record.state is TrialState.FAILED and "sampler broke" in record.error and not search.backend.told


def test_trials_failing_in_a_row_stop_the_search_with_the_first_error():
    search, backend = run([1.0, 3.0, 3.0, 3.0, 1.0], n_trials=5, max_consecutive_failed_trials=3)
    with pytest.raises(hpsearch.SearchFailed, match="The last 3 trials .* failed; every one had x=3.0;") as info:
        search.run(by_point)
    assert isinstance(info.value.__cause__, KeyError)
    assert [state for _, state, _ in backend.told] == [TrialState.COMPLETE] + [TrialState.FAILED] * 3


def test_failures_in_a_row_that_spend_the_budget_end_the_search_with_its_best_and_a_warning(caplog):
    """`n_trials=5`, the last 3 fail: every trial ran, so the search returns its best, warning with what the failed
    trials had in common."""
    search, _ = run([1.0, 1.0, 3.0, 3.0, 3.0], n_trials=5)
    records = search.run(by_point)
    assert [r.state for r in records] == [TrialState.COMPLETE] * 2 + [TrialState.FAILED] * 3
    assert search.best().objective == 1.0
    (warning,) = [r.message for r in caplog.records if "trials of this search failed" in r.message]
    assert warning.startswith("3 of 5 trials of this search failed; every one had x=3.0; the first error: KeyError")


def test_with_no_limit_failures_in_a_row_do_not_stop_the_search():
    search, _ = run([3.0, 3.0, 3.0, 3.0, 1.0], n_trials=5, max_consecutive_failed_trials=None)
    assert [r.state for r in search.run(by_point)][-1] is TrialState.COMPLETE


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_consecutive_failed_trials": 0}, "`max_consecutive_failed_trials` must be an int >= 1"),
        ({"gc_after_trial": False}, "`gc_after_trial` must be True: hpsearch always releases"),
    ],
)
def test_bad_lifecycle_arguments_fail_before_any_trial(kwargs, message):
    with pytest.raises(hpsearch.ConfigError, match=message):
        run([1.0], n_trials=1, **kwargs)


def test_a_paused_trial_another_process_resumed_and_ended_meanwhile_is_passed_over(tmp_path):
    """Two workers look at the same paused trial: the one that reads it first, then finds it ended by the
    other before its own claim, goes on without it (optuna raises on a finished trial's update)."""
    from hpsearch.settings import SearchSettings
    from hpsearch.study.lifecycle import Trials
    from hpsearch.trial import Decision

    settings = SearchSettings(directions=("minimize",), study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")
    first, second = Trials(settings), Trials(settings)
    live = first.create({"x": 1.0}, {"x": Float(0.0, 10.0)})
    first.report(live, 1, 1.0)
    assert first.pause(live)

    def judged_while_the_first_worker_ends_it(frozen):
        resumed, params = first.claim_paused(lambda _: Decision.CONTINUE)
        first.finish(resumed, TrialState.COMPLETE, [params["x"]])
        return Decision.CONTINUE

    assert second.claim_paused(judged_while_the_first_worker_ends_it) is None
    assert [t.state for t in hpsearch.load_trials(storage=settings.storage)] == [TrialState.COMPLETE]
