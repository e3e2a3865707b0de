"""The benchmarks' code paths (bench/compare.py, bench/parallel.py): every system on a tiny model and a few
real examples, and the anytime measure on hand-made evaluations."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

import hpsearch

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def compare(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import compare

    return compare


def test_the_machine_speed_is_the_time_of_a_fixed_work(compare):
    import children

    assert 0 < children.speed() < 30  # seconds for 100 products of 512x512 matrices


# the systems whose searches take paths of their own (the others change an option: `_options`, tested below)
OWN_PATHS = ("transformers", "hpsearch", "hpsearch-warm", "optuna-hyperband", "ray-asha")


def test_each_system_searches_with_its_own_options(compare):
    """The systems the benchmark's run in parts leaves out (`OWN_PATHS`) differ from those it runs by options only."""
    import optuna

    options = {system: compare._options(system, seed=3) for system in compare.SYSTEMS if system != "ray-asha"}
    assert options["hpsearch"] == {"backend": "optuna", "seed": 3, "show_progress": False} == options["hpsearch-warm"]
    assert options["hpsearch-user-values"] == {**options["hpsearch"], "user_values_first": True}
    assert options["hpsearch-promote"] == {**options["hpsearch"], "promote_leaders": True}
    samplers = {system: type(o.get("sampler")).__name__ for system, o in options.items()}
    assert samplers["transformers"] == samplers["hpsearch-tpe"] == samplers["optuna-hyperband"] == "TPESampler"
    assert samplers["random"] == "RandomSampler" and samplers["hpsearch"] == "NoneType"  # hpsearch's own
    assert isinstance(options["optuna-hyperband"]["pruner"], optuna.pruners.HyperbandPruner)
    startup10 = options["hpsearch-startup10"]["sampler"]  # hpsearch's default sampler, as it was at 8 trials
    assert startup10.base._n_startup_trials == 10 and "seed" not in options["hpsearch-startup10"]
    assert "pruner" not in options["transformers"] and "pruner" not in options["random"]


def test_the_benchmark_runs_in_parts_that_merge_into_one_results_file(
    compare, tiny_model_dir, tmp_path, capsys, monkeypatch
):
    out, plot = tmp_path / "results.json", tmp_path / "anytime.png"
    tiny = ["--trials", "2", "--train-size", "48", "--eval-size", "16", "--max-length", "16"]
    common = [*tiny, "--seeds", "0", "--datasets", "tweets", "--model-dir", str(tiny_model_dir)]
    stores = tmp_path / "stores"
    files = ["--out", str(out), "--plot", str(plot), "--stores", str(stores)]

    def part(*systems: str) -> dict[tuple, dict]:
        compare.main([*common, "--systems", *systems, *files])
        return {(r["dataset"], r["seed"], r["system"]): r for r in json.loads(out.read_text())["runs"]}

    monkeypatch.setattr(compare, "speed", lambda: 0.5)  # the suite's other process makes the real one vary
    first = part("transformers", "hpsearch")
    assert sorted(first) == [("tweets", 0, s) for s in ("hpsearch", "transformers")]
    source = stores / "tweets-seed0-hpsearch"  # kept by --stores: the study a later search warm-starts from
    files += ["--warm-start", str(source)]
    merged = part("optuna-hyperband", "ray-asha", "hpsearch-warm")  # a second part adds its runs
    assert sorted(s for _, _, s in merged) == sorted(OWN_PATHS)
    assert merged[("tweets", 0, "hpsearch-warm")]["warm_start"] == source.name
    (best, *_) = sorted(
        (t for t in hpsearch.load_trials(source) if t.state is hpsearch.TrialState.COMPLETE), key=lambda t: -t.values[0]
    )
    assert hpsearch.load_trials(stores / "tweets-seed0-hpsearch-warm")[0].params == best.params  # its best runs first
    assert all(merged[key] == run for key, run in first.items())
    tables = capsys.readouterr().out
    again = {**merged[("tweets", 0, "optuna-hyperband")], "wall_s": 12345.0, "machine": "another"}  # a part run again,
    compare.merge(out, again)  # on another machine, replaces exactly its own
    rerun = {(r["dataset"], r["seed"], r["system"]): r for r in json.loads(out.read_text())["runs"]}
    assert rerun == {**merged, ("tweets", 0, "optuna-hyperband"): again}
    assert "Not side by side" not in tables  # every part ran on this machine; the rerun is named as apart:
    assert compare.report(list(rerun.values())).endswith(
        "their ratios compare machines too): tweets seed 0 optuna-hyperband"
    )
    slower = {**merged[("tweets", 0, "hpsearch")], "speed_s": 0.6}  # the same boot, 20% slower than transformers'
    apart = compare.report([*merged.values(), slower])
    assert apart.endswith("machines too): tweets seed 0 hpsearch")
    assert "Not side by side" not in compare.report([*merged.values(), {**slower, "speed_s": 0.52}])  # within 10%

    for r in merged.values():
        assert r["sizes"] == {"train": 48, "eval": 16, "max_length": 16} and r["trials"] == 2
        assert 0 < r["majority"] <= 1 and r["commit"] and r["date"] and r["wall_s"] > 0
        assert r["machine"] == merged[("tweets", 0, "transformers")]["machine"]  # side by side: one machine
        assert r["speed_s"] == 0.5  # measured before each run
        finals = [e["accuracy"] for e in r["evaluations"] if e["final"]]
        assert finals and r["best_accuracy"] == max(finals)  # only final evaluations count
        assert (r["overhead_pct"] is None) == (r["system"] == "ray-asha")  # Ray's trials run in parallel workers
    assert all(e["final"] for e in merged[("tweets", 0, "hpsearch")]["evaluations"])  # rung evaluations are quiet
    assert "tweets (48 train, 16 eval, 16 tokens, 2 trials): majority class" in tables
    assert "| wall time / transformers' | 1.00 |" in tables  # the overall table, and the dataset's:
    assert "| time to transformers' best / transformers' | 1.00 (1 of 1) |" in tables and "ray-asha" in tables
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and plot.stat().st_size > 10_000

    plot.unlink()
    compare.main(["--report", str(out), "--plot", str(plot)])
    assert "| best final accuracy |" in capsys.readouterr().out and plot.exists()


def test_the_datasets_ship_in_packages_with_their_default_sizes(compare):
    for name, (rows, train, evaluation, _) in compare.DATASETS.items():
        data = rows()
        labels = {label for _, label in data}
        assert len(data) >= train + evaluation and labels == set(range(len(labels))) and len(labels) >= 2, name
    assert collections.Counter(label for _, label in compare.convention()) == {0: 1242, 1: 1242}  # balanced


def test_the_anytime_curve_counts_final_evaluations_only(compare):
    evaluations = [
        {"t": 1.0, "accuracy": 0.9, "final": False, "step": 2},  # a quarter-epoch evaluation: never counted
        {"t": 2.0, "accuracy": 0.5, "final": True, "step": 8},
        {"t": 3.0, "accuracy": 0.4, "final": True, "step": 8},
        {"t": 4.0, "accuracy": 0.7, "final": True, "step": 8},
    ]
    steps = compare.best_so_far(evaluations)
    assert steps == [(2.0, 0.5), (4.0, 0.7)]
    assert [compare.best_at(steps, t) for t in (0.5, 1.5, 2.0, 3.5, 9.0)] == [None, None, 0.5, 0.5, 0.7]
    run = {"evaluations": evaluations}
    assert compare.time_to(run, 0.6) == 4.0 and compare.time_to(run, 0.5) == 2.0
    assert compare.time_to(run, 0.8) is None  # only the intermediate evaluation got there

    # against transformers' run of the same (dataset, seed): its best 0.7, reached at 4 s
    base = {"dataset": "d", "seed": 0, "sizes": {"train": 1}, "trials": 2}
    theirs = {**base, "system": "transformers", "wall_s": 10.0, "best_accuracy": 0.7, "evaluations": evaluations}
    reached = [{"t": 1.0, "accuracy": 0.7, "final": True, "step": 8}]
    ours = {**base, "system": "hpsearch", "wall_s": 5.0, "best_accuracy": 0.7, "evaluations": reached}
    mine = {r["system"]: r for r in compare.compared([ours, theirs])}["hpsearch"]
    assert (mine["wall_ratio"], mine["points_vs_reference"], mine["time_to_reference_ratio"]) == (0.5, 0.0, 0.25)


def test_the_parallel_benchmark_runs_workers_beside_transformers_and_reports_ratios(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.syspath_prepend(str(BENCH))
    import parallel

    out = tmp_path / "parallel.json"
    sizes = ["--trials", "2", "--train-size", "48", "--eval-size", "16", "--max-length", "16"]
    systems = ["transformers", "hpsearch-n_jobs=2"]  # n_jobs=1 is compare.py's hpsearch
    parallel.main([*sizes, "--systems", *systems, "--model-dir", str(tiny_model_dir), "--out", str(out)])
    runs = json.loads(out.read_text())["runs"]
    assert [r["system"] for r in runs] == systems
    assert all(r["trials_per_hour"] > 0 and 0 <= r["best_accuracy"] <= 1 for r in runs)
    assert "| trials per hour / transformers' | 1.00 |" in capsys.readouterr().out


def test_the_disk_benchmark_measures_each_systems_peak_beside_the_other(compare, tiny_model_dir, tmp_path, capsys):
    """bench/pause_disk.py on a tiny model: hpsearch's and transformers' peak disk, with the user's checkpoints."""
    import pause_disk

    out = tmp_path / "disk.json"
    tiny = ["--trials", "3", "--train-size", "48", "--eval-size", "16", "--max-length", "16", "--save-steps", "2"]
    pause_disk.main([*tiny, "--saves", "steps", "--model-dir", str(tiny_model_dir), "--out", str(out)])
    runs = {run["system"]: run for run in json.loads(out.read_text())["runs"]}
    assert runs["transformers"]["peak_bytes"] > 10_000 and runs["hpsearch"]["peak_bytes"] > 10_000
    assert runs["hpsearch"]["end_bytes"] < runs["transformers"]["end_bytes"]  # it keeps the best model, not every run
    assert "| hpsearch (" in capsys.readouterr().out


def test_the_pause_cost_table_says_where_a_pause_pays(compare):
    """bench/pause_cost.py's table from measured runs: a pause that costs less than running on pays, one that costs
    more (a huge checkpoint on a fast step) does not."""
    import pause_cost

    cheap = {"model": "small", "parameters": 22e6, "trained_parameters": 22e6, "checkpoint_bytes": 3e8}
    cheap.update(save_seconds=1.0, load_seconds=1.0, step_seconds=0.5)  # a trial of 62 s; 14 s from 1/9 to 1/3
    costly = {**cheap, "model": "huge", "save_seconds": 30.0, "load_seconds": 20.0, "step_seconds": 0.1}
    lines = pause_cost.table({"runs": [cheap, costly]}).splitlines()
    assert "| yes, yes |" in lines[2] and "| no, no |" in lines[3]
    assert lines[2].endswith("| 0.108 s, 0.036 s |")  # a step faster than that, the 2-s pause would not pay
