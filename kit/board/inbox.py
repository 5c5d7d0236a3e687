"""Classroom mode: score an inbox folder of ``<participant>__<anything>.csv`` files.

This is the offline fallback to ``kit serve``: a shared folder where a file's name says
who submitted it. Nothing a student controls decides *when* a file was submitted:

- **Submission time is the time the kit first saw the file**, never its modification
  time (``touch -d`` can set that to any date). Each file content is recorded once in
  the competition's store (``private/classroom.sqlite``, owner only) as (file name, size,
  sha256, first seen, UTC), committed before it is scored; the record survives restarts,
  a change of leaderboard folder and any file others can write (the
  ``leaderboard/<competition>.inbox-seen.jsonl`` of earlier versions is imported once,
  into a store that holds no first-seen time yet, and never read again). Replacing a file's content under the same
  name is a new submission seen now; deleting and re-adding the same bytes under the same
  name keeps the first time; a rename is seen anew, so a copy of a classmate's file under
  another name is later than theirs, unless both arrive between the same two polls: then
  they share their first-seen time, neither is ahead (whatever their names), and a note
  says so. Run ``kit leaderboard --inbox DIR --watch`` during the competition so
  first-seen times are close to the real ones.
- **The daily limit** (``max_daily_submissions`` in competition.json) counts valid
  submissions per participant per UTC day of their first-seen time. Invalid files do not
  use it up, and are listed with their reason every time until they are removed.
- **Identity** comes from :mod:`kit.board.identity`: ``Bob``, ``BOB`` and ``ＢＯＢ`` are one
  participant (shown as first written); names with look-alikes from another script,
  invisible characters or more than 40 characters are refused (never cut short).
- **The server's closing rules**: a file first seen at or after competition.json's
  ``deadline`` (:mod:`kit.competition.deadline`), any new file once the final ranking is revealed
  (``kit leaderboard --private`` or ``POST /api/reveal``), and the files of a revoked
  participant (``kit participants revoke``) are refused with one line. The store checks
  them, "already stored" and the daily limit in the transaction that inserts the row,
  so the inbox, ``kit score`` and ``kit serve`` together never store a file twice or
  exceed the limit.
- **What others read names the rule, never the file's content**: the public list of
  refused files (``leaderboard/<competition>.inbox-rejected.json`` and the pages) gives
  the file name and the rule broken; the full reason, which may quote lines of the
  file, is printed to the teacher and kept in ``private/inbox-rejected.json``.
- **One store**: scored files go into the competition's store of record
  (``private/classroom.sqlite``, shared with ``kit score`` and ``kit serve``), and
  ``leaderboard/<competition>.csv`` is rewritten from it (:mod:`kit.board.leaderboard`).
- **One hostile file never stops the class**: whatever fails while one file is judged
  (the reader, the scorer, storing it) rejects that file with one line; the files after
  it, and later polls, are judged as usual.
- **Only the file's bytes are read**: a copy is scored, so a ``.json`` beside it (a
  model name, a validation score) is never trusted, and a file changed while it is read
  is read again at the next poll. Its size is checked against the competition's cap
  before anything is hashed, and links (symbolic or hard), folders, pipes and devices
  are refused unread.
"""
import hashlib
import json
import os
import stat
import tempfile
import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as dt_time
from pathlib import Path

from filelock import FileLock, Timeout

from kit.board.exports import export_logs, store_entries, write_rejected
from kit.board.finals import FINAL_LIST, FINAL_LIST_BYTES, FinalList, choose_finals
from kit.board.identity import check_participant_name, participant_key, sanitize_participant
from kit.board.logfile import entries_frame, log_path
from kit.board.phases import REVEALED_CLOSED, closed_reason
from kit.board.recording import NotRecorded, open_store, store_result
from kit.board.store import INBOX, MAX_FINALS, SEEN_IMPORTED
from kit.competition.deadline import competition_deadline
from kit.competition.folder import DEFAULT_DAILY_LIMIT, as_competition
from kit.constraints import Integral, Interval, OrNone, Real, check_param, parse_param
from kit.errors import SubmissionError, UserError, first_line
from kit.fileio import ensure_writable_dir
from kit.safetext import one_line, printable
from kit.scoring.metrics import shown_scores
from kit.scoring.reader import max_bytes_for
from kit.scoring.scorer import Scorer

SEPARATOR = "__"
#: Seconds between two polls of ``--watch`` by default.
DEFAULT_INTERVAL = 5.0
#: What a polling interval may be: seconds > 0, at most a day.
INTERVAL = Interval(Real, 0, 86400, closed="right")
#: How many looks :func:`watch_inbox` takes: a whole number >= 1, or None (until stopped).
POLLS = OrNone(Interval(Integral, 1, None))
#: What competition.json's ``max_daily_submissions`` may be: a whole number >= 0 (0 or null: no limit).
DAILY_LIMIT = OrNone(Interval(Integral, 0, None))
#: Suffix of the first-seen record beside ``leaderboard/<competition>.csv``.
SEEN_SUFFIX = ".inbox-seen.jsonl"
_CHUNK = 1 << 20
#: The owner-only list of the files the last inbox run refused, with their full reasons.
PRIVATE_REJECTED = "inbox-rejected.json"
#: What others read about a file the scorer refused: the rule, not the file's lines.
INVALID_RULE = ("invalid submission: expected id,similarity with one row per test pair and finite numbers "
                "(`kit score` on the file says what is wrong)")
#: What others read about a file the kit failed on (the teacher has the details).
NOT_JUDGED = "could not be judged (the teacher has the details)"


@dataclass
class InboxReport:
    """What processing an inbox did.

    Attributes
    ----------
    scored : list of (file, participant, Public score as shown: rounded to 5 decimals)
    already_scored : list of file names whose content was scored before
    rejected : list of (file, reason): the full reason, for the teacher
    public : list of (file, rule): the same files with only the rule broken, for others
    notes : list of str (for example identical files from different participants)
    finals : list of (list file, participant, [file names]): final choices recorded this time
    first_seen : dict of file name -> datetime (UTC) for the files read this time
    """

    inbox: Path
    scored: list = field(default_factory=list)
    already_scored: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    public: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    finals: list = field(default_factory=list)
    first_seen: dict = field(default_factory=dict)

    def reject(self, refusal, rule=None):
        """Add ``(file, reason)``; ``rule`` is what others may read (default: the reason, which quotes no content)."""
        name, reason = refusal
        self.rejected.append((name, reason))
        self.public.append((name, reason if rule is None else rule))

    def summary(self):
        return (
            f"Inbox {self.inbox}: {len(self.scored)} new file(s) scored, "
            f"{len(self.already_scored)} already scored, {len(self.rejected)} rejected"
        )


def participant_from_filename(name):
    """The participant of ``<participant>__<anything>.csv`` as first written, or None.

    None when the name does not follow the pattern; a :class:`~kit.errors.UserError`
    when it does but the participant name is refused by
    :func:`kit.board.identity.check_participant_name`.

    Examples
    --------
    >>> participant_from_filename("alice__try3.csv")
    'alice'
    >>> participant_from_filename("ＢＯＢ__1.csv")
    'BOB'
    >>> participant_from_filename("notes.txt") is None
    True
    """
    if not name.lower().endswith(".csv") or SEPARATOR not in name:
        return None
    return check_participant_name(name.split(SEPARATOR, 1)[0])


def public_rule(reason):
    """What others may read of a scorer's refusal: the rule broken, never the lines it quotes.

    Examples
    --------
    >>> public_rule("line 2: a quote in '0,0.5 is not closed").startswith("invalid submission")
    True
    >>> public_rule("could not be judged (ValueError: bad)")
    'could not be judged (the teacher has the details)'
    """
    return NOT_JUDGED if reason.startswith("could not be judged") else INVALID_RULE


def identical_note(file, participant, other, together=False):
    """The note that ``file`` of ``participant`` has the same bytes as a submission of ``other``.

    One wording for every writer of the store (the inbox, ``kit serve``). ``together``:
    both were first seen at the same time, so which came first is unknown, and the order
    the files were read in (their names) must not blame one; the ranking shows them tied.

    Examples
    --------
    >>> identical_note("bob__1.csv", "bob", "ann")
    'bob__1.csv (bob) is identical to a submission of ann seen earlier'
    >>> identical_note("bob__1.csv", "bob", "ann", together=True)
    'identical files from ann and bob first seen together; neither is ranked ahead by time (bob__1.csv)'
    """
    if together:
        first, second = sorted((other, participant), key=lambda n: (n.casefold(), n))
        return f"identical files from {first} and {second} first seen together; neither is ranked ahead by time ({file})"
    return f"{file} ({participant}) is identical to a submission of {other} seen earlier"


def daily_limit(metadata):
    """``max_daily_submissions`` from competition.json (default 5); None means no limit."""
    value = metadata.get("max_daily_submissions", DEFAULT_DAILY_LIMIT)
    try:
        value = check_param(value, "competition.json: max_daily_submissions", DAILY_LIMIT)
    except TypeError as exc:  # a hand-edited file: one line, as for a value out of bounds
        raise UserError(str(exc)) from None
    return value or None


def seen_path(log):
    """``leaderboard/<competition>.inbox-seen.jsonl`` beside the log ``leaderboard/<competition>.csv``."""
    log = Path(log)
    return log.with_name(log.stem + SEEN_SUFFIX)


class FirstSeen:
    """The first-seen journal of earlier versions, ``leaderboard/<competition>.inbox-seen.jsonl``.

    One JSON line per (file name, size, sha256). Read once, when a store that holds no
    first-seen time is first used by the inbox (:meth:`kit.board.store.Database.import_first_seen`);
    the store keeps the times from then on. A torn or hand-damaged line is skipped; the
    earliest time wins when a key appears twice.

    Examples
    --------
    >>> seen = FirstSeen("/tmp/kit-doc-seen/practice.inbox-seen.jsonl")   # doctest: +SKIP
    >>> seen.get("ann__1.csv", 120, "ab12") is None                       # doctest: +SKIP
    True
    """

    def __init__(self, path):
        self.path = Path(path)
        self.times = {}
        self.skipped = 0
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raw = b""
        except OSError as exc:
            raise UserError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        for line in raw.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key = (str(row["file"]), int(row["size"]), str(row["sha256"]))
                when = _parse_time(row["first_seen"])
            except (ValueError, TypeError, KeyError, OverflowError):
                self.skipped += 1
                continue
            if key not in self.times or when < self.times[key]:
                self.times[key] = when

    def get(self, name, size, sha256):
        return self.times.get((name, size, sha256))

    def rows(self):
        """``(file, size, sha256, first seen)`` of every record."""
        return [(*key, when) for key, when in sorted(self.times.items())]


def process_inbox(competition, inbox, *, data=None, leaderboard=None, now=None, _memo=None):
    """Score every new file of ``inbox`` into the competition's store, then rewrite the CSV exports.

    Parameters
    ----------
    competition : Competition, str or Path
        Needs its ``private/solution.csv``.
    inbox : str or Path
        Folder of ``<participant>__<anything>.csv`` files.
    data, leaderboard : str or Path, optional
        Folders overriding ``./data`` and ``./leaderboard``.
    now : datetime, optional
        The time of this look at the inbox (default: the clock, UTC); files not seen
        before are recorded as first seen at this time.
    _memo : dict, optional
        Kept by :func:`watch_inbox` from one poll to the next: the scorer, the hashes of
        unchanged files and the verdicts on contents already judged.

    Returns
    -------
    InboxReport

    Examples
    --------
    >>> report = process_inbox("practice", "inbox/")   # doctest: +SKIP
    >>> print(report.summary())                        # doctest: +SKIP
    """
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise UserError(f"inbox {inbox} not found: expected a folder of <participant>__<anything>.csv files")
    memo = {} if _memo is None else _memo
    scorer = _scorer(memo, competition, data)
    hashes, verdicts = memo.setdefault("hashes", {}), memo.setdefault("verdicts", {})
    limit = daily_limit(scorer.competition.metadata)
    cap = max_bytes_for(scorer.expected_rows)
    path = log_path(scorer.competition.name, leaderboard)
    ensure_writable_dir(path.parent)
    report = InboxReport(inbox=inbox)
    try:
        # One teacher at a time: two runs over the same inbox would score files twice.
        with FileLock(str(path) + ".inbox.lock", timeout=600):
            now = _utc(now) if now is not None else datetime.now(timezone.utc).replace(microsecond=0)
            db = open_store(scorer.competition, leaderboard)
            try:
                _import_journal(db, seen_path(path), report)
                rules = _Rules(db, limit, competition_deadline(scorer.competition.metadata))
                logged = _Logged(entries_frame(store_entries(db)))
                lists = []
                candidates = _candidates(inbox, cap, report, hashes, db, now, lists)
                with tempfile.TemporaryDirectory(prefix="kit-inbox-") as scratch:
                    judge = _Judge(scorer, verdicts, cap, Path(scratch), report)
                    for candidate in candidates:
                        _take_safely(candidate, logged, judge, rules, db, report)
                for final in lists:
                    _choose_safely(final, candidates, rules, db, report)
                export_logs(db, scorer.competition, leaderboard)
            finally:
                db.close()
            _displayable(report)
            # Others read the rule broken; the teacher keeps the full reasons (owner only).
            write_rejected(path, report.public)  # the pages built later (the final one) list them too
            write_rejected(Path(scorer.competition.path) / "private" / PRIVATE_REJECTED, report.rejected,
                           private=True)
    except Timeout:
        raise UserError(f"another `kit leaderboard --inbox` is running on {path} (lock {path}.inbox.lock)") from None
    return report


def _import_journal(db, journal, report):
    """Take an earlier version's first-seen journal into the store, once, while it holds no time."""
    if not journal.is_file():
        db.mark_imported(SEEN_IMPORTED)  # a journal written later is never believed
        return
    seen = FirstSeen(journal)
    if db.import_first_seen(seen.rows()) is not None:
        report.notes.append(f"first-seen times of {journal} imported into the store; that file is no longer read")
        if seen.skipped:
            report.notes.append(f"{seen.skipped} damaged line(s) in {seen.path} were skipped")


class _Rules:
    """The closing rules of this poll: the daily limit, the deadline, the reveal and revoked participants."""

    def __init__(self, db, limit, deadline):
        self.limit, self.deadline = limit, deadline
        self.revealed = db.revealed
        self.revoked = frozenset(p["key"] for p in db.participants() if p["revoked_at"] is not None)

    def closed(self, key, when):
        """The one line refusing a file of participant ``key`` first seen ``when``, or None when open."""
        if key in self.revoked:
            return "revoked: this participant's token was revoked (`kit participants revoke`)"
        if self.revealed:
            return REVEALED_CLOSED
        if self.deadline is not None and when >= self.deadline:
            return closed_reason("deadline", self.deadline)
        return None

    def window(self, when):
        """The UTC day of a first-seen time, as the store counts the daily limit."""
        start = datetime.combine(when.date(), dt_time(0), tzinfo=timezone.utc)
        return start, start + timedelta(days=1)


def _scorer(memo, competition, data):
    """The competition's scorer, built once per watch (its solution is read once)."""
    if "scorer" not in memo:
        memo["scorer"] = Scorer(competition, data=data)
    return memo["scorer"]


@dataclass
class _Candidate:
    """An inbox file that passed the checks made before scoring, with its first-seen time."""

    when: datetime
    name: str
    entry: object
    participant: str
    size: int
    digest: str


def _candidates(inbox, cap, report, hashes, db, now, lists):
    """The inbox's well-named plain files, each first seen now unless recorded; oldest first.

    Final lists (``<participant>__final.txt``) go to ``lists`` instead, to be read once the
    poll's files are scored.

    Files seen at the same time are read in name order (for a stable output); they keep
    one time, which is all the ranking looks at.
    """
    candidates = []
    for entry, info in _plain_files(inbox, report):
        try:
            if _is_final_list(entry.name):
                final = _read_final_list(entry, info, report)
                if final is not None:
                    name, participant, size, digest, content = final
                    when = db.first_seen(_shown(name), size, digest, now)
                    report.first_seen[name] = when
                    lists.append(FinalList(when, name, participant, content))
                continue
            examined = _examine(entry, info, cap, report, hashes)
        except Exception as exc:  # noqa: BLE001 - one file the checks trip over never stops the others
            report.reject((entry.name, _failure(exc)), NOT_JUDGED)
            continue
        if examined is None:
            continue
        name, participant, size, digest = examined
        when = db.first_seen(_shown(name), size, digest, now)
        report.first_seen[name] = when
        candidates.append(_Candidate(when, name, entry, participant, size, digest))
    candidates.sort(key=lambda c: (c.when, c.name))
    return candidates


class _Logged:
    """What the log already holds, by participant key: who, what content, how many a day."""

    def __init__(self, log):
        keys = [participant_key(p) for p in log["participant"]]
        self.shown = {}  # key -> the name as first written
        for key, name in zip(keys, log["participant"]):
            self.shown.setdefault(key, name)
        self.scored = set(zip(keys, log["sha256"]))
        self.owners = {}  # content -> (the first participant who sent it, its first-seen time)
        for key, digest, when in zip(keys, log["sha256"], log["time"]):
            self.owners.setdefault(digest, (key, when))
        self.per_day = {}
        for key, when in zip(keys, log["time"]):
            self.count(key, _day(when))

    def count(self, key, day):
        self.per_day[(key, day)] = self.per_day.get((key, day), 0) + 1

    def add(self, key, digest, when):
        self.scored.add((key, digest))
        self.owners.setdefault(digest, (key, when))
        self.count(key, _day(when))


class _Judge:
    """Scores an inbox file content once: the same bytes always get the same verdict.

    A verdict is True (scored) or the reason the file was refused; ``verdicts`` is kept
    across the polls of a watch.
    """

    def __init__(self, scorer, verdicts, cap, scratch, report):
        self.scorer, self.verdicts, self.cap, self.scratch, self.report = scorer, verdicts, cap, scratch, report

    def known_refusal(self, digest):
        verdict = self.verdicts.get(digest)
        return verdict if isinstance(verdict, str) else None

    def score(self, candidate):
        """``(result, reason)``: the ScoreResult, or None and the reason (None when unreadable now)."""
        copy = _snapshot(candidate.entry, self.cap, candidate.size, candidate.digest, self.scratch, self.report)
        if copy is None:
            return None, None
        try:
            result = self.scorer.score(copy)
        except SubmissionError as exc:
            self.verdicts[candidate.digest] = _reason(exc, copy)
            return None, self.verdicts[candidate.digest]
        except Exception as exc:  # noqa: BLE001 - one hostile file must never stop the class
            # The same bytes fail the same way: refused for good, never scored again.
            self.verdicts[candidate.digest] = _failure(exc, copy)
            return None, self.verdicts[candidate.digest]
        self.verdicts[candidate.digest] = True
        return result, None


def _take_safely(candidate, logged, judge, rules, db, report):
    """:func:`_take`, with any failure refusing this file (for this poll) instead of ending the run."""
    try:
        _take(candidate, logged, judge, rules, db, report)
    except Exception as exc:  # noqa: BLE001 - the files after this one are still judged
        report.reject((candidate.name, _failure(exc)), NOT_JUDGED)


def _failure(exc, path=None):
    """One line for an unexpected failure while judging a file (its path left out)."""
    message = first_line(exc)
    if path is not None:
        message = message.replace(str(path), Path(path).name)
    return one_line(f"could not be judged ({type(exc).__name__}: {printable(message)})", 300)


def _take(candidate, logged, judge, rules, db, report):
    """Score one candidate and store it, or note why not (already scored, closed, refused, over the limit).

    The checks made here on what the store held when the poll began save scoring files
    that would be refused; the store checks again when it inserts (another process may
    have stored since).
    """
    name, digest, limit = candidate.name, candidate.digest, rules.limit
    key = participant_key(candidate.participant)
    participant = logged.shown.setdefault(key, sanitize_participant(candidate.participant))
    if (key, digest) in logged.scored:
        report.already_scored.append(name)
        return
    closed = rules.closed(key, candidate.when)
    if closed is not None:
        report.reject((name, closed))
        return
    day = _day(candidate.when)
    over_limit = limit is not None and logged.per_day.get((key, day), 0) >= limit
    refusal = judge.known_refusal(digest)
    if refusal is not None:
        report.reject((name, refusal), public_rule(refusal))
        return
    result = None
    if digest not in judge.verdicts or not over_limit:
        # Over the limit, a content never judged is still checked: a broken file says what is wrong.
        result, reason = judge.score(candidate)
        if result is None:
            if reason is not None:
                report.reject((name, reason), public_rule(reason))
            return
    over_limit_line = (f"daily limit: {participant} already has {limit} scored submission(s) on {day} "
                       f"(UTC, by the time each file was first seen); max_daily_submissions is {limit}")
    if over_limit:
        report.reject((name, over_limit_line))
        return
    owner, owned_since = logged.owners.get(digest, (key, None))
    if owner != key:
        other = logged.shown[owner]
        # First seen by the same poll: which arrived first is unknown (both keep this time).
        report.notes.append(identical_note(name, participant, other, together=owned_since == candidate.when))
    try:
        _, earlier = store_result(db, result, participant=participant, time=candidate.when, file=name, source=INBOX,
                                  once=True, closes_at=rules.deadline, limit=limit,
                                  window=rules.window(candidate.when))
    except NotRecorded as exc:
        report.reject((name, over_limit_line if exc.reason == "limit" else str(exc)))
        return
    if earlier is not None:  # stored by `kit score` or another inbox run since this poll began
        report.already_scored.append(name)
        return
    logged.add(key, digest, candidate.when)
    report.scored.append((name, participant, shown_scores(result.public)))


def _is_final_list(name):
    """True for ``<anything>__final.txt`` (any case): a final list, whatever its participant part."""
    head, separator, tail = name.partition(SEPARATOR)
    return bool(separator) and tail.lower() == FINAL_LIST


def _read_final_list(entry, info, report):
    """``(name, participant, size, sha256, bytes)`` of a final list, or None after noting why not."""
    name = entry.name
    try:
        participant = check_participant_name(name.partition(SEPARATOR)[0])
    except UserError as exc:
        report.reject((name, f"file name: {exc}"))
        return None
    if info.st_size > FINAL_LIST_BYTES:
        report.reject((name, f"is {info.st_size:,} bytes; a final list is at most {FINAL_LIST_BYTES:,} bytes "
                             f"(at most {MAX_FINALS} file names, one per line)"))
        return None
    content = _read_capped(entry.path, FINAL_LIST_BYTES, report, name)
    if content is None:
        return None
    return name, participant, len(content), hashlib.sha256(content).hexdigest(), content


def _choose_safely(final, candidates, rules, db, report):
    """:func:`kit.board.finals.choose_finals`; a failure refuses this list (this poll) and the run goes on."""
    try:
        choose_finals(final, candidates, rules, db, report)
    except Exception as exc:  # noqa: BLE001 - the lists after this one are still read
        report.reject((final.name, _failure(exc)), NOT_JUDGED)


def watch_inbox(competition, inbox, *, data=None, leaderboard=None, interval=DEFAULT_INTERVAL, polls=None,
                on_poll=None, sleep=_time.sleep):
    """Process the inbox every ``interval`` seconds so first-seen times stay close to real ones.

    Parameters
    ----------
    competition, inbox, data, leaderboard
        As for :func:`process_inbox`.
    interval : float
        Seconds between the start of two polls (a finite number > 0).
    polls : int, optional
        Stop after this many polls (default: until interrupted with Ctrl-C).
    on_poll : callable, optional
        Called with each :class:`InboxReport`.
    sleep : callable
        Waits a number of seconds (tests pass a fake clock).

    Returns
    -------
    int
        The number of polls made. Ctrl-C between or during polls stops the watch; a poll
        interrupted half way records nothing half-written (each append is one write).

    Examples
    --------
    >>> watch_inbox("practice", "inbox/", interval=2, polls=3, on_poll=print)   # doctest: +SKIP
    """
    interval = parse_param(interval, "interval", INTERVAL)
    polls = check_param(polls, "polls", POLLS)
    competition = as_competition(competition, data)
    memo = {}
    done = 0
    try:
        while polls is None or done < polls:
            started = _time.monotonic()
            report = process_inbox(competition, inbox, data=data, leaderboard=leaderboard, _memo=memo)
            done += 1
            if on_poll is not None:
                on_poll(report)
            if polls is not None and done >= polls:
                break
            sleep(max(0.0, interval - (_time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    return done


def _plain_files(inbox, report):
    """Plain files of the inbox (hidden files ignored) with their ``lstat``.

    Links, folders and other special files are added to ``report.rejected`` unread.
    """
    try:
        entries = sorted(os.scandir(inbox), key=lambda e: e.name)
    except OSError as exc:
        raise UserError(f"cannot list inbox {inbox}: {exc.strerror or exc}") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError as exc:
            report.reject((entry.name, f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISLNK(info.st_mode):
            report.reject((entry.name, "is a link: expected a plain file inside the inbox"))
        elif stat.S_ISDIR(info.st_mode):
            report.reject((entry.name, "is a folder: expected <participant>__<anything>.csv files"))
        elif not stat.S_ISREG(info.st_mode):
            report.reject((entry.name, "is not a regular file"))
        elif info.st_nlink > 1:
            # A hard link could be another name of any file its maker can read (the
            # solution itself), and error messages quote lines of the file.
            report.reject((entry.name, "is a hard link (the file has other names): copy the file instead"))
        else:
            yield entry, info


def _examine(entry, info, cap, report, hashes):
    """(name, participant, size, sha256) of an inbox file, or None after noting why not.

    The name is checked first and the size second, so nothing is read from a file
    that would be refused anyway.
    """
    name = entry.name
    if name.lower().endswith(".json"):
        report.reject((name, "a .json beside a submission is not read in classroom mode "
                                      "(model names and scores come from the scorer only)"))
        return None
    try:
        participant = participant_from_filename(name)
    except UserError as exc:
        report.reject((name, f"file name: {exc}"))
        return None
    if participant is None:
        report.reject((name, "file name: expected <participant>__<anything>.csv"))
        return None
    if info.st_size > cap:
        report.reject((name, f"is {info.st_size:,} bytes; submissions for this competition are at "
                                      f"most {cap:,} bytes"))
        return None
    memo = (name, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)
    if hashes is not None and memo in hashes:
        return name, participant, info.st_size, hashes[memo]
    content = _read_capped(entry.path, cap, report, name)
    if content is None:
        return None
    digest = hashlib.sha256(content).hexdigest()
    if hashes is not None:
        # ctime changes with every write and cannot be set by a user: a safe cache key.
        hashes[memo] = digest
    return name, participant, len(content), digest


def _read_capped(path, cap, report, name):
    """The bytes of a plain file, or None (noted) if it is not one or grew past ``cap``.

    Opened without following links and without blocking (a file swapped for a pipe
    after the listing cannot hang the scorer), and never read past ``cap + 1`` bytes.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        report.reject((name, f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            report.reject((name, "is not a regular file with one name"))
            return None
        chunks, total = [], 0
        while total <= cap:
            block = os.read(fd, min(_CHUNK, cap + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
    except OSError as exc:
        report.reject((name, f"cannot read: {exc.strerror or exc}"))
        return None
    finally:
        os.close(fd)
    if total > cap:
        report.reject((name, f"is more than {cap:,} bytes; submissions for this competition are at "
                                      f"most {cap:,} bytes"))
        return None
    return b"".join(chunks)


def _snapshot(entry, cap, size, digest, scratch, report):
    """A private copy of the file with the bytes that were hashed, or None if it changed."""
    content = _read_capped(entry.path, cap, report, entry.name)
    if content is None:
        return None
    if len(content) != size or hashlib.sha256(content).hexdigest() != digest:
        report.notes.append(f"{entry.name} changed while it was read; it will be read again at the next poll")
        return None
    copy = scratch / "submission.csv"
    copy.write_bytes(content)
    return copy


def _shown(name):
    """A file name as text that can be printed and stored: bytes that are not UTF-8 as ``\\xff``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _displayable(report):
    """File names in the report that can be printed: bytes that are not UTF-8 as ``\\xff``."""
    show = _shown

    report.scored = [(show(n), p, v) for n, p, v in report.scored]
    report.already_scored = [show(n) for n in report.already_scored]
    report.rejected = [(show(n), r) for n, r in report.rejected]
    report.public = [(show(n), r) for n, r in report.public]
    report.first_seen = {show(n): t for n, t in report.first_seen.items()}


def _reason(exc, path):
    """The error message without the file's path (the listing already names the file)."""
    message = " ".join(str(exc).split())
    for prefix in (f"{path}: ", str(path) + " "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message.replace(str(path), Path(path).name)


def _utc(when):
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def _day(when):
    """The UTC date of a log or first-seen time; None when there is none (NaT)."""
    if when is None or when != when:  # NaT from a damaged log time
        return None
    try:
        day = when.date()
    except (AttributeError, ValueError, OverflowError):
        return None
    return day if isinstance(day, date) else None


def _parse_time(text):
    when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError("time without a zone")
    return when.astimezone(timezone.utc)
