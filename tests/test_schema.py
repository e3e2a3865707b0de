"""`hpsearch.study.schema`: what a study keeps, read in every format hpsearch wrote; a study written by an earlier
hpsearch (format 1, checked in under tests/fixtures) opens, reads back and continues."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import optuna
import pytest

import hpsearch
from hpsearch.study import schema, store
from hpsearch.trial import TrialState

FORMAT_1 = Path(__file__).parent / "fixtures" / "study-format-1"


@pytest.fixture
def format_1_study(tmp_path):
    """A copy of the format-1 study (its output directory), and the script that wrote it."""
    shutil.copy(FORMAT_1 / store.STORE_FILE, tmp_path / store.STORE_FILE)
    return tmp_path, runpy.run_path(str(FORMAT_1 / "write.py"))


def test_a_format_1_study_reads_back_as_it_was_written(format_1_study):
    output_dir, _ = format_1_study
    records = hpsearch.load_trials(output_dir)
    assert [r.state for r in records] == [TrialState.COMPLETE] * 2 + [TrialState.FAILED, TrialState.PRUNED]
    assert "a failed trial, kept with its error" in records[2].error
    assert all(set(r.params) == {"x"} for r in records) and records[0].intermediate.keys() == {1, 2}


def test_a_format_1_study_continues_and_is_then_format_2(format_1_study):
    output_dir, written_by = format_1_study
    hpsearch.search(
        written_by["objective"], written_by["SPACE"], n_trials=6, direction="minimize", output_dir=str(output_dir),
        seed=0, show_progress=False,
    )  # fmt: skip
    assert len(hpsearch.load_trials(output_dir)) == 6
    assert store.load_study(output_dir).user_attrs[schema.FORMAT_KEY] == schema.FORMAT


def test_a_format_1_study_refuses_another_space_as_it_did(format_1_study):
    """Its space is kept under format 1's dotted key, which is still read."""
    output_dir, written_by = format_1_study
    with pytest.raises(hpsearch.ConfigError, match=r"searched over another space: 'x' was Float\(low=-4.0"):
        hpsearch.search(
            written_by["objective"], {"x": hpsearch.space.Float(0.0, 1.0)}, n_trials=6, output_dir=str(output_dir),
            show_progress=False,
        )  # fmt: skip


def test_a_study_from_a_later_format_is_refused_before_any_trial(tmp_path):
    study = optuna.create_study(storage=store.storage_url(tmp_path), study_name="hpsearch")
    study.set_user_attr(schema.FORMAT_KEY, schema.FORMAT + 1)
    with pytest.raises(
        hpsearch.ConfigError, match="written by a later hpsearch .*Continue it with the hpsearch that wrote it"
    ):
        hpsearch.search(lambda t: 0.0, {"x": hpsearch.space.Float(0, 1)}, n_trials=1, output_dir=str(tmp_path))
    assert not study.trials


def test_optuna_states_map_both_ways():
    for state, name in schema.TO_OPTUNA.items():
        assert optuna.trial.TrialState[name] and schema.FROM_OPTUNA[name] is state
    assert schema.FROM_OPTUNA["RUNNING"] is TrialState.RUNNING
