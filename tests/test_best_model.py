"""The best model's keeper: a promote replaces the kept model whole, even when killed at any step of it."""

from __future__ import annotations

import json
import multiprocessing
import os
import pathlib
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpsearch.study.best_model import BestModelKeeper

# The calls by which a promote changes the file system (shutil's moves and removals go through them).
CHANGES = [(os, "mkdir"), (os, "rename"), (os, "replace"), (os, "symlink"), (os, "unlink"), (os, "rmdir")]
CHANGES.append((pathlib.Path, "write_text"))


def stage(keeper: BestModelKeeper, number: int, weights: str) -> None:
    """Save a model for trial `number` in its staging directory, as a trial runner would."""
    staging = keeper.staging_dir(number)
    staging.mkdir(parents=True)
    (staging / "weights.bin").write_text(weights)


def promote(keeper: BestModelKeeper, number: int, weights: str) -> None:
    stage(keeper, number, weights)
    keeper.promote(number, float(number), {"x": number})


def kept(output: Path) -> tuple[int, str] | None:
    """The kept model's trial and weights (None if none is kept), checking it is whole and alone in `best_model`."""
    best = output / "best_model"
    if not best.exists():
        return None
    assert sorted(p.name for p in best.iterdir()) == ["hpsearch_trial.json", "weights.bin"]
    return json.loads((best / "hpsearch_trial.json").read_text())["trial"], (best / "weights.bin").read_text()


def assert_settled(output: Path) -> None:
    """One model in `.models` (beside its lock), the one `best_model` names, and no swap left half done."""
    models = [path for path in (output / ".models").iterdir() if path.name != ".lock"]
    assert len(models) == 1 and (output / "best_model").resolve() == models[0].resolve()
    assert not os.path.lexists(output / ".best_model.new")


def test_a_second_promote_replaces_the_first_and_nothing_piles_up(tmp_path):
    keeper = BestModelKeeper(tmp_path)
    assert keeper.kept_trial() is None and not keeper.dir.is_dir()
    promote(keeper, 1, "old")
    assert kept(tmp_path) == (1, "old") and keeper.kept_trial() == 1
    promote(keeper, 2, "new")
    assert kept(tmp_path) == (2, "new") and keeper.kept_trial() == 2
    assert_settled(tmp_path)
    # staged models were moved, not copied, and no empty `.staging` is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [".models", "best_model"]
    promote(keeper, 2, "again")  # the same trial kept again replaces itself
    assert kept(tmp_path) == (2, "again")
    assert_settled(tmp_path)
    shutil.copytree(keeper.dir, tmp_path / "copy" / "best_model")  # read as a directory, as `from_pretrained` does
    assert kept(tmp_path / "copy") == (2, "again")


def test_a_best_model_directory_kept_before_the_symlink_is_replaced(tmp_path):
    legacy = tmp_path / "best_model"
    legacy.mkdir()
    (legacy / "weights.bin").write_text("old")
    (legacy / "hpsearch_trial.json").write_text(json.dumps({"trial": 1}))
    promote(BestModelKeeper(tmp_path), 2, "new")
    assert kept(tmp_path) == (2, "new")
    assert_settled(tmp_path)


def _promote_killed_after(output: Path, steps: int) -> None:
    """In the child process: promote trial 2's staged model, SIGKILLed right after the promote's `steps`-th
    change to the file system."""
    done = 0

    def counted(change: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal done
            result = change(*args, **kwargs)
            done += 1
            if done == steps:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        return call

    for owner, name in CHANGES:
        setattr(owner, name, counted(getattr(owner, name)))
    BestModelKeeper(output).promote(2, 2.0, {"x": 2})


@pytest.mark.parametrize("before", ["nothing kept", "model kept", "directory kept before the symlink"])
def test_a_promote_killed_at_any_step_leaves_the_old_model_or_the_new_one_whole(tmp_path, before):
    old = None if before == "nothing kept" else (1, "old")
    steps = 0
    while True:
        steps += 1
        output = tmp_path / f"killed-after-{steps}"
        keeper = BestModelKeeper(output)
        if before == "model kept":
            promote(keeper, 1, "old")
        elif before == "directory kept before the symlink":
            legacy = output / "best_model"
            legacy.mkdir(parents=True)
            (legacy / "weights.bin").write_text("old")
            (legacy / "hpsearch_trial.json").write_text(json.dumps({"trial": 1}))
        stage(keeper, 2, "new")
        child = multiprocessing.get_context("fork").Process(target=_promote_killed_after, args=(output, steps))
        child.start()
        child.join()
        if child.exitcode == 0:  # the promote made fewer changes than `steps`: every step was killed after
            break
        assert child.exitcode == -signal.SIGKILL
        if before != "directory kept before the symlink":  # its first swap has a moment without `best_model`
            assert kept(output) in (old, (2, "new")), steps
        after_crash = BestModelKeeper(output)  # settles a swap the kill left half done
        assert kept(output) in (old, (2, "new")), steps
        assert after_crash.kept_trial() == (kept(output) or (None,))[0]
        promote(after_crash, 3, "next")
        assert kept(output) == (3, "next") and after_crash.kept_trial() == 3
        assert_settled(output)
    assert kept(output) == (2, "new")
    assert_settled(output)
    assert steps > 4


@pytest.mark.parametrize("name", ["first", "a/b", "a_b", "..", "", "étude 2"])
def test_each_study_keeps_its_model_in_a_directory_of_its_own_under_output_dir(tmp_path, name):
    from hpsearch.study.best_model import STUDIES_DIR, study_dir

    assert study_dir(tmp_path) == tmp_path  # the default study's: `output_dir`, as before studies had their own
    own = study_dir(tmp_path, name)
    assert own.parent == tmp_path / STUDIES_DIR and own.name not in ("", ".", "..") and "/" not in own.name
    others = {study_dir(tmp_path, other) for other in ["first", "a/b", "a_b", "..", "", "étude 2"] if other != name}
    assert own not in others
    promote(BestModelKeeper(tmp_path, study_name=name), 1, name)
    assert kept(own) == (1, name) and not (tmp_path / "best_model").exists()
