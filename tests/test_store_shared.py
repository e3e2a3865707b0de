"""Several worker processes on one optuna study: SQLite, optuna's journal file, PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import hpsearch

ROOT = Path(__file__).resolve().parents[1]


def run_two_workers(storage: str, tmp_path: Path) -> list[list[str]]:
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen([sys.executable, str(ROOT / "tests" / "worker_search.py"), storage, str(log)]) for log in logs
    ]
    assert [w.wait(timeout=300) for w in workers] == [0, 0]
    return [log.read_text().split() if log.exists() else [] for log in logs]


def check_shared(ran: list[list[str]], storage) -> None:
    trials = hpsearch.load_trials(storage=storage, study_name="shared")
    assert sum(t.counts for t in trials) == 8
    first, second = (set(r) for r in ran)
    assert first and second and not first & second  # both worked, no trial ran twice
    assert len(ran[0]) + len(ran[1]) == 8


def test_two_workers_share_one_sqlite_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    check_shared(run_two_workers(storage, tmp_path), storage)


def test_two_workers_share_one_journal_file(tmp_path):
    import optuna

    path = tmp_path / "journal.log"
    ran = run_two_workers(f"journal:{path}", tmp_path)
    check_shared(ran, optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path))))


def test_two_workers_share_one_postgresql_study(postgres_url, tmp_path):
    check_shared(run_two_workers(postgres_url, tmp_path), postgres_url)
