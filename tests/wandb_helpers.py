"""Reading offline W&B runs from disk, and a stand-in for `wandb.agent` (no W&B server here)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import sweeps
import wandb
from wandb.proto import wandb_internal_pb2
from wandb.sdk.lib import config_util

from hpsearch.space import plain

_BLOCK, _HEADER = 32768, 7


def read_run(path: Path) -> dict[str, Any]:
    """The config, summary, history and group of an offline run, from its `.wandb` transaction log
    (a LevelDB-style log of protobuf `Record`s: 7-byte header, then 32 KiB blocks of chunks)."""
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    run: dict[str, Any] = {"config": {}, "summary": {}, "history": []}
    pos, chunks = _HEADER, []
    while pos + _HEADER <= len(data):
        room = _BLOCK - pos % _BLOCK
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER]) if room >= _HEADER else (0, 0, 0)
        if room < _HEADER or (kind == 0 and length == 0):
            pos += room
            continue
        chunks.append(data[pos + _HEADER : pos + _HEADER + length])
        pos += _HEADER + length
        if kind not in (1, 4):  # FULL or LAST chunk ends a record
            continue
        record = wandb_internal_pb2.Record()
        record.ParseFromString(b"".join(chunks))
        chunks = []
        which = record.WhichOneof("record_type")
        if which == "run":
            run["group"], run["name"] = record.run.run_group, record.run.display_name
            run["config"].update(_items(record.run.config.update))
        elif which == "config":
            run["config"].update(_items(record.config.update))
        elif which == "summary":
            run["summary"].update(_items(record.summary.update))
        elif which == "history":
            run["history"].append(_items(record.history.item))
    return run


def _items(items) -> dict[str, Any]:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def offline_runs(output_dir: Path) -> list[dict[str, Any]]:
    return [read_run(p) for p in sorted(Path(output_dir).glob("wandb/offline-run-*/run-*.wandb"))]


class StandInAgent:
    """Runs a sweep as `wandb.agent` does (see wandb's `agents/pyagent.py`), with the `sweeps`
    engine choosing each run's parameters where the W&B server would.

    For each run: write `{name: {"value": x}}` YAML to the file named by WANDB_SWEEP_PARAM_PATH,
    set WANDB_RUN_ID and WANDB_SWEEP_ID, tear wandb down, call the function, `wandb.finish()`
    (exit code 1 if it raised). Like wandb's agent, it leaves those variables set after its last run.
    """

    def __init__(self, config: dict[str, Any], base_dir: Path):
        self.config, self.base_dir, self.runs, self.calls = config, Path(base_dir), [], []

    def __call__(self, sweep_id: str, function, count: int | None = None, project=None, entity=None) -> None:
        self.calls.append({"sweep_id": sweep_id, "count": count, "project": project})
        for _ in range(count):
            suggestion = sweeps.next_run(self.config, self.runs)
            if suggestion is None:
                return
            run_id = f"standin{len(self.runs)}"
            param_path = self.base_dir / "wandb" / f"sweep-{sweep_id}" / f"config-{run_id}.yaml"
            # as the server sends them: plain JSON values, not the numpy scalars `sweeps` returns
            chosen = {name: {"value": plain(p["value"])} for name, p in suggestion.config.items()}
            config_util.save_config_file_from_dict(str(param_path), chosen)
            os.environ.update(WANDB_RUN_ID=run_id, WANDB_SWEEP_PARAM_PATH=str(param_path), WANDB_SWEEP_ID=sweep_id)
            wandb.teardown()
            try:
                function()
                wandb.finish()
                suggestion.state = sweeps.RunState.finished
            except Exception:
                wandb.finish(exit_code=1)
                suggestion.state = sweeps.RunState.failed
            self.runs.append(suggestion)
