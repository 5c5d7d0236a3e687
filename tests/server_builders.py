"""Helpers for the classroom server's tests: a settable clock and a live server on 127.0.0.1."""
import threading
import time
from datetime import datetime, timedelta, timezone

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the tests move by hand (``create_app(clock=...)``)."""

    def __init__(self, now=START):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)
        return self.now


class LiveServer:
    """An app served by uvicorn in a thread on a free port of 127.0.0.1; ``stop()`` ends it."""

    def __init__(self, app, **limits):
        import uvicorn

        from kit.commands.serve import listen
        from kit.server.limits import uvicorn_config

        self.sock = listen("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # The same protocol and limits as `kit serve` (max_connections=..., header_timeout=...).
        self.server = uvicorn.Server(uvicorn_config(app, log_level="warning", **limits))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


BOUNDARY = "kitboundary"


def form_part(name, value, filename=None, boundary=BOUNDARY):
    """One multipart/form-data part (header and value, without the closing boundary)."""
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    kind = "Content-Type: text/csv\r\n" if filename else ""
    value = value if isinstance(value, bytes) else value.encode()
    return f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode() + value + b"\r\n"


def form_end(boundary=BOUNDARY):
    return f"--{boundary}--\r\n".encode()


def call_asgi(app, path, steps, headers=(), method="POST", boundary=BOUNDARY):
    """Run one request through ``app`` at the ASGI level; ``(status, body text, chunks read)``.

    ``steps`` are body chunks (bytes), actions to run before the next chunk is handed
    over (callables: move the clock, reveal, ...) or pauses (numbers of seconds). The app
    sees the body arrive piece by piece, as from a slow client; ``chunks read`` counts the
    chunks it asked for, so a test can tell it stopped reading early.
    """
    import asyncio

    pending = iter(steps)
    read, sent = [0], []

    async def receive():
        for step in pending:
            if callable(step):
                step()
            elif isinstance(step, (int, float)):
                await asyncio.sleep(step)
            else:
                read[0] += 1
                return {"type": "http.request", "body": step, "more_body": True}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
                         *[(k.lower().encode(), v.encode()) for k, v in headers]],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body.decode("utf-8", "replace"), read[0]


def slow_form_head(path="/submit", length=60_000, boundary=BOUNDARY):
    """The start of an anonymous form that never finishes its token field: a slow client's first bytes.

    Request headers (announcing ``length`` bytes) and the token part's header with one
    byte of its value; a client that sends this and then nothing holds its request open.
    """
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n")
    return head.encode() + f'--{boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\nx'.encode()


def hold_slow_forms(port, count, path="/submit"):
    """``count`` sockets to 127.0.0.1:``port``, each sending :func:`slow_form_head` and then nothing.

    Sockets the server refuses at once are still returned (closed by the server).
    """
    import socket

    held = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            held.append(sock)
            try:
                sock.sendall(slow_form_head(path))
            except OSError:
                pass  # closed by the server already: it refused this one
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return held


def timed_page_loads(url, count, timeout=5.0):
    """``[(status or None, seconds), ...]`` of ``count`` fresh GETs of ``url`` (None: no answer in time)."""
    import httpx

    loads = []
    for _ in range(count):
        start = time.monotonic()
        try:
            status = httpx.get(url, timeout=timeout).status_code
        except httpx.HTTPError:
            status = None
        loads.append((status, time.monotonic() - start))
    return loads


def let_go(sock):
    """Whether the server has answered or closed ``sock``, looked at without waiting."""
    import socket

    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # data (an answer) or b"" (closed): the server let go
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
