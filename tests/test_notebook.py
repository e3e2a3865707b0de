"""hpsearch in a real Jupyter kernel, as a notebook user runs it: the search's progress bar is the
notebook widget there (`tqdm.auto` picks `tqdm.notebook` inside an IPython kernel with ipywidgets),
and `best.run_summary` displays as the leaderboard table (its `text/html` representation)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel

import hpsearch

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
N_TRIALS = 4
TIMEOUT = 60  # seconds, for each kernel start and each execution: bounded, well above the ~10 s they take


def write_kernelspec(root: Path) -> None:
    """A `python3` kernelspec that runs this very interpreter (the venv's), found first on JUPYTER_PATH:
    a user's or the system's own `python3` spec, pointing at another Python, cannot shadow it."""
    spec_dir = root / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (hpsearch tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def execute(kc, code: str, timeout: float = TIMEOUT) -> list[dict]:
    """Run `code` in the kernel; the iopub messages of that execution (it fails on an error in it)."""
    messages: list[dict] = []
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=messages.append, allow_stdin=False)
    content = reply["content"]
    assert content["status"] == "ok", "\n".join(content.get("traceback", [])) or content
    return messages


@contextlib.contextmanager
def running_kernel(root: Path) -> Iterator[Any]:
    """A kernel of this very interpreter, started in `root` (its Jupyter and IPython files there too): its client."""
    write_kernelspec(root / "jupyter")
    with pytest.MonkeyPatch.context() as mp:
        # read by jupyter_client here: the kernelspec above, and the connection file in a temp dir
        mp.setenv("JUPYTER_PATH", str(root / "jupyter"))
        mp.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "MPLBACKEND": "Agg",
            "IPYTHONDIR": str(root / "ipython"),  # the kernel's profile: not under HOME
            "JUPYTER_PATH": str(root / "jupyter"),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        }
        km, kc = start_new_kernel(startup_timeout=TIMEOUT, kernel_name="python3", env=env, cwd=str(root))
    try:
        assert km.kernel_spec.argv[0] == sys.executable
        execute(kc, f"import sys; assert sys.executable == {sys.executable!r}, sys.executable")
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """A kernel that has run a 4-trial search with the progress bar on (the default): its client,
    and the iopub messages of the search's cell."""
    root = tmp_path_factory.mktemp("notebook")
    with running_kernel(root) as kc:
        out = root / "search"
        messages = execute(
            kc,
            "import hpsearch\n"
            "from hpsearch.space import Float\n"
            'best = hpsearch.search(lambda t: (t.params["x"] - 0.3) ** 2, {"x": Float(0.0, 1.0)},\n'
            f"                      n_trials={N_TRIALS}, output_dir={str(out)!r}, seed=0)\n",
        )
        yield kc, messages


def test_progress_bar_is_the_notebook_widget(notebook):
    _, messages = notebook
    kinds = [msg["msg_type"] for msg in messages]
    # the widget's view is displayed in the cell's output (tqdm.notebook's `display(HBox)`)
    views = [
        msg["content"]["data"][WIDGET_VIEW]
        for msg in messages
        if msg["msg_type"] == "display_data" and WIDGET_VIEW in msg["content"]["data"]
    ]
    assert views, f"no widget displayed; iopub messages: {kinds}"
    # ... and its models are created through comms: a progress bar (tqdm's FloatProgress) in an HBox
    models = {
        msg["content"]["comm_id"]: msg["content"]["data"]["state"]["_model_name"]
        for msg in messages
        if msg["msg_type"] == "comm_open" and msg["content"].get("target_name") == "jupyter.widget"
    }
    assert "FloatProgressModel" in models.values() or "IntProgressModel" in models.values(), models
    assert models.get(views[0]["model_id"]) == "HBoxModel", (views, models)
    # the bar is not the text one (tqdm.std writes `hpsearch: ...%|...|` to stderr)
    text = "".join(msg["content"]["text"] for msg in messages if msg["msg_type"] == "stream")
    assert "hpsearch:" not in text, text
    # it ran to the end: the bar's last value is the number of trials, and tqdm closed it as done
    # (`bar_style` "success"; "danger" is a bar closed short of its total)
    updates = [
        msg["content"]["data"]["state"]
        for msg in messages
        if msg["msg_type"] in ("comm_open", "comm_msg")
        and models.get(msg["content"]["comm_id"], "").endswith("ProgressModel")
        and "state" in msg["content"]["data"]
    ]
    values = [state["value"] for state in updates if "value" in state]
    styles = [state["bar_style"] for state in updates if "bar_style" in state]
    assert values and values[-1] == N_TRIALS, values
    assert styles and styles[-1] == "success", styles


class TableParser(HTMLParser):
    """The header cells' texts and the body rows of the first `<table>` in a piece of HTML."""

    def __init__(self):
        super().__init__()
        self.tables = 0
        self.section: str | None = None  # "thead", "tbody" or None (a row outside both)
        self.rows: list[tuple[str | None, list[tuple[str, str]]]] = []  # (section, [(tag, text)])
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables += 1
        if self.tables != 1:
            return
        if tag in ("thead", "tbody"):
            self.section = tag
        elif tag == "tr":
            self.rows.append((self.section, []))
        elif tag in ("th", "td") and self.rows:
            self.cell = []
            self.rows[-1][1].append((tag, ""))

    def handle_endtag(self, tag):
        if self.tables != 1:
            return
        if tag in ("thead", "tbody"):
            self.section = None
        elif tag in ("th", "td") and self.cell is not None and self.rows:
            self.rows[-1][1][-1] = (tag, "".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)

    def header(self) -> list[str]:
        head = [row for section, row in self.rows if section == "thead"] or self.rows[:1]
        return [text for row in head for _, text in row]

    def body(self) -> list[list[str]]:
        if any(section == "tbody" for section, _ in self.rows):
            return [[text for _, text in row] for section, row in self.rows if section == "tbody"]
        return [[text for _, text in row] for section, row in self.rows[1:]]


def test_run_summary_displays_as_the_leaderboard_table(notebook):
    kc, _ = notebook
    messages = execute(kc, "best.run_summary")
    results = [msg["content"]["data"] for msg in messages if msg["msg_type"] == "execute_result"]
    assert len(results) == 1, [msg["msg_type"] for msg in messages]
    html = results[0].get("text/html")
    assert html, f"no text/html representation: {sorted(results[0])}"
    table = TableParser()
    table.feed(html)
    assert table.tables >= 1, html
    header = table.header()
    assert {"number", "state", "objective"} <= set(header), header
    rows = table.body()
    assert len(rows) == N_TRIALS, rows
    # the rows are the trials: the `number` column holds each trial's number once
    numbers = sorted(row[header.index("number")] for row in rows)
    assert numbers == [str(i) for i in range(N_TRIALS)], (header, rows)


def test_the_notebook_example_runs_cell_by_cell_at_a_tiny_size(tmp_path):
    """examples/notebook.ipynb as a user runs it, its `parameters` cell set to 32 reviews and 2 trials."""
    cells = json.loads((Path(__file__).resolve().parents[1] / "examples" / "notebook.ipynb").read_text())["cells"]
    with running_kernel(tmp_path) as kc:
        for cell in (cell for cell in cells if cell["cell_type"] == "code"):
            tiny = "parameters" in cell["metadata"].get("tags", [])
            code = "TRAIN_SIZE, EVAL_SIZE, TRIALS = 32, 16, 2" if tiny else "".join(cell["source"])
            messages = execute(kc, code, timeout=600)  # a search's cell: minutes on a loaded machine
        shown = [msg["content"]["data"] for msg in messages if msg["msg_type"] == "execute_result"]
    assert "learning_rate" in shown[0]["text/plain"]  # the last cell: the best run's id, objective, parameters
    assert len(hpsearch.load_trials(tmp_path / "runs" / "notebook")) == 2
