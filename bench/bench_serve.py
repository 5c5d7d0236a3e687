"""Load and durability of ``kit serve`` on 127.0.0.1.

    python bench/bench_serve.py [--competition DIR] [--participants 30] [--per-participant 5]

1. Load: ``--participants`` participants each post ``--per-participant`` valid submissions,
   all at once (one thread and one HTTP connection each). Reports p50/p95/max latency and
   throughput, and checks every answer is 201 (no 5xx), every accepted submission is in the
   database and counted on ``/api/leaderboard``.
2. Durability: as many new participants post again; once a third of their submissions are
   acknowledged the server gets ``kill -9``. It is restarted on the same folder; the bench
   checks ``PRAGMA integrity_check`` and that every submission acknowledged with 201
   survived, with its stored file and score, in the database and on ``/api/leaderboard``.

The competition has the default size (10,000 test pairs, as ``kit prepare`` makes) unless
``--competition`` names a prepared one; either way it runs on a copy in a temporary folder,
so the bench never touches a real classroom database. Everything is bounded by timeouts.
"""
import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--competition", help="a prepared competition folder to copy (default: a synthetic one)")
    parser.add_argument("--pairs", type=int, default=10_000, help="test pairs of the synthetic competition")
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--per-participant", type=int, default=5)
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    import httpx

    with tempfile.TemporaryDirectory(prefix="kit-bench-serve-") as tmp:
        tmp = Path(tmp)
        comp = _competition(args, tmp)
        ids, truth = _solution(comp)
        n = args.participants
        tokens = _add_participants(comp, [f"load{i:02d}" for i in range(n)] + [f"kill{i:02d}" for i in range(n)])
        files = _submissions(tmp / "subs", ids, truth, list(tokens), args.per_participant)
        print(f"competition: {len(ids):,} test pairs; each submission {files[next(iter(files))][0].stat().st_size:,} "
              f"bytes; {os.cpu_count()} CPU(s)")

        server = Server(comp, tmp)
        try:
            # --- 1. load ---------------------------------------------------------------
            load = {name: tokens[name] for name in tokens if name.startswith("load")}
            results, wall = _load(server.url, load, files)
            latencies = sorted(r["seconds"] for r in results)
            statuses = {}
            for r in results:
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            accepted = [r for r in results if r["status"] == 201]
            in_db = _db_ids(comp)
            board = httpx.get(server.url + "api/leaderboard", timeout=60).json()
            entries = sum(row["entries"] for row in board["rows"])
            numbers = {
                "requests": len(results),
                "statuses": statuses,
                "p50_s": _quantile(latencies, 0.50),
                "p95_s": _quantile(latencies, 0.95),
                "max_s": latencies[-1],
                "wall_s": wall,
                "throughput_per_s": len(results) / wall,
                "accepted_in_db": sum(1 for r in accepted if r["id"] in in_db),
                "leaderboard_participants": len(board["rows"]),
                "leaderboard_entries": entries,
            }
            print(f"load: {len(results)} uploads by {n} concurrent participants in {wall:.1f} s "
                  f"({numbers['throughput_per_s']:.1f}/s); statuses {statuses}")
            print(f"  latency p50 {numbers['p50_s']:.2f} s, p95 {numbers['p95_s']:.2f} s, max {numbers['max_s']:.2f} s "
                  f"(target p95 < 2 s)")
            print(f"  accepted {len(accepted)}, in the database {numbers['accepted_in_db']}, on /api/leaderboard "
                  f"{entries} entries of {len(board['rows'])} participants")
            ok_load = (statuses == {201: len(results)} and numbers["accepted_in_db"] == len(results)
                       and entries == len(results) and len(board["rows"]) == n)

            # --- 2. kill -9 during load, restart --------------------------------------
            kill = {name: tokens[name] for name in tokens if name.startswith("kill")}
            target = max(1, len(kill) * args.per_participant // 3)
            acknowledged = []
            watcher = threading.Thread(target=_kill_after, args=(server, acknowledged, target), daemon=True)
            watcher.start()
            results, _ = _load(server.url, kill, files, acknowledged=acknowledged)
            watcher.join(60)
            errors = sum(1 for r in results if r["status"] is None)
            five = sum(1 for r in results if isinstance(r["status"], int) and r["status"] >= 500)
            server = Server(comp, tmp)
            integrity = _integrity(comp)
            in_db = _db_rows(comp)
            survived = [r for r in acknowledged if r["id"] in in_db and in_db[r["id"]]["sha256"] == r["sha256"]
                        and (comp / "private" / in_db[r["id"]]["stored_path"]).is_file()]
            board = httpx.get(server.url + "api/leaderboard", timeout=60).json()
            on_board = sum(row["entries"] for row in board["rows"] if row["participant"].startswith("kill"))
            ack_by_kill = len(acknowledged)
            db_by_kill = sum(1 for row in in_db.values() if row["participant"].startswith("kill"))
            numbers.update({
                "kill_acknowledged": ack_by_kill,
                "kill_survived": len(survived),
                "kill_connection_errors": errors,
                "kill_5xx": five,
                "integrity_check": integrity,
                "kill_rows_in_db": db_by_kill,
                "kill_on_leaderboard": on_board,
            })
            print(f"kill -9 after {ack_by_kill} acknowledged uploads: {errors} uploads cut off, {five} answered 5xx")
            print(f"  restarted: integrity_check {integrity!r}; {len(survived)} of {ack_by_kill} acknowledged "
                  f"submissions survived (files and scores); {db_by_kill} in the database, {on_board} on "
                  "/api/leaderboard")
            ok_kill = integrity == "ok" and len(survived) == ack_by_kill and on_board == db_by_kill and five == 0
        finally:
            server.stop()
    numbers["ok"] = bool(ok_load and ok_kill)
    print("OK" if numbers["ok"] else "FAILED")
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2))
    return 0 if numbers["ok"] else 1


# --- pieces ------------------------------------------------------------------------------


def _competition(args, tmp):
    if args.competition:
        source = Path(args.competition)
        target = tmp / "data" / source.name
        (target / "private").mkdir(parents=True)
        for name in ("competition.json", "test_pairs.csv", "sample_submission.csv", "private/solution.csv"):
            shutil.copy2(source / name, target / name)
        return target
    from builders import make_competition

    return make_competition(tmp / "data", n_pairs=args.pairs, max_daily_submissions=args.per_participant)


def _solution(comp):
    import pandas as pd

    frame = pd.read_csv(comp / "private" / "solution.csv")
    return frame["id"].to_numpy(), frame["similarity"].to_numpy()


def _add_participants(comp, names):
    run = subprocess.run([sys.executable, "-m", "kit", "participants", "add", "--competition", str(comp), *names],
                         capture_output=True, text=True, timeout=120, check=True)
    return dict(line.split(",") for line in run.stdout.splitlines()[1:])


def _submissions(folder, ids, truth, names, per):
    """``per`` different valid files for each participant (seeded noise)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = {}
    for name in names:
        files[name] = []
        for k in range(per):
            values = np.clip(truth + rng.normal(0, 0.05 + 0.02 * k, truth.size), 0, 1)
            path = folder / f"{name}_{k}.csv"
            with open(path, "w") as handle:
                handle.write("id,similarity\n")
                handle.writelines(f"{i},{v:.6f}\n" for i, v in zip(ids, values))
            files[name].append(path)
    return files


class Server:
    """``kit serve`` in a child process on a free port."""

    def __init__(self, comp, tmp):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kit", "serve", "--competition", str(comp), "--port", "0",
             "--leaderboard", str(tmp / "lb")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.url = None
        deadline = time.monotonic() + 60
        while self.url is None and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError("kit serve ended before printing its address")
            match = re.search(r"^Serving .* at (http://127\.0\.0\.1:\d+/)", line)
            if match:
                self.url = match.group(1)
        if self.url is None:
            raise RuntimeError("kit serve did not start within 60 s")
        # Keep reading its log so that a full pipe never blocks it.
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    def kill(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


def _load(url, tokens, files, acknowledged=None):
    """Every participant posts their files at once; results in order of completion."""
    import httpx

    results, lock = [], threading.Lock()
    barrier = threading.Barrier(len(tokens))

    def participant(name, token):
        with httpx.Client(timeout=httpx.Timeout(120, connect=10)) as client:
            barrier.wait()
            for path in files[name]:
                started = time.perf_counter()
                try:
                    with open(path, "rb") as handle:
                        response = client.post(url + "api/submissions", headers={"Authorization": f"Bearer {token}"},
                                               files={"file": (path.name, handle, "text/csv")})
                    status, body = response.status_code, response.json()
                except (httpx.HTTPError, ValueError):
                    status, body = None, {}
                row = {"participant": name, "status": status, "seconds": time.perf_counter() - started,
                       "id": body.get("id"), "sha256": body.get("sha256")}
                with lock:
                    results.append(row)
                    if status == 201 and acknowledged is not None:
                        acknowledged.append(row)
                if status is None:
                    return  # the server is gone

    threads = [threading.Thread(target=participant, args=item) for item in tokens.items()]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return results, time.perf_counter() - started


def _kill_after(server, acknowledged, target):
    deadline = time.monotonic() + 300
    while len(acknowledged) < target and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill()


def _connect(comp):
    return sqlite3.connect(f"file:{comp / 'private' / 'classroom.sqlite'}?mode=ro", uri=True, timeout=30)


def _db_ids(comp):
    with _connect(comp) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM submissions WHERE status = 'scored'")}


def _db_rows(comp):
    with _connect(comp) as conn:
        rows = conn.execute("SELECT s.id, s.sha256, s.stored_path, p.name FROM submissions s "
                            "JOIN participants p ON p.id = s.participant_id WHERE s.status = 'scored'")
        return {r[0]: {"sha256": r[1], "stored_path": r[2], "participant": r[3]} for r in rows}


def _integrity(comp):
    with _connect(comp) as conn:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


def _quantile(sorted_values, q):
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(q * 100) - 1]


if __name__ == "__main__":
    sys.exit(main())
