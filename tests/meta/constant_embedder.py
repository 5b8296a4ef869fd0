"""A broken embeddings server: OpenAI-compatible `/v1/embeddings` that answers one constant
vector for every input, so every chunk is as similar to every query as any other.

Run: python -m meta.constant_embedder --port N --model NAME --dimension 384
"""

from __future__ import annotations

import argparse
import json
import math
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def handler(model: str, dimension: int) -> type[BaseHTTPRequestHandler]:
    vector = [1 / math.sqrt(dimension)] * dimension

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
            pass

        def _send(self, doc: dict[str, Any]) -> None:
            payload = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path.startswith("/v1/models"):
                self._send({"object": "list", "data": [{"id": model, "object": "model", "owned_by": "meta"}]})
            else:
                self._send({"status": "ok"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) else 1
            data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)]
            self._send(
                {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 0, "total_tokens": 0}}
            )

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--dimension", type=int, default=384)
    args = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), handler(args.model, args.dimension)).serve_forever()


if __name__ == "__main__":
    main()
