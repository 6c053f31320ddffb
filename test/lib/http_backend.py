#!/usr/bin/env python3
"""A small HTTP backend for specs (T.start_http_backend in
lualib/moongate/test.lua): a game's web backend on 127.0.0.1, a port
chosen by the kernel, printed as "http_backend: port N" when it listens.
One thread per request, so slow answers overlap.

  POST /login        {"name": ..., "password": ...} -> after --delay-ms,
                     200 {"uid": "acct:<name>", "name": ..., "level": 7}, or
                     403 {"error": "bad password"} when password == "wrong"
  ANY  /echo         200: the request as JSON (method, path, headers, body)
  GET  /slow?ms=N    200 "slow" after N ms
  GET  /big?n=N      200 with N bytes of "x"
  GET  /status?code=N  that status, body "status N"
  GET  /stats        {"logins": n, "max_concurrent": m}: what it saw
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

delay_ms = 0
lock = threading.Lock()
stats = {"logins": 0, "concurrent": 0, "max_concurrent": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", "a")
        self.send_header("X-Backend", "b")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def route(self):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        body = self.body()
        if u.path == "/login":
            with lock:
                stats["concurrent"] += 1
                stats["max_concurrent"] = max(stats["max_concurrent"], stats["concurrent"])
            try:
                time.sleep(delay_ms / 1000.0)
                req = json.loads(body or b"{}")
                with lock:
                    stats["logins"] += 1
                if req.get("password") == "wrong":
                    return self.reply(403, {"error": "bad password"})
                name = str(req.get("name", ""))
                return self.reply(200, {"uid": "acct:" + name, "name": name, "level": 7})
            finally:
                with lock:
                    stats["concurrent"] -= 1
        if u.path == "/echo":
            return self.reply(200, {"method": self.command, "path": self.path,
                                    "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body": body.decode("latin-1")})
        if u.path == "/slow":
            time.sleep(int(q.get("ms", ["1000"])[0]) / 1000.0)
            return self.reply(200, "slow", "text/plain")
        if u.path == "/big":
            return self.reply(200, "x" * int(q.get("n", ["0"])[0]), "text/plain")
        if u.path == "/status":
            code = int(q.get("code", ["200"])[0])
            return self.reply(code, "status %d" % code, "text/plain")
        if u.path == "/stats":
            with lock:
                return self.reply(200, dict(stats))
        return self.reply(404, {"error": "no such path"})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = route


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    global delay_ms
    args = sys.argv[1:]
    if "--delay-ms" in args:
        delay_ms = int(args[args.index("--delay-ms") + 1])
    srv = Server(("127.0.0.1", 0), Handler)
    print("http_backend: port %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
