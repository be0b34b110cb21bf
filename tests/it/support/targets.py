#!/usr/bin/env python3
"""Target servers for sqltun's integration tests (deliberately not built from sqltun's code).

Run inside the lab's target namespace as `targets.py ADDRESS`; serves, one thread per connection:

  echo   7007  sends back everything it receives; half-closes after the client does
  sink   7009  reads to end of file, then replies with the sha256 hex digest of what it read and a newline
  source 7019  reads a decimal byte count and a newline, sends that many bytes of the test pattern, closes

Nothing listens on 7001 (the "refused" target). Prints "ready" once every port listens.

The test pattern (mirrored in targets.rs): a 64 KiB block from the LCG x = (1103515245 x + 12345) mod 2^31,
x0 = 12345, each byte (x >> 16) & 0xff; block k of the stream is that block with every byte XORed with k mod 256.
"""

import hashlib
import socket
import socketserver
import sys
import threading

ECHO_PORT = 7007
SINK_PORT = 7009
SOURCE_PORT = 7019
BLOCK_SIZE = 65536


def pattern_block():
    x = 12345
    block = bytearray(BLOCK_SIZE)
    for j in range(BLOCK_SIZE):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        block[j] = (x >> 16) & 0xFF
    return bytes(block)


BLOCK = pattern_block()
XOR_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        print(f"{client_address}: {sys.exc_info()[1]!r}", file=sys.stderr, flush=True)


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            self.request.sendall(data)
        self.request.shutdown(socket.SHUT_WR)


class Sink(socketserver.BaseRequestHandler):
    def handle(self):
        digest = hashlib.sha256()
        while True:
            data = self.request.recv(262144)
            if not data:
                break
            digest.update(data)
        self.request.sendall((digest.hexdigest() + "\n").encode())


class Source(socketserver.BaseRequestHandler):
    def handle(self):
        request = b""
        while not request.endswith(b"\n"):
            data = self.request.recv(64)
            if not data:
                return
            request += data
        remaining = int(request.strip())
        k = 0
        while remaining > 0:
            chunk = BLOCK.translate(XOR_TABLES[k % 256])
            if remaining < BLOCK_SIZE:
                chunk = chunk[:remaining]
            self.request.sendall(chunk)
            remaining -= len(chunk)
            k += 1


def main():
    address = sys.argv[1]
    for port, handler in ((ECHO_PORT, Echo), (SINK_PORT, Sink), (SOURCE_PORT, Source)):
        server = Server((address, port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
