"""`hpsearch dashboard`: the real optuna-dashboard, started by the CLI, serving a study another process writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna

from hpsearch import extras
from hpsearch.study import schema, store

HPSEARCH = str(Path(sys.executable).with_name("hpsearch"))
ENV = dict(os.environ, HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
N_TRIALS = 3
FAILING = 1  # the trial that raises
STEPS = (1, 2, 3)

# The search, in its own process: trial 0 reports its first steps, then waits for the test's go-ahead
# (so that it is surely running while the test looks); every trial offers its model; trial 1 raises.
SEARCH = textwrap.dedent(
    f"""
    import sys, time
    from pathlib import Path

    import optuna

    import hpsearch
    from hpsearch.space import Float

    output_dir, gate = Path(sys.argv[1]), Path(sys.argv[2])


    def objective(trial):
        for step in {STEPS!r}:
            trial.report(step, trial.params["x"] + 1 / step)
            if trial.number == 0 and step == 2:
                (output_dir / "trial0_running").touch()
                deadline = time.monotonic() + 25
                while not gate.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
            time.sleep(0.3)
        if trial.number == {FAILING}:
            raise RuntimeError("boom: trial {FAILING} breaks on purpose")

        def save(directory):
            Path(directory).mkdir(parents=True, exist_ok=True)
            (Path(directory) / "model.txt").write_text(str(trial.number))

        trial.offer_model(trial.params["x"], save)
        return trial.params["x"]


    hpsearch.search(objective, {{"x": Float(0.0, 1.0)}}, n_trials={N_TRIALS}, output_dir=str(output_dir),
                    show_progress=False, seed=0, pruner=optuna.pruners.NopPruner())
    """
)


def get(url: str, timeout: float = 2.0) -> tuple[int, str, bytes]:
    """The status, content type and body of GET `url` (redirects followed)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def get_json(url: str) -> dict:
    status, kind, body = get(url)
    assert status == 200 and kind.startswith("application/json"), (status, kind)
    return json.loads(body)


def wait_for(what: str, check, timeout: float, *alive: subprocess.Popen):
    """Poll `check()` until it returns something truthy (None on a refused connection: not yet up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in alive:
            assert process.poll() is None, f"{process.args[:3]} exited ({process.returncode}) before {what}"
        try:
            result = check()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def attrs(items: list[dict]) -> dict[str, str]:
    return {a["key"]: a["value"] for a in items}


def listening_on(port: int) -> set[str] | None:
    """The local addresses of the TCP sockets listening on `port` (Linux's hex notation), None without /proc."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    found = set()
    for table in (t for t in tables if t.exists()):
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if int(hex_port, 16) == port and state == "0A":  # LISTEN
                found.add(address)
    return found


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
    if process is not None:
        process.wait(timeout=10)


def test_the_dashboard_shows_a_search_live_then_its_trials_errors_and_best_model(tmp_path, free_port):
    output_dir, gate = tmp_path / "search", tmp_path / "go"
    output_dir.mkdir()
    script = tmp_path / "search.py"
    script.write_text(SEARCH)
    base = f"http://127.0.0.1:{free_port}"
    search = dashboard = None
    search_log, dashboard_log = (tmp_path / "search.log").open("w"), (tmp_path / "dashboard.log").open("w")
    try:
        search = subprocess.Popen(
            [sys.executable, str(script), str(output_dir), str(gate)],
            env=ENV,
            stdout=search_log,
            stderr=subprocess.STDOUT,
        )
        # the study and its first trial exist once trial 0 reports
        wait_for("trial 0 to run", (output_dir / "trial0_running").exists, 20, search)
        assert (output_dir / store.STORE_FILE).is_file()
        dashboard = subprocess.Popen(  # the default host: 127.0.0.1 only
            [HPSEARCH, "dashboard", str(output_dir), "--port", str(free_port)],
            env=ENV,
            stdout=dashboard_log,
            stderr=subprocess.STDOUT,
        )

        studies = wait_for("the study list", lambda: get_json(f"{base}/api/studies")["study_summaries"], 20, dashboard)
        assert listening_on(free_port) in ({"0100007F"}, None)  # 127.0.0.1, and no other address
        assert [s["study_name"] for s in studies] == [store.load_study(output_dir).study_name]
        study_url = f"{base}/api/studies/{studies[0]['study_id']}?after=0"

        def running_trial():
            trials = get_json(study_url)["trials"]
            return [t for t in trials if t["state"] == "Running" and t["intermediate_values"]]

        (live,) = wait_for("a running trial", running_trial, 10, dashboard, search)
        assert search.poll() is None  # the search still runs: the dashboard shows it as it goes
        assert live["number"] == 0
        x0 = float(live["params"][0]["param_external_value"])
        assert [(v["step"], v["value"]) for v in live["intermediate_values"]] == [(1, x0 + 1), (2, x0 + 1 / 2)]
        assert len(get_json(study_url)["trials"]) < N_TRIALS

        gate.touch()
        assert search.wait(timeout=20) == 0, (tmp_path / "search.log").read_text()

        def all_finished():  # the dashboard re-reads the store every 2 s
            detail = get_json(study_url)
            trials = detail["trials"]
            return detail if len(trials) == N_TRIALS and all(t["state"] != "Running" for t in trials) else None

        detail = wait_for("the finished trials", all_finished, 10, dashboard)
        trials = sorted(detail["trials"], key=lambda t: t["number"])
        assert [t["state"] for t in trials] == ["Complete", "Fail", "Complete"]
        recorded = {t.number: t for t in store.load_study(output_dir).trials}
        for t in trials:
            (param,) = t["params"]
            x = recorded[t["number"]].params["x"]
            assert param["name"] == "x" and float(param["param_external_value"]) == x
            steps = [(v["step"], v["value"]) for v in t["intermediate_values"]]
            assert steps == [(step, x + 1 / step) for step in STEPS]
            if t["number"] == FAILING:
                assert "values" not in t  # no objective
                error = attrs(t["user_attrs"])[schema.ERROR]
                assert f"RuntimeError: boom: trial {FAILING} breaks on purpose" in error
                assert "Traceback" in error
            else:
                assert t["values"] == [x] == recorded[t["number"]].values
                assert schema.ERROR not in attrs(t["user_attrs"])

        # the best model's path beside the study, on the study page and in the study list
        best = min((t for t in trials if t["state"] == "Complete"), key=lambda t: t["values"][0])
        expected = {"trial": best["number"], "path": str((output_dir / "best_model").absolute())}
        assert [t["number"] for t in detail["best_trials"]] == [best["number"]]
        assert json.loads(attrs(detail["user_attrs"])[schema.BEST_MODEL]) == expected
        (summary,) = get_json(f"{base}/api/studies")["study_summaries"]
        assert json.loads(attrs(summary["user_attrs"])[schema.BEST_MODEL]) == expected
        assert (output_dir / "best_model" / "model.txt").read_text() == str(best["number"])

        # the web page itself: / redirects to /dashboard, the app's HTML
        with urllib.request.urlopen(f"{base}/", timeout=5) as page:
            status, kind, body, landed = page.status, page.headers.get("Content-Type", ""), page.read(), page.url
        assert status == 200 and kind.startswith("text/html") and landed == f"{base}/dashboard"
        assert b"<html" in body.lower() and b"<script" in body.lower()
        assert dashboard.poll() is None
    finally:
        stop(search)
        stop(dashboard)
        search_log.close()
        dashboard_log.close()
    banner = (tmp_path / "dashboard.log").read_text()
    assert f"hpsearch dashboard: http://127.0.0.1:{free_port}/ serves {store.storage_url(output_dir)}" in banner


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HPSEARCH, *args], env=ENV, capture_output=True, text=True, timeout=60)


def test_a_directory_without_a_study_is_one_clear_line(tmp_path):
    result = run_cli("dashboard", str(tmp_path), "--port", "1")
    assert result.returncode == 1, result
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"Error: No hpsearch study in '{tmp_path}': hpsearch.db is missing.")
    assert not (tmp_path / store.STORE_FILE).exists()  # no empty store made on the way


def test_a_missing_sqlite_file_is_one_clear_line(tmp_path):
    missing = tmp_path / "nowhere" / "x.db"
    for url in ("sqlite:////nonexistent/x.db", f"sqlite:///{missing}"):
        result = run_cli("dashboard", url, "--port", "1")
        assert result.returncode == 1, result
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith(f"Error: No study store at '{url}': the SQLite file does not exist.")
    assert not Path("/nonexistent/x.db").exists() and not missing.parent.exists()


def test_without_optuna_dashboard_the_error_names_the_extra(tmp_path):
    optuna.create_study(storage=store.storage_url(tmp_path), study_name="s")
    code = (
        "import sys; sys.modules['optuna_dashboard'] = None; from hpsearch.tools.cli import main; "
        "main(sys.argv[1:], prog_name='hpsearch')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "dashboard", str(tmp_path), "--port", "1"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: `hpsearch dashboard` needs optuna-dashboard")
    assert extras.extra_command("dashboard") in result.stderr


def test_a_port_in_use_is_one_clear_line_and_a_sqlite_url_with_options_is_served(tmp_path):
    optuna.create_study(storage=store.storage_url(tmp_path), study_name="s")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        url = f"{store.storage_url(tmp_path)}?timeout=5"  # a SQLite URL with its options: the file is found
        result = run_cli("dashboard", url, "--port", str(port))
    assert result.returncode == 1, result
    assert result.stderr.strip().splitlines() == [
        f"Error: Cannot serve the dashboard at 127.0.0.1:{port}: Address already in use. Pass another --port."
    ]
    assert "serves" not in result.stdout  # nothing said to be served that is not
