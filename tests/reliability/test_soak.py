"""Soak, short: RSS over a search stays flat after warm-up, function API and Trainer alike.

The benchmark (`bench/soak.py`, 50 trials per API) is the long version of this test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_rss_grows_under_5_percent_after_warm_up(tmp_path):
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(SOAK), "--trials", "8", "--warmup", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = json.loads(out.read_text())["results"]
    assert run.returncode == 0, (run.stdout, run.stderr[-2000:])
    for api in ("function", "trainer"):
        # one reading per model built (a trial paused at a rung builds its own again as it resumes), one after
        assert len(results[api]["rss_mb"]) >= 9
        assert results[api]["growth_pct"] < 5.0, results[api]
