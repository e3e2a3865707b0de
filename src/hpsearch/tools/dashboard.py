"""`hpsearch dashboard`: the study store served live by optuna-dashboard.

The store is a plain optuna study, and what hpsearch keeps beside each trial (its error text,
its owner) and beside the study (the best model's path) are user attributes, so the well-kept
dashboard shows all of it; hpsearch only finds the store and starts the server.
"""

from __future__ import annotations

import contextlib
import os
import wsgiref.simple_server
from pathlib import Path

from hpsearch import extras
from hpsearch.errors import ConfigError, MissingExtra
from hpsearch.study import store

DEFAULT_HOST = "127.0.0.1"  # this machine only: a dashboard can change a study (notes, deletions)
DEFAULT_PORT = 8080


def storage_of(target: str | os.PathLike) -> str:
    """The storage URL of a search's output directory (its `hpsearch.db`), or `target` itself when it is a
    storage URL. Fails, saying so, where no study store is: a dashboard on a new empty database would
    show nothing, forever."""
    target = str(target)
    if "://" not in target:
        if not (Path(target) / store.STORE_FILE).is_file():
            raise ConfigError(
                f"No hpsearch study in {target!r}: {store.STORE_FILE} is missing. Pass the `output_dir` of a search "
                "(start the search first), or its storage URL (sqlite:///..., postgresql://...)."
            )
        return store.storage_url(target)
    if target.startswith("sqlite:///") and not Path(target[len("sqlite:///") :].split("?", 1)[0]).is_file():
        raise ConfigError(f"No study store at {target!r}: the SQLite file does not exist. Start the search first.")
    return target


def serve(target: str | os.PathLike, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the studies of `target` (an output directory or a storage URL) at http://host:port/ until
    Ctrl-C; the pages read the store on every refresh, so a running search shows as it goes.
    (optuna-dashboard's WSGI app on the standard library's server, as its `run_server` does, bound
    before the address is printed.)"""
    url = storage_of(target)
    (library,) = extras.EXTRAS["dashboard"]
    if error := extras.import_error(library):
        raise MissingExtra(
            f"`hpsearch dashboard` needs optuna-dashboard, which is not installed: "
            f"{extras.install_command('dashboard', library)}."
        ) from error
    import optuna_dashboard

    app = optuna_dashboard.wsgi(store.open_storage(url))
    try:
        server = wsgiref.simple_server.make_server(host, port, app, handler_class=_QuietHandler)
    except OSError as e:
        raise ConfigError(f"Cannot serve the dashboard at {host}:{port}: {e.strerror}. Pass another --port.") from None
    print(f"hpsearch dashboard: http://{host}:{port}/ serves {store.hide_password(url)}; Ctrl-C to stop.", flush=True)
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    """No line per request: the page polls the API every second."""

    def log_message(self, format: str, *args: object) -> None:
        pass
