"""Secrets never leave the process: a storage URL's password, the W&B key and the SigOpt token
appear in no log, progress bar, store row, report or file a search writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy

from tests.sigopt_server import SigOptServer

SCRIPT = Path(__file__).with_name("secret_search.py")
SECRETS = {
    "password": "pg-SECRET-7f3a91",
    "WANDB_API_KEY": "wandbSECRET" + "0" * 29,  # W&B keys are 40 characters
    "SIGOPT_API_TOKEN": "sigopt-SECRET-5b2c",
}


def with_password(url: str) -> str:
    return sqlalchemy.engine.make_url(url).set(password=SECRETS["password"]).render_as_string(hide_password=False)


def store_text(url: str) -> str:
    """Every row of every table of the store, as text."""
    engine = sqlalchemy.create_engine(url)
    rows = []
    with engine.connect() as connection:
        for table in sqlalchemy.inspect(engine).get_table_names():
            rows += [repr(row) for row in connection.execute(sqlalchemy.text(f'SELECT * FROM "{table}"'))]
    engine.dispose()
    return "\n".join(rows)


@pytest.mark.parametrize("backend", ["optuna", "sigopt", "wandb", "ray"])
def test_no_secret_appears_in_any_output(backend, postgres_url, tmp_path):
    storage = with_password(postgres_url)
    database = f"secrets_{backend}"  # a database per backend: each test reads back only its own rows
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {database}"))
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {database}"))
    admin.dispose()
    storage = storage.rsplit("/", 1)[0] + f"/{database}"
    env = dict(
        os.environ,
        HPSEARCH_STORAGE=storage,
        WANDB_API_KEY=SECRETS["WANDB_API_KEY"],
        SIGOPT_API_TOKEN=SECRETS["SIGOPT_API_TOKEN"],
    )
    with SigOptServer(token=SECRETS["SIGOPT_API_TOKEN"]) as server:
        run = subprocess.run(
            [sys.executable, str(SCRIPT), backend, str(tmp_path), server.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "hpsearch" in run.stderr and "BestRun" in run.stdout  # the logs and the result were captured
    if backend == "sigopt":
        assert server.experiments  # the token was used, against the server
    outputs = {"stdout": run.stdout, "stderr": run.stderr, "store": store_text(storage)}
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".md" for path in files)  # the report is among them
    for path in files:
        outputs[str(path)] = path.read_bytes().decode("utf-8", "replace")
    leaks = [(name, where) for name, secret in SECRETS.items() for where, text in outputs.items() if secret in text]
    assert leaks == []
