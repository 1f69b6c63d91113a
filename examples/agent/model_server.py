"""A local OpenAI-compatible chat-completions server that replays a plan of tool calls.

The agent talks to it exactly as it would to a hosted model (POST /v1/chat/completions,
tools offered, tool_calls returned, token usage reported), so the agent's code path is the
real one. The plan is a JSON file: {"steps": [[{"name": ..., "args": {...}}, ...], ...],
"final": "..."}. Each request is answered from the number of tool-calling turns already in
the conversation, so the server keeps no state between requests. An argument written
"$LAST_RESULT" is replaced by the last tool result, as a model would quote what it read.

With --tls-cert/--tls-key it serves HTTPS; a request with "stream": true is answered with
server-sent events over chunked transfer coding, the tool calls' arguments split across
chunks, as hosted models stream them.
"""
import argparse
import json
import ssl
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(plan, transcript=None):
    steps, final = plan["steps"], plan.get("final", "Done.")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and chunked replies, as real APIs

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self.reply(200, {"object": "list", "data": [{"id": "replay", "object": "model"}]})
            else:
                self.reply(404, {"error": {"message": "not found"}})

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self.reply(404, {"error": {"message": "not found"}})
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            msgs = body.get("messages", [])
            turn = sum(1 for m in msgs if m.get("role") == "assistant" and m.get("tool_calls"))
            last = next((m.get("content") for m in reversed(msgs) if m.get("role") == "tool"), "")
            if isinstance(last, list):
                last = "".join(p.get("text", "") for p in last if isinstance(p, dict))
            if transcript and last:
                # What the model was told: where a secret that reached it would show.
                with open(transcript, "a") as f:
                    f.write(json.dumps({"turn": turn, "tool_result": last}) + "\n")
            message = {"role": "assistant", "content": final}
            finish = "stop"
            if turn < len(steps):
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"call_{turn}_{i}",
                            "type": "function",
                            "function": {
                                "name": c["name"],
                                "arguments": json.dumps({k: (last if v == "$LAST_RESULT" else v) for k, v in c["args"].items()}),
                            },
                        }
                        for i, c in enumerate(steps[turn])
                    ],
                }
                finish = "tool_calls"
            prompt = sum(len(json.dumps(m)) for m in body.get("messages", [])) // 4
            if body.get("stream"):
                return self.stream(body.get("model", "replay"), turn, message, finish, prompt)
            self.reply(
                200,
                {
                    "id": f"chatcmpl-{turn}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "replay"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": 20, "total_tokens": prompt + 20},
                },
            )

        def stream(self, model, turn, message, finish, prompt):
            """The same answer as chat.completion.chunk events, arguments in pieces."""
            base = {"id": f"chatcmpl-{turn}", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
            events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": message.get("content") or ""}, "finish_reason": None}]}]
            for i, c in enumerate(message.get("tool_calls") or []):
                args = c["function"]["arguments"]
                head = {"index": i, "id": c["id"], "type": "function", "function": {"name": c["function"]["name"], "arguments": ""}}
                events.append({"choices": [{"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}]})
                for k in range(0, len(args), 16):
                    part = {"index": i, "function": {"arguments": args[k:k + 16]}}
                    events.append({"choices": [{"index": 0, "delta": {"tool_calls": [part]}, "finish_reason": None}]})
            events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            events.append({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": 20, "total_tokens": prompt + 20}})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for e in events:
                self.chunk(f"data: {json.dumps(dict(base, **e))}\n\n".encode())
            self.chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def chunk(self, data):
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def reply(self, code, obj):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="and this key (PEM)")
    ap.add_argument("--transcript", help="append each tool result the model receives to this JSON-lines file")
    a = ap.parse_args()
    with open(a.plan) as f:
        plan = json.load(f)
    server = ThreadingHTTPServer((a.host, a.port), make_handler(plan, a.transcript))
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
