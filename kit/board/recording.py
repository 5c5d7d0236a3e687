"""Recording a score: one scored submission of ``kit score`` or the inbox stored, then the exports rewritten.

Every scored submission, from ``kit score``, the classroom inbox or ``kit serve``, is a
row of one store (:mod:`kit.board.store`); a log written by an earlier version is
imported into the store once (:func:`open_store`), so no row is lost.
"""
import json
import math
from datetime import datetime, timezone
from pathlib import Path

from kit.board.exports import export_logs
from kit.board.logfile import log_path, make_entry, read_log, skipped_notes
from kit.board.phases import SubmissionsClosed, closed_reason
from kit.board.store import DB_NAME, LOG_IMPORTED, SCORE, Database, LimitReached, ParticipantRevoked
from kit.competition.deadline import competition_deadline
from kit.competition.folder import load_competition
from kit.errors import UserError


def record_result(result, participant=None, leaderboard=None, time=None, file=None, *, source=SCORE, once=False):
    """Store a score in its competition's store and rewrite the CSV exports; return ``(log path, earlier)``.

    Parameters
    ----------
    result : ScoreResult
    participant, time, file
        As for :func:`kit.board.logfile.make_entry`.
    leaderboard : str or Path, optional
        Folder of the exports (default ``./leaderboard``).
    source : str
        ``score`` (``kit score``) or ``inbox``.
    once : bool
        Store nothing when this participant already has a submission with these bytes;
        ``earlier`` is then that row (a dict), else None.

    Examples
    --------
    >>> path, earlier = record_result(result, participant="ann", once=True)  # doctest: +SKIP
    """
    competition = _result_competition(result)
    db = open_store(competition, leaderboard)
    try:
        _, earlier = store_result(db, result, participant=participant, time=time, file=file, source=source,
                                  once=once, closes_at=competition_deadline(competition.metadata))
        return export_logs(db, competition, leaderboard), earlier
    finally:
        db.close()


def store_result(db, result, participant=None, time=None, file=None, *, source=SCORE, once=False, closes_at=None,
                 limit=None, window=None):
    """Store a score in an open store (no export); return ``(id, earlier)`` as :meth:`Database.record` does.

    The closing rules of :meth:`Database.record` hold (deadline ``closes_at``, the
    reveal, revoked participants, ``limit`` per ``window``); a refusal is a
    :class:`NotRecorded` (a UserError) whose message is the one line to show.
    """
    time = _utc_time(time)
    entry = make_entry(result, participant=participant, time=time, file=file)
    row = {**entry, "time": time, "rows": result.rows, "size": _size(result.path),
           "public": result.public, "private": result.private, "validation": _finite_or_none(result.validation),
           "per_bin_public": json.loads(entry["per_bin_public"]), "per_bin_private": json.loads(entry["per_bin_private"])}
    try:
        return db.record(row, source, once=once, closes_at=closes_at, limit=limit, window=window)
    except SubmissionsClosed as exc:
        raise NotRecorded(closed_reason(exc.reason, closes_at), exc.reason) from None
    except ParticipantRevoked as exc:
        raise NotRecorded(f"revoked: participant {exc.args[0]!r} was revoked (`kit participants revoke`)",
                          "revoked") from None
    except LimitReached:
        raise NotRecorded("daily limit", "limit") from None


class NotRecorded(UserError):
    """The store refused a submission: ``reason`` is ``deadline``, ``revealed``, ``revoked`` or ``limit``."""

    def __init__(self, message, reason):
        super().__init__(message)
        self.reason = reason


def has_store(competition):
    """True when the competition's ``private/`` folder is here (the teacher's or learner's own copy)."""
    return (Path(competition.path) / "private").is_dir()


def store_path(competition):
    """``<competition>/private/classroom.sqlite``: the store of record."""
    return Path(competition.path) / "private" / DB_NAME


def _result_competition(result):
    """The Competition a ScoreResult was scored against (its folder when the scorer knew it)."""
    return load_competition(result.competition_dir or result.competition)


def _utc_time(time):
    return (time or datetime.now(timezone.utc)).astimezone(timezone.utc)


def _size(path):
    try:
        return Path(path).stat().st_size
    except (OSError, TypeError):
        return 0


def _finite_or_none(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def open_store(competition, leaderboard=None, notes=None):
    """The competition's store, with the log an earlier version wrote imported on the upgrade.

    Parameters
    ----------
    competition : Competition
    leaderboard : str or Path, optional
        Folder of the exports (default ``./leaderboard``): its ``<competition>.csv`` is
        imported only by a store that never imported one and holds no scored submission
        (the upgrade from a version without a store); any later CSV, in this folder or
        another, is an export and never read back (``kit leaderboard --import-log FILE``
        imports one on purpose).
    notes : list, optional
        Gets a line for the damaged lines the import skipped, if any.

    Returns
    -------
    kit.board.store.Database
        Close it when done.

    Examples
    --------
    >>> db = open_store(load_competition("practice"))   # doctest: +SKIP
    """
    db = Database(store_path(competition))
    try:
        if db.may_import_log():
            path = log_path(competition.name, leaderboard)
            if not path.is_file() or import_log(db, path, notes) is None:
                db.mark_imported(LOG_IMPORTED)
    except BaseException:
        db.close()
        raise
    return db


def import_log(db, path, notes=None, explicit=False):
    """Import the rows of a log written before the store existed; return how many (None when refused).

    Automatically (``explicit=False``) only on the upgrade (:meth:`Database.import_entries`);
    ``explicit`` is the teacher's ``kit leaderboard --import-log FILE``: once per file,
    rows the store already holds not stored twice. Damaged lines are skipped as
    :func:`kit.board.logfile.read_log` skips them, with a line in ``notes``. Imported rows have source ``log``.
    """
    path = Path(path)
    if explicit and not path.is_file():
        raise UserError(f"--import-log {path}: not found: expected a leaderboard/<competition>.csv log")
    log = read_log(path)
    if notes is not None:
        notes.extend(skipped_notes(log, path))
    entries = [{
        "time": row.time, "participant": row.participant, "file": row.file, "sha256": row.sha256,
        "model": row.model, "public": row.public, "private": _finite_or_none(row.private),
        "validation": _finite_or_none(row.validation), "rows": row.rows,
        "per_bin_public": row.per_bin_public, "per_bin_private": row.per_bin_private,
    } for row in log.itertuples(index=False)]
    return db.import_entries(entries, f"{LOG_IMPORTED}:{path.resolve()}" if explicit else None)
