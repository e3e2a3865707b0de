"""The code's layout, as the table in docs/contributing.md describes it: one module per concept,
imported without a cycle; no backend writes to the study store; optuna's private
attributes only where no public API exists, each said so."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import hpsearch

PACKAGE = Path(hpsearch.__file__).parent
LAYOUT_TABLE = PACKAGE.parents[1] / "docs" / "contributing.md"
MODULES = {
    str(path.relative_to(PACKAGE).with_suffix("")): path
    for path in sorted(PACKAGE.rglob("*.py"))
    if path.relative_to(PACKAGE) != Path("backends/__init__.py")
}


def test_the_layout_table_names_every_module_and_only_those():
    named = re.findall(r"^\| `([\w/]+)` \|", LAYOUT_TABLE.read_text(), flags=re.MULTILINE)
    assert sorted(named) == sorted(MODULES)


def _imports(path: Path) -> set[str]:
    """The hpsearch modules `path` imports when it is imported (not inside functions, nor for type checkers)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hpsearch"):
            base = node.module.removeprefix("hpsearch").lstrip(".").replace(".", "/")
            for alias in node.names:
                submodule = f"{base}/{alias.name}".lstrip("/")
                found.add(submodule if submodule in MODULES else base or "__init__")
    return found - {"__init__"}


def test_modules_import_each_other_without_a_cycle():
    graph = {name: _imports(path) for name, path in MODULES.items() if name != "__init__"}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for imported in graph.get(name, ()):
                visit(imported, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())


def test_no_backend_writes_to_the_study_store():
    writers = re.compile(r"create_new_trial|set_trial_|set_study_|set_user_attr|\.tell\(|_storage|store\.finish")
    for name, path in MODULES.items():
        if name.startswith("backends/"):
            assert not writers.findall(path.read_text()), name


def test_optunas_private_attributes_only_where_no_public_api_exists_each_said_so():
    private = re.compile(r"\._(storage|study_id|trial_id|thread_local|cached_frozen_trial)\b|\.get_storage\(")
    uses = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if private.search(line) and "self._study_id" not in line:
                uses.append(name)
                said = " ".join(lines[max(0, i - 3) : i + 1]).lower()
                assert "private" in said or "internal" in said, f"{name}:{i + 1} uses optuna's private API unsaid"
    assert len(uses) <= 3, uses
