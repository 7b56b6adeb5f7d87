"""A stand-in OpenAI-compatible chat-completions server, for tests, benchmarks and dry runs without a model.

It speaks the protocol ``generate_descriptions.py`` uses (``POST /v1/chat/completions``), checks each
request's shape (model, messages, an image_url data URL that decodes as an image, max_tokens) and
answers 400 when it is wrong. Its replies are canned text that say they come from this stub: they
describe nothing and must never end up in a training corpus.

    python scripts/mllm_stub_server.py --port 8000 --latency 0.2     # endpoint http://127.0.0.1:8000/v1

In Python (the server runs in a thread of the calling process)::

    with StubServer(latency=0.2, faults={"img3": ["429", "500"]}) as server:
        ...  # server.url, server.requests, server.attempts, server.max_in_flight

Faults are chosen per image and attempt: ``faults[key][n]`` is what the (n+1)-th request for the image
``key`` gets; later requests succeed. ``key`` is ``identify(image)`` of the decoded request image
(default: a hash of the data URL). Kinds: ``ok``, ``slow`` (sleeps ``slow_seconds`` first), ``429``
(with a short retry-after), ``500``, ``503``, ``400``, ``401``, ``drop`` (closes the connection unanswered),
``malformed`` (a 200 whose body is not JSON), ``no_choices``, ``empty`` (empty content), ``refusal``
(an apology), ``content_filter`` (finish_reason content_filter).
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Sequence

from PIL import Image

FAULTS = ("ok", "slow", "429", "500", "503", "400", "401", "drop", "malformed", "no_choices", "empty",
          "refusal", "content_filter")
STUB_TEXT = ("[stub reply {n}] This text comes from mllm_stub_server.py, not from a model; it is a "
             "placeholder and describes nothing.")
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."


class BadRequest(ValueError):
    """The request does not have the chat-completions shape."""


def check_request(body: Any) -> Dict[str, Any]:
    """Validate a chat-completions body with one image; return {'system', 'user', 'image'} or raise."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("'model' must be a non-empty string")
    tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
        raise BadRequest("'max_tokens' must be a positive integer")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    system, user, image = "", "", None
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise BadRequest(f"bad message {str(m)[:80]!r}: needs a role system/user/assistant")
        content = m.get("content")
        if isinstance(content, str):
            system, user = (content, user) if m["role"] == "system" else (system, user + content)
            continue
        if not isinstance(content, list):
            raise BadRequest("message content must be text or a list of parts")
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                user += part["text"]
            elif kind == "image_url" and isinstance(part.get("image_url"), dict):
                image = _decode_data_url(part["image_url"].get("url"))
            else:
                raise BadRequest(f"bad content part {str(part)[:80]!r}")
    if image is None:
        raise BadRequest("no image_url part in the messages")
    return {"system": system, "user": user, "image": image}


def _decode_data_url(url: Any) -> Dict[str, Any]:
    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
        raise BadRequest("image_url.url must be a data:image/...;base64, URL")
    try:
        raw = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            return {"url": url, "size": img.size, "pil": img.convert("RGB")}
    except (binascii.Error, OSError, ValueError) as exc:
        raise BadRequest(f"image_url data does not decode as an image: {exc}") from exc


def _hash_key(image: Dict[str, Any]) -> str:
    return hashlib.sha1(image["url"].encode()).hexdigest()[:12]


class StubServer:
    """OpenAI-compatible chat-completions server on 127.0.0.1 in a background thread.

    Args:
        latency: seconds each answered request waits before replying (a model's generation time).
        faults: ``{key: [fault of attempt 1, fault of attempt 2, ...]}`` (see the module docstring).
        identify: maps the decoded request image (PIL RGB) to its ``key``; default: data-URL hash.
        slow_seconds: how long a ``slow`` fault waits (longer than the client's time-out).
        port: 0 picks a free port.
    """

    def __init__(self, latency: float = 0.0, faults: Optional[Dict[Any, Sequence[str]]] = None,
                 identify: Optional[Callable[[Image.Image], Any]] = None, slow_seconds: float = 3.0,
                 port: int = 0) -> None:
        bad = {f for seq in (faults or {}).values() for f in seq} - set(FAULTS)
        if bad:
            raise ValueError(f"unknown fault(s) {sorted(bad)}; known: {FAULTS}")
        self.latency, self.slow_seconds = latency, slow_seconds
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.identify = identify
        self.requests: List[Dict[str, Any]] = []  # valid requests: key, attempt, fault, system, user, body
        self.attempts: Dict[Any, int] = {}
        self.rejected: List[str] = []             # reasons of the 400s for a bad shape
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", port), _make_handler(self))
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        """The base URL clients are given (``.../v1``)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "StubServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mllm-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "StubServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def admit(self, parsed: Dict[str, Any], body: Dict[str, Any]) -> Dict[str, Any]:
        """Record a valid request and choose its fault; counts it as in flight until ``release``."""
        image = parsed["image"]
        key = self.identify(image["pil"]) if self.identify else _hash_key(image)
        with self._lock:
            attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
            plan = self.faults.get(key, [])
            fault = plan[attempt - 1] if attempt <= len(plan) else "ok"
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            record = {"n": len(self.requests) + 1, "key": key, "attempt": attempt, "fault": fault,
                      "system": parsed["system"], "user": parsed["user"], "image_size": image["size"],
                      "model": body["model"], "max_tokens": body.get("max_tokens"),
                      "temperature": body.get("temperature"), "time": time.time()}
            self.requests.append(record)
        return record

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _QuietServer(ThreadingHTTPServer):
    """Threaded server that does not print a traceback when a client gave up (timed out) mid-reply."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _make_handler(server: StubServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else a reply's header and body segments wait ~40 ms on delayed ACKs

        def log_message(self, *args: Any) -> None:  # keep test and benchmark output clean
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
            else:
                self._send(404, _error("not found", "not_found"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._send(404, _error(f"no route {self.path}", "not_found"))
            try:
                body = json.loads(raw)
                parsed = check_request(body)
            except (ValueError, BadRequest) as exc:  # JSONDecodeError is a ValueError
                server.rejected.append(str(exc))
                return self._send(400, _error(str(exc), "invalid_request_error"))
            record = server.admit(parsed, body)
            try:
                time.sleep(server.latency + (server.slow_seconds if record["fault"] == "slow" else 0.0))
                self._reply(record)
            finally:
                server.release()

        def _reply(self, record: Dict[str, Any]) -> None:
            fault = record["fault"]
            if fault == "drop":
                self.close_connection = True
                return
            if fault in ("429", "500", "503", "400", "401"):
                headers = {"retry-after": "0", "retry-after-ms": "20"} if fault == "429" else {}
                return self._send(int(fault), _error(f"stub fault {fault}", "stub"), headers)
            if fault == "malformed":
                return self._send_raw(200, b'{"id": "chatcmpl-stub", "choices": [', "application/json")
            text = {"empty": "", "refusal": REFUSAL_TEXT}.get(fault, STUB_TEXT.format(n=record["n"]))
            choices = [] if fault == "no_choices" else [{
                "index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": "content_filter" if fault == "content_filter" else "stop"}]
            self._send(200, {"id": f"chatcmpl-stub-{record['n']}", "object": "chat.completion",
                             "created": int(time.time()), "model": record["model"], "choices": choices,
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

        def _send(self, status: int, payload: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> None:
            self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

        def _send_raw(self, status: int, data: bytes, ctype: str,
                      headers: Optional[Dict[str, str]] = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _error(message: str, kind: str) -> Dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": None}}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Serve canned (stub) chat-completions replies on "
                                     "127.0.0.1 for dry runs of generate_descriptions.py without a model.")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default: 8000)")
    parser.add_argument("--latency", type=float, default=0.2,
                        help="seconds before each reply, like a model generating (default: 0.2)")
    args = parser.parse_args(argv)
    server = StubServer(latency=args.latency, port=args.port).start()
    print(f"stub chat-completions endpoint: {server.url} (replies are placeholders); Ctrl-C stops",
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        print(f"served {len(server.requests)} requests, {len(server.rejected)} rejected")


if __name__ == "__main__":
    main()
