"""An in-test server speaking the OpenAI chat-completions protocol (``http.server`` on a
thread, 127.0.0.1, a free port), for the LLM judge and distiller tests of the wheel and of its
MCP server."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List

#: What the fake model answers: the request's JSON in, the message content out.
Reply = Callable[[Dict[str, Any]], str]

#: The judge's answer in the paper's form.
JUDGE_SUCCESS = 'Thoughts: the file was produced as asked.\nStatus: "success"'
#: The distiller's answer: one item, as a fenced JSON array.
DISTILLED = (
    '```json\n[{"title": "Verify outputs", "description": "Check the produced file.", '
    '"content": "After generating an artifact, open it and confirm its contents."}]\n```'
)
#: A trajectory without an outcome, so that the LLM judges it.
UNJUDGED: Dict[str, Any] = {
    "task": "write the report",
    "steps": [{"action": "generate report.pdf", "observation": "report.pdf written, 12 pages"}],
}


def is_judge(request: Dict[str, Any]) -> bool:
    """Whether `request` is the judge's (its system prompt is the paper's evaluator)."""
    return "evaluating the performance" in str(request["messages"][0]["content"])


def good(request: Dict[str, Any]) -> str:
    """A model that judges success and distills one item."""
    return JUDGE_SUCCESS if is_judge(request) else DISTILLED


def malformed(request: Dict[str, Any]) -> str:
    """A model that judges success, then answers the distiller with prose, not JSON."""
    return JUDGE_SUCCESS if is_judge(request) else "I would rather not say."


@contextmanager
def serve(reply: Reply) -> Iterator[str]:
    """Serves `reply` as chat completions; yields the base URL (up to ``/v1``). While it
    runs, ``SEEN[url]`` lists the requests it answered."""
    seen: List[Dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            request = json.loads(body)
            seen.append(request)
            out = json.dumps(
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": reply(request)},
                        }
                    ],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output for failures

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    SEEN[url] = seen
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        SEEN.pop(url, None)


#: The requests each running server answered, by base URL.
SEEN: Dict[str, List[Dict[str, Any]]] = {}
