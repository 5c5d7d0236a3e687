"""The leaderboard: the competition's store of record, its exports, and the ranking.

Every scored submission, from ``kit score``, the classroom inbox or ``kit serve``, is a
row of one store: the SQLite database ``<competition>/private/classroom.sqlite``
(:mod:`kit.board.store`; WAL, ``synchronous=FULL``, one transaction a row, so concurrent
writers never lose or corrupt one). ``leaderboard/<competition>.csv``, ``.md`` and
``.html`` are exports of it, rewritten whole (temporary file and rename) from the store;
a log written by an earlier version is imported into the store once, so no row is lost.

What others can read shows every score rounded to
:data:`kit.scoring.metrics.SHOWN_DECIMALS` and Private scores only once revealed;
``private/leaderboard.csv`` (owner only) keeps every score at full precision.
Where a competition's ``private/`` folder is not here (a handed-out copy), the CSV export
is read as it is. Its lines are parsed one by one: a torn or hand-damaged line is skipped.

Ranking (as on Kaggle): each participant's best Public score, ties to the
earliest submission. With ``private=True`` the same chosen submissions are ranked on
their Private score, as Kaggle does when nobody picks final submissions.
"""
import csv
import hashlib
import io
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from kit.competition.deadline import competition_deadline
from kit.errors import UserError
from kit.board.identity import MAX_NAME_LENGTH
from kit.scoring.metrics import SHOWN_DECIMALS, breakdown_cells, shown_scores
from kit.paths import leaderboard_dir
from kit.safetext import from_spreadsheet_cell, is_default_ignorable, one_line, printable, spreadsheet_cell
from kit.competition.folder import PRIVATE, PUBLIC
from kit.board.store import (DB_NAME, LOG_IMPORTED, REVEALED_CLOSED, SCORE, SCORED, TEACHER_CLOSED, Database,
                           LimitReached, ParticipantRevoked, SubmissionsClosed)

#: The owner-only export of the store, in ``<competition>/private/``: every score, full precision.
PRIVATE_EXPORT = "leaderboard.csv"

LOG_COLUMNS = [
    "time",
    "participant",
    "file",
    "sha256",
    "model",
    "public",
    "private",
    "validation",
    "rows",
    "per_bin_public",
    "per_bin_private",
]
_NUMERIC = ("public", "private", "validation")
#: Columns holding text a participant chose: neutralised for spreadsheets in the file.
_TEXT = ("participant", "file", "model")
#: Longest participant name kept (kit.board.identity's limit).
MAX_NAME = MAX_NAME_LENGTH
#: Longest model or file name kept in the log.
MAX_TEXT = 120


# --- names ---------------------------------------------------------------------------


def sanitize_participant(name):
    """A participant name safe in paths, tables, HTML and plot legends.

    For names that cannot be refused (``$USER``, rows of an existing log). The result is
    always accepted by :func:`kit.board.identity.check_participant_name`, and its
    :func:`kit.board.identity.participant_key` decides who it is. The name is kept as written
    where it can be: letters, digits, ``.``, ``_``, ``-`` and spaces stay (any run of
    white space is one space), characters that render as nothing (zero-width, bidi
    marks) go, anything else becomes ``_``; leading and trailing
    punctuation is dropped (no ``..``, no hidden names, no matplotlib-hidden ``_labels``);
    ``anonymous`` when nothing is left. A name that is still refused (over
    :data:`MAX_NAME` characters, mixed scripts) is never cut into another person's name:
    it keeps a readable start and gets 8 characters of its sha256.

    Examples
    --------
    >>> sanitize_participant("../../etc/passwd")
    'etc_passwd'
    >>> sanitize_participant("<script>alert(1)</script>")
    'script_alert_1_script'
    >>> sanitize_participant("José  Pérez")
    'José Pérez'
    >>> sanitize_participant("x" * 50)
    'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-77cf1206'
    """
    from kit.board.identity import check_participant_name

    name = unicodedata.normalize("NFKC", str(name or ""))
    kept = []
    for ch in name:
        if unicodedata.category(ch)[0] == "M":
            # A combining mark stays on a letter (Devanagari and Thai vowel signs, accents).
            if kept and unicodedata.category(kept[-1])[0] in "LM":
                kept.append(ch)
        elif is_default_ignorable(ch) or unicodedata.category(ch) == "Cf":
            continue  # renders as nothing (zero-width space, bidi marks): the name as it is seen
        elif ch.isspace():
            kept.append(" ")
        else:
            kept.append(ch if ch.isalnum() or ch in "._-" else "_")
    name = re.sub(r"_+", "_", " ".join("".join(kept).split())).strip("._- ")
    if not name:
        return "anonymous"
    try:
        return check_participant_name(name)
    except UserError:
        pass
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    for start in (name[: MAX_NAME - 9].rstrip("._- "), "".join(ch for ch in name if ch.isascii())[: MAX_NAME - 9]):
        try:
            return check_participant_name(f"{start.strip('._- ')}-{digest}".lstrip("-"))
        except UserError:
            continue
    return f"participant-{digest}"


def canonical_participants(names):
    """Each name replaced by the first-written name of the same person.

    Names with one :func:`kit.board.identity.participant_key` (``Bob``, ``BOB``, ``ＢＯＢ``)
    are one participant in the ranking, shown as they first appear.

    Examples
    --------
    >>> canonical_participants(["Bob", "ann", "BOB", "Ann"])
    ['Bob', 'ann', 'Bob', 'ann']
    """
    from kit.board.identity import participant_key

    first = {}
    return [first.setdefault(participant_key(name), name) for name in names]


def default_participant():
    """``$USER`` (sanitised), else ``you``."""
    return sanitize_participant(os.environ.get("USER") or os.environ.get("USERNAME") or "you")


# --- the log -------------------------------------------------------------------------


def log_path(competition, leaderboard=None):
    """``leaderboard/<competition>.csv`` for a competition name (or object with ``.name``)."""
    name = getattr(competition, "name", competition)
    safe = sanitize_participant(name).replace(" ", "_")  # a file name without spaces, as before
    return leaderboard_dir(leaderboard) / f"{safe}.csv"


def make_entry(result, participant=None, time=None, file=None):
    """A log row (dict of strings) for a :class:`~kit.scoring.scorer.ScoreResult`.

    Parameters
    ----------
    result : ScoreResult
    participant : str, optional
        Defaults to the manifest's participant, else ``$USER``, else ``you``.
    time : datetime, optional
        Submission time (default now, UTC).
    file : str, optional
        Name to record (default the submission's file name).
    """
    manifest = result.manifest or {}
    participant = sanitize_participant(participant or manifest.get("participant") or default_participant())
    time = (time or datetime.now(timezone.utc)).astimezone(timezone.utc)
    details = result.details
    return {
        "time": time.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "participant": participant,
        "file": one_line(file or Path(result.path).name, MAX_TEXT),
        "sha256": result.sha256,
        "model": one_line(result.model, MAX_TEXT),
        "public": _number(result.public),
        "private": _number(result.private),
        "validation": _number(result.validation),
        "rows": str(result.rows),
        "per_bin_public": json.dumps(per_bin_for_log(details.get(PUBLIC)), separators=(",", ":")),
        "per_bin_private": json.dumps(per_bin_for_log(details.get(PRIVATE)), separators=(",", ":")),
    }


def append_entry(path, entry):
    """Append one row to the log: locked, one write, flushed and fsynced.

    A previous writer killed mid-line leaves a line without its newline; this writer
    ends that line first, so the damage stays on one line that readers skip.

    Examples
    --------
    >>> append_entry("/tmp/kit-doc-lb/x.csv", {"participant": "ann", "public": "0.2"})  # doctest: +SKIP
    """
    from filelock import FileLock, Timeout

    from kit.fileio import append_line, ensure_writable_dir

    path = Path(path)
    line = _log_line(entry)
    ensure_writable_dir(path.parent)
    try:
        with FileLock(str(path) + ".lock", timeout=60):
            append_line(path, line, header=_csv_line(LOG_COLUMNS))
    except Timeout:
        raise UserError(f"{path} is locked by another program (lock file {path}.lock): try again") from None
    except OSError as exc:
        raise UserError(f"cannot append to {path}: {exc.strerror or exc}") from None
    return path


def record_result(result, participant=None, leaderboard=None, time=None, file=None, *, source=SCORE, once=False):
    """Store a score in its competition's store and rewrite the CSV exports; return ``(log path, earlier)``.

    Parameters
    ----------
    result : ScoreResult
    participant, time, file
        As for :func:`make_entry`.
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


def closed_reason(reason, deadline=None):
    """The one line for a submission refused by the deadline or the reveal.

    Examples
    --------
    >>> closed_reason("revealed")
    'the final ranking is revealed; submissions are closed'
    >>> closed_reason("deadline", datetime(2027, 2, 1, 23, 59, tzinfo=timezone.utc))
    'after the deadline (2027-02-01 23:59 UTC)'
    """
    if reason == "revealed":
        return REVEALED_CLOSED
    if reason == "closed":
        return TEACHER_CLOSED
    return "after the deadline" + ("" if deadline is None else f" ({deadline.strftime('%Y-%m-%d %H:%M')} UTC)")


# --- the store and its exports ----------------------------------------------------------


def has_store(competition):
    """True when the competition's ``private/`` folder is here (the teacher's or learner's own copy)."""
    return (Path(competition.path) / "private").is_dir()


def store_path(competition):
    """``<competition>/private/classroom.sqlite``: the store of record."""
    return Path(competition.path) / "private" / DB_NAME


def _result_competition(result):
    """The Competition a ScoreResult was scored against (its folder when the scorer knew it)."""
    from kit.competition.folder import load_competition

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
    :func:`read_log` skips them, with a line in ``notes``. Imported rows have source ``log``.
    """
    path = Path(path)
    if explicit and not path.is_file():
        raise UserError(f"--import-log {path}: not found: expected a leaderboard/<competition>.csv log")
    log = read_log(path)
    if notes is not None:
        notes.extend(_skipped_notes(log, path))
    entries = [{
        "time": row.time, "participant": row.participant, "file": row.file, "sha256": row.sha256,
        "model": row.model, "public": row.public, "private": _finite_or_none(row.private),
        "validation": _finite_or_none(row.validation), "rows": row.rows,
        "per_bin_public": row.per_bin_public, "per_bin_private": row.per_bin_private,
    } for row in log.itertuples(index=False)]
    return db.import_entries(entries, f"{LOG_IMPORTED}:{path.resolve()}" if explicit else None)


def store_entries(db):
    """The store's scored submissions as log rows (dicts of :data:`LOG_COLUMNS`), in order of arrival.

    Scores are floats at full precision (None when missing), ``per_bin_*`` dicts,
    ``time`` the stored UTC text.
    """
    return [{
        "time": row["submitted_at"],
        "participant": row["participant"],
        "file": row["file_name"],
        "sha256": row["sha256"],
        "model": row["description"],
        "public": row["public"],
        "private": row["private"],
        "validation": row.get("validation"),
        "rows": row["rows"] or 0,
        "per_bin_public": json.loads(row["per_bin_public"] or "{}"),
        "per_bin_private": json.loads(row["per_bin_private"] or "{}"),
    } for row in db.submissions(status=SCORED)]


def entries_frame(entries):
    """Log rows (from :func:`store_entries`) as the frame :func:`read_log` returns.

    Examples
    --------
    >>> entries_frame([]).empty
    True
    """
    import pandas as pd

    frame = pd.DataFrame(list(entries), columns=LOG_COLUMNS)
    frame["time"] = _log_times(frame["time"])
    for column in _NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["rows"] = pd.to_numeric(frame["rows"], errors="coerce").fillna(0).astype(int)
    frame["order"] = range(len(frame))
    frame.attrs["skipped_lines"] = 0
    frame.attrs["skipped_nonfinite"] = 0
    return frame


def shown_entries(entries, revealed):
    """Log rows as others may see them: scores rounded (:func:`kit.scoring.metrics.shown_scores`), Private only if revealed.

    Examples
    --------
    >>> shown_entries([{"public": 0.1234567, "private": 0.2, "per_bin_private": {"0.0-0.1": 0.3}}], revealed=False)
    [{'public': 0.12346, 'private': None, 'per_bin_private': {}}]
    """
    shown = []
    for entry in entries:
        entry = shown_scores(dict(entry))
        if not revealed:
            entry["private"] = None
            entry["per_bin_private"] = {}
        shown.append(entry)
    return shown


def export_logs(db, competition, leaderboard=None):
    """Rewrite ``leaderboard/<name>.csv`` and ``private/leaderboard.csv`` from the store; return the first.

    The public log holds rounded scores (fixed decimals, ``0.00001``) and Private ones
    only once the store's reveal flag is set (``POST /api/reveal``, ``kit leaderboard
    --private``): a hidden competition's Private scores are in no file others can read.
    The private one (0600) keeps every score at full precision. The store is read under
    the log's lock, so the last of two concurrent exports holds every row either stored.
    """
    return _export(db, competition, leaderboard)[0]


def _export(db, competition, leaderboard=None):
    """:func:`export_logs`, returning ``(log path, the rows as shown, revealed)``."""
    from filelock import FileLock, Timeout

    from kit.fileio import ensure_writable_dir, write_text_atomic

    path = log_path(competition.name, leaderboard)
    ensure_writable_dir(path.parent)
    try:
        with FileLock(str(path) + ".lock", timeout=60):
            entries = store_entries(db)
            revealed = db.revealed
            shown = shown_entries(entries, revealed)
            write_text_atomic(Path(competition.path) / "private" / PRIVATE_EXPORT, _log_text(entries), private=True)
            write_text_atomic(path, _log_text(shown, decimals=SHOWN_DECIMALS))
    except Timeout:
        raise UserError(f"{path} is locked by another program (lock file {path}.lock): try again") from None
    return path, shown, revealed


#: Suffix of the list of files the last inbox run refused, beside ``leaderboard/<competition>.csv``.
REJECTED_SUFFIX = ".inbox-rejected.json"
#: Most refused files kept in that list.
MAX_REJECTED = 1000
#: What a list written by an earlier version (full reasons) shows instead of its reasons.
EARLIER_RULE = "refused (reason not published; run the inbox again to list the rule)"


def rejected_path(log):
    """``leaderboard/<competition>.inbox-rejected.json`` beside the log."""
    log = Path(log)
    return log.with_name(log.stem + REJECTED_SUFFIX)


def write_rejected(log, rejected, private=False):
    """Keep the files the last inbox run refused, so later pages (the final one) still list them.

    ``log`` is ``leaderboard/<competition>.csv`` (the list goes beside it, for everyone:
    give it rules, not reasons quoting a file), or with ``private`` the owner-only file
    itself (``private/inbox-rejected.json``, the full reasons).
    """
    from kit.fileio import write_text_atomic

    rows = [[str(name), str(reason)] for name, reason in list(rejected)[:MAX_REJECTED]]
    target = Path(log) if private else rejected_path(log)
    # An object, not the bare list of earlier versions, whose reasons could quote a file.
    content = {"reasons" if private else "rules": rows}
    return write_text_atomic(target, json.dumps(content, ensure_ascii=True) + "\n", private=private)


def read_rejected(log):
    """The refused files kept by :func:`write_rejected`: a list of ``(file, reason)``; empty when none or damaged.

    Examples
    --------
    >>> read_rejected("/nonexistent/practice.csv")
    []
    """
    try:
        content = json.loads(rejected_path(log).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    earlier = isinstance(content, list)
    rows = content if earlier else content.get("rules") if isinstance(content, dict) else None
    if not isinstance(rows, list):
        return []
    rows = [(row[0], row[1]) for row in rows[:MAX_REJECTED]
            if isinstance(row, list) and len(row) == 2 and all(isinstance(x, str) for x in row)]
    # An earlier version's list holds full reasons, which may quote a participant's file.
    return [(name, EARLIER_RULE) for name, _ in rows] if earlier else rows


def write_log(path, entries):
    """Replace the log with ``entries`` (dicts keyed by :data:`LOG_COLUMNS`) in one rename.

    For a log that is an export of another record, such as the classroom server's
    database: readers see the old log or the new one, never a mix. Holds the same lock as
    :func:`append_entry`.
    """
    from filelock import FileLock, Timeout

    from kit.fileio import ensure_writable_dir, write_text_atomic

    path = Path(path)
    ensure_writable_dir(path.parent)
    text = _log_text(entries)
    try:
        with FileLock(str(path) + ".lock", timeout=60):
            write_text_atomic(path, text)
    except Timeout:
        raise UserError(f"{path} is locked by another program (lock file {path}.lock): try again") from None
    return path


def logged_entry(log, sha256, participant):
    """The earliest row of ``log`` for this file content and participant, or None.

    A file scored twice for the same participant is one submission, not two.

    Examples
    --------
    >>> logged_entry(read_log("/nonexistent/practice.csv"), "ab12", "ann") is None
    True
    """
    from kit.board.identity import participant_key

    key = participant_key(sanitize_participant(participant))  # Bob and BOB are one person
    same = (log["sha256"] == sha256) & (log["participant"].map(participant_key) == key)
    return None if not same.any() else log[same].iloc[0]


def read_log(path):
    """The log as a DataFrame; lines that do not parse are skipped (and counted).

    The result has ``attrs["skipped_lines"]`` (damaged lines) and
    ``attrs["skipped_nonfinite"]`` (rows whose scores are NaN or infinite, which only a
    hand edit can leave: they would rank first or break the plots). ``time`` is a UTC
    timestamp, scores are floats (NaN when missing), ``per_bin_*`` are dicts.

    Examples
    --------
    >>> read_log("/nonexistent/practice.csv").empty
    True
    """
    import pandas as pd

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = b""
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows, skipped, nonfinite = [], 0, 0
    # Line by line, so that a torn row with an open quote cannot swallow the rows after it.
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines()):
        if not line.strip():
            continue
        row = _parse_line(line)
        if row is _NONFINITE:
            nonfinite += 1
            continue
        if row is None:
            if not (number == 0 and line.startswith("time")):
                skipped += 1
            continue
        rows.append(row)
    frame = pd.DataFrame(rows, columns=LOG_COLUMNS + ["order"])
    frame["participant"] = canonical_participants(frame["participant"])  # Bob and BOB are one person
    frame["time"] = _log_times(frame["time"])
    for column in _NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["rows"] = pd.to_numeric(frame["rows"], errors="coerce").fillna(0).astype(int)
    frame["order"] = range(len(frame))
    frame.attrs["skipped_lines"] = skipped
    frame.attrs["skipped_nonfinite"] = nonfinite
    return frame


#: What :func:`_parse_line` returns for a well-formed row with a NaN or infinite score.
_NONFINITE = object()


def _log_times(values):
    """UTC times of log rows; NaT for a time the kit cannot have written.

    Only a hand edit or a broken clock gives a time before 2000 or from 2200 on (year 1,
    year 9999): such a row keeps its scores, shows no time and loses ties, so it can
    neither win a tie nor break the ranking, the pages or their time axis.
    """
    import pandas as pd

    times = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    plausible = (times >= pd.Timestamp("2000-01-01", tz="UTC")) & (times < pd.Timestamp("2200-01-01", tz="UTC"))
    return times.where(plausible)


def _parse_line(line):
    """One log row as a dict, or None when the line is a header or damaged."""
    try:
        fields = next(csv.reader([line], strict=True))
    except (csv.Error, StopIteration):
        return None
    if len(fields) != len(LOG_COLUMNS) or fields == LOG_COLUMNS:
        return None
    row = dict(zip(LOG_COLUMNS, fields))
    try:
        datetime.fromisoformat(row["time"].replace("Z", "+00:00"))
        float(row["public"])
        # Always written as JSON objects: an empty last field means the line was cut short.
        row["per_bin_public"] = json.loads(row["per_bin_public"])
        row["per_bin_private"] = json.loads(row["per_bin_private"])
    except (ValueError, TypeError):
        return None
    if not isinstance(row["per_bin_public"], dict) or not isinstance(row["per_bin_private"], dict):
        return None
    if not _finite_scores(row):
        return _NONFINITE
    for column in _TEXT:
        row[column] = from_spreadsheet_cell(row[column])
    row["participant"] = sanitize_participant(row["participant"])
    row["order"] = 0
    return row


# --- ranking -------------------------------------------------------------------------


def rank(log, metric, private=False):
    """Best submission per participant, ranked.

    Each participant's submission with the best Public score is chosen (of equal
    scores, the earliest). Without ``private`` they are ranked on Public; with it, on the
    Private score of that same submission, and ``public_rank`` shows where each stood
    before. Ties (equal scores at the metric's decimals) go to the earlier submission,
    as on Kaggle; only submissions with equal scores and equal times share a rank (for
    example identical inbox files first seen together). A time the log cannot vouch
    for sorts last.

    Parameters
    ----------
    log : DataFrame
        From :func:`read_log`.
    metric : kit.scoring.metrics.Metric
        Knows the direction and the reported decimals; ties compare at those decimals.
    private : bool

    Returns
    -------
    DataFrame
        ``rank, participant, public, private, public_rank, entries, time, model, file,
        per_bin_public, per_bin_private``, best first.
    """
    import pandas as pd

    columns = ["rank", "participant", "public", "private", "public_rank", "entries", "time", "model", "file",
               "validation", "per_bin_public", "per_bin_private"]
    if log.empty:
        return pd.DataFrame(columns=columns)
    log = log.assign(_key=log["public"].map(metric.sort_key))
    log = log.sort_values(["_key", "time", "order"], kind="stable")
    best = log.drop_duplicates("participant", keep="first").copy()
    best["entries"] = best["participant"].map(log["participant"].value_counts()).astype(int)
    best["public_rank"] = _tie_ranks(best, "_key")
    if private:
        best["_pkey"] = best["private"].map(metric.sort_key)
        best = best.sort_values(["_pkey", "time", "order"], kind="stable")
        best["rank"] = _tie_ranks(best, "_pkey")
    else:
        best["rank"] = best["public_rank"]
    return best[columns].reset_index(drop=True)


def _tie_ranks(best, key):
    """Ranks of rows sorted by ``(key, time)``: 1, 2, 3 ..., shared only where key and time are both equal."""
    import pandas as pd

    times = best["time"]
    same_time = times.eq(times.shift()) | (times.isna() & times.shift().isna())
    tied = best[key].eq(best[key].shift()) & same_time
    positions = pd.Series(range(1, len(best) + 1), index=best.index, dtype="float64")
    return positions.mask(tied).ffill().astype(int)


@dataclass
class Standings:
    """A rendered leaderboard: the ranking and where its pages were written."""

    competition: str
    metric: object
    private: bool
    ranking: object
    log: object
    text: str
    markdown_path: Path = None
    html_path: Path = None
    log_path: Path = None
    rejected: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    #: True when this call set the store's reveal flag (``kit leaderboard --private``).
    revealed_now: bool = False


def build_leaderboard(competition=None, *, data=None, leaderboard=None, private=False, write_pages=True,
                      rejected=None, notes=(), store=None):
    """Rank a competition's submissions, render them, and write the exports and pages.

    Where the competition's ``private/`` folder is here, the rows come from its store
    (:func:`open_store`) and the CSV exports are rewritten first (:func:`export_logs`);
    elsewhere the CSV export ``leaderboard/<name>.csv`` is read as it is. Every score
    shown is rounded to :data:`kit.scoring.metrics.SHOWN_DECIMALS`, and ranks use the rounded values.

    Parameters
    ----------
    competition : Competition, str or Path, optional
        The competition (its name names the log); default ``practice``. When only the
        log exists, the name is enough.
    data, leaderboard : str or Path, optional
        Folders overriding ``./data`` and ``./leaderboard``.
    private : bool
        Reveal Private scores and rank on them (the final standings). Where the store is
        here this is the teacher's reveal: it sets the store's reveal flag (the one
        ``POST /api/reveal`` sets), so submissions close everywhere (server, inbox,
        ``kit score``) and every export shows the Private scores; ``.revealed_now`` says
        whether this call did it. A store whose flag is set is shown revealed either way.
    write_pages : bool
        Write ``leaderboard/<name>.md`` and ``.html`` (the HTML embeds its plots).
    rejected : list of (str, str), optional
        Files refused by classroom mode, with the reason, to list on the pages. Default:
        those the last inbox run refused (:func:`read_rejected`), so the final page keeps them.
    store : Database, optional
        The competition's open store (default: opened and closed here).

    Returns
    -------
    Standings
        ``.text`` is the terminal table; ``.ranking`` a DataFrame.

    Examples
    --------
    >>> standings = build_leaderboard("practice")   # doctest: +SKIP
    >>> print(standings.text)                        # doctest: +SKIP
    """
    from kit.board import pages

    comp, name, metric, meta, error = _describe(competition, data)
    path = log_path(name, leaderboard)
    notes = list(notes)
    revealed_now = False
    if comp is not None and (store is not None or has_store(comp)):
        db = store or open_store(comp, leaderboard, notes)
        try:
            if private and not db.revealed:
                # Never Private scores in a world-readable export of a competition still
                # open: showing them is the reveal, and the reveal closes submissions.
                db.set_revealed(True)
                revealed_now = True
            path, shown, private = _export(db, comp, leaderboard)
            log = submissions_frame(db, private)  # a team's rows under its name, final choices marked
        finally:
            if store is None:
                db.close()
    else:
        if error is not None and not path.is_file():
            raise error
        log = shown_frame(read_log(path))
    if rejected is None:
        rejected = read_rejected(path)
    ranking = rank_standings(log, metric, private=private)
    standings = Standings(name, metric, private, ranking, log, text="", rejected=list(rejected),
                          notes=notes + _skipped_notes(log, path), log_path=path, revealed_now=revealed_now)
    standings.text = pages.render_text(standings)
    if write_pages:
        base = path.with_suffix("")
        from kit.fileio import write_text_atomic

        standings.markdown_path = write_text_atomic(base.with_suffix(".md"), pages.render_markdown(standings))
        standings.html_path = write_text_atomic(base.with_suffix(".html"), pages.render_html(standings, meta))
    return standings


#: What a final row was ranked on (the ``basis`` column): the chosen final submissions, or the best Public one.
SELECTED, BEST_PUBLIC = "selected", "best Public"


class _Snapshot:
    """One read of the store's scored submissions, handed to :func:`store_entries`."""

    def __init__(self, db):
        self.rows = db.submissions(status=SCORED)

    def submissions(self, status=None):
        return self.rows


def submissions_frame(db, revealed=False):
    """The store's scored submissions as participants may see them, as a leaderboard log frame.

    The frame has the columns of :func:`kit.board.leaderboard.read_log`, in order of arrival,
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

    Before the reveal (``private`` False) this is :func:`rank`. After it, a
    participant with rows marked ``final`` ranks on the best Private score among them (ties
    to the earlier); one without, on the Private score of their best Public submission.
    ``public_rank`` and ``entries`` stay those of the Public ranking. The column ``basis``
    says which rule each row followed (:data:`SELECTED` or :data:`BEST_PUBLIC`).

    Examples
    --------
    >>> from kit.scoring.metrics import get_metric
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


def _skipped_notes(log, path):
    """Notes on the lines :func:`read_log` skipped in ``path``."""
    notes = []
    if log.attrs.get("skipped_lines"):
        notes.append(f"{log.attrs['skipped_lines']} damaged line(s) in {path} were skipped")
    if log.attrs.get("skipped_nonfinite"):
        notes.append(
            f"{log.attrs['skipped_nonfinite']} row(s) of {path} with a NaN or infinite score were skipped "
            "(scores are finite numbers; the log was edited by hand)"
        )
    return notes


def shown_frame(log):
    """A log frame with every score rounded as participants see it (:func:`kit.scoring.metrics.shown_scores`).

    Examples
    --------
    >>> shown_frame(read_log("/nonexistent/practice.csv")).empty
    True
    """
    shown = log.copy()
    for column in _NUMERIC:
        shown[column] = shown[column].map(shown_scores).astype(float)
    for column in ("per_bin_public", "per_bin_private"):
        shown[column] = shown[column].map(shown_scores)
    shown.attrs.update(log.attrs)
    return shown


def _describe(competition, data=None):
    """(competition, name, metric, metadata, error) of a competition.

    When the competition folder is missing, a bare name still names its log; the
    competition is then None and ``error`` the UserError to raise if there is no log either.
    """
    from kit.competition.folder import Competition, load_competition
    from kit.scoring.metrics import get_metric
    from kit.paths import DEFAULT_COMPETITION

    if isinstance(competition, Competition):
        comp = competition
    else:
        try:
            comp = load_competition(competition, data=data)
        except UserError as exc:
            name = str(competition or DEFAULT_COMPETITION)
            if "/" in name or os.sep in name:
                raise
            return None, name, get_metric("rmse"), {"name": name}, exc
    return comp, comp.name, get_metric(comp.metadata.get("metric", "rmse")), comp.metadata, None


# --- helpers -------------------------------------------------------------------------


def _csv_line(values):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _number(value, decimals=None):
    """A score for the log: its repr (fixed ``decimals`` when given), or empty when missing or not finite.

    Examples
    --------
    >>> _number(1e-05), _number(1e-05, 5), _number(0.123456, 5)
    ('1e-05', '0.00001', '0.12346')
    """
    if value is None or not math.isfinite(float(value)):
        return ""
    if decimals is not None:
        return f"{float(value):.{decimals}f}"
    return repr(float(value))


def _per_bin_json(values, decimals=None):
    """Per-bin scores as a JSON object; numbers with fixed ``decimals`` when given (``0.00001``, not ``1e-05``)."""
    if decimals is None:
        return json.dumps(values, separators=(",", ":"))
    items = (f"{json.dumps(str(label))}:{_number(value, decimals) if _is_finite(value) else 'null'}"
             for label, value in values.items())
    return "{" + ",".join(items) + "}"


def _is_finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _log_text(entries, decimals=None):
    """The whole log file for ``entries``: header, then one line each (numbers and dicts written as text)."""
    return _csv_line(LOG_COLUMNS) + "".join(_log_line(_as_text(entry, decimals)) for entry in entries)


def _as_text(entry, decimals=None):
    """A log row with its scores as text (:func:`_number`) and its per-bin dicts as JSON."""
    out = dict(entry)
    for column in _NUMERIC:
        if not isinstance(out.get(column, ""), str):
            out[column] = _number(out[column], decimals)
    for column in ("per_bin_public", "per_bin_private"):
        if isinstance(out.get(column), dict):
            out[column] = _per_bin_json(out[column], decimals)
    out["rows"] = str(out.get("rows", ""))
    return out


def _log_line(entry):
    """One CSV line of the log for ``entry``; a UserError when a score is not finite.

    Text a participant chose has its control characters shown as escapes (a raw CR
    would split the row for line readers) and is neutralised for spreadsheets
    (:mod:`kit.safetext`); numbers are not, so a negative score stays a number.
    """
    _check_scores(entry)
    return _csv_line([
        spreadsheet_cell(printable(entry.get(column, ""))) if column in _TEXT else entry.get(column, "")
        for column in LOG_COLUMNS
    ])


def _check_scores(entry):
    """Refuse a row whose score columns are not finite numbers (empty is allowed, except Public)."""
    for column in _NUMERIC:
        value = entry.get(column, "")
        if value in ("", None) and column != "public":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise UserError(
                f"refusing to log a {column} score of {value!r}: expected a finite number "
                "(the submission could not be scored finitely)"
            )


def _finite_scores(row):
    """True when the row's scores and per-bin values are finite (or absent, except Public)."""
    for column in _NUMERIC:
        text = row[column].strip()
        if not text and column != "public":
            continue
        try:
            if not math.isfinite(float(text)):
                return False
        except ValueError:
            return column != "public"  # not a number at all: read later as missing
    for column in ("per_bin_public", "per_bin_private"):
        for value in row[column].values():
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                return False
    return True


def per_bin_for_log(details):
    """Per-bin RMSE for the log, with the top bin's same- and different-molecule halves when scored,
    and the RMSE per pair type and novelty band where the competition has them (:func:`breakdown_cells`).

    Examples
    --------
    >>> per_bin_for_log(None)
    {}
    >>> per_bin_for_log({"per_bin_rmse": {"0.0-0.1": 0.2}})
    {'0.0-0.1': 0.2}
    """
    return {} if not details else {**details["per_bin_rmse"], **details.get("top_bin_split", {}),
                                   **breakdown_cells(details)}
