#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A deliberately lenient HTTP/1.1 backend, to catch request smuggling.

It frames requests the way weak real servers do (older Go net/http, Puma,
Node's old parser), so that any byte the proxy lets through with a framing
another reader could see differently turns into an extra parsed request here:

- every line ends at LF (a trailing CR is dropped; a lone CR stays in the line);
- header names and values are stripped of any whitespace (SP, HTAB, VT, FF,
  CR, NUL too) and a line starting with whitespace is a header of its own;
- the FIRST Transfer-Encoding and the FIRST Content-Length win; the body is
  chunked when that Transfer-Encoding contains "chunked" anywhere (so
  "xchunked" and "chunked, identity" count), which then beats Content-Length;
- Content-Length and chunk sizes are read like strtol: leading sign, blanks
  and digits, the rest ignored ("5, 40" is 5, "0x5" is 0, "+5" is 5);
- chunk-size lines and trailers end at LF; blank lines before a request
  line are skipped.

Every request parsed to its end is recorded (method, target, Host, body, the
connection number) and answered 200 with JSON {"path", "n", "conn"}; keep-alive
unless "Connection: close". A target of /resp/<name> answers with one of the
raw RESPONSES instead (malformed framing, followed by a bogus second response
on the same connection) to test the proxy's response side.

As a module: LenientBackend().start(); .requests() is the list so far. As a
program: lenient_backend.py --listen 127.0.0.1:PORT [--log FILE] writes one
JSON line per parsed request to FILE.
"""

import argparse
import json
import re
import socket
import threading

POISON = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned"

# Malformed responses, each followed by a second response the proxy must
# never hand to another client.
RESPONSES = {
    "chunk_bare_lf": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5;\nhello\r\n0\r\n\r\n" + POISON,
    "chunk_cr_x": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\rXhello\r\n0\r\n\r\n" + POISON,
    "trailer_bare_lf": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n0\r\nX: y\n\r\n" + POISON,
    "head_bare_lf": b"HTTP/1.1 200 OK\nContent-Length: 5\r\n\r\nhello" + POISON,
    "cl_list": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello" + POISON,
    "te_and_cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\n" + POISON,
}

_NUM = re.compile(rb"^[\s\x00]*([+-]?)([0-9a-fA-F]*)")


def _strtol(text, base):
    """Leading number of @text like C strtol, 0 when there is none."""
    m = _NUM.match(text)
    digits = m.group(2)
    if base == 10:
        digits = re.match(rb"[0-9]*", digits).group(0)
    n = int(digits, base) if digits else 0
    return -n if m.group(1) == b"-" else n


class _Conn:
    """Reads LF-terminated lines and raw bytes from one socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise ValueError("line too long")
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line[:-1] if line.endswith(b"\r") else line

    def read(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


class LenientBackend:
    def __init__(self, host="127.0.0.1", port=0, log_path=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.addr = f"{host}:{self.port}"
        self.log_path = log_path
        self.lock = threading.Lock()
        self._requests = []
        self._conns = 0
        self._open = set()
        self.running = False

    def start(self):
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self.running = False
        self.sock.close()
        with self.lock:
            for s in list(self._open):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def requests(self):
        """Every request parsed so far: dicts with method, path, host, body, conn."""
        with self.lock:
            return list(self._requests)

    def _accept(self):
        while self.running:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self._conns += 1
                self._open.add(s)
                n = self._conns
            threading.Thread(target=self._serve, args=(s, n), daemon=True).start()

    def _serve(self, sock, conn_no):
        c = _Conn(sock)
        try:
            while self.running:
                req = self._parse(c)
                if req is None:
                    return
                req["conn"] = conn_no
                keep = self._record_and_answer(sock, req)
                if not keep:
                    return
        except (EOFError, OSError, ValueError):
            return
        finally:
            with self.lock:
                self._open.discard(sock)
            sock.close()

    def _parse(self, c):
        line = c.line()
        while line.strip() == b"":  # blank lines before a request line
            line = c.line()
        parts = line.split()
        if len(parts) < 2:
            self._send(c.sock, 400, b"bad request line")
            return None
        headers = self._headers(c)
        te = headers.get(b"transfer-encoding")
        if te is not None and b"chunked" in te.lower():
            body = self._chunked(c)
        else:
            n = _strtol(headers.get(b"content-length", b"0"), 10)
            body = c.read(max(n, 0))
        return {"method": parts[0].decode("latin-1"), "path": parts[1].decode("latin-1"),
                "host": headers.get(b"host", b"").decode("latin-1"),
                "close": headers.get(b"connection", b"").lower() == b"close",
                "body": body}

    @staticmethod
    def _headers(c):
        """Header lines up to a blank line; the first of duplicates wins."""
        headers = {}
        while True:
            line = c.line()
            if line.strip(b" \t") == b"":
                return headers
            name, _, value = line.partition(b":")
            name = name.strip(b" \t\r\v\f\x00").lower()
            headers.setdefault(name, value.strip(b" \t\r\v\f\x00"))

    @staticmethod
    def _chunked(c):
        body = b""
        while True:
            size = _strtol(c.line().split(b";")[0], 16)
            if size <= 0:
                break
            body += c.read(size)
            c.line()  # whatever ends the data, up to LF
        while c.line().strip(b" \t") != b"":  # trailers
            pass
        return body

    def _record_and_answer(self, sock, req):
        with self.lock:
            self._requests.append(req)
            n = len(self._requests)
        if self.log_path:
            rec = dict(req, body=req["body"].decode("latin-1"))
            with open(self.log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        name = req["path"][len("/resp/"):] if req["path"].startswith("/resp/") else None
        if name in RESPONSES:
            sock.sendall(RESPONSES[name])
            return True
        info = json.dumps({"path": req["path"], "n": n, "conn": req["conn"],
                           "host": req["host"]}).encode()
        self._send(sock, 200, info, close=req["close"])
        return not req["close"]

    @staticmethod
    def _send(sock, status, body, close=False):
        head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
        if close or status != 200:
            head += "Connection: close\r\n"
        sock.sendall(head.encode() + b"\r\n" + body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--log", help="one JSON line per parsed request")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    b = LenientBackend(host, int(port), a.log).start()
    print(f"listening {b.addr}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
