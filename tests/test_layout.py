"""The code's layout, as the table in docs/contributing.md describes it: one module per concept,
imported without a cycle; no backend writes to the study store; every persisted key in `schema`; every
library internal in `compat`; `SearchFailed` made in `failures` only; a logger per module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import hpsearch
from hpsearch.backends.base import Backend
from hpsearch.executors.base import PLACING, placing
from hpsearch.executors.in_process import InProcess

PACKAGE = Path(hpsearch.__file__).parent
LAYOUT_TABLE = PACKAGE.parents[1] / "docs" / "contributing.md"
MODULES = {
    str(path.relative_to(PACKAGE).with_suffix("")): path
    for path in sorted(PACKAGE.rglob("*.py"))
    if path.name != "__init__.py" or path.parent == PACKAGE  # a subpackage's says what its modules share
}


def test_the_layout_table_names_every_module_and_only_those():
    named = re.findall(r"^\| `([\w/]+)` \|", LAYOUT_TABLE.read_text(), flags=re.MULTILINE)
    assert sorted(named) == sorted(MODULES)


def _imports(path: Path, for_type_checkers: bool = False) -> set[str]:
    """The hpsearch modules `path` imports, at its top or inside its functions (and those for type checkers)."""
    tree = ast.parse(path.read_text())
    typing_only = set() if for_type_checkers else {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }  # fmt: skip
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hpsearch"):
            base = node.module.removeprefix("hpsearch").lstrip(".").replace(".", "/")
            for alias in node.names:
                submodule = f"{base}/{alias.name}".lstrip("/")
                found.add(submodule if submodule in MODULES else base or "__init__")
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("hpsearch.").replace(".", "/") for a in node.names if a.name.startswith("hpsearch.")
            }
    return found - {"__init__"}


def _cycles(for_type_checkers: bool) -> set[frozenset[str]]:
    """The modules of each import cycle."""
    graph = {name: _imports(path, for_type_checkers) for name, path in MODULES.items() if name != "__init__"}
    found: set[frozenset[str]] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            found.add(frozenset(path[path.index(name) :]))
            return
        for imported in graph.get(name, ()):
            visit(imported, (*path, name))

    for name in graph:
        visit(name, ())
    return found


def test_modules_import_each_other_without_a_cycle():
    assert not _cycles(for_type_checkers=False)


def test_type_checkers_see_no_cycle_either():
    """Counting the imports under TYPE_CHECKING too: executors know no `engine` (what they get of a search is the
    place they run it at and the blueprint other places build it from: `executors.base.Place`, `Blueprint`), Ray
    Client's outbox no `ray_tune` (it delivers to an `EventSink`)."""
    assert not _cycles(for_type_checkers=True)
    executors = [name for name in MODULES if name.startswith("executors/")]
    assert all("engine" not in _imports(MODULES[name], for_type_checkers=True) for name in executors)


def test_search_failed_is_made_in_the_failure_policy_only():
    """One failure policy for every path: in this process, worker processes and Ray (issue 26)."""
    for name, path in MODULES.items():
        if name not in ("loop/failures", "errors"):
            assert "SearchFailed(" not in path.read_text(), name


def test_a_trials_decision_is_made_in_the_decision_module_only():
    """Each report's `Decision` is made once, in `loop.decision`: elsewhere a decision to pause or prune is only
    carried out (compared with `is`), never made; no other module judges a rung or asks the backend's pruner."""
    for name, path in MODULES.items():
        if name == "loop/decision":
            continue
        tree = ast.parse(path.read_text())
        compared = {id(c) for node in ast.walk(tree) if isinstance(node, ast.Compare) for c in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and ast.unparse(node) in ("Decision.PAUSE", "Decision.PRUNE"):
                assert id(node) in compared, f"{name} decides: {ast.unparse(node)}"
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in ("judge", "verdict"):
                assert name == "loop/halving", f"{name} judges a rung: {ast.unparse(node)}"
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "self.backend.report":
                raise AssertionError(f"{name} asks the backend's pruner: {ast.unparse(node)}")


def test_one_progress_bar_for_every_executor():
    """The bar is made in `hpsearch.loop.progress` only: the loop in this process and the worker processes' watcher
    show the same one."""
    for name, path in MODULES.items():
        if name != "loop/progress":
            assert not re.search(r"\btqdm\(", path.read_text()), name


def test_ddp_ranks_talk_in_one_module_only():
    """DDP is an executor: every collective between ranks (rank 0's word broadcast) is in `executors/ranks`."""
    talking = [name for name, path in MODULES.items() if "broadcast" in path.read_text()]
    assert talking == ["executors/ranks"]


def test_backends_see_the_study_through_their_contract_not_lifecycle():
    """A backend (what to try) reads the study through `backends.base.StudyView` and `StartedTrial`; the trials are
    written where they run, by the executors (Ray Tune's `Mirror` too)."""
    backends = [name for name in MODULES if name.startswith("backends/")]
    assert [name for name in backends if "study/lifecycle" in _imports(MODULES[name], for_type_checkers=True)] == []
    assert [name for name in backends if any(i.startswith("executors") for i in _imports(MODULES[name]))] == []


def test_a_backend_names_the_executor_its_library_needs_and_the_loop_drives_every_other():
    """No backend runs trials (`Backend` has no loop of its own to drive): Ray Tune's and a W&B server's agent are the
    executors a backend names with `placed_by` (`executors.base.PLACING`), each running its trials through the loop."""
    assert not hasattr(Backend, "drive")
    assert {name: type(placing(name)).__name__ for name in PLACING} == {
        "ray-tune": "RayTune",
        "wandb-agent": "WandbAgent",
    }
    assert all(isinstance(placing(name), InProcess) for name in PLACING)  # the loop at this place, the library's way


def test_each_subpackage_says_whether_it_is_internal():
    """The layout shows the architecture: a subpackage per part, and its `__init__` says what it holds and whether
    users import from it (`backends/base` and `executors/base` are contracts users extend)."""
    packages = sorted({path.parent for path in PACKAGE.rglob("*.py") if path.parent != PACKAGE})
    assert [p.name for p in packages] == ["backends", "executors", "loop", "study", "tools", "trainer"]
    for package in packages:
        said = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
        assert said.startswith("Internal") == (package.name in ("loop", "study", "trainer")), package.name


def test_every_key_a_study_keeps_is_spelt_in_the_schema_only():
    """Keys are `hpsearch:<name>` (format 1's dotted ones are read there too; Ray's result keys `hpsearch_<name>`):
    no literal of one elsewhere."""
    key = re.compile(r"[\"']hpsearch[:._](?!db\b)[a-z_]+(?!\.py)[\"':]")
    for name, path in MODULES.items():
        if name != "study/schema":
            assert not key.findall(path.read_text()), name


def test_every_module_logs_under_its_own_name():
    """`logging.getLogger(__name__)`: a user can quiet one module (`hpsearch.executors.workers`) or all (`hpsearch`)."""
    for name, path in MODULES.items():
        assert 'getLogger("hpsearch")' not in path.read_text(), name


def test_no_backend_writes_to_the_study_store():
    writers = re.compile(r"create_new_trial|set_trial_|set_study_|set_user_attr|\.tell\(|_storage|store\.finish")
    for name, path in MODULES.items():
        if name.startswith("backends/"):
            assert not writers.findall(path.read_text()), name


# The libraries' internals hpsearch touches, all in `hpsearch.compat` (each checked by tests/test_compat.py)
INTERNALS = re.compile(
    r"\._(storage|trial_id|thread_local|cached_frozen_trial|train_batch_size|reset_state|backend)\b|get_storage\("
    r"|\"fixed_params\"|DEFAULT_CALLBACKS|\.prediction_bar\b|x_disable_stats|\.error_file\b|\.get_error\("
    r"|\.last_result\b|optuna\.Trial\(|trial_heartbeats"
)


def test_library_internals_are_touched_in_compat_only_and_counted():
    for name, path in MODULES.items():
        if name != "compat":
            assert not INTERNALS.findall(path.read_text()), name
    found = {match.group(0) for match in INTERNALS.finditer(MODULES["compat"].read_text())}
    assert found == {
        *(
            "._storage",
            "._backend",
            "._thread_local",
            "optuna.Trial(",
            '"fixed_params"',
            "get_storage(",
            "trial_heartbeats",
        ),
        *("._train_batch_size", "DEFAULT_CALLBACKS", ".prediction_bar", "._reset_state"),
        *(".error_file", ".get_error(", ".last_result", "x_disable_stats"),
    }
