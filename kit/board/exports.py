"""The store's exports: the public and owner-only CSV logs rewritten from the store, and the inbox's refused list.

``leaderboard/<competition>.csv`` shows every score rounded to
:data:`kit.scoring.metrics.SHOWN_DECIMALS` and Private scores only once revealed;
``private/leaderboard.csv`` (owner only) keeps every score at full precision.
"""
import json
from pathlib import Path

from kit.board.logfile import locked_log, log_path, log_text
from kit.board.store import SCORED
from kit.fileio import write_text_atomic
from kit.scoring.metrics import SHOWN_DECIMALS, shown_scores

#: The owner-only export of the store, in ``<competition>/private/``: every score, full precision.
PRIVATE_EXPORT = "leaderboard.csv"


def store_entries(db):
    """The store's scored submissions as log rows (dicts of :data:`kit.board.logfile.LOG_COLUMNS`), in order of arrival.

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
    return export_shown(db, competition, leaderboard)[0]


def export_shown(db, competition, leaderboard=None):
    """:func:`export_logs`, returning ``(log path, the rows as shown, revealed)``."""
    path = log_path(competition.name, leaderboard)
    with locked_log(path):
        entries = store_entries(db)
        revealed = db.revealed
        shown = shown_entries(entries, revealed)
        write_text_atomic(Path(competition.path) / "private" / PRIVATE_EXPORT, log_text(entries), private=True)
        write_text_atomic(path, log_text(shown, decimals=SHOWN_DECIMALS))
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
