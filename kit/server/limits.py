"""Bounds on what one client can hold: connections, time per request, open files.

A classroom server on ``--host 0.0.0.0`` faces clients that open connections and then
send nothing, or send a byte a minute. Without bounds each of them holds a file
descriptor and a task for ever, and a few hundred stop the server answering anyone.

- :func:`guarded_http` is uvicorn's own h11 protocol with two additions: a connection
  must finish its request headers within ``header_timeout`` seconds of opening (or of its
  previous response), and at most ``max_connections`` are open at once; when one more
  arrives, the oldest connection still waiting for its headers is dropped to make room
  (a real browser sends its headers at once, so it is never the oldest for long).
- :class:`RequestTimeLimit` is an ASGI middleware ending any request that takes longer
  than its limit in total (a slow body, a client that does not read its answer).
- :class:`OpenUploads` caps the uploads open at once per participant and, while a form
  has not yet shown its token, per client address: one client holding many slow uploads
  gets 429 for the extra ones instead of taking every connection.
- :class:`HeadLimits` is an ASGI middleware answering 431 to a request head over 16 KiB
  or 100 headers.
- :func:`raise_open_files_limit` lifts the soft limit on open files to the hard one.
- :func:`uvicorn_config` puts them together for ``kit serve`` and the tests.
"""
import ipaddress
import json
import logging
import time
from collections import Counter
from numbers import Integral

from kit.constraints import Interval, check_param

#: Connections open at once (``kit serve --max-connections``).
DEFAULT_MAX_CONNECTIONS = 200
#: Seconds a connection may take to send its request headers.
HEADER_TIMEOUT = 10.0
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE = 5
#: Seconds one request may take in total (``kit serve --request-timeout``).
DEFAULT_REQUEST_TIMEOUT = 300.0
#: Connections taken from the listening socket in one turn of the event loop (its backlog).
#: asyncio accepts this many before any is looked at, so a burst briefly holds this many
#: more descriptors; the rest wait in the kernel's queue, holding none of ours.
ACCEPT_BATCH = 128
#: Uploads one participant may have open at once (sending or being scored).
DEFAULT_UPLOADS_PER_TOKEN = 4
#: Forms open at once from one client address before their token has arrived: more than a
#: class behind one NAT sends at the same moment (``kit serve --anonymous-uploads``).
DEFAULT_ANONYMOUS_PER_ADDRESS = 32
#: Seconds a form may take to deliver its token (its first field) when no header carries one.
ANONYMOUS_TIMEOUT = HEADER_TIMEOUT
#: Open files kept for the database, the scorer and the log, on top of the connections.
SPARE_FILES = 64


def files_needed(max_connections):
    """Open files a server with ``max_connections`` may need at once (connections, bursts, its own files)."""
    return max_connections + 2 * ACCEPT_BATCH + SPARE_FILES


def guarded_http(max_connections=DEFAULT_MAX_CONNECTIONS, header_timeout=HEADER_TIMEOUT):
    """uvicorn's h11 protocol class with a header deadline and a cap on open connections.

    Parameters
    ----------
    max_connections : int
        Connections open at once; one more drops the oldest still waiting for headers
        (or is itself closed when every open one is busy with a request).
    header_timeout : float
        Seconds a connection may wait, from opening or from its last response, before
        its next request's headers are complete; then it is closed.

    Returns
    -------
    type
        A subclass of ``uvicorn.protocols.http.h11_impl.H11Protocol`` for ``uvicorn.Config(http=...)``.

    Examples
    --------
    >>> import uvicorn
    >>> config = uvicorn.Config(lambda *a: None, http=guarded_http(100, 5.0))
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    waiting = {}  # connections waiting for request headers, oldest first (dicts keep order)

    class GuardedH11Protocol(H11Protocol):
        _timer = None
        _waiting_cycle = None

        def connection_made(self, transport):
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                oldest = next(iter(waiting), None)
                if oldest is None:  # every open connection is busy with a request: refuse this one
                    self.transport.close()
                    return
                oldest._drop()
            self._await_request()

        def handle_events(self):
            super().handle_events()
            if self.cycle is not self._waiting_cycle:
                self._stop_waiting()  # a request's headers are complete

        def on_response_complete(self):
            # Armed before the base class looks at pipelined data, which may start the next request.
            self._await_request()
            super().on_response_complete()

        def connection_lost(self, exc):
            self._stop_waiting()
            super().connection_lost(exc)

        def _await_request(self):
            self._stop_waiting()
            waiting[self] = None
            self._waiting_cycle = self.cycle
            self._timer = self.loop.call_later(header_timeout, self._drop)

        def _stop_waiting(self):
            waiting.pop(self, None)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _drop(self):
            self._stop_waiting()
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol


class RequestTimeLimit:
    """ASGI middleware: a request taking more than ``seconds`` in total is ended.

    When nothing was answered yet, the client gets 408 ``{"error": ...}``; otherwise the
    connection is closed (uvicorn closes a connection whose response is unfinished).

    Examples
    --------
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> app.add_middleware(RequestTimeLimit, seconds=60)
    """

    def __init__(self, app, seconds=DEFAULT_REQUEST_TIMEOUT):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send):
        import anyio  # the server's async library: kept off the path of `kit --help`, which imports this module

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with anyio.move_on_after(self.seconds) as limit:
            await self.app(scope, receive, tracking_send)
        if limit.cancelled_caught and not started:
            body = json.dumps({"error": f"request took longer than {self.seconds:g} s: try again "
                                        "(on a slow connection, send a smaller file)"}).encode()
            await send({"type": "http.response.start", "status": 408,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


class TooManyOpen(Exception):
    """One more upload than a key's cap allows; ``cap`` says how many are allowed."""

    def __init__(self, key, cap):
        super().__init__(f"{cap} uploads already open for {key!r}")
        self.key = key
        self.cap = cap


class OpenUploads:
    """Counts the uploads open at once per key (a participant, a client address).

    Used from the event loop only, so no lock: :meth:`acquire` and :meth:`release` never
    wait.

    Examples
    --------
    >>> uploads = OpenUploads()
    >>> uploads.acquire("ada", cap=1)
    'ada'
    >>> uploads.acquire("ada", cap=1)
    Traceback (most recent call last):
    ...
    kit.server.limits.TooManyOpen: 1 uploads already open for 'ada'
    >>> uploads.release("ada"); uploads.open("ada")
    0
    """

    def __init__(self):
        self._open = Counter()

    def acquire(self, key, cap):
        """Count one more upload for ``key``; :class:`TooManyOpen` when ``cap`` are open already."""
        if self._open[key] >= cap:
            raise TooManyOpen(key, cap)
        self._open[key] += 1
        return key

    def release(self, key):
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]

    def open(self, key):
        """Uploads open now for ``key``."""
        return self._open.get(key, 0)


def address_key(host):
    """The key a client address is counted under: the address, or its /64 network for IPv6.

    One IPv6 client commonly holds a whole /64, so counting single addresses would not
    bound it. Text that is not an address (a test client's name) is its own key.

    Examples
    --------
    >>> address_key("192.168.1.20"), address_key("2001:db8::1"), address_key("::ffff:10.0.0.1")
    ('192.168.1.20', '2001:db8::/64', '10.0.0.1')
    """
    try:
        address = ipaddress.ip_address(str(host))
    except ValueError:
        return str(host)
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


#: Largest request head (address and headers) answered; browsers send a few kB.
MAX_HEAD_BYTES = 16 * 1024
#: Most request headers answered.
MAX_HEADERS = 100


class HeadLimits:
    """ASGI middleware: a request whose head is over :data:`MAX_HEAD_BYTES` or :data:`MAX_HEADERS` gets 431.

    h11 bounds a head that arrives in pieces, but one that arrives whole in a single read
    (up to the transport's read size) is parsed whatever its size; this refuses it
    before any route sees it.

    Examples
    --------
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> app.add_middleware(HeadLimits)
    """

    def __init__(self, app, max_bytes=MAX_HEAD_BYTES, max_headers=MAX_HEADERS):
        self.app = app
        self.max_bytes = max_bytes
        self.max_headers = max_headers

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = scope.get("headers", [])
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            size += sum(len(name) + len(value) + 4 for name, value in headers)
            if size > self.max_bytes or len(headers) > self.max_headers:
                body = json.dumps({"error": f"request head too large: expected at most {self.max_headers} headers "
                                            f"and {self.max_bytes // 1024} KiB"}).encode()
                await send({"type": "http.response.start", "status": 431,
                            "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                        (b"content-length", str(len(body)).encode())]})
                return await send({"type": "http.response.body", "body": body})
        return await self.app(scope, receive, send)


def raise_open_files_limit():
    """Lift the soft limit on open files to the hard limit (best effort); the soft limit after.

    Returns None where the platform has no such limit (Windows).

    Examples
    --------
    >>> raise_open_files_limit() >= 256  # doctest: +SKIP
    True
    """
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class OncePerInterval(logging.Filter):
    """A logging filter letting a message containing ``text`` through at most once per ``seconds``.

    asyncio reports every failed ``accept()`` (out of file descriptors) on its logger;
    under a flood of connections that would fill the log.

    Examples
    --------
    >>> logging.getLogger("asyncio").addFilter(OncePerInterval("socket.accept() out of system resource"))
    """

    def __init__(self, text, seconds=60.0, clock=time.monotonic):
        super().__init__()
        self.text = text
        self.seconds = seconds
        self.clock = clock
        self.last = None
        self.dropped = 0

    def filter(self, record):
        if self.text not in record.getMessage():
            return True
        now = self.clock()
        if self.last is not None and now - self.last < self.seconds:
            self.dropped += 1
            return False
        if self.dropped:
            record.msg = f"{record.getMessage()} (and {self.dropped} more like it since the last report)"
            record.args = None
        self.last, self.dropped = now, 0
        return True


#: The log line asyncio writes when ``accept()`` fails for want of file descriptors.
ACCEPT_ERROR = "socket.accept() out of system resource"


def quiet_accept_errors():
    """Report failed ``accept()`` calls at most once a minute (installed once per process)."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, OncePerInterval) and f.text == ACCEPT_ERROR for f in logger.filters):
        logger.addFilter(OncePerInterval(ACCEPT_ERROR))


def uvicorn_config(app, *, max_connections=DEFAULT_MAX_CONNECTIONS, header_timeout=HEADER_TIMEOUT, **options):
    """A ``uvicorn.Config`` for ``app`` with the bounds of this module.

    Parameters
    ----------
    app : ASGI app
    max_connections : int
        See :func:`guarded_http`; also uvicorn's ``limit_concurrency`` (503 past it).
    header_timeout : float
        See :func:`guarded_http`.
    **options
        Passed to ``uvicorn.Config`` (``log_level``, ...).

    Examples
    --------
    >>> config = uvicorn_config(lambda *a: None, max_connections=50, log_level="warning")
    >>> config.limit_concurrency
    51
    """
    import uvicorn

    check_param(max_connections, "max_connections", Interval(Integral, 1, None))
    options.setdefault("server_header", False)
    options.setdefault("timeout_keep_alive", KEEP_ALIVE)
    options.setdefault("backlog", ACCEPT_BATCH)
    options.setdefault("ws", "none")  # no WebSocket routes; an upgraded connection would escape the guard
    # The guard keeps the connections at max_connections; uvicorn's own check (503) is the
    # backstop for requests, one above so that a full but honest house is still served.
    return uvicorn.Config(app, http=guarded_http(max_connections, header_timeout),
                          limit_concurrency=max_connections + 1, **options)
