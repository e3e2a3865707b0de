"""The disk that trials paused at a rung take (`hpsearch.loop.halving`): each keeps a checkpoint, model and optimizer
state, until it resumes or is pruned. Their sum stays under a cap (`pause_disk`): a trial whose checkpoint would pass
it is judged at once by the peers it has, as when no trial is left to start. The cap by default ("auto") is half the
disk free under `output_dir` when the search starts; the most that can usefully wait, `reduction_factor**2` trials
at the last rung, bounds it further on its own.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path
from typing import Any

from hpsearch.errors import ConfigError
from hpsearch.settings import study_folder

AUTO = "auto"
PAUSED_DIR = ".paused"  # in `output_dir`: `<study>/trial-<n>`, each paused trial's checkpoint
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGT]?B?)\s*$", re.IGNORECASE)


def check_cap(pause_disk: Any) -> int | str | None:
    """`pause_disk` as the search keeps it: bytes, "auto", or None (no cap); a string such as "20GB" is parsed."""
    if pause_disk is None or pause_disk == AUTO:
        return pause_disk
    if isinstance(pause_disk, str) and (match := _SIZE.match(pause_disk)):
        return int(float(match[1]) * _UNITS[match[2].upper()])
    if isinstance(pause_disk, int) and not isinstance(pause_disk, bool) and pause_disk >= 0:
        return pause_disk
    raise ConfigError(
        "`pause_disk` must be the most disk the checkpoints of paused trials may take: bytes (an int), a size "
        f'such as "20GB", "auto" (half the free disk), or None for no cap. Received: pause_disk={pause_disk!r}.'
    )


def cap_bytes(pause_disk: int | str | None, output_dir: str | None) -> float:
    """The cap in bytes: "auto" is half the disk free under `output_dir` now (infinite without one, or None)."""
    if pause_disk == AUTO:
        return shutil.disk_usage(_existing(output_dir)).free / 2 if output_dir is not None else float("inf")
    return float("inf") if pause_disk is None else float(pause_disk)


def _existing(path: str) -> Path:
    """`path`, or its nearest existing parent (the output directory may not exist yet)."""
    existing = Path(path).absolute()
    while not existing.exists():
        existing = existing.parent
    return existing


def directory_bytes(directory: str | Path) -> int:
    """The bytes of the files under `directory`."""
    return sum(entry.stat().st_size for entry in Path(directory).rglob("*") if entry.is_file())


def size_text(size: float) -> str:
    """`size` bytes as people read them: "1.5 GB", "270 MB"."""
    for unit in ("TB", "GB", "MB", "KB"):
        if size >= _UNITS[unit]:
            return f"{size / _UNITS[unit]:.3g} {unit}"
    return f"{int(size)} B"


def pause_dir(output_dir: str | Path, study_name: str, number: int) -> Path:
    """Where trial `number` of the study keeps its checkpoint while it waits at a rung."""
    return Path(output_dir, PAUSED_DIR, study_folder(study_name), f"trial-{number}")


def remove(paths: list[str]) -> None:
    """Remove the directories a trial leaves (those already gone included), and the folders of paused trials'
    checkpoints that this leaves empty."""
    for path in map(Path, paths):
        shutil.rmtree(path, ignore_errors=True)
        if PAUSED_DIR in path.parts:
            for parent in path.parents[: len(path.parts) - path.parts.index(PAUSED_DIR) - 1]:
                with contextlib.suppress(OSError):  # not empty: another trial's, or another study's
                    parent.rmdir()
