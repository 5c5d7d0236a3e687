"""The store of record of a competition: participants, submissions and settings in one SQLite file.

``<competition>/private/classroom.sqlite`` records every scored submission, whoever wrote
it: ``kit serve`` (README, "Classroom server API"), ``kit score`` and the classroom inbox
(:mod:`kit.board.inbox`) alike (README, "Teacher's path"). ``leaderboard/<name>.csv``, ``.md`` and ``.html``
are exports of it (:mod:`kit.board.exports`). A participant named by ``kit score`` or an
inbox file has no token until ``kit participants add`` gives them one.
This module needs the standard library only (no FastAPI).

- WAL journal and ``synchronous=FULL``: a submission acknowledged with 201 was committed
  and fsynced first, so a killed server (``kill -9``) or a power cut loses none of them.
- One connection per :class:`Database`, used under a lock: writes are serialised in this
  process, and ``BEGIN IMMEDIATE`` with a busy timeout (:data:`BUSY_TIMEOUT`) serialises
  them against other processes (``kit participants add`` while the server runs).
- The schema and its upgrades: :mod:`kit.board.migrations`; whether submissions are open:
  :mod:`kit.board.phases`; tokens: :mod:`kit.board.tokens` (only their sha256 is stored).
"""
import json
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kit.board.identity import check_participant_name, participant_key
from kit.board.migrations import CREATED_SCHEMA, upgrade
from kit.board.phases import CLOSED, Phase, SubmissionsClosed, decide_phase, parse_utc, utc_iso
from kit.board.tokens import hash_token, new_token
from kit.errors import UserError
from kit.fileio import create_private_file, ensure_writable_dir

DB_NAME = "classroom.sqlite"
SUBMISSIONS_FOLDER = "submissions"
#: Statuses a stored submission can have: scored, or an internal failure while scoring.
SCORED, ERROR = "scored", "error"
#: Where a stored submission came from: an upload to ``kit serve``, ``kit score``, an inbox
#: file, or a row of a ``leaderboard/<name>.csv`` log written before the store existed.
SERVER, SCORE, INBOX, LOG = "server", "score", "inbox", "log"
SOURCES = (SERVER, SCORE, INBOX, LOG)
#: ``submitted_at`` of an imported log row whose time cannot be vouched for: it sorts last.
UNKNOWN_TIME = "9999-12-31T23:59:59.999999Z"
#: ``settings`` key set once an earlier log (or first-seen journal) was imported, or found unneeded.
LOG_IMPORTED, SEEN_IMPORTED = "imported_log", "imported_inbox_seen"
#: Seconds a write waits for another process's transaction (and the set-up of a new file
#: waits for another opener) before giving up: several writers fsyncing on a loaded
#: 2-core laptop take seconds, not minutes.
BUSY_TIMEOUT = 60.0

#: The ids of a participant's team (the participant alone when on their own); takes the id twice.
_TEAM_OF = ("SELECT id FROM participants WHERE id = ? OR team_key = "
            "(SELECT team_key FROM participants WHERE id = ? AND team_key IS NOT NULL)")


class LimitReached(Exception):
    """The participant already has the day's allowed number of scored submissions."""


class ParticipantRevoked(Exception):
    """The participant's token was revoked (``kit participants revoke``): nothing of theirs is recorded."""


#: Most final submissions a participant may choose (Kaggle's rule).
MAX_FINALS = 2


@dataclass(frozen=True)
class Participant:
    """One row of ``participants``."""

    id: int
    name: str
    key: str
    created_at: str
    revoked_at: str = None

    @property
    def active(self):
        return self.revoked_at is None


class Database:
    """The classroom database of one competition.

    Parameters
    ----------
    path : str or Path
        The SQLite file (created with its folder when missing).

    Examples
    --------
    >>> db = Database("/tmp/kit-doc-db/classroom.sqlite")          # doctest: +SKIP
    >>> name, token = db.add_participant("Ada", now)               # doctest: +SKIP
    """

    def __init__(self, path):
        self.path = Path(path)
        ensure_writable_dir(self.path.parent)
        #: True when this call made the file: only then may records of an earlier version
        #: (a log, a first-seen journal) be taken in without the teacher asking.
        self.created = not self.path.exists()
        # Owner only whatever the umask (it holds token hashes and Private scores); SQLite
        # gives its -wal and -shm files the database file's mode.
        create_private_file(self.path)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None,
                                         check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            self._set_up(time.monotonic() + BUSY_TIMEOUT)
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path} is not a usable classroom database: {exc}") from None

    def _set_up(self, deadline):
        """WAL journal, full sync, foreign keys and the schema, retried while other openers hold the file.

        Several processes opening a new file at once (a class running ``kit score`` together)
        race to switch it to WAL and to create the schema. SQLite answers the loser
        ``database is locked`` at once where waiting could deadlock (its busy handler is not
        called then), and a switch it cannot make leaves the old journal mode without an
        error: both are retried until ``deadline`` (:data:`BUSY_TIMEOUT`).
        """
        while True:
            try:
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() == "wal":
                    self._conn.execute("PRAGMA synchronous=FULL")
                    self._conn.execute("PRAGMA foreign_keys=ON")
                    with self._write() as conn:
                        upgrade(conn, self.path)
                    return
                failure = sqlite3.OperationalError(f"cannot switch to a WAL journal (still {mode})")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                failure = exc
            if time.monotonic() >= deadline:
                raise failure
            time.sleep(0.05)

    def close(self):
        with self._lock:
            self._conn.close()

    # --- schema ------------------------------------------------------------------------

    @property
    def schema_version(self):
        with self._lock:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def integrity_check(self):
        """``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        with self._lock:
            return "; ".join(row[0] for row in self._conn.execute("PRAGMA integrity_check"))

    class _Transaction:
        def __init__(self, db):
            self.db = db

        def __enter__(self):
            self.db._lock.acquire()
            try:
                self.db._conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.db._lock.release()
                raise
            return self.db._conn

        def __exit__(self, kind, value, tb):
            try:
                self.db._conn.execute("COMMIT" if kind is None else "ROLLBACK")
            finally:
                self.db._lock.release()
            return False

    def _write(self):
        """A write transaction: this process's lock, then SQLite's (``BEGIN IMMEDIATE``)."""
        return Database._Transaction(self)

    def _read(self, sql, params=()):
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # --- participants --------------------------------------------------------------------

    def add_participant(self, name, now):
        """Register one participant; return ``(display name, token)``. See :meth:`add_participants`."""
        return self.add_participants([name], now)[0]

    def add_participants(self, names, now):
        """Register participants, all or none; return ``[(display name, token), ...]``.

        Names go through :func:`kit.board.identity.check_participant_name`; two names with the
        same :func:`kit.board.identity.participant_key` are one person. A name whose key belongs
        to an active participant (or to another name of the same call) is refused; one
        whose key belongs to a revoked participant gets a new token, history kept.

        Raises
        ------
        UserError
            A name is refused or collides; nobody is added then.
        """
        wanted, seen = [], {}
        for name in names:
            display = check_participant_name(name)
            key = participant_key(display)
            if key in seen:
                raise UserError(f"participant {display!r} is the same person as {seen[key]!r} in this list "
                                "(names are compared ignoring case and look-alike letters)")
            seen[key] = display
            wanted.append((display, key))
        added = []
        with self._write() as conn:
            for display, key in wanted:
                token = new_token()
                row = conn.execute("SELECT name, revoked_at, has_token FROM participants WHERE key = ?",
                                   (key,)).fetchone()
                if row is not None and row["revoked_at"] is None and row["has_token"]:
                    same = "is already registered" if row["name"] == display else f"is the same person as {row['name']!r}"
                    raise UserError(
                        f"participant {display!r} {same} (names are compared ignoring case and look-alike "
                        "letters); nobody was added. To give them a new token, `kit participants revoke` the old one"
                    )
                if row is not None:
                    # A revoked participant, or one known from `kit score` or the inbox: their
                    # rows stay theirs under the name first written.
                    conn.execute("UPDATE participants SET token_sha256 = ?, revoked_at = NULL, has_token = 1 "
                                 "WHERE key = ?", (hash_token(token), key))
                    display = row["name"]
                else:
                    conn.execute("INSERT INTO participants (name, key, token_sha256, created_at) VALUES (?, ?, ?, ?)",
                                 (display, key, hash_token(token), utc_iso(now)))
                added.append((display, token))
        return added

    def revoke_participant(self, name, now):
        """Revoke a participant's token; return their display name. Submissions stay."""
        key = participant_key(str(name))
        with self._write() as conn:
            row = conn.execute("SELECT name, revoked_at FROM participants WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise UserError(f"no participant named {str(name)[:60]!r}: see `kit participants list`")
            if row["revoked_at"] is not None:
                raise UserError(f"participant {row['name']!r} was already revoked on {row['revoked_at']}")
            conn.execute("UPDATE participants SET revoked_at = ? WHERE key = ?", (utc_iso(now), key))
        return row["name"]

    def participants(self):
        """Every participant given a token, with their number of scored submissions, in order of registration.

        Names known only from ``kit score`` or inbox files hold no token and are left out.
        """
        rows = self._read(
            "SELECT p.*, (SELECT COUNT(*) FROM submissions s WHERE s.participant_id = p.id AND s.status = ?) "
            "AS entries FROM participants p WHERE p.has_token = 1 ORDER BY p.id", (SCORED,))
        return [dict(row) for row in rows]

    def participant_for_token(self, token):
        """The :class:`Participant` holding ``token`` (revoked ones too), or None."""
        rows = self._read("SELECT id, name, key, created_at, revoked_at FROM participants WHERE token_sha256 = ?",
                          (hash_token(token),))
        return Participant(**dict(rows[0])) if rows else None

    # --- submissions -----------------------------------------------------------------------

    def count_scored(self, participant_id, start, end):
        """Scored submissions of a participant with ``start <= submitted_at < end`` (aware times)."""
        rows = self._read(
            "SELECT COUNT(*) FROM submissions WHERE participant_id = ? AND status = ? "
            "AND submitted_at >= ? AND submitted_at < ?", (participant_id, SCORED, utc_iso(start), utc_iso(end)))
        return rows[0][0]

    def add_submission(self, record, limit=None, window=None, closes_at=None, while_hidden=False, still_open=None):
        """Store a submission; return its id.

        Parameters
        ----------
        record : dict
            Column values (``participant_id``, ``submitted_at`` as an aware datetime, ...).
        limit : int, optional
            Refuse with :class:`LimitReached` when the participant already has this many
            scored submissions in ``window``; checked in the same transaction as the
            insert, so concurrent uploads cannot both take the last slot.
        window : (datetime, datetime), optional
            The day being counted.
        closes_at : datetime, optional
            Refuse with :class:`SubmissionsClosed` when ``submitted_at`` is at or after it.
        while_hidden : bool
            Refuse with :class:`SubmissionsClosed` when the Private ranking is revealed.
            Both are checked in the insert's transaction: a reveal cannot slip in between.
        still_open : callable, optional
            Takes the settings (a dict, see :meth:`settings`) and returns None while
            submissions are open, else the reason (raised as :class:`SubmissionsClosed`);
            called in the insert's transaction, so a teacher's close cannot slip in between.

        Examples
        --------
        >>> db.add_submission(record, closes_at=deadline, while_hidden=True)  # doctest: +SKIP
        12
        """
        values = dict(record)
        if closes_at is not None and values["submitted_at"] >= closes_at:
            raise SubmissionsClosed("deadline")
        values["submitted_at"] = utc_iso(values["submitted_at"])
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._write() as conn:
            if while_hidden and self._revealed(conn):
                raise SubmissionsClosed("revealed")
            reason = None if still_open is None else still_open(self._settings(conn))
            if reason is not None:
                raise SubmissionsClosed(reason)
            if limit is not None and values.get("status") == SCORED:
                used = conn.execute(
                    f"SELECT COUNT(*) FROM submissions WHERE participant_id IN ({_TEAM_OF}) AND status = ? "
                    "AND submitted_at >= ? AND submitted_at < ?",
                    (values["participant_id"], values["participant_id"], SCORED, utc_iso(window[0]),
                     utc_iso(window[1]))).fetchone()[0]
                if used >= limit:
                    raise LimitReached(used)
            cursor = conn.execute(f"INSERT INTO submissions ({columns}) VALUES ({marks})", tuple(values.values()))
            return cursor.lastrowid

    def submissions(self, participant_id=None, status=None, sha256=None):
        """Submissions (dicts, with ``participant`` = display name) in order of arrival.

        ``sha256`` keeps those of one file content (read through the content index).
        """
        where, params = [], []
        if sha256 is not None:
            where.append("s.sha256 = ?")
            params.append(sha256)
        if participant_id is not None:
            where.append("s.participant_id = ?")
            params.append(participant_id)
        if status is not None:
            where.append("s.status = ?")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(
            f"SELECT s.*, p.name AS participant FROM submissions s JOIN participants p ON p.id = s.participant_id "
            f"{clause} ORDER BY s.submitted_at, s.id", tuple(params))
        return [dict(row) for row in rows]

    def record(self, entry, source, once=False, *, closes_at=None, limit=None, window=None):
        """Store one scored submission of ``kit score``, the inbox or an old log; return ``(id, earlier)``.

        The server's closing rules hold here too, all checked in the transaction that
        inserts (``BEGIN IMMEDIATE``): two processes cannot both take the last slot of a
        day, store one file twice, or record after a reveal.

        Parameters
        ----------
        entry : dict
            ``participant`` (a name :func:`kit.board.identity.check_participant_name` accepts),
            ``time`` (aware datetime, or None for a time nobody can vouch for), ``file``,
            ``sha256``, ``model``, ``public``, ``private``, ``validation``, ``rows``,
            ``per_bin_public``, ``per_bin_private`` (dicts), optional ``size`` and ``stored_path``.
        source : str
            One of :data:`SOURCES` other than :data:`SERVER`.
        once : bool
            When the participant already has a scored submission with this content, store
            nothing and return ``(None, earlier)`` with that row (a dict).
        closes_at : datetime, optional
            The deadline: an entry whose ``time`` is at or after it is refused.
        limit : int, optional
            Refuse with :class:`LimitReached` when the participant already has this many
            scored submissions in ``window`` (aware ``(start, end)``).

        Raises
        ------
        SubmissionsClosed
            ``"deadline"`` past ``closes_at``; ``"revealed"`` once the Private ranking is revealed.
        ParticipantRevoked
            The name belongs to a participant whose token was revoked.
        LimitReached

        Examples
        --------
        >>> db.record({"participant": "ann", "time": now, "sha256": "ab12", "public": 0.2}, SCORE)  # doctest: +SKIP
        (1, None)
        """
        if source not in SOURCES or source == SERVER:
            raise ValueError(f"expected a source among {SOURCES[1:]}, found {source!r}")
        when = entry.get("time")
        with self._write() as conn:
            settings = self._settings(conn)
            if when is None or when != when:  # a time nobody can vouch for: only while no deadline is set
                phase = decide_phase(settings, None, datetime.min.replace(tzinfo=timezone.utc))
                if phase.open and (phase.deadline or closes_at) is not None:
                    phase = Phase(CLOSED, "deadline", phase.deadline or closes_at)
            else:
                phase = decide_phase(settings, closes_at, when)
            if not phase.open:
                raise SubmissionsClosed(phase.reason)
            participant_id, name = self._named_participant(conn, entry["participant"], when)
            revoked = conn.execute("SELECT revoked_at FROM participants WHERE id = ?", (participant_id,)).fetchone()[0]
            if revoked is not None:
                raise ParticipantRevoked(name)
            if once:
                earlier = conn.execute(
                    "SELECT s.*, p.name AS participant FROM submissions s JOIN participants p ON p.id = s.participant_id "
                    "WHERE s.participant_id = ? AND s.sha256 = ? AND s.status = ? ORDER BY s.submitted_at, s.id LIMIT 1",
                    (participant_id, entry["sha256"], SCORED)).fetchone()
                if earlier is not None:
                    return None, dict(earlier)
            if limit is not None:
                used = conn.execute(
                    "SELECT COUNT(*) FROM submissions WHERE participant_id = ? AND status = ? "
                    "AND submitted_at >= ? AND submitted_at < ?",
                    (participant_id, SCORED, utc_iso(window[0]), utc_iso(window[1]))).fetchone()[0]
                if used >= limit:
                    raise LimitReached(used)
            return self._insert_entry(conn, participant_id, entry, source), None

    def import_entries(self, entries, marker=None):
        """Store the rows of a log written before the store existed; return how many (None when refused).

        Without ``marker`` this is the upgrade from a version without a store: done only
        while the store has never imported a log and holds no scored submission (otherwise
        any CSV in a new leaderboard folder could add rows). With ``marker`` (the teacher's
        ``kit leaderboard --import-log FILE``) it is done once per marker, and a row the
        store already holds (same participant, content and time) is not stored twice.
        Rows are marked as imported (source ``log``). All rows or none, and the marker with them.
        """
        with self._write() as conn:
            if marker is None:
                if not self._may_import(conn, LOG_IMPORTED,
                                        "SELECT 1 FROM submissions WHERE status = 'scored' LIMIT 1"):
                    return None
            elif conn.execute("SELECT 1 FROM settings WHERE key = ?", (marker,)).fetchone() is not None:
                return None
            added = 0
            for entry in entries:
                participant_id, _ = self._named_participant(conn, entry["participant"], entry.get("time"))
                same = conn.execute(
                    "SELECT 1 FROM submissions WHERE participant_id = ? AND sha256 = ? AND submitted_at = ? "
                    "AND status = ?", (participant_id, entry["sha256"], _stored_time(entry.get("time")), SCORED))
                if same.fetchone() is None:
                    self._insert_entry(conn, participant_id, entry, LOG)
                    added += 1
            for key in {LOG_IMPORTED, marker or LOG_IMPORTED}:
                conn.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, str(added)))
            return added

    def may_import_log(self):
        """True while :meth:`import_entries` would still import (never done, nothing scored)."""
        with self._lock:
            return self._may_import(self._conn, LOG_IMPORTED,
                                    "SELECT 1 FROM submissions WHERE status = 'scored' LIMIT 1")

    def _may_import(self, conn, marker, holds_rows):
        """Earlier records may come in: never done, nothing of the kind here, and the store is
        new in this call or older than the records kept in it (a store that ``kit participants``
        made empty would otherwise take whatever CSV the first folder used holds)."""
        if conn.execute("SELECT 1 FROM settings WHERE key = ?", (marker,)).fetchone() is not None:
            return False
        made_here = conn.execute("SELECT 1 FROM settings WHERE key = ?", (CREATED_SCHEMA,)).fetchone() is not None
        if made_here and not self.created:
            return False
        return conn.execute(holds_rows).fetchone() is None

    # --- the inbox's first-seen times -------------------------------------------------------

    def first_seen(self, file, size, sha256, now):
        """When the inbox first saw this file content: the stored time, else ``now`` (stored, committed).

        Committed (fsynced) before the file is scored, so a crash never leaves a scored
        file without its time; a later poll, another leaderboard folder or a hand-written
        journal cannot move it.

        Examples
        --------
        >>> db.first_seen("ann__1.csv", 120, "ab12", now) == now   # doctest: +SKIP
        True
        """
        key = (str(file), int(size), str(sha256))
        query = "SELECT first_seen FROM inbox_seen WHERE file = ? AND size = ? AND sha256 = ?"
        rows = self._read(query, key)  # most files of a watched inbox were seen before: no write then
        if not rows:
            with self._write() as conn:
                conn.execute("INSERT OR IGNORE INTO inbox_seen (file, size, sha256, first_seen) VALUES (?, ?, ?, ?)",
                             (*key, utc_iso(now)))
                rows = [conn.execute(query, key).fetchone()]
        return parse_utc(rows[0][0])

    def inbox_seen(self):
        """Every first-seen record (dicts: ``file``, ``size``, ``sha256``, ``first_seen``), oldest first."""
        return [dict(row) for row in self._read("SELECT * FROM inbox_seen ORDER BY first_seen, file")]

    def import_first_seen(self, rows):
        """Take the first-seen times of an old journal, once, while the store holds none; return how many.

        ``rows`` are ``(file, size, sha256, aware datetime)``; None when refused (already
        imported, or the store keeps its own times already).
        """
        with self._write() as conn:
            if not self._may_import(conn, SEEN_IMPORTED, "SELECT 1 FROM inbox_seen LIMIT 1"):
                return None
            for file, size, sha256, when in rows:
                conn.execute("INSERT INTO inbox_seen (file, size, sha256, first_seen) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT DO UPDATE SET first_seen = MIN(first_seen, excluded.first_seen)",
                             (str(file), int(size), str(sha256), utc_iso(when)))
            conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (SEEN_IMPORTED, str(len(rows))))
            return len(rows)

    def mark_imported(self, marker):
        """Record that there is nothing to import (:data:`LOG_IMPORTED` or :data:`SEEN_IMPORTED`), so nothing ever is."""
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, '0')", (marker,))

    @staticmethod
    def _named_participant(conn, name, when):
        """``(id, display name)`` of the participant with ``name``'s key; created without a token when new."""
        display = check_participant_name(name)
        key = participant_key(display)
        row = conn.execute("SELECT id, name FROM participants WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return row["id"], row["name"]
        # token_sha256 is unique and required: the hash of a token nobody is ever given.
        created = _stored_time(when) if when is not None and when == when else utc_iso(datetime.now(timezone.utc))
        cursor = conn.execute(
            "INSERT INTO participants (name, key, token_sha256, created_at, has_token) VALUES (?, ?, ?, ?, 0)",
            (display, key, hash_token(new_token()), created))
        return cursor.lastrowid, display

    @staticmethod
    def _insert_entry(conn, participant_id, entry, source):
        values = {
            "participant_id": participant_id,
            "submitted_at": _stored_time(entry.get("time")),
            "sha256": str(entry["sha256"]),
            "stored_path": str(entry.get("stored_path") or ""),
            "file_name": str(entry.get("file") or ""),
            "size": int(entry.get("size") or 0),
            "rows": int(entry.get("rows") or 0),
            "public": _real(entry.get("public")),
            "private": _real(entry.get("private")),
            "per_bin_public": json.dumps(entry.get("per_bin_public") or {}, separators=(",", ":")),
            "per_bin_private": json.dumps(entry.get("per_bin_private") or {}, separators=(",", ":")),
            "status": SCORED,
            "description": str(entry.get("model") or ""),
            "source": source,
            "validation": _real(entry.get("validation")),
        }
        if values["public"] is None:
            raise ValueError(f"a scored submission needs a finite Public score, found {entry.get('public')!r}")
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        return conn.execute(f"INSERT INTO submissions ({columns}) VALUES ({marks})", tuple(values.values())).lastrowid

    def version(self):
        """A value that changes whenever the leaderboard may have changed."""
        rows = self._read("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM submissions")
        return (rows[0][0], rows[0][1], self.revealed)

    # --- settings ----------------------------------------------------------------------------

    @property
    def revealed(self):
        with self._lock:
            return self._revealed(self._conn)

    @staticmethod
    def _revealed(conn):
        row = conn.execute("SELECT value FROM settings WHERE key = 'revealed'").fetchone()
        return row is not None and row[0] == "1"

    def setting(self, key):
        """The text stored under ``key`` in ``settings``, or None."""
        rows = self._read("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_revealed(self, value=True):
        """Set the reveal flag (``POST /api/reveal``, ``kit leaderboard --private``): Private shown, submissions closed."""
        with self._write() as conn:
            conn.execute("INSERT INTO settings (key, value) VALUES ('revealed', ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", ("1" if value else "0",))

    def settings(self):
        """Every stored setting as a dict of text (``revealed``, ``closed``, ``deadline`` ...)."""
        with self._lock:
            return self._settings(self._conn)

    @staticmethod
    def _settings(conn):
        return {row[0]: row[1] for row in conn.execute("SELECT key, value FROM settings")}

    def set_settings(self, values):
        """Store several settings (text values) in one transaction."""
        with self._write() as conn:
            conn.executemany("INSERT INTO settings (key, value) VALUES (?, ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                             [(str(key), str(value)) for key, value in values.items()])

    def reveal(self, revealed=True):
        """Reveal the Private ranking (or hide it again); either way the competition is closed after.

        Hiding returns to the closed state: re-opening is the teacher's separate choice
        (the setting ``closed``).
        """
        self.set_settings({"revealed": "1" if revealed else "0", "closed": "1"})

    # --- final submissions -------------------------------------------------------------------

    def set_finals(self, participant_id, submission_ids, now, still_open=None):
        """Make ``submission_ids`` the participant's final submissions (replacing earlier ones); return them sorted.

        Parameters
        ----------
        participant_id : int
        submission_ids : list of int
            At most :data:`MAX_FINALS` of the scored submissions of the participant or their
            team (a team has one set of final submissions); an empty
            list takes the choice back (the best Public submission counts then).
        now : datetime
            The time of the choice (aware).
        still_open : callable, optional
            As in :meth:`add_submission`: the choice is refused with :class:`SubmissionsClosed`
            when it returns a reason, checked in the same transaction.

        Raises
        ------
        ValueError
            Too many ids, or an id that is not one of the participant's scored submissions;
            nothing is changed then.

        Examples
        --------
        >>> db.set_finals(3, [12, 15], now)  # doctest: +SKIP
        [12, 15]
        """
        wanted = sorted(set(submission_ids))
        if len(wanted) > MAX_FINALS:
            raise ValueError(f"at most {MAX_FINALS} final submissions may be chosen, found {len(wanted)}")
        with self._write() as conn:
            reason = None if still_open is None else still_open(self._settings(conn))
            if reason is not None:
                raise SubmissionsClosed(reason)
            for submission_id in wanted:
                row = conn.execute(f"SELECT 1 FROM submissions WHERE id = ? AND participant_id IN ({_TEAM_OF}) "
                                   "AND status = ?", (submission_id, participant_id, participant_id, SCORED)).fetchone()
                if row is None:
                    raise ValueError(f"submission {submission_id} is not one of your scored submissions")
            conn.execute(f"DELETE FROM final_choices WHERE participant_id IN ({_TEAM_OF})",
                         (participant_id, participant_id))
            conn.executemany("INSERT INTO final_choices (submission_id, participant_id, chosen_at) VALUES (?, ?, ?)",
                             [(submission_id, participant_id, utc_iso(now)) for submission_id in wanted])
        return wanted

    def finals(self, participant_id=None):
        """Chosen final submissions: ``{participant display name: [submission id, ...]}``.

        With ``participant_id``, those of the participant's team (or their own).
        """
        clause, params = ((f"WHERE f.participant_id IN ({_TEAM_OF})", (participant_id, participant_id))
                          if participant_id is not None else ("", ()))
        rows = self._read(
            f"SELECT p.name, f.submission_id FROM final_choices f JOIN participants p ON p.id = f.participant_id "
            f"{clause} ORDER BY f.submission_id", params)
        chosen = {}
        for name, submission_id in rows:
            chosen.setdefault(name, []).append(submission_id)
        return chosen

    # --- teams ------------------------------------------------------------------------------

    def join_team(self, names, team):
        """Put participants (display names or look-alikes) in ``team``; return the team's display name.

        A team has one daily allowance, one set of final submissions and one leaderboard
        row under its name. Joining is allowed only before the first scored submission: of
        the participant, and of the team. A team's name may not be a participant's.

        Raises
        ------
        UserError
            A name is unknown, someone already submitted, or the team's name is taken; nobody joins then.

        Examples
        --------
        >>> db.join_team(["Ada", "Bob"], "Blue Whales")  # doctest: +SKIP
        'Blue Whales'
        """
        with self._write() as conn:
            display, key = self._team_name(conn, team)
            for name in names:
                row = conn.execute("SELECT id, name FROM participants WHERE key = ?",
                                   (participant_key(str(name)),)).fetchone()
                if row is None:
                    raise UserError(f"no participant named {str(name)[:60]!r}: see `kit participants list`; "
                                    "nobody joined")
                done = conn.execute("SELECT COUNT(*) FROM submissions WHERE participant_id = ? AND status = ?",
                                    (row["id"], SCORED)).fetchone()[0]
                if done:
                    raise UserError(f"participant {row['name']!r} has already submitted: one joins a team only "
                                    "before their first scored submission; nobody joined")
                conn.execute("UPDATE participants SET team = ?, team_key = ? WHERE id = ?", (display, key, row["id"]))
        return display

    def check_team(self, team):
        """The display name of a team participants may still join; a UserError otherwise (see :meth:`join_team`)."""
        with self._lock:
            return self._team_name(self._conn, team)[0]

    @staticmethod
    def _team_name(conn, team):
        """``(display name, key)`` of a team that may be joined (the first spelling is kept)."""
        display = check_participant_name(team)
        key = participant_key(display)
        taken = conn.execute("SELECT name FROM participants WHERE key = ?", (key,)).fetchone()
        if taken is not None:
            raise UserError(f"team {display!r} has the name of participant {taken['name']!r}: choose another "
                            "team name; nobody joined")
        existing = conn.execute("SELECT team FROM participants WHERE team_key = ? LIMIT 1", (key,)).fetchone()
        display = existing["team"] if existing is not None else display
        started = conn.execute("SELECT COUNT(*) FROM submissions s JOIN participants p ON p.id = s.participant_id "
                               "WHERE p.team_key = ? AND s.status = ?", (key, SCORED)).fetchone()[0]
        if started:
            raise UserError(f"team {display!r} has already submitted: members join only before the team's "
                            "first scored submission; nobody joined")
        return display, key

    def team_members(self, participant_id):
        """Ids of the participant's team's members (the participant alone when on their own)."""
        return [row[0] for row in self._read(f"SELECT id FROM participants WHERE id IN ({_TEAM_OF}) ORDER BY id",
                                             (participant_id, participant_id))]

    def teams(self):
        """``{participant display name: team display name}`` of everyone in a team."""
        return {row[0]: row[1] for row in self._read("SELECT name, team FROM participants WHERE team IS NOT NULL")}

    # --- failed attempts -------------------------------------------------------------------

    def add_failed_attempt(self, record):
        """Record an upload the server failed to score; return its id.

        ``record`` holds ``participant_id``, ``attempted_at`` (an aware datetime), ``sha256``,
        ``file_name``, ``size`` and ``error``.
        """
        values = dict(record, attempted_at=utc_iso(record["attempted_at"]))
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO failed_attempts (participant_id, attempted_at, sha256, file_name, size, error) "
                "VALUES (:participant_id, :attempted_at, :sha256, :file_name, :size, :error)", values)
            return cursor.lastrowid

    def count_failed(self, participant_id, start, end):
        """Failed attempts of a participant with ``start <= attempted_at < end`` (aware times)."""
        rows = self._read(
            "SELECT COUNT(*) FROM failed_attempts WHERE participant_id = ? AND attempted_at >= ? AND attempted_at < ?",
            (participant_id, utc_iso(start), utc_iso(end)))
        return rows[0][0]

    def failed_attempts(self, participant_id=None):
        """Failed attempts (dicts, with ``participant`` = display name) in order of arrival."""
        clause, params = ("WHERE f.participant_id = ?", (participant_id,)) if participant_id is not None else ("", ())
        rows = self._read(
            f"SELECT f.*, p.name AS participant FROM failed_attempts f JOIN participants p ON p.id = f.participant_id "
            f"{clause} ORDER BY f.attempted_at, f.id", params)
        return [dict(row) for row in rows]


def _stored_time(when):
    """``submitted_at`` text of an aware time; :data:`UNKNOWN_TIME` for None or NaT."""
    if when is None or when != when:
        return UNKNOWN_TIME
    return utc_iso(when)


def _real(value):
    """A finite float, or None for a missing or non-finite score."""
    if value is None or value == "":
        return None
    number = float(value)
    return number if math.isfinite(number) else None


