"""Shared fixtures: a tiny BERT built from a config and a small sentiment task it can learn."""

from __future__ import annotations

import contextlib
import gc
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
# Ray on loopback only (read when ray is first imported): the tests' clusters stay on 127.0.0.1.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Test processes (pytest-xdist) share the cores: torch's default of one OpenMP thread per core in each
# would oversubscribe them (a trial's worker process still gets its share from the executor).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _cores_each = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _cores_each)))

WORDS_POS = ["good", "great", "fine", "superb", "lovely"]
WORDS_NEG = ["bad", "awful", "poor", "dull", "boring"]
WORDS_FILL = ["the", "movie", "plot", "was", "and", "a", "film", "cast", "very", "quite"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS_POS, *WORDS_NEG, *WORDS_FILL]


# The modules whose tests take longest (a minute or more in all; each test starting processes, or Ray), run first.
# pytest-xdist's `worksteal` hands each test process a contiguous part of the collection, then moves tests from the
# end of one's queue to the other as it runs out: with the long tests first, the session ends on short ones rather
# than with one process waiting for the other's long test (in alphabetical order, test_workers'). Order only.
LONG_FIRST = (
    "tests/test_examples.py",
    "tests/test_bench.py",
    "tests/test_ray.py",
    "tests/test_install.py",
    "tests/test_ddp.py",
    "tests/reliability/test_faults.py",
    "tests/test_workers.py",
    "tests/test_ray_node_loss.py",
)


def pytest_collection_modifyitems(session, config, items):
    """The LONG_FIRST modules first, in its order; each module's tests, and the other modules, in their own."""
    rank = {module: i for i, module in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_collection_finish(session):
    """The libraries the tests imported hold ~500k long-lived objects: freeze them out of the garbage
    collector's sight, so that the full collection each trial runs to release its model (several per
    test) costs milliseconds, not half a second, however long the session."""
    gc.collect()
    gc.freeze()


def make_sentences(n: int, seed: int) -> list[tuple[str, int]]:
    """Sentences labelled 1 when they hold a positive word, 0 for a negative one."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(WORDS_FILL) for _ in range(rng.randint(3, 7))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(WORDS_POS if label else WORDS_NEG))
        rows.append((" ".join(words), label))
    return rows


class ListDataset:
    """A torch-style dataset of tokenized examples (what `Trainer` takes)."""

    def __init__(self, tokenizer, rows: list[tuple[str, int]]):
        self.items = [dict(tokenizer(text, truncation=True, max_length=16), labels=label) for text, label in rows]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def build_tiny_model(path: Path, hidden_size: int = 32, layers: int = 2) -> Path:
    """Save a small BERT (2 layers of 32 by default) and its WordPiece tokenizer to `path`, like a
    pretrained model."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(VOCAB)})
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden_size + 5,
        max_position_embeddings=32,
        num_labels=2,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def train_dataset(tokenizer):
    return ListDataset(tokenizer, make_sentences(96, seed=1))


@pytest.fixture(scope="session")
def eval_dataset(tokenizer):
    return ListDataset(tokenizer, make_sentences(128, seed=2))


@pytest.fixture(autouse=True)
def same_environment():
    """Each test starts from the same environment: searches set variables, as the libraries under
    them do (W&B's `WANDB_PROJECT`, ...)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def uninstall(monkeypatch):
    """Make a library look not installed: importing it (or any of its modules) raises ImportError."""

    def hide(name: str) -> None:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")] + [name]:
            monkeypatch.setitem(sys.modules, module, None)

    return hide


@pytest.fixture
def libsigopt_as_released(monkeypatch):
    """libsigopt as its last release runs on numpy 2: without hpsearch's shim (`compat.numpy_1_for_libsigopt`)."""
    import importlib

    import numpy

    from hpsearch import compat

    monkeypatch.setattr(compat, "numpy_1_for_libsigopt", lambda: None)
    for name in compat.NUMPY_1_CALLERS:
        monkeypatch.setattr(importlib.import_module(name), "numpy", numpy)


def compute_metrics(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


@pytest.fixture
def make_trainer(tiny_model_dir, tokenizer, train_dataset, eval_dataset, tmp_path):
    """Build an `hpsearch.Trainer` on the tiny task; keyword arguments override the defaults."""

    def make(model_init=None, trainer_class=None, **args_overrides):
        from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, TrainingArguments

        import hpsearch

        def default_model_init(trial):
            return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)

        args = dict(
            output_dir=str(tmp_path / "out"),
            num_train_epochs=2,
            per_device_train_batch_size=8,
            per_device_eval_batch_size=32,
            learning_rate=1e-2,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            seed=0,
        )
        args.update(args_overrides)
        return (trainer_class or hpsearch.Trainer)(
            model=None,
            args=TrainingArguments(**args),
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            compute_metrics=compute_metrics,
            processing_class=tokenizer,
            model_init=model_init or default_model_init,
            data_collator=DataCollatorWithPadding(tokenizer),
        )

    return make


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (a fixed one may be another run's)."""
    return _free_port()


def _ray_start(*options: str, env: dict[str, str] | None = None, base: dict[str, str] | None = None) -> str:
    """`ray start` with `options`, its temp dir of its own (so that its processes can be found and killed); the
    temp dir. Its workers import this checkout (its `src` first) as the tests do, in `base` (default: this process's
    environment) with `env`."""
    ray = Path(sys.executable).with_name("ray")
    root = Path(__file__).resolve().parents[1]
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    path = os.pathsep.join([str(root / "src"), str(root)])
    env = {**(os.environ if base is None else base), "RAY_AUTH_MODE": "disabled", "PYTHONPATH": path, **(env or {})}
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats", f"--temp-dir={temp_dir}"]
    try:
        started = subprocess.run([str(ray), "start", *common, *options], env=env, capture_output=True, timeout=120)
    except BaseException:
        _kill_ray(temp_dir)
        raise
    if started.returncode != 0:
        _kill_ray(temp_dir)
        raise RuntimeError(f"`ray start {' '.join(options)}` failed: {started.stderr.decode()[-3000:]}")
    return temp_dir


def _ray_processes(temp_dir: str) -> list[psutil.Process]:
    """The processes of the Ray node started with `temp_dir` (its raylet, GCS, agents, log monitor), and their
    children (the workers, whose titles Ray rewrites)."""
    own = [p for p in psutil.process_iter(["cmdline"]) if temp_dir in " ".join(p.info["cmdline"] or ())]
    children = []
    for process in own:
        with contextlib.suppress(psutil.NoSuchProcess):
            children += process.children(recursive=True)
    return list({p.pid: p for p in own + children}.values())


def _kill_ray(temp_dir: str) -> None:
    """Kill the Ray node started with `temp_dir`: `ray stop` would kill every Ray on the machine, a local one that
    another test process runs at that moment included."""
    processes = _ray_processes(temp_dir)
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=30)
    shutil.rmtree(temp_dir, ignore_errors=True)


@contextlib.contextmanager
def _ray_head(*options: str, env: dict[str, str] | None = None, base: dict[str, str] | None = None):
    """A real Ray cluster on 127.0.0.1 (`ray start --head`), and its port; stopped by killing its own processes."""
    port = _free_port()
    options = ("--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false", *options)
    temp_dir = _ray_start(*options, env=env, base=base)
    try:
        yield port
    finally:
        _kill_ray(temp_dir)


# The environment the suite's tests start from (each test's own changes are undone after it: `same_environment`)
SUITE_ENVIRONMENT = dict(os.environ)


@pytest.fixture(scope="session")
def shared_ray():
    """One real Ray cluster per test process, with a Ray Client server, started the first time a test asks for one:
    the tests that search on a cluster share it, where starting a cluster (or a local Ray) costs seconds each. A
    search that joins it leaves it running, and its job's workers end with the search's connection."""
    client_port = _free_port()
    with _ray_head(f"--ray-client-server-port={client_port}", base=SUITE_ENVIRONMENT) as port:
        yield SimpleNamespace(address=f"127.0.0.1:{port}", client=f"ray://127.0.0.1:{client_port}")


@pytest.fixture
def ray_cluster(shared_ray):
    """A Ray cluster's address (the test process's: see `shared_ray`)."""
    return shared_ray.address


@pytest.fixture
def ray_client_server(shared_ray):
    """The address of a Ray cluster's Ray Client server (the test process's cluster's: see `shared_ray`)."""
    return shared_ray.client


@pytest.fixture
def on_ray_cluster(ray_cluster, monkeypatch):
    """The test's Ray searches join the test process's Ray cluster (`RAY_ADDRESS`, as a user's on a cluster) rather
    than each start a local Ray and shut it down (~4 s a search, more under load). For tests of what a Ray search
    does whatever Ray it runs on; the tests of the local Ray a search starts (a script run as written, the seed's
    example, ...) do without it. The cluster's workers see the suite's environment, not a variable the test sets."""
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster)
    return ray_cluster


@pytest.fixture
def ray_on_cluster(request):
    """For a test parametrized by `backend`: `on_ray_cluster` where it is "ray"."""
    if request.node.callspec.params.get("backend") == "ray":
        request.getfixturevalue("on_ray_cluster")


@pytest.fixture
def ray_two_nodes():
    """A Ray cluster of two nodes on 127.0.0.1: a head with 1 CPU and a worker node with 2 (its workers see
    HPSEARCH_TEST_NODE=worker). Yields its `address`, and `lose_worker_node()`, which kills that node's raylet and
    its children, as a machine lost."""
    # A node joins only where Ray clusters are on (the tests' loopback-only setting turns them off); then Ray listens
    # on every interface and the joining node finds the head at this machine's address. The nodes stay 127.0.0.1.
    clusters = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    with _ray_head("--num-cpus=1", env=clusters) as port:
        ports = [f"--{name}-port={_free_port()}" for name in WORKER_NODE_PORTS]
        env = {**clusters, "HPSEARCH_TEST_NODE": "worker"}
        worker = _ray_start(f"--address=127.0.0.1:{port}", "--num-cpus=2", *ports, env=env)
        try:
            yield SimpleNamespace(address=f"127.0.0.1:{port}", lose_worker_node=lambda: _kill_ray(worker))
        finally:
            _kill_ray(worker)


# a second node on the same machine needs ports of its own (the dashboard agent's default one is the head's)
WORKER_NODE_PORTS = ("node-manager", "object-manager", "dashboard-agent-listen", "dashboard-agent-grpc",
                     "metrics-export", "runtime-env-agent")  # fmt: skip


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL on 127.0.0.1, installed from Debian's packages when missing."""
    data = Path(tempfile.mkdtemp(prefix="hpsearch-postgres-"))  # pytest's tmp dirs are closed to `postgres`
    data.chmod(0o755)
    script = str(Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh")
    started = subprocess.run(["bash", script, "start", str(data / "db")], capture_output=True, text=True, timeout=600)
    assert started.returncode == 0, f"could not start PostgreSQL: {started.stderr[-2000:]}"
    yield started.stdout.strip()
    subprocess.run(["bash", script, "stop", str(data / "db")], capture_output=True, timeout=120)
    shutil.rmtree(data, ignore_errors=True)
