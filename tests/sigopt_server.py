"""A SigOpt-API server on 127.0.0.1 for the tests: the v1 REST routes the `sigopt` client calls,
answered by the `sigoptlite` optimizer (the hosted service is gone; sigopt-server needs docker).

Routes: POST /v1/experiments, GET /v1/experiments/{id}, POST /v1/experiments/{id}/suggestions,
POST /v1/experiments/{id}/observations, GET /v1/experiments/{id}/best_assignments; HTTP basic
auth with the API token as the user name, as the client sends it.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sigoptlite.driver import LocalDriver
from sigoptlite.models import FIXED_EXPERIMENT_ID


class SigOptServer:
    def __init__(self, token: str):
        self.token = token
        self.experiments: dict[str, LocalDriver] = {}
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> SigOptServer:
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.shutdown()
        self._http.server_close()

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = path.split("?")[0].strip("/").split("/")
        if parts[:2] != ["v1", "experiments"]:
            return 404, {"message": f"no route {method} {path}"}
        with self._lock:
            if len(parts) == 2 and method == "POST":
                experiment_id, driver = str(next(self._ids)), LocalDriver()
                self.experiments[experiment_id] = driver
                answer = driver.request("POST", ["experiments"], body, None)
            elif len(parts) >= 3 and parts[2] in self.experiments:
                route = ["experiments", FIXED_EXPERIMENT_ID, *parts[3:]]
                experiment_id, answer = parts[2], self.experiments[parts[2]].request(method, route, body, None)
            else:
                return 404, {"message": f"no experiment {parts[2:3]}"}
        if len(parts) <= 3:  # the experiment itself: under the id this server gave it
            answer = {**answer, "id": experiment_id}
        return 200, answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                server.requests.append((method, self.path))
                expected = "Basic " + base64.b64encode(f"{server.token}:".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._send(401, {"message": "Invalid API token"})
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                try:
                    status, answer = server.answer(method, self.path, body)
                except Exception as e:  # the client shows the message, as with the real service
                    status, answer = 400, {"message": str(e)}
                self._send(status, answer)

            def _send(self, status: int, answer: Any) -> None:
                data = json.dumps(answer, default=_jsonable).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "__dataclass_fields__"):
        from sigoptlite.models import dataclass_to_dict

        return dataclass_to_dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
