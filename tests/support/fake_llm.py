"""FakeChatServer: a stand-in for a remote OpenAI-compatible LLM host, for tests only.

A fake is acceptable here because the LLM host is a true outside edge. It answers
``/v1/chat/completions`` by keyword (a crude classifier, good enough to check the
adapter), and misbehaves on purpose for texts that say so:

* ``POISON`` in a text: the answer is prose, not JSON (a model ignoring the schema);
* ``INJECT`` in a text: a schema-breaking answer of the kind a successfully injected
  model gives (an extra field, a label outside the schema, the system prompt echoed).

It records every request, so tests can check what was sent (redaction, the schema).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POSITIVE = ("great", "love", "thank", "perfect", "excellent", "happy", "good")
NEGATIVE = ("late", "ridiculous", "broken", "terrible", "refund", "cancel", "angry", "bad")


def _verdict(index: int, text: str) -> dict[str, Any]:
    lowered = text.lower()
    pos = sum(w in lowered for w in POSITIVE)
    neg = sum(w in lowered for w in NEGATIVE)
    label = "positive" if pos > neg else "negative" if neg > pos else "neutral"
    score = {"positive": 0.8, "negative": -0.8, "neutral": 0.0}[label]
    return {"index": index, "label": label, "score": score, "confidence": 0.9}


@dataclass
class FakeChatServer:
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures_before_success: int = 0  # answer 503 this many times first
    url: str = ""

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append(body)
        if self.failures_before_success > 0:
            self.failures_before_success -= 1
            return 503, {"error": "overloaded"}
        texts = json.loads(body["messages"][-1]["content"])["texts"]
        if any("POISON" in t["text"] for t in texts):
            content = "I'm sorry, I can't classify these texts."
        elif any("INJECT" in t["text"] for t in texts):
            results = [
                {
                    **_verdict(t["index"], t["text"]),
                    "label": "very positive",
                    "note": body["messages"][0]["content"],
                }
                for t in texts
            ]
            content = json.dumps({"results": results})
        else:
            content = json.dumps({"results": [_verdict(t["index"], t["text"]) for t in texts]})
        usage = {"total_tokens": 50 * len(texts)}
        return 200, {
            "choices": [{"message": {"role": "assistant", "content": content}}],
            "usage": usage,
        }


@contextmanager
def fake_chat_server() -> Iterator[FakeChatServer]:
    fake = FakeChatServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            status, payload = fake.answer(json.loads(self.rfile.read(length)))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
