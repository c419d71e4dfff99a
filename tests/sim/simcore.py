"""Shared machinery for the store simulators (test tooling, stdlib only).

A simulator is a small HTTP server on loopback that speaks one platform's
inventory API subset. This module gives every simulator the same control
surface under /_sim/ so tests and the contract suite drive them alike:

  POST /_sim/reset                    forget items, faults, hooks and the log
  POST /_sim/seed   {"items": [...]}  add items (platform fields, see each sim)
  GET  /_sim/state                    every item as the store holds it
  POST /_sim/set    {"sku", "qty"}    change a level as a shopper would
  POST /_sim/fault  {...}             queue a fault (see Fault below)
  POST /_sim/hook   {...}             apply a store-side sale after the Nth
                                      request matching method/path
  POST /_sim/item_error {"sku", "code", "message"}
                                      make every write of that SKU fail
  GET  /_sim/log                      every API request seen (method, path,
                                      time, status, body size)

Faults: {"mode": M, "count": N, "skip": K, "match": "substring of path",
"method": "GET|POST|PUT", "retry_after": seconds, "delay_ms": ms}, where M
is one of: throttle (the platform's own throttle answer), http429,
http500, http503, slow, truncated, invalid_json, wrong_content_type,
redirect, auth, reset (close the connection). The first K matching requests
pass; the next N get the fault.
"""

import argparse
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs


class Fault:
    def __init__(self, spec):
        self.mode = spec["mode"]
        self.count = int(spec.get("count", 1))
        self.skip = int(spec.get("skip", 0))
        self.match = spec.get("match", "")
        self.method = spec.get("method")
        self.retry_after = spec.get("retry_after", 1)
        self.delay_ms = int(spec.get("delay_ms", 0))

    def applies(self, method, path):
        if self.match and self.match not in path:
            return False
        if self.method and self.method != method:
            return False
        return True


class Hook:
    """After the nth request matching method/path completes, change the
    stock of sku by delta: a sale made on the store behind our back."""

    def __init__(self, spec):
        self.method = spec.get("method")
        self.match = spec.get("match", "")
        self.nth = int(spec.get("nth", 1))
        self.sku = spec["sku"]
        self.delta = int(spec.get("delta", -1))
        self.seen = 0
        self.done = False


class SimState:
    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.faults = []
            self.hooks = []
            self.item_errors = {}
            self.log = []


class SimHandler(BaseHTTPRequestHandler):
    """Base handler. A simulator subclasses it and implements
    api(method, path, query, body) -> (status, headers, body_obj_or_bytes),
    plus seed(items), state() and set_qty(sku, qty) on the server's store."""

    protocol_version = "HTTP/1.1"
    server_version = "stocksync-sim/1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without NODELAY each
        # answer waits ~40 ms on the client's delayed ACK, which would make
        # the simulators, not the adapters, the bottleneck of benchmarks.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # keep test output quiet
        if os.environ.get("SIM_VERBOSE"):
            sys.stderr.write("sim: " + (fmt % args) + "\n")

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, headers, body, ctype="application/json"):
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        self.send_response(status)
        has_ct = any(k.lower() == "content-type" for k in headers)
        if not has_ct and ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method):
        url = urlsplit(self.path)
        path = url.path
        query = parse_qs(url.query, keep_blank_values=True)
        raw = self._read_body()
        if path.startswith("/_sim/"):
            return self._control(method, path, raw)

        st = self.server.sim
        store = self.server.store
        t = time.time()
        entry = {"t": t, "method": method, "path": self.path,
                 "bytes": len(raw)}

        fault = None
        with st.lock:
            for f in st.faults:
                if f.count > 0 and f.applies(method, path):
                    if f.skip > 0:
                        f.skip -= 1
                        break
                    f.count -= 1
                    fault = f
                    break
            st.faults = [f for f in st.faults if f.count > 0]

        if fault is not None:
            entry["fault"] = fault.mode
            with st.lock:
                st.log.append(entry)
            return self._fault(fault, method, path, query, raw)

        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = ValueError("invalid JSON body")
        with store.lock:
            status, headers, out = self.api(method, path, query, body)
        entry["status"] = status
        with st.lock:
            st.log.append(entry)
            for h in st.hooks:
                if h.done:
                    continue
                if h.method and h.method != method:
                    continue
                if h.match and h.match not in path:
                    continue
                h.seen += 1
                if h.seen >= h.nth:
                    h.done = True
                    with store.lock:
                        cur = store.get_qty(h.sku)
                        if cur is not None:
                            store.set_qty(h.sku, cur + h.delta)
        self._send(status, headers, out)

    def _fault(self, f, method, path, query, raw):
        if f.mode == "throttle":
            status, headers, out = self.throttled(f)
            return self._send(status, headers, out)
        if f.mode == "http429":
            return self._send(429, {"Retry-After": f.retry_after},
                              {"error": "Too Many Requests"})
        if f.mode in ("http500", "http503"):
            return self._send(int(f.mode[4:]), {}, {"error": "server error"})
        if f.mode == "slow":
            time.sleep(f.delay_ms / 1000.0)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            with self.server.store.lock:
                status, headers, out = self.api(method, path, query, body)
            return self._send(status, headers, out)
        if f.mode == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"data": {"items": [')
            self.wfile.flush()
            self.close_connection = True
            return None
        if f.mode == "invalid_json":
            return self._send(200, {}, b'{"data": [1, 2,, }')
        if f.mode == "wrong_content_type":
            return self._send(200, {}, b"<html><body>Maintenance</body></html>",
                              ctype="text/html; charset=UTF-8")
        if f.mode == "redirect":
            return self._send(301, {"Location": "http://127.0.0.1:9/moved"},
                              b"", ctype=None)
        if f.mode == "auth":
            status, headers, out = self.auth_failed()
            return self._send(status, headers, out)
        if f.mode == "reset":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        return self._send(500, {}, {"error": "unknown fault " + f.mode})

    def _control(self, method, path, raw):
        st = self.server.sim
        store = self.server.store
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self._send(400, {}, {"error": "bad JSON"})
        name = path[len("/_sim/"):]
        if name == "reset" and method == "POST":
            st.reset()
            with store.lock:
                store.reset()
            return self._send(200, {}, {"ok": True})
        if name == "seed" and method == "POST":
            with store.lock:
                n = store.seed(body.get("items", []))
            return self._send(200, {}, {"ok": True, "added": n})
        if name == "state" and method == "GET":
            with store.lock:
                return self._send(200, {}, {"items": store.state()})
        if name == "set" and method == "POST":
            with store.lock:
                ok = store.set_qty(body["sku"], body["qty"])
            return self._send(200 if ok else 404, {}, {"ok": ok})
        if name == "fault" and method == "POST":
            with st.lock:
                st.faults.append(Fault(body))
            return self._send(200, {}, {"ok": True})
        if name == "hook" and method == "POST":
            with st.lock:
                st.hooks.append(Hook(body))
            return self._send(200, {}, {"ok": True})
        if name == "item_error" and method == "POST":
            with st.lock:
                st.item_errors[body["sku"]] = (body.get("code", "ERROR"),
                                               body.get("message", "rejected"))
            return self._send(200, {}, {"ok": True})
        if name == "log" and method == "GET":
            with st.lock:
                return self._send(200, {}, {"requests": list(st.log)})
        return self._send(404, {}, {"error": "no such control " + name})

    def item_error(self, sku):
        with self.server.sim.lock:
            return self.server.sim.item_errors.get(sku)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    # Platform hooks -----------------------------------------------------
    def api(self, method, path, query, body):
        raise NotImplementedError

    def throttled(self, fault):
        return 429, {"Retry-After": fault.retry_after}, {"error": "throttled"}

    def auth_failed(self):
        return 401, {}, {"error": "unauthorized"}


def serve(handler_cls, store, description):
    """Parses --port/--port-file, binds 127.0.0.1 only, writes the chosen
    port to the port file atomically, serves until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--host", default="127.0.0.1",
                    choices=["127.0.0.1", "::1"])
    args = ap.parse_args()

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = (socket.AF_INET6 if args.host == "::1"
                          else socket.AF_INET)

    srv = Server((args.host, args.port), handler_cls)
    srv.sim = SimState()
    srv.store = store
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("listening on %s port %d" % (args.host, port), flush=True)

    import signal
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(
        target=srv.shutdown, daemon=True).start())
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    srv.server_close()
