"""Final submissions chosen through the inbox: ``<participant>__final.txt`` lists, read and recorded in the store."""
from dataclasses import dataclass
from datetime import datetime

from kit.board.identity import participant_key
from kit.board.phases import SubmissionsClosed, closed_reason, decide_phase
from kit.board.store import MAX_FINALS, SCORED
from kit.safetext import one_line, printable

#: ``<participant>__final.txt``: the file names a participant chose as their final submissions.
FINAL_LIST = "final.txt"
#: The most bytes a final list may have (a few file names, one per line).
FINAL_LIST_BYTES = 4096
#: What others read about a refused final list: the rule, not the names it holds.
FINAL_RULE = (f"final list refused: expected at most {MAX_FINALS} names of this participant's own scored files "
              "in the inbox, one per line, sent before the deadline")


@dataclass
class FinalList:
    """A final list read from the inbox: when it was first seen, its file name, participant and bytes."""

    when: datetime
    name: str
    participant: str
    content: bytes


def parse_final_list(content):
    """The file names of a final list: one per line, blank lines and repeats ignored.

    Parameters
    ----------
    content : bytes
        The list file as read (UTF-8 text; a byte-order mark is allowed).

    Returns
    -------
    list of str
        At most :data:`kit.board.store.MAX_FINALS` names; none takes the choice back.

    Raises
    ------
    ValueError
        Not UTF-8 text, or more names than allowed.

    Examples
    --------
    >>> parse_final_list(b"ann__v2.csv\\n\\nann__v5.csv\\n")
    ['ann__v2.csv', 'ann__v5.csv']
    >>> parse_final_list(b"a.csv\\nb.csv\\nc.csv")
    Traceback (most recent call last):
    ...
    ValueError: expected at most 2 file names, one per line, found 3
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("expected UTF-8 text with one file name per line") from None
    names = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if len(names) > MAX_FINALS:
        raise ValueError(f"expected at most {MAX_FINALS} file names, one per line, found {len(names)}")
    return names


def choose_finals(final, candidates, rules, db, report):
    """Record a participant's final list in the store, or reject it whole with one line.

    ``final`` is a :class:`FinalList`; ``candidates`` the submission files of this poll
    (``name``, ``participant``, ``digest``); ``rules`` says whether the participant may
    still submit (``closed(key, when)``, ``deadline``); ``report`` an
    :class:`kit.board.inbox.InboxReport`.

    Each name must be a file of this poll's inbox, of the list's participant, whose
    content is scored. The list counts from its first-seen time: one first seen at or
    after the deadline (or once revealed) changes nothing, one honoured earlier stays.
    """
    key = participant_key(final.participant)
    try:
        names = parse_final_list(final.content)
    except ValueError as exc:
        report.reject((final.name, f"final list: {exc}"), FINAL_RULE)
        return
    files = {candidate.name: candidate for candidate in candidates}
    # The participant's scored submissions in the store (inbox-only names have no token row).
    own = [row for row in db.submissions(status=SCORED) if participant_key(row["participant"]) == key]
    by_content = {}
    for row in own:
        by_content.setdefault(row["sha256"], row["id"])
    ids = set()
    for listed in names:
        shown = one_line(printable(listed), 120)
        candidate = files.get(listed)
        if candidate is None:
            reason = f"{shown} is not a submission file in the inbox"
        elif participant_key(candidate.participant) != key:
            reason = f"{shown} is another participant's file; a final list names its participant's own files"
        elif candidate.digest not in by_content:
            reason = f"{shown} is not a scored submission (refused, or not judged yet)"
        else:
            ids.add(by_content[candidate.digest])
            continue
        report.reject((final.name, f"final list: {reason}; nothing changed"), FINAL_RULE)
        return
    if not own:  # an empty list of a participant with nothing stored: nothing to choose or take back
        return
    owner, ids = own[0], sorted(ids)
    if sorted(i for chosen in db.finals(owner["participant_id"]).values() for i in chosen) == ids:
        return  # recorded at an earlier poll (or nothing to take back): the reveal does not undo it
    closed = rules.closed(key, final.when)
    if closed is not None:
        report.reject((final.name, f"final list: {closed}; nothing changed"), FINAL_RULE)
        return

    def still_open(settings):
        phase = decide_phase(settings, rules.deadline, final.when)
        return None if phase.open else phase.reason

    try:
        db.set_finals(owner["participant_id"], ids, final.when, still_open=still_open)
    except SubmissionsClosed as exc:
        report.reject((final.name, f"final list: {closed_reason(exc.reason, rules.deadline)}; nothing changed"),
                      FINAL_RULE)
        return
    except ValueError as exc:
        report.reject((final.name, f"final list: {exc}; nothing changed"), FINAL_RULE)
        return
    # Not a note: notes go on the pages, and a choice is the participant's until the reveal.
    report.finals.append((final.name, owner["participant"], names))
