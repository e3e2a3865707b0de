"""The optional libraries each backend needs, and the one command that installs each: the source of
the backends' `MissingExtra` errors and of `hpsearch doctor`.

W&B's sweep engine `sweeps` and SigOpt's embedded optimizer (`sigoptlite`, `libsigopt`, `qmcpy`) pin
old numpy in their metadata yet run on numpy 2: pip installs them with `--no-deps`, after the extra that
brings what they really need."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
import urllib.parse
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class Library:
    """A library an extra needs: its import name, its distribution (for its version), and the pinned
    `pip install --no-deps` it takes where its metadata is wrong (None: the extra brings it)."""

    module: str
    distribution: str
    no_deps: str | None = None


# extra -> the libraries it needs, in the order they are checked
EXTRAS: dict[str, tuple[Library, ...]] = {
    "ray": (Library("ray.tune", "ray"),),
    "wandb": (Library("wandb", "wandb"), Library("sweeps", "sweeps", "sweeps==0.3.0")),
    "sigopt": (
        Library("sigopt", "sigopt"),
        Library("sigoptlite", "sigoptlite", "sigoptlite==0.1.2 libsigopt==1.0.0 qmcpy==1.2"),
    ),
    "dashboard": (Library("optuna_dashboard", "optuna-dashboard"),),
}


def install_command(extra: str, library: Library) -> str:
    """What installs `library`: the extra, then (for a `--no-deps` library) the library itself."""
    command = extra_command(extra)
    return f"{command} && pip install --no-deps {library.no_deps}" if library.no_deps else command


def extra_command(extra: str) -> str:
    """The `pip install` of hpsearch's `extra`, from where this hpsearch came (`installed_from`)."""
    return f'pip install "{installed_from()}[{extra}]"'


def installed_from() -> str:
    """What pip installs this hpsearch from again: the checkout's folder or the wheel it was installed from (its
    `direct_url.json`), else its name on the package index."""
    try:
        direct = importlib.metadata.distribution("hpsearch").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return "hpsearch"
    url = json.loads(direct or "{}").get("url", "")
    return urllib.parse.unquote(urllib.parse.urlparse(url).path) if url.startswith("file://") else "hpsearch"


def import_error(library: Library) -> ImportError | None:
    """Why `library` cannot be imported here (None: it can)."""
    try:
        with warnings.catch_warnings():  # notices to the library's authors (sweeps' pydantic v1 config keys)
            warnings.simplefilter("ignore")
            importlib.import_module(library.module)
    except ImportError as e:
        return e
    return None


def version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing(extra: str) -> list[Library]:
    """The libraries of `extra` that cannot be imported here."""
    return [library for library in EXTRAS[extra] if import_error(library)]


def install_no_deps(library: Library) -> None:
    """Install a `--no-deps` library into this Python, as its `install_command` says."""
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps"]
    subprocess.run([*pip, *library.no_deps.split()], check=True)
    importlib.invalidate_caches()
