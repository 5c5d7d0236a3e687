"""Page loads on ``kit serve`` while one client holds many slow anonymous forms (127.0.0.1 only).

    python bench/bench_serve_flood.py [--slow 0,300,600,1000] [--loads 20] [--path /submit]

For each number of slow sockets, one client opens that many connections to a server with
``kit serve``'s default limits (200 connections), each sending a form's headers and one
byte of its token field, then nothing: the attack of a client that holds uploads open
instead of sending them. While they are held, another client loads ``/`` ``--loads``
times on fresh connections. Reports how many loads got 200, their median and worst
time, and how many of the slow sockets the server had closed. Every socket is closed and
the server stopped before the next round; each request has a 5 s timeout, so the bench
ends by itself within a few minutes.

Runs the kit it imports: ``PYTHONPATH=<a checkout>`` measures that checkout's server.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", default="0,300,600,1000", help="numbers of slow sockets, comma-separated")
    parser.add_argument("--loads", type=int, default=20, help="page loads per round")
    parser.add_argument("--path", default="/submit", help="where the slow forms are posted (/submit or /me)")
    args = parser.parse_args(argv)

    import kit
    from builders import make_competition
    from kit.server.app import create_app
    from kit.server.limits import DEFAULT_MAX_CONNECTIONS, raise_open_files_limit
    from server_builders import LiveServer, hold_slow_forms, let_go, timed_page_loads

    raise_open_files_limit()
    print(f"kit from {Path(kit.__file__).parent}; {DEFAULT_MAX_CONNECTIONS} connections allowed; slow forms "
          f"to {args.path}")
    print("| slow sockets | loads answered 200 | median s | max s | slow sockets closed by the server |")
    print("|---|---|---|---|---|")
    for count in [int(n) for n in args.slow.split(",")]:
        with tempfile.TemporaryDirectory(prefix="kit-bench-flood-") as tmp:
            app = create_app(make_competition(Path(tmp) / "data"), leaderboard=Path(tmp) / "lb", export_interval=0)
            with LiveServer(app, max_connections=DEFAULT_MAX_CONNECTIONS) as live:
                held = hold_slow_forms(live.port, count, args.path)
                try:
                    time.sleep(0.5)  # the server answers the ones it refuses
                    loads = timed_page_loads(live.url + "/", args.loads)
                    closed = sum(let_go(sock) for sock in held)
                finally:
                    for sock in held:
                        sock.close()
        ok = [seconds for status, seconds in loads if status == 200]
        times = [seconds for _, seconds in loads]
        print(f"| {count} | {len(ok)}/{len(loads)} | {statistics.median(times):.3f} | {max(times):.3f} | "
              f"{closed}/{count} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
