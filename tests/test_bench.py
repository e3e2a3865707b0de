"""The benchmark's code path (bench/compare.py), every system on a tiny model and a few real examples."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_the_benchmark_runs_every_system_and_reports_ratios(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))
    import compare

    out = tmp_path / "results.json"
    sizes = ["--trials", "2", "--train-size", "48", "--eval-size", "16", "--max-length", "16"]
    compare.main(
        [*sizes, "--seeds", "0", "--datasets", "tweets", "--model-dir", str(tiny_model_dir), "--out", str(out)]
    )
    runs = json.loads(out.read_text())["runs"]
    assert sorted(r["system"] for r in runs) == sorted(compare.SYSTEMS)
    for r in runs:
        assert r["wall_s"] > 0 and 0 <= r["best_accuracy"] <= 1 and r["evaluations"]
        assert (r["overhead_pct"] is None) == (r["system"] == "ray-asha")  # Ray's trials run in parallel workers
    table = capsys.readouterr().out
    assert "| wall time / transformers' | 1.00 |" in table and "ray-asha" in table
    assert sys.modules["compare"].tweets()[0][1] in (0, 1, 2)


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
