"""A real OpenAI-compatible HTTP server (``http.server`` in a thread on 127.0.0.1) that answers
chat completions from a script: for each request it finds the case by the request's user
message and sends that case's next planted answer (content and ``finish_reason``).

It speaks the protocol the client reads (``/v1/models``, ``/version``,
``/v1/chat/completions`` in the OpenAI chat-completions shape) and records every request body,
so a test can check what the suite sent.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "planted-errors"
VERSION = "planted-1.0"


@dataclass(frozen=True)
class Answer:
    content: str
    finish_reason: str = "stop"


@dataclass
class Script:
    """Planted answers per user message; ``default`` answers any other request."""

    answers: dict[str, deque[Answer]] = field(default_factory=dict)
    default: Callable[[dict[str, Any]], Answer] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> Answer:
        user = next((m["content"] for m in body.get("messages", [])
                     if m.get("role") == "user"), "")
        with self.lock:
            self.requests.append(body)
            queue = self.answers.get(user)
            if queue:
                return queue.popleft()
        if self.default is None:
            raise LookupError("no planted answer for this request")
        return self.default(body)


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, doc: Any) -> None:
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            elif self.path == "/version":
                self._send(200, {"version": VERSION})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": "not found"})
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                a = script.answer(body)
            except LookupError as e:
                self._send(500, {"error": {"message": str(e)}})
                return
            self._send(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                             "model": MODEL,
                             "choices": [{"index": 0, "finish_reason": a.finish_reason,
                                          "message": {"role": "assistant",
                                                      "content": a.content}}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    return Handler


@contextmanager
def planted_server(script: Script) -> Iterator[str]:
    """Serve ``script`` on a free port of 127.0.0.1; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
