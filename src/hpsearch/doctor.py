"""`hpsearch doctor`: what this environment can run (each backend and its versions, torch's build and the
GPUs it sees, a storage), and, with `--fix`, the installs pip cannot do from hpsearch's extras alone."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass

from hpsearch import extras

# the backend each extra brings (the dashboard is a command, not a backend)
USES = {extra: f'backend "{extra}"' for extra in ("ray", "wandb", "sigopt")} | {"dashboard": "hpsearch dashboard"}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: what was checked, whether it works, what it found or how to fix it."""

    what: str
    ok: bool
    detail: str
    required: bool = False  # hpsearch cannot run at all without it

    def line(self) -> str:
        return f"{'ok' if self.ok else 'missing':8} {self.what}: {self.detail}"


def checks(storage: str | None = None) -> list[Check]:
    """Every check, in the order the report prints them."""
    found = [_core("transformers"), _core("optuna"), _torch()]
    found += [_extra(extra) for extra in extras.EXTRAS]
    return [*found, _storage(storage)] if storage else found


def fix() -> list[str]:
    """Install the `--no-deps` libraries of every extra whose own libraries are here; what was done, or
    what the user must run first."""
    done = []
    for extra in extras.EXTRAS:
        absent = extras.missing(extra)
        if any(library.no_deps is None for library in absent):
            then = ", then hpsearch doctor --fix" if any(library.no_deps for library in extras.EXTRAS[extra]) else ""
            done.append(f'{USES[extra]}: not installed by --fix; run pip install "hpsearch[{extra}]"{then}')
            continue
        for library in absent:
            extras.install_no_deps(library)
            done.append(f"{USES[extra]}: installed {library.no_deps} (--no-deps)")
    return done


def header() -> str:
    import hpsearch

    return f"hpsearch {hpsearch.__version__} on Python {platform.python_version()} ({sys.executable})"


def _core(distribution: str) -> Check:
    version = extras.version(distribution)
    fix = f'pip install "hpsearch" (it depends on {distribution})'
    return Check(distribution, version is not None, version or fix, required=True)


def _torch() -> Check:
    try:
        import torch
    except ImportError:
        return Check("torch", False, "not installed: pip install torch", required=True)
    gpus = torch.cuda.device_count()
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    seen = ", ".join(torch.cuda.get_device_name(i) for i in range(gpus)) if gpus else "no GPU visible"
    return Check("torch", True, f"{torch.__version__}, {build}, {seen}", required=True)


def _extra(extra: str) -> Check:
    absent = extras.missing(extra)
    if absent:
        fixes = "; ".join(extras.install_command(extra, library) for library in absent)
        can_fix = all(library.no_deps for library in absent)
        return Check(USES[extra], False, fixes + (" (or: hpsearch doctor --fix)" if can_fix else ""))
    versions = (f"{library.distribution} {extras.version(library.distribution)}" for library in extras.EXTRAS[extra])
    return Check(USES[extra], True, ", ".join(versions))


def _storage(url: str) -> Check:
    from hpsearch import store

    what = f"storage {store.hide_password(url)}"
    try:
        studies = store.open_storage(url).get_all_studies()
    except Exception as e:  # what the database driver says is the diagnosis (store's errors hide the password)
        return Check(what, False, f"not reachable: {e}")
    return Check(what, True, f"reachable, {len(studies)} studies")
