"""The leaderboard of the classroom database, and its exports (CSV logs, Markdown, HTML).

The ranking is :func:`kit.leaderboard.rank` over the store's scored submissions (uploads,
``kit score`` and inbox rows alike): each participant's best Public score, ties to the
earlier time, every score rounded as participants see it. Once revealed it follows
Kaggle's rule (:func:`rank_standings`): a participant who chose final submissions ranks
on the best Private score among them, one who did not on the Private score of their best
Public submission.
"""
import logging
import threading
import time

from kit.leaderboard import Standings, build_leaderboard, entries_frame, rank, shown_entries, store_entries
from kit.server.db import SCORED

log = logging.getLogger("kit.serve")


#: What a final row was ranked on (the ``basis`` column): the chosen final submissions, or the best Public one.
SELECTED, BEST_PUBLIC = "selected", "best Public"


class _Snapshot:
    """One read of the store's scored submissions, handed to :func:`kit.leaderboard.store_entries`."""

    def __init__(self, db):
        self.rows = db.submissions(status=SCORED)

    def submissions(self, status=None):
        return self.rows


def submissions_frame(db, revealed=False):
    """The store's scored submissions as participants may see them, as a leaderboard log frame.

    The frame has the columns of :func:`kit.leaderboard.read_log`, in order of arrival,
    plus ``id`` (the submission's) and ``final`` (chosen as a final submission); scores
    are rounded, Private ones left out unless ``revealed``. A team member's rows are
    under the team's name: a team has one row on the leaderboard.
    """
    snapshot = _Snapshot(db)
    frame = entries_frame(shown_entries(store_entries(snapshot), revealed))
    teams = db.teams()
    frame["participant"] = [teams.get(name, name) for name in frame["participant"]]
    frame["id"] = [row["id"] for row in snapshot.rows]
    chosen = {submission for ids in db.finals().values() for submission in ids}
    frame["final"] = frame["id"].isin(chosen)
    return frame


def rank_standings(log, metric, private=False):
    """The ranking of a log frame, with Kaggle's rule for final submissions once ``private``.

    Before the reveal (``private`` False) this is :func:`kit.leaderboard.rank`. After it, a
    participant with rows marked ``final`` ranks on the best Private score among them (ties
    to the earlier); one without, on the Private score of their best Public submission.
    ``public_rank`` and ``entries`` stay those of the Public ranking. The column ``basis``
    says which rule each row followed (:data:`SELECTED` or :data:`BEST_PUBLIC`).

    Examples
    --------
    >>> from kit.leaderboard import entries_frame
    >>> from kit.metrics import get_metric
    >>> log = entries_frame([{"time": "2026-03-01T12:00:00Z", "participant": "Ann", "public": 0.1, "private": 0.3},
    ...                      {"time": "2026-03-01T13:00:00Z", "participant": "Ann", "public": 0.2, "private": 0.1}])
    >>> ranked = rank_standings(log.assign(final=[False, True]), get_metric("rmse"), private=True)
    >>> ranked[["participant", "private", "basis"]].values.tolist()
    [['Ann', 0.1, 'selected']]
    """
    if not private or log.empty or "final" not in log:
        ranking = rank(log, metric, private=private)
        ranking["basis"] = BEST_PUBLIC
        return ranking
    chosen = log[log["final"].astype(bool)]
    chosen = chosen.assign(_key=chosen["private"].map(metric.sort_key))
    picked = chosen.sort_values(["_key", "time", "order"], kind="stable").drop_duplicates("participant")
    selecting = set(picked["participant"])
    keep = ~log["participant"].isin(selecting) | log.index.isin(picked.index)
    ranking = rank(log[keep], metric, private=True)
    public = rank(log, metric, private=False).set_index("participant")
    ranking["entries"] = ranking["participant"].map(public["entries"]).astype(int)
    ranking["public_rank"] = ranking["participant"].map(public["rank"]).astype(int)
    ranking["basis"] = [SELECTED if name in selecting else BEST_PUBLIC for name in ranking["participant"]]
    return ranking


def standings(db, competition, metric):
    """The :class:`kit.leaderboard.Standings` of the database (Private once revealed, with final submissions)."""
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

    The pages rank as the live page does (:func:`standings`: teams, and the final
    submissions once revealed). ``metric`` is the competition's own (kept for callers).
    """
    from dataclasses import replace

    from kit import leaderboard_pages as pages
    from kit.fileio import write_text_atomic

    exported = build_leaderboard(competition, leaderboard=leaderboard, store=db, write_pages=False)
    frame = submissions_frame(db, exported.private)
    current = replace(exported, log=frame, ranking=rank_standings(frame, exported.metric, private=exported.private))
    base = exported.log_path.with_suffix("")
    write_text_atomic(base.with_suffix(".md"), pages.render_markdown(current))
    write_text_atomic(base.with_suffix(".html"), pages.render_html(current, competition.metadata))
    return exported.log_path


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
