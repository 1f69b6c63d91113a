"""A local OpenAI-compatible chat-completions server that replays a plan of tool calls.

The agent talks to it exactly as it would to a hosted model (POST /v1/chat/completions,
tools offered, tool_calls returned, token usage reported), so the agent's code path is the
real one. The plan is a JSON file: {"steps": [[{"name": ..., "args": {...}}, ...], ...],
"final": "..."}. Each request is answered from the number of tool-calling turns already in
the conversation, so the server keeps no state between requests. An argument written
"$LAST_RESULT" is replaced by the last tool result, as a model would quote what it read.
"""
import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(plan):
    steps, final = plan["steps"], plan.get("final", "Done.")

    class Handler(BaseHTTPRequestHandler):
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
    a = ap.parse_args()
    with open(a.plan) as f:
        plan = json.load(f)
    ThreadingHTTPServer((a.host, a.port), make_handler(plan)).serve_forever()


if __name__ == "__main__":
    main()
