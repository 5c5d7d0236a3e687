"""Many programs opening a new classroom store at the same moment: how many openers fail.

A class running ``kit score`` together, or the inbox and ``kit participants add`` started at
once, open ``private/classroom.sqlite`` before it exists. Each trial starts ``--openers``
threads on a barrier; each opens the store, adds one participant and closes it. The
openers that fail are counted by message.

    .venv/bin/python bench/bench_store_open.py --trials 100 --openers 12
"""
import argparse
import collections
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from kit.board.store import Database


def trial(folder, openers, errors):
    """One new store opened by ``openers`` threads released together."""
    barrier = threading.Barrier(openers)

    def work(k):
        try:
            barrier.wait()
            db = Database(Path(folder) / "classroom.sqlite")
            db.add_participant(f"p{k}", datetime.now(timezone.utc))
            db.close()
        except Exception as exc:  # noqa: BLE001 - counted, the point of the measurement
            errors[f"{type(exc).__name__}: {str(exc).split(': ', 1)[-1]}"] += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--openers", type=int, default=12)
    args = parser.parse_args()
    errors = collections.Counter()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for k in range(args.trials):
            folder = Path(scratch) / str(k)
            folder.mkdir()
            trial(folder, args.openers, errors)
    total = args.trials * args.openers
    print(f"{total} openers in {args.trials} trials, {time.perf_counter() - started:.1f} s: "
          f"{sum(errors.values())} failed")
    for message, count in errors.most_common():
        print(f"  {count} x {message}")


if __name__ == "__main__":
    main()
