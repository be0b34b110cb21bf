#!/usr/bin/env python3
"""A delaying TCP relay for sqltun's fault tests (the kernel here has no sch_netem, so `tc netem` cannot
add latency; this does it in user space instead).

Run as `relay.py LISTEN_ADDRESS TARGET_ADDRESS TARGET_PORT MIN_MS MAX_MS`: listens on an OS-chosen port of
LISTEN_ADDRESS, prints that port on a line of its own once it listens, and relays every connection to
TARGET_ADDRESS:TARGET_PORT. Each chunk read in either direction is held for a random MIN_MS..MAX_MS
before it is written on (never before an earlier chunk of the same direction: order is kept), so every
direction sees that much extra one-way latency, with jitter, while throughput is limited only by the
buffering (at most QUEUE chunks per direction). A half-close is passed on after the data before it.
"""

import asyncio
import random
import sys

CHUNK = 65536
QUEUE = 256


async def pump(reader, writer, low, high):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue(maxsize=QUEUE)

    async def read():
        due = 0.0
        while True:
            try:
                data = await reader.read(CHUNK)
            except (ConnectionError, OSError):
                data = b""
            due = max(due, loop.time() + random.uniform(low, high))
            await queue.put((due, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    reading = asyncio.ensure_future(read())
    try:
        await write()
    finally:
        reading.cancel()


async def relay(client_reader, client_writer, target, low, high):
    try:
        server_reader, server_writer = await asyncio.open_connection(*target)
    except OSError as error:
        print(f"connect to {target}: {error!r}", file=sys.stderr, flush=True)
        client_writer.close()
        return
    try:
        await asyncio.gather(
            pump(client_reader, server_writer, low, high),
            pump(server_reader, client_writer, low, high),
        )
    except (ConnectionError, OSError) as error:
        print(f"relay: {error!r}", file=sys.stderr, flush=True)
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


async def main():
    listen, target_host, target_port, low_ms, high_ms = sys.argv[1:6]
    target = (target_host, int(target_port))
    low, high = float(low_ms) / 1000, float(high_ms) / 1000
    server = await asyncio.start_server(
        lambda r, w: relay(r, w, target, low, high), listen, 0, backlog=128
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
