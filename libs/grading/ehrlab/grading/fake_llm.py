"""A scripted stand-in for an LLM vendor: OpenAI chat completions and Anthropic messages over HTTP.

For tests, benchmarks and offline demos of the LLM path — it speaks the wire protocols the official
SDKs use (`POST /v1/chat/completions`, `POST /v1/messages`), so the real client code runs. It is not
a model: notes copy the transcript's lines, and a criterion's satisfaction is the share of its
words found in the note (100 minus that for a negative criterion).

Behaviour per request comes from a script (a queue of faults, consumed in order, then `ok`):
`ok`, `malformed` (not JSON), `wrong_count` (one grade missing), `out_of_range` (satisfaction 150),
`rate_limit` (429), `server_error` (500), `auth` (401, echoing the key it was sent, as careless
servers do), `hang` (answers after `hang_s`: a client timeout). `latency_s` delays every answer.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("ok", "malformed", "wrong_count", "out_of_range", "rate_limit", "server_error", "auth", "hang")


@dataclass
class Seen:
    path: str
    authorization: str
    body: dict[str, Any]
    behaviour: str


@dataclass
class FakeLLM:
    latency_s: float = 0.0
    hang_s: float = 5.0
    script: deque[str] = field(default_factory=deque)
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, Nagle's algorithm and the client's
                # delayed ACK add 40 ms to every answer (real servers such as uvicorn set it too)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                key = self.headers.get("Authorization", "").removeprefix("Bearer ") or self.headers.get("x-api-key", "")
                status, answer = fake.answer(self.path, key, body)
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name="fake-llm").start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, behaviours: Iterable[str]) -> None:
        with self.lock:
            for behaviour in behaviours:
                if behaviour not in FAULTS:
                    raise ValueError(f"unknown behaviour {behaviour!r} (known: {', '.join(FAULTS)})")
                self.script.append(behaviour)

    def answer(self, path: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            behaviour = self.script.popleft() if self.script else "ok"
            self.requests.append(Seen(path, key, body, behaviour))
        time.sleep(self.hang_s if behaviour == "hang" else self.latency_s)
        if behaviour == "rate_limit":
            return 429, _error("rate_limit_error", "Rate limit reached, retry later")
        if behaviour == "server_error":
            return 500, _error("server_error", "The server had an error")
        if behaviour == "auth":
            return 401, _error("authentication_error", f"Incorrect API key provided: {key}")
        anthropic = path.rstrip("/").endswith("/messages")
        prompt = body["messages"][-1]["content"]
        grading = "Criteria (id. [sense] text)" in prompt
        content: Any = _grades(prompt, behaviour) if grading else _note(prompt)
        if behaviour == "malformed":
            content = "Sure! Here is the JSON you asked for: {grades: [..."
        return 200, (_anthropic(body, content) if anthropic else _openai(body, content))


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message, "code": kind}}


def _note(prompt: str) -> dict[str, str]:
    lines = [line.split(":", 1)[1].strip() for line in prompt.splitlines() if line.startswith(("PATIENT:", "DOCTOR:"))]
    said = [line for line in lines if not line.endswith("?")]
    half = max(1, len(said) // 2)
    return {"subjective": " ".join(said[:half]), "objective": " ".join(s for s in said[half:] if "find" in s),
            "assessment": " ".join(s for s in said[half:] if "think" in s), "plan": " ".join(said[half:])}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9/.]+", text.lower()) if len(w) > 3}


def _grades(prompt: str, behaviour: str) -> dict[str, Any]:
    note = prompt.split("The note:", 1)[1].split("Criteria (id. [sense] text):", 1)[0]
    criteria = re.findall(r"^(\d+)\. \[(POSITIVE|NEGATIVE)\] (.*)$", prompt, flags=re.M)
    found = _words(note)
    grades = []
    for number, sense, text in criteria:
        words = _words(text) or {text}
        present = 100.0 * len(words & found) / len(words)
        satisfaction = present if sense == "POSITIVE" else 100.0 - present
        grades.append({"id": int(number), "rationale": f"{len(words & found)} of {len(words)} words found",
                       "satisfaction": round(150.0 if behaviour == "out_of_range" else satisfaction, 1)})
    if behaviour == "wrong_count":
        grades = grades[:-1]
    return {"grades": grades}


def _openai(body: dict[str, Any], content: Any) -> dict[str, Any]:
    text = content if isinstance(content, str) else json.dumps(content)
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""), "system_fingerprint": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text, "refusal": None}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def _anthropic(body: dict[str, Any], content: Any) -> dict[str, Any]:
    tool = (body.get("tools") or [{}])[0].get("name", "record")
    block = ({"type": "text", "text": content} if isinstance(content, str)
             else {"type": "tool_use", "id": "toolu_fake", "name": tool, "input": content})
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model", ""),
            "content": [block], "stop_reason": "tool_use" if block["type"] == "tool_use" else "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
