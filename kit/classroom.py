"""Classroom mode: score an inbox folder of ``<participant>__<anything>.csv`` files.

Each file is scored once: a file whose content (sha256) is already in the log for that
participant is skipped. A file's submission time is its modification time (UTC), so a
teacher may collect files during the day and score them in the evening; the daily limit
(``max_daily_submissions`` in competition.json) counts valid submissions per participant
per UTC day, in order of submission time. Invalid files do not use up the limit, and are
listed with their reason every time the inbox is processed until they are removed.

Only plain files directly inside the inbox are read: links and folders are refused, so a
file cannot point the scorer (and the quoted lines of its error message) elsewhere.
"""
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from kit.errors import SubmissionError, UserError
from kit.leaderboard import log_path, read_log, record_result, sanitize_participant

SEPARATOR = "__"
DEFAULT_DAILY_LIMIT = 5


@dataclass
class InboxReport:
    """What processing an inbox did.

    Attributes
    ----------
    scored : list of (file, participant, public score)
    already_scored : list of file names whose content was scored before
    rejected : list of (file, reason)
    notes : list of str (for example identical files from different participants)
    """

    inbox: Path
    scored: list = field(default_factory=list)
    already_scored: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def summary(self):
        return (
            f"Inbox {self.inbox}: {len(self.scored)} new file(s) scored, "
            f"{len(self.already_scored)} already scored, {len(self.rejected)} rejected"
        )


def participant_from_filename(name):
    """The sanitised participant of ``<participant>__<anything>.csv``, or None.

    Examples
    --------
    >>> participant_from_filename("alice__try3.csv")
    'alice'
    >>> participant_from_filename("notes.txt") is None
    True
    """
    if not name.lower().endswith(".csv") or SEPARATOR not in name:
        return None
    raw = name.split(SEPARATOR, 1)[0]
    if not raw.strip():
        return None
    return sanitize_participant(raw)


def daily_limit(metadata):
    """``max_daily_submissions`` from competition.json (default 5); None means no limit."""
    value = metadata.get("max_daily_submissions", DEFAULT_DAILY_LIMIT)
    if value in (None, 0):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UserError(f"competition.json: expected max_daily_submissions to be a whole number, found {value!r}")
    return value


def process_inbox(competition, inbox, *, data=None, leaderboard=None):
    """Score every new file of ``inbox`` into the competition's leaderboard log.

    Parameters
    ----------
    competition : Competition, str or Path
        Needs its ``private/solution.csv``.
    inbox : str or Path
        Folder of ``<participant>__<anything>.csv`` files.
    data, leaderboard : str or Path, optional
        Folders overriding ``./data`` and ``./leaderboard``.

    Returns
    -------
    InboxReport

    Examples
    --------
    >>> report = process_inbox("practice", "inbox/")   # doctest: +SKIP
    >>> print(report.summary())                        # doctest: +SKIP
    """
    from filelock import FileLock, Timeout

    from kit.fileio import ensure_writable_dir, sha256_file
    from kit.scoring import Scorer

    inbox = Path(inbox)
    if not inbox.is_dir():
        raise UserError(f"inbox {inbox} not found: expected a folder of <participant>__<anything>.csv files")
    scorer = Scorer(competition, data=data)
    limit = daily_limit(scorer.competition.metadata)
    path = log_path(scorer.competition.name, leaderboard)
    ensure_writable_dir(path.parent)
    report = InboxReport(inbox=inbox)
    try:
        # One teacher at a time: two runs over the same inbox would score files twice.
        with FileLock(str(path) + ".inbox.lock", timeout=600):
            log = read_log(path)
            seen = {(p, h): f for p, h, f in zip(log["participant"], log["sha256"], log["file"])}
            owners = {h: p for p, h in zip(log["participant"], log["sha256"])}
            per_day = {}
            for p, t in zip(log["participant"], log["time"]):
                per_day[(p, t.date())] = per_day.get((p, t.date()), 0) + 1
            for entry, when in _candidates(inbox, report):
                participant = participant_from_filename(entry.name)
                if participant is None:
                    report.rejected.append((entry.name, "file name: expected <participant>__<anything>.csv"))
                    continue
                digest = sha256_file(entry.path)
                if (participant, digest) in seen:
                    report.already_scored.append(entry.name)
                    continue
                try:
                    result = scorer.score(entry.path)
                except SubmissionError as exc:
                    report.rejected.append((entry.name, _reason(exc, entry.path)))
                    continue
                day = when.date()
                if limit is not None and per_day.get((participant, day), 0) >= limit:
                    report.rejected.append((
                        entry.name,
                        f"daily limit: {participant} already has {limit} scored submission(s) on {day} (UTC); "
                        f"max_daily_submissions is {limit}",
                    ))
                    continue
                if digest in owners and owners[digest] != participant:
                    report.notes.append(f"{entry.name} ({participant}) is identical to a submission of {owners[digest]}")
                record_result(result, participant=participant, leaderboard=leaderboard, time=when, file=entry.name)
                seen[(participant, digest)] = entry.name
                owners.setdefault(digest, participant)
                per_day[(participant, day)] = per_day.get((participant, day), 0) + 1
                report.scored.append((entry.name, participant, result.public))
    except Timeout:
        raise UserError(f"another `kit leaderboard --inbox` is running on {path} (lock {path}.inbox.lock)") from None
    return report


def _candidates(inbox, report):
    """Plain files of the inbox (hidden files ignored) in submission order, with their time.

    Links, folders and other special files are added to ``report.rejected``.
    """
    found = []
    try:
        entries = list(os.scandir(inbox))
    except OSError as exc:
        raise UserError(f"cannot list inbox {inbox}: {exc.strerror or exc}") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError as exc:
            report.rejected.append((entry.name, f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISLNK(info.st_mode):
            report.rejected.append((entry.name, "is a link: expected a plain file inside the inbox"))
        elif stat.S_ISDIR(info.st_mode):
            report.rejected.append((entry.name, "is a folder: expected <participant>__<anything>.csv files"))
        elif not stat.S_ISREG(info.st_mode):
            report.rejected.append((entry.name, "is not a regular file"))
        else:
            found.append((datetime.fromtimestamp(info.st_mtime, tz=timezone.utc), entry.name, entry))
    found.sort(key=lambda item: (item[0], item[1]))
    return [(entry, when) for when, _, entry in found]


def _reason(exc, path):
    """The error message without the file's path (the listing already names the file)."""
    message = " ".join(str(exc).split())
    for prefix in (f"{path}: ", str(path) + " "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message.replace(str(path), Path(path).name)
