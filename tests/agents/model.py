"""A scripted local model for the real agents' tests (tests/agents.rs).

It speaks the two wire APIs the agents people run use, streamed as the hosted models stream
them: Anthropic Messages (Claude Code; `tool_use` blocks with `input_json_delta`) and OpenAI
Responses (Codex; `function_call` items with `function_call_arguments.delta`). The first
turn of a conversation that offers a shell tool asks for one command; the turn after its
result ends with text. Requests without tools (titles, summaries) get text. Each request is
answered from the conversation it carries, so the server keeps no state.

Usage: model.py COMMAND [--tls-cert C --tls-key K]. It binds 127.0.0.1 on a free port and
writes the port on its first output line only once it is listening: the test's handshake.
Every request line and the tools it offered go to stderr, one JSON per line, for the
test's failure messages.
"""
import argparse
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_turn(body, command):
    """The events of one streamed Messages reply."""
    tools = [t.get("name") for t in body.get("tools", [])]
    msgs = body.get("messages", [])
    last = msgs[-1]["content"] if msgs else ""
    answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
    start = {"type": "message_start", "message": {
        "id": "msg_scripted", "type": "message", "role": "assistant",
        "model": body.get("model", "scripted"), "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": 42, "output_tokens": 1}}}
    out = [sse("message_start", start)]
    if "Bash" in tools and not answered:
        args = json.dumps({"command": command, "description": "run the scripted command"})
        out.append(sse("content_block_start", {"type": "content_block_start", "index": 0,
                   "content_block": {"type": "tool_use", "id": "toolu_scripted_1",
                                     "name": "Bash", "input": {}}}))
        # The arguments split mid-token, as the hosted model streams them.
        for i in range(0, len(args), 9):
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                       "delta": {"type": "input_json_delta", "partial_json": args[i:i + 9]}}))
        stop = "tool_use"
    else:
        out.append(sse("content_block_start", {"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}))
        out.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": "Done."}}))
        stop = "end_turn"
    out.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    out.append(sse("message_delta", {"type": "message_delta",
               "delta": {"stop_reason": stop, "stop_sequence": None},
               "usage": {"output_tokens": 7}}))
    out.append(sse("message_stop", {"type": "message_stop"}))
    return out


def shell_arguments(tools, command):
    """The arguments Codex's shell tool of this version takes."""
    if "exec_command" in tools:
        return "exec_command", {"cmd": command}
    if "shell_command" in tools:
        return "shell_command", {"command": command}
    return "shell", {"command": ["bash", "-lc", command]}


def responses_turn(body, command):
    """The events of one streamed Responses reply."""
    tools = [t.get("name") for t in body.get("tools", []) if isinstance(t, dict)]
    items = body.get("input", [])
    items = items if isinstance(items, list) else []
    answered = any(isinstance(i, dict) and i.get("type", "").endswith("_call_output")
                   for i in items)
    usage = {"input_tokens": 42, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": 49}
    resp = {"id": "resp_scripted", "object": "response", "status": "in_progress",
            "model": body.get("model", "scripted"), "output": []}
    out = [sse("response.created", {"type": "response.created", "response": resp})]
    shell = any(t in tools for t in ("shell", "exec_command", "shell_command"))
    if shell and not answered:
        name, args = shell_arguments(tools, command)
        args = json.dumps(args)
        item = {"type": "function_call", "id": "fc_scripted_1", "call_id": "call_scripted_1",
                "name": name, "arguments": "", "status": "in_progress"}
        out.append(sse("response.output_item.added", {"type": "response.output_item.added",
                   "output_index": 0, "item": item}))
        for i in range(0, len(args), 9):
            out.append(sse("response.function_call_arguments.delta", {
                "type": "response.function_call_arguments.delta", "item_id": "fc_scripted_1",
                "output_index": 0, "delta": args[i:i + 9]}))
        done = dict(item, arguments=args, status="completed")
    else:
        item = {"type": "message", "id": "msg_scripted", "role": "assistant",
                "status": "in_progress", "content": []}
        out.append(sse("response.output_item.added", {"type": "response.output_item.added",
                   "output_index": 0, "item": item}))
        out.append(sse("response.output_text.delta", {"type": "response.output_text.delta",
                   "item_id": "msg_scripted", "output_index": 0, "content_index": 0,
                   "delta": "Done."}))
        done = dict(item, status="completed",
                    content=[{"type": "output_text", "text": "Done.", "annotations": []}])
    out.append(sse("response.output_item.done", {"type": "response.output_item.done",
               "output_index": 0, "item": done}))
    out.append(sse("response.completed", {"type": "response.completed", "response": dict(
        resp, status="completed", output=[done], usage=usage)}))
    return out


def make_handler(command):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def note(self, body=None):
            tools = [t.get("name") for t in (body or {}).get("tools", []) if isinstance(t, dict)]
            print(json.dumps({"method": self.command, "path": self.path, "tools": tools}),
                  file=sys.stderr, flush=True)

        def do_HEAD(self):
            self.note()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            self.note()
            self.plain(404, {"error": {"type": "not_found", "message": self.path}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            self.note(body)
            path = self.path.split("?")[0].rstrip("/")
            if path.endswith("/v1/messages/count_tokens"):
                return self.plain(200, {"input_tokens": 42})
            if path.endswith("/messages"):
                events = anthropic_turn(body, command)
            elif path.endswith("/responses"):
                events = responses_turn(body, command)
            else:
                return self.plain(404, {"error": {"type": "not_found", "message": self.path}})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for e in events:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(e), e))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def plain(self, code, obj):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", help="the shell command the model asks for")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(a.command))
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
