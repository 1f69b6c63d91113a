"""One OpenAI-style chat completion over HTTPS on loopback, stdlib only: a server thread
answers with a tool call, the client posts a request and reads the answer. agentguard
records the client (tests/vm/llm.sh) and must see both through its TLS probes.

    llm_peer.py CERT KEY PORT
"""
import http.client
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

cert, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ANSWER = {
    "model": "vm-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [
        {"id": "call_vm", "type": "function", "function": {"name": "run_shell", "arguments": json.dumps({"command": "id"})}}]}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server = HTTPServer(("127.0.0.1", port), Handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.handle_request, daemon=True).start()

client = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=cert))
req = {"model": "vm-model", "messages": [{"role": "user", "content": "hi"}],
       "tools": [{"type": "function", "function": {"name": "run_shell", "parameters": {}}}]}
client.request("POST", "/v1/chat/completions", json.dumps(req), {"Content-Type": "application/json", "Authorization": "Bearer sk-vm-secret-0123456789abcdef"})
answer = json.loads(client.getresponse().read())
print(answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"])
