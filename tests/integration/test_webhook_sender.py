"""The webhook sender against a real local HTTP endpoint: status, excerpt cap, no redirects."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.adapters.webhook_sender import EXCERPT_CHARS, WebhookSender


class Endpoint(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.end_headers()
            return
        body = b"x" * 5_000_000  # an endpoint that answers far more than we keep
        self.send_response(500 if self.path == "/fail" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_status_recorded_and_answer_capped(endpoint: str) -> None:
    sender = WebhookSender(allow_private=True)
    ok = sender.post(f"{endpoint}/hook", b"{}", {})
    assert ok.ok and ok.status_code == 200
    assert ok.response_excerpt is not None and 0 < len(ok.response_excerpt) <= EXCERPT_CHARS
    failed = sender.post(f"{endpoint}/fail", b"{}", {})
    assert not failed.ok and failed.status_code == 500 and failed.error == "HTTP 500"


def test_redirects_are_not_followed(endpoint: str) -> None:
    result = WebhookSender(allow_private=True).post(f"{endpoint}/redirect", b"{}", {})
    assert result.status_code == 302 and not result.ok


def test_plain_http_is_refused_outside_local() -> None:
    result = WebhookSender(allow_private=False, resolve=lambda host, port: ["93.184.215.14"]).post(
        "http://crm.example.com/hook", b"{}", {}
    )
    assert not result.ok and result.error is not None and "https" in result.error
