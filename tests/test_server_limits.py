"""Bounds on slow and numerous clients (kit.server.limits), over real sockets on 127.0.0.1."""
import asyncio
import json
import logging
import socket
import time

import pytest

pytest.importorskip("uvicorn")

from kit.server.limits import (  # noqa: E402
    DEFAULT_MAX_CONNECTIONS,
    HeadLimits,
    OncePerInterval,
    OpenUploads,
    RequestTimeLimit,
    TooManyOpen,
    address_key,
    raise_open_files_limit,
    uvicorn_config,
)
from server_builders import LiveServer, hold_slow_forms, let_go, timed_page_loads  # noqa: E402


async def info_app(scope, receive, send):
    """A tiny ASGI app: answers every request with 200 ``ok``."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        return await send({"type": "lifespan.shutdown.complete"})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def closed_within(sock, seconds):
    """Whether the server closes ``sock`` within ``seconds`` (polling, bounded)."""
    sock.settimeout(0.2)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def honest_get(port):
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/", timeout=10)


def test_a_connection_that_never_finishes_its_headers_is_closed():
    with LiveServer(info_app, header_timeout=0.3) as live:
        with socket.create_connection(("127.0.0.1", live.port), timeout=5) as silent, \
                socket.create_connection(("127.0.0.1", live.port), timeout=5) as partial:
            partial.sendall(b"POST /api/submissions HTTP/1.1\r\nHost: x\r\n")
            assert closed_within(silent, 5) and closed_within(partial, 5)
        assert honest_get(live.port).status_code == 200


def test_a_kept_alive_connection_cannot_hold_on_with_a_partial_next_request():
    with LiveServer(info_app, header_timeout=0.3) as live, \
            socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET / HTTP/1.1\r\n")  # cancels uvicorn's keep-alive timer, not ours
        assert closed_within(sock, 5)


def test_a_slow_but_complete_request_is_served():
    with LiveServer(info_app, header_timeout=2) as live, \
            socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        for piece in (b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            sock.sendall(piece)
            time.sleep(0.1)
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")


def test_half_open_connections_cannot_crowd_out_an_honest_client():
    """Many more half-open connections than allowed: at most max_connections stay open, the rest
    are dropped oldest first, and a client that sends its request at once is served."""
    held = []
    with LiveServer(info_app, max_connections=8, header_timeout=30) as live:
        try:
            for _ in range(40):
                sock = socket.create_connection(("127.0.0.1", live.port), timeout=5)
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
                held.append(sock)
            assert honest_get(live.port).status_code == 200
            time.sleep(0.3)
            open_ = [s for s in held if not closed_within(s, 0.05)]
            assert len(open_) <= 8
            assert held[0] not in open_ and held[-1] in open_  # the oldest went first
        finally:
            for sock in held:
                sock.close()


def test_request_time_limit_answers_408_when_nothing_was_sent():
    async def slow(scope, receive, send):
        await asyncio.sleep(5)

    sent = []

    async def send(message):
        sent.append(message)

    start = time.monotonic()
    asyncio.run(RequestTimeLimit(slow, seconds=0.1)({"type": "http"}, None, send))
    assert time.monotonic() - start < 2
    assert sent[0]["status"] == 408 and "error" in json.loads(sent[1]["body"])


def test_request_time_limit_ends_a_response_stuck_half_way_without_a_second_start():
    async def stuck(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(5)

    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(RequestTimeLimit(stuck, seconds=0.1)({"type": "http"}, None, send))
    assert [m["type"] for m in sent] == ["http.response.start"]


def test_open_files_limit_is_raised_to_the_hard_limit():
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        assert raise_open_files_limit() == (hard if hard != resource.RLIM_INFINITY else max(256, 65536))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_accept_errors_are_reported_once_per_interval():
    now = [0.0]
    quiet = OncePerInterval("socket.accept() out of system resource", seconds=60, clock=lambda: now[0])
    record = lambda: logging.LogRecord("asyncio", logging.ERROR, __file__, 1,  # noqa: E731
                                       "socket.accept() out of system resource", None, None)
    assert quiet.filter(record())
    assert [quiet.filter(record()) for _ in range(1000)].count(True) == 0
    now[0] = 61
    last = record()
    assert quiet.filter(last) and "1000 more" in last.getMessage()
    assert quiet.filter(logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "other", None, None))


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "10"])
def test_max_connections_must_be_a_positive_whole_number(value):
    with pytest.raises((TypeError, ValueError), match="max_connections must be an integer >= 1"):
        uvicorn_config(info_app, max_connections=value)


# --- slow anonymous forms against the real app --------------------------------------------


@pytest.fixture
def live_app(tmp_path):
    """``kit serve``'s app on a tiny competition, served on 127.0.0.1 with its default limits."""
    from builders import make_competition
    from kit.server.app import create_app

    def serve(**options):
        app = create_app(make_competition(tmp_path / "data"), leaderboard=tmp_path / "lb", export_interval=0,
                         **options)
        return LiveServer(app, max_connections=DEFAULT_MAX_CONNECTIONS)

    return serve


@pytest.mark.parametrize("path", ["/submit", "/me"])
def test_hundreds_of_slow_anonymous_forms_do_not_stop_page_loads(live_app, path):
    """600 slow anonymous forms from one address (three times the 200 connections allowed; before
    the cap, every page load then failed): at most 32 are taken, the others are refused at once,
    and pages load for everyone else."""
    with live_app(anonymous_timeout=60) as live:
        held = hold_slow_forms(live.port, 600, path)
        try:
            # The refusals come as fast as the server reaches the 600 sockets (seconds on a
            # loaded 2-core machine); the 32 it keeps must then stop nobody's page.
            refused, deadline = set(), time.monotonic() + 30
            while len(refused) < 600 - 32 and time.monotonic() < deadline:
                refused |= {k for k, sock in enumerate(held) if k not in refused and let_go(sock)}
                time.sleep(0.05)
            assert len(refused) >= 600 - 32
            loads = timed_page_loads(live.url + "/", 5)
            assert [status for status, _ in loads] == [200] * 5
            assert max(seconds for _, seconds in loads) < 5
            assert live.server.config.app.state.kit.uploads.open(("address", "127.0.0.1")) <= 32
        finally:
            for sock in held:
                sock.close()


def test_a_slow_anonymous_form_is_ended_at_the_anonymous_timeout(live_app):
    with live_app(anonymous_timeout=0.5) as live:
        (sock,) = hold_slow_forms(live.port, 1)
        with sock:
            sock.settimeout(5)
            start = time.monotonic()
            answer = b""
            while b"</html>" not in answer and (piece := sock.recv(4096)):
                answer += piece
            answer = answer.decode()
            assert answer.startswith("HTTP/1.1 408") and "token, did not arrive within 0.5 s" in answer
            assert time.monotonic() - start < 4


def test_open_uploads_are_counted_per_key_and_given_back():
    uploads = OpenUploads()
    assert [uploads.acquire(("address", "a"), 2) for _ in range(2)] == [("address", "a")] * 2
    with pytest.raises(TooManyOpen):
        uploads.acquire(("address", "a"), 2)
    assert uploads.acquire(("address", "b"), 2) == ("address", "b")  # another address has its own
    uploads.release(("address", "a"))
    assert uploads.open(("address", "a")) == 1 and uploads.acquire(("address", "a"), 2)


@pytest.mark.parametrize("host, key", [
    ("10.0.0.7", "10.0.0.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # the same /64: one client
    ("::ffff:192.168.0.9", "192.168.0.9"),
    ("testclient", "testclient"),
])
def test_address_key_counts_an_ipv6_client_by_its_network(host, key):
    assert address_key(host) == key


@pytest.mark.parametrize("request_head", [
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",  # one huge header
    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(10_000)) + b"\r\n",  # many
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a huge address
])
def test_huge_request_heads_are_refused_and_the_server_goes_on(request_head):
    with LiveServer(HeadLimits(info_app)) as live, \
            socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        try:
            sock.sendall(request_head)
        except OSError:
            pass  # closed while sending: refused
        answer = b""
        try:
            answer = sock.recv(1024)
        except OSError:
            pass
        assert not answer.startswith(b"HTTP/1.1 200") and closed_within(sock, 5)
        assert honest_get(live.port).status_code == 200
