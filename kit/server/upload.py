"""Scoring an upload and recording it: the work behind ``POST /api/submissions`` and the /submit page.

Failures cost the sender, not the class: a file the scorer refuses is a 4xx that stores
nothing; a failure of the server is a 500 that stores no file but counts against the
sender's day (``failed_attempts``). Uploads are stored under the file's sha256, never under
the name the client sent; the scorer runs in a worker thread, a few files at a time.
"""
import hashlib
import json
import logging
import math
import os
import uuid

import anyio
import anyio.to_thread
from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from kit.board.inbox import identical_note
from kit.board.logfile import per_bin_for_log
from kit.board.store import SCORED, SUBMISSIONS_FOLDER, LimitReached, SubmissionsClosed, utc_iso
from kit.errors import UserError
from kit.safetext import one_line
from kit.scoring.metrics import SHOWN_DECIMALS, shown_scores
from kit.server.forms import too_large
from kit.server.state import closed_message, current_phase, limit_message, still_open, used_today

log = logging.getLogger("kit.serve")

#: Files scored at the same time (more wait their turn).
SCORING_SLOTS = max(2, min(8, os.cpu_count() or 2))


#: Longest description kept (characters); longer ones are cut.
MAX_DESCRIPTION = 200


#: Longest uploaded file name kept for display.
MAX_FILE_NAME = 120


#: What a participant is told when the server, not their file, failed.
INTERNAL_FAILURE = ("internal error while scoring (a bug in specsim-kit; the server log has the details); "
                    "the attempt counts against today's limit")


async def check_open(state, now):
    """403 when submissions are closed at ``now`` (:func:`current_phase`); the phase otherwise.

    A quick refusal before any work; :func:`accept` checks again in the transaction that
    records the submission.
    """
    phase = await run_in_threadpool(current_phase, state, now)
    if not phase.open:
        raise HTTPException(403, closed_message(phase))
    return phase


async def check_allowance(state, participant, now):
    """403 when closed, 429 when the participant's day is used up; ``(day window, failed attempts)``.

    Checked before a form is read (a spent allowance costs the server no upload) and again
    when it has arrived.
    """
    await check_open(state, now)
    window = state.day_window(now)
    scored, failed = await run_in_threadpool(used_today, state, participant, window)
    if state.limit is not None:
        used = failed + scored
        if used >= state.limit:
            raise HTTPException(429, limit_message(state, window))
    return window, failed


async def choose_finals(state, participant, ids):
    """Record a participant's final submissions; the ``POST /api/final`` answer, or HTTPException 403 / 422."""
    now = state.clock()
    await check_open(state, now)
    try:
        chosen = await run_in_threadpool(state.db.set_finals, participant.id, ids, now, still_open(state, now))
    except SubmissionsClosed as exc:
        raise HTTPException(403, closed_message(exc.reason)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"participant": participant.name, "submissions": chosen}


async def accept(state, participant, upload, description):
    """Score an upload and record it; the 201 body, or an HTTPException."""
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "expected the submission file in the multipart field 'file'")
    if description is not None and not isinstance(description, str):
        raise HTTPException(422, "expected 'description' to be text, found a file")
    # The upload's time is when its body had arrived; the same time is checked against the
    # deadline and recorded, in the transaction that inserts it (below).
    now = state.clock()
    window, failed = await check_allowance(state, participant, now)
    name = _file_name(upload.filename)
    attempt = {"participant_id": participant.id, "attempted_at": now, "sha256": "", "file_name": name, "size": 0}
    try:
        staged, attempt["sha256"], attempt["size"] = await run_in_threadpool(_stage, state, upload)
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - the server's failure (a full disk, say), as in scoring
        await _count_failure(state, attempt, exc)
    try:
        try:
            # At most a few files are scored at once: each holds its file and arrays in
            # memory, and on a small machine more threads only share the same cores.
            result = await anyio.to_thread.run_sync(state.scorer.score, staged, limiter=state.scoring_slots)
        except UserError as exc:
            raise HTTPException(422, one_line(str(exc).replace(str(staged), name), 1000)) from None
        except Exception as exc:  # noqa: BLE001 - the server's failure: counted, logged, one line to the sender
            await _count_failure(state, attempt, exc)
        if not all(math.isfinite(v) for v in (result.public, result.private) if v is not None):
            raise HTTPException(422, f"{name}: the score is not a finite number: expected similarities the metric can use")
        # Shielded from the request's time limit: a submission is recorded and counted
        # whole, or not at all.
        with anyio.CancelScope(shield=True):
            submission_id, remaining = await _store(state, participant, staged, attempt, result, description,
                                                    window, failed)
    finally:
        staged.unlink(missing_ok=True)
    state.exporter.request()
    # The teacher's terminal: one line per scored submission (uvicorn's logger, at its level).
    terminal = logging.getLogger("uvicorn.error")
    terminal.info("scored #%d by %s: Public %s", submission_id, one_line(participant.name, 80),
                  f"{shown_scores(result.public):.{SHOWN_DECIMALS}f}")
    warnings = [one_line(w, 300) for w in result.warnings]
    identical = await run_in_threadpool(_identical, state, participant, submission_id, attempt)
    if identical is not None:
        # The teacher's terminal names both; the sender is told without naming a classmate.
        terminal.warning("#%d: %s", submission_id, identical)
        warnings.append(IDENTICAL_TO_SENDER)
    return {
        "id": submission_id,
        "participant": participant.name,
        "public": shown_scores(result.public),
        "submitted_at": utc_iso(now),
        "remaining_today": remaining,
        "daily_limit": state.limit,
        "sha256": attempt["sha256"],
        "file": name,
        "rows": result.rows,
        "warnings": warnings,
    }


#: What the sender of a file identical to another participant's earlier one is told.
IDENTICAL_TO_SENDER = "this file is identical to one another participant submitted earlier; your teacher is told"


def _identical(state, participant, submission_id, attempt):
    """The note (:func:`kit.board.inbox.identical_note`) when another participant sent these bytes first, else None.

    Teammates share their files freely; an earlier file of the store's other writers (the
    inbox, ``kit score``) counts too. Noting is best effort: the submission is stored already.
    """
    try:
        team = set(state.db.team_members(participant.id))
        rows = state.db.submissions(status=SCORED, sha256=attempt["sha256"])
        ours = next(row for row in rows if row["id"] == submission_id)
        earlier = [row for row in rows if row["participant_id"] not in team
                   and (row["submitted_at"], row["id"]) < (ours["submitted_at"], ours["id"])]
    except Exception:  # noqa: BLE001 - a failed look-up must not turn a stored submission into an error
        log.exception("could not look for identical submissions")
        return None
    if not earlier:
        return None
    first = earlier[0]
    return one_line(identical_note(attempt["file_name"], participant.name, first["participant"],
                                 together=first["submitted_at"] == ours["submitted_at"]), 300)


async def _count_failure(state, attempt, exc):
    """Record a failed attempt (it counts against the day's limit), log it, and raise the 500.

    The file is not kept: a file that breaks the scorer is the sender's to fix, and what
    failed is in the log and in ``failed_attempts`` for the teacher.
    """
    log.error("internal error while scoring %s from participant %s", attempt["file_name"], attempt["participant_id"],
              exc_info=exc)
    with_error = dict(attempt, error=one_line(f"{type(exc).__name__}: {exc}", 500))
    try:
        await run_in_threadpool(state.db.add_failed_attempt, with_error)
    except Exception:  # noqa: BLE001 - the database failing too: the 500 still goes out
        log.exception("could not record the failed attempt")
    raise HTTPException(500, INTERNAL_FAILURE)


async def _store(state, participant, staged, attempt, result, description, window, failed):
    """Keep a scored upload and record it; ``(submission id, submissions left today)``.

    ``failed`` attempts of the day count against the limit too. A failure of the server
    here is recorded as a failed attempt, and the stored file removed unless another
    submission holds it.
    """
    limit = None if state.limit is None else state.limit - failed
    stored = None
    try:
        stored = await run_in_threadpool(_keep, state, staged, attempt["sha256"])
        record = _record(participant, attempt, stored, result, description)
        submission_id = await run_in_threadpool(state.db.add_submission, record, limit, window, None, False,
                                                still_open(state, attempt["attempted_at"]))
    except (LimitReached, SubmissionsClosed) as exc:
        await run_in_threadpool(_unkeep, state, stored)
        if isinstance(exc, LimitReached):
            raise HTTPException(429, limit_message(state, window)) from None
        raise HTTPException(403, closed_message(exc.reason)) from None
    except Exception as exc:  # noqa: BLE001 - the server's failure, as in scoring
        await run_in_threadpool(_unkeep, state, stored)
        await _count_failure(state, attempt, exc)
    remaining = None
    if limit is not None:
        remaining = max(0, limit - (await run_in_threadpool(used_today, state, participant, window))[0])
    return submission_id, remaining


def _unkeep(state, stored):
    """Remove a stored file that no recorded submission holds (best effort)."""
    if stored is None or any(row["stored_path"] == stored for row in state.db.submissions()):
        return
    try:
        (state.private_dir / stored).unlink(missing_ok=True)
    except OSError:
        pass


def _record(participant, attempt, stored, result, description):

    private = result.details.get("Private")
    return {
        "participant_id": participant.id,
        "submitted_at": attempt["attempted_at"],
        "sha256": attempt["sha256"],
        "stored_path": stored,
        "file_name": attempt["file_name"],
        "size": attempt["size"],
        "rows": result.rows,
        "public": result.public,
        "private": result.private,
        "per_bin_public": json.dumps(per_bin_for_log(result.details["Public"]), separators=(",", ":")),
        "per_bin_private": json.dumps(per_bin_for_log(private), separators=(",", ":")),
        "status": SCORED,
        "error": None,
        "description": one_line(description or "", MAX_DESCRIPTION),
    }


def _stage(state, upload):
    """Copy an upload to a private temporary file, hashing it; ``(path, sha256, size)``."""
    incoming = state.private_dir / SUBMISSIONS_FOLDER / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    path = incoming / f"{uuid.uuid4().hex}.upload"
    digest, size = hashlib.sha256(), 0
    source = upload.file
    source.seek(0)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            for block in iter(lambda: source.read(1 << 20), b""):
                size += len(block)
                if size > state.max_upload_bytes:
                    raise HTTPException(413, too_large(state.max_upload_bytes))
                digest.update(block)
                handle.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


def _keep(state, staged, digest):
    """Store a staged upload as ``private/submissions/<sha256>.csv``; the path relative to private/.

    Named by content, never by what the client called it; the same file twice is stored once.
    """
    relative = f"{SUBMISSIONS_FOLDER}/{digest}.csv"
    with open(staged, "rb") as handle:
        os.fsync(handle.fileno())  # on disk before the database says it is
    os.replace(staged, state.private_dir / relative)
    folder = os.open(state.private_dir / SUBMISSIONS_FOLDER, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename too, so that a power cut cannot lose the file behind a committed row
    finally:
        os.close(folder)
    return relative


def _file_name(name):
    """The uploaded file's name for display: its last path part, printable, short."""
    base = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return one_line(base, MAX_FILE_NAME) or "submission.csv"
