"""An OTLP/HTTP trace receiver for the tests: decodes each POST to /v1/traces with the
official OpenTelemetry protobuf definitions (the opentelemetry-proto package) and writes
every span it received as one JSON line to the file named by its first argument, with its
resource's attributes. Its port is its first line on standard output, once it listens.

A body that is not an ExportTraceServiceRequest, or a request that is not protobuf, gets
400 and an {"error": ...} line, which fails the test that reads it. With a second argument
N, the first N requests are answered 503 (the receiver is starting), so the sender's retry
is tested against what it asked for."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

out = open(sys.argv[1], "a", buffering=1)
unavailable = [int(sys.argv[2]) if len(sys.argv) > 2 else 0]


def line(obj):
    out.write(json.dumps(obj, sort_keys=True) + "\n")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, code, body=b"", ctype="application/x-protobuf"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if unavailable[0] > 0:
            unavailable[0] -= 1
            line({"unavailable": self.path})
            return self.answer(503, b"starting", "text/plain")
        if self.path != "/v1/traces":
            line({"error": "POST to " + self.path})
            return self.answer(404, b"no such path", "text/plain")
        if self.headers.get("Content-Type") != "application/x-protobuf":
            line({"error": "Content-Type " + str(self.headers.get("Content-Type"))})
            return self.answer(400, b"not protobuf", "text/plain")
        req = ExportTraceServiceRequest()
        try:
            req.ParseFromString(body)
        except Exception as e:  # a DecodeError: the test fails on the line
            line({"error": "undecodable: %s" % e})
            return self.answer(400, b"undecodable", "text/plain")
        for rs in req.resource_spans:
            resource = MessageToDict(rs.resource)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    d = MessageToDict(span)
                    # Ids as hex, as every OpenTelemetry tool shows them.
                    d["traceId"] = span.trace_id.hex()
                    d["spanId"] = span.span_id.hex()
                    d["parentSpanId"] = span.parent_span_id.hex()
                    d["scope"] = ss.scope.name
                    d["resource"] = resource
                    line({"span": d})
        self.answer(200, ExportTraceServiceResponse().SerializeToString())


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
