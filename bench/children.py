"""What the benchmarks share to run each measured search in a fresh process of its own."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = "RESULT "  # the line a child prints its result on, as JSON


def run_child(
    script: str, argv: list[str], what: str, wrapper: tuple[str, ...] = (), **environment: str
) -> dict[str, Any]:
    """Run `script` with `argv` in a fresh Python process (under `wrapper`, a command such as valgrind's); the
    result it printed (RuntimeError, with the end of its stderr, if it failed). `what` names the run in that error."""
    done = subprocess.run(
        [*wrapper, sys.executable, script, *argv], capture_output=True, text=True, env={**os.environ, **environment}
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith(RESULT))
    return json.loads(line[len(RESULT) :])


def print_result(result: dict[str, Any]) -> None:
    """A child's result, for `run_child`."""
    print(RESULT + json.dumps(result), flush=True)


def alternating(
    script: str, argv: list[str], choices: tuple[str, ...], repeats: int, describe: Callable[[dict[str, Any]], str]
) -> list[dict[str, Any]]:
    """`repeats` rounds of one child per choice (`--one CHOICE`), the order reversed every other round (the machine
    drifts); each result said in a line, `describe(result)`."""
    runs = []
    for repeat in range(repeats):
        for choice in choices if repeat % 2 == 0 else choices[::-1]:
            runs.append(run_child(script, [*argv, "--one", choice], choice))
            print(f"{choice}: {describe(runs[-1])}", flush=True)
    return runs


def commit() -> str:
    """hpsearch's commit, "+dirty" when tracked files other than the benchmark's outputs differ from it."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        changes = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/*.json", ":!bench/*.png"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if changes.stdout.strip() else "")


def measured_at(results: dict[str, Any]) -> str:
    """The line a report ends with: the commit its results file was measured at, where the file records it."""
    recorded = results.get("commit")
    return f"hpsearch at {recorded}" if recorded else "hpsearch's commit not recorded in this file (see BENCHMARKS.md)"


def machine() -> str:
    """This machine as booted (Linux's boot id; else the host name): runs merged from several sittings compare
    like with like only where they share it, as machines here differ in speed by several times."""
    boot = Path("/proc/sys/kernel/random/boot_id")
    return boot.read_text().strip() if boot.exists() else platform.node()


def speed() -> float:
    """Seconds this machine takes now for a fixed amount of the work a trial does (products of 512x512 matrices;
    the median of 5 rounds). One boot's speed changed by ~20% within a sitting here (BENCHMARKS.md), which the
    boot id does not see."""
    import torch

    matrix = torch.randn(512, 512, generator=torch.Generator().manual_seed(0))
    rounds = []
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(20):
            matrix @ matrix
        rounds.append(time.perf_counter() - began)
    return statistics.median(rounds)
