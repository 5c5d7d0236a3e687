"""The live leaderboard of ``kit serve``: the store's standings, their JSON, and the pages exported in the background.

The ranking is :func:`kit.board.ranking.rank` over the store's scored submissions (uploads,
``kit score`` and inbox rows alike): each participant's best Public score, ties to the
earlier time, every score rounded as participants see it. Once revealed it follows
Kaggle's rule (:func:`kit.board.ranking.rank_standings`): a participant who chose final submissions ranks
on the best Private score among them, one who did not on the Private score of their best
Public submission.
"""
import logging
import threading
import time

from kit.board.leaderboard import Standings, build_leaderboard
from kit.board.ranking import rank_standings, submissions_frame

log = logging.getLogger("kit.serve")


def standings(db, competition, metric):
    """The :class:`kit.board.leaderboard.Standings` of the database (Private once revealed, with final submissions)."""
    revealed = db.revealed
    frame = submissions_frame(db, revealed)
    ranking = rank_standings(frame, metric, private=revealed)
    return Standings(competition.name, metric, revealed, ranking, frame, text="")


def leaderboard_json(current, rows_by_participant):
    """The ``GET /api/leaderboard`` object of some standings.

    ``rows_by_participant`` maps a participant to the time of their latest submission.
    """
    out = []
    for item in current.ranking.itertuples(index=False):
        row = {
            "rank": int(item.rank),
            "participant": item.participant,
            "public": _finite(item.public),
            "entries": int(item.entries),
            "model": item.model or None,
            "best_submitted_at": _iso(item.time),
            "last_submitted_at": rows_by_participant.get(item.participant),
        }
        if current.private:
            row["private"] = _finite(item.private)
            row["public_rank"] = int(item.public_rank)
            row["basis"] = item.basis
        out.append(row)
    return {
        "competition": current.competition,
        "metric": current.metric.name,
        "direction": current.metric.direction,
        "revealed": bool(current.private),
        "submissions": int(len(current.log)),
        "rows": out,
    }


def latest_times(frame):
    """Participant -> ISO time of their latest scored submission."""
    if frame.empty:
        return {}
    latest = frame.groupby("participant")["time"].max()
    return {name: _iso(when) for name, when in latest.items()}


def export(db, competition, metric=None, leaderboard=None):
    """Rewrite the CSV logs and the Markdown and HTML pages from the database; return the log path.

    The pages rank as the live page does (:func:`kit.board.leaderboard.build_leaderboard` over
    the store: teams, and the final submissions once revealed). ``metric`` is the
    competition's own (kept for callers).
    """
    return build_leaderboard(competition, leaderboard=leaderboard, store=db).log_path


class Exporter:
    """Runs :func:`export` in one background thread, after each change, coalescing bursts.

    Rendering the pages draws plots (a second or so of CPU): under a burst of uploads one
    export covers every submission that arrived before it started, and exports are at
    least ``interval`` seconds apart, so scoring keeps the CPU.
    """

    def __init__(self, job, interval=2.0):
        self.job = job
        self.interval = interval
        self._wanted = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = False
        self._lock = threading.Lock()
        self._thread = None
        self.exports = 0
        self.last_error = None

    def request(self):
        """Ask for an export (returns at once)."""
        with self._lock:
            self._idle.clear()
            self._wanted.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="kit-serve-export", daemon=True)
                self._thread.start()

    def flush(self, timeout=60):
        """Wait until every requested export is written; True when it finished in time."""
        return self._idle.wait(timeout)

    def stop(self, timeout=60):
        """Write what is pending, then end the thread."""
        self.flush(timeout)
        self._stop = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self):
        while True:
            self._wanted.wait()
            if self._stop:
                return
            self._wanted.clear()
            started = time.monotonic()
            try:
                self.job()
                self.exports += 1
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - the database is the record; the export retries next time
                self.last_error = exc
                log.exception("exporting the leaderboard failed")
            with self._lock:
                if not self._wanted.is_set():
                    self._idle.set()
            if self._wanted.is_set():
                time.sleep(max(0.0, self.interval - (time.monotonic() - started)))


def _iso(value):
    try:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (AttributeError, ValueError):
        return None


def _finite(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None
