#!/usr/bin/env python3
"""A minimal OTLP/HTTP trace receiver: prints each span it is sent as one JSON line.

    python3 scripts/otlp-receiver.py PORT [FILE | --discard]

For following one event locally (docs/operations.md, "Trace context") and for the tests: point
`bte --otlp-endpoint http://127.0.0.1:PORT` at it. Needs PyPI's opentelemetry-proto. With
--discard it only reads and acknowledges each export (a cheap collector for `bte-bench --suite
tracing`).
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class Receiver(BaseHTTPRequestHandler):
    out = sys.stdout
    discard = False

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if Receiver.discard:
            self.reply()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: value(a.value) for a in resource_spans.resource.attributes}.get("service.name")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    line = {
                        "service": service, "name": span.name, "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(), "parent_span_id": span.parent_span_id.hex(),
                        "start_ns": span.start_time_unix_nano, "end_ns": span.end_time_unix_nano,
                        "attributes": {a.key: value(a.value) for a in span.attributes},
                        "links": [{"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex()} for l in span.links],
                    }
                    Receiver.out.write(json.dumps(line, sort_keys=True) + "\n")
                    Receiver.out.flush()
        self.reply()

    def reply(self):
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--discard":
        Receiver.discard = True
    elif len(sys.argv) > 2:
        Receiver.out = open(sys.argv[2], "a", encoding="utf-8")
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
