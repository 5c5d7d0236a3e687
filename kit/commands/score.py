"""``kit score``: validate a submission, score it like the leaderboard, log the result."""
import argparse
import json
import sys
from pathlib import Path

from kit.errors import UserError
from kit.safetext import printable


def add_parser(subparsers):
    p = subparsers.add_parser(
        "score",
        help="score a submission file locally (exactly the leaderboard's metric)",
        description="Check SUBMISSION (header id,similarity; one row per test pair; finite numbers), "
        "print its Public score with diagnostics (per-bin RMSE, binned RMSE, MAE, Pearson r; 5 decimals "
        "unless --private) and store it in the competition's private/classroom.sqlite, the one record that "
        "leaderboard/<competition>.csv and the pages are exported from. The competition is the one named in the "
        "submission's .json manifest unless --competition is given. A file already logged for the same "
        "participant is not logged again. An invalid file gets one line naming the rule it breaks, "
        "exit code 2, and is not logged.",
    )
    p.add_argument("submission", metavar="SUBMISSION", help="the CSV file to score")
    p.add_argument("--competition", metavar="NAME|DIR",
                   help="competition name under --data, or its folder (default: the one in the submission's "
                   ".json manifest, else practice)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default: ./data)")
    p.add_argument("--participant", metavar="WHO",
                   help="name on the leaderboard (default: the participant named in the submission's .json "
                   "manifest (kit.write_submission(..., participant=...)), when that manifest records this very "
                   "file's hash; else $USER)")
    p.add_argument("--private", action="store_true", help="also print the Private score, and every score at full precision "
                   "(hidden on a real leaderboard)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument("--leaderboard", metavar="DIR", help="leaderboard folder (default: ./leaderboard)")
    p.add_argument("--no-log", dest="log", action="store_false", help="do not store the result on the leaderboard")
    p.set_defaults(run=run)
    return p


def choose_competition(submission, competition=None, data=None):
    """The competition to score ``submission`` against, and a note for the user (or None).

    Without ``competition``, the one named in the submission's ``.json`` manifest (written
    by ``kit predict``), else the default (``practice``). With it, that one, and a note
    when the manifest names another.

    Parameters
    ----------
    submission : str or Path
        The submission CSV.
    competition : Competition, str or Path, optional
        What ``--competition`` gave.
    data : str or Path, optional
        Folder holding named competitions.

    Returns
    -------
    competition : Competition
    note : str or None

    Examples
    --------
    >>> comp, note = choose_competition("submissions/practice/x.csv")  # doctest: +SKIP
    >>> note                                                          # doctest: +SKIP
    "competition 'practice' from x.json"
    """
    from kit.competition.folder import Competition, load_competition
    from kit.paths import COMPETITION_NAME
    from kit.scoring.scorer import read_manifest

    manifest = read_manifest(submission) or {}
    named = manifest.get("competition")
    # Only a name `kit prepare` could have given: never a path to somewhere else.
    if not (isinstance(named, str) and COMPETITION_NAME.match(named)):
        named = None
    source = Path(submission).with_suffix(".json").name
    if competition is None and named is not None:
        try:
            return load_competition(named, data=data), f"competition {named!r} from {source}"
        except UserError as exc:
            raise UserError(f"{source} names competition {named!r}, which is not here ({exc}); "
                            "pass --competition NAME|DIR") from None
    comp = competition if isinstance(competition, Competition) else load_competition(competition, data=data)
    if named is not None and named != comp.name:
        return comp, f"{source} says competition {named!r}; scoring against {comp.name!r} as --competition asks"
    return comp, None


def choose_participant(result, participant=None):
    """The name to log ``result`` under, and a note for the user when the manifest chose it.

    ``participant`` (``--participant``) always wins. Without it, the name ``kit predict
    --participant`` wrote in the submission's manifest is used only when that manifest
    records this very file's hash (it was written with this file, not copied beside
    another); then a note says so. Otherwise ``$USER``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> choose_participant(SimpleNamespace(manifest={"participant": "zoe"}, sha256="ab"), "ann")
    ('ann', None)
    >>> choose_participant(SimpleNamespace(manifest={"participant": "zoe", "sha256": "ab"}, sha256="ab", path="x.csv"))
    ('zoe', "participant 'zoe' from x.json (pass --participant to log under another name)")
    """
    from kit.board.identity import default_participant, sanitize_participant

    if participant is not None:
        return participant, None
    manifest = result.manifest or {}
    named = manifest.get("participant")
    if isinstance(named, str) and named.strip() and manifest.get("sha256") == result.sha256:
        named = sanitize_participant(named)
        source = Path(result.path).with_suffix(".json").name
        return named, f"participant {named!r} from {source} (pass --participant to log under another name)"
    return default_participant(), None


def record_once(result, participant=None, leaderboard=None):
    """Store ``result`` in its competition's store unless the same file is there for the same participant.

    The check and the insert are one transaction of the store, so two ``kit score`` of
    one file at once store it once. The CSV exports are rewritten either way.

    Returns
    -------
    path : Path
        The exported log ``leaderboard/<competition>.csv``.
    earlier : dict or None
        The submission stored before for this file and participant (then nothing is stored).

    Examples
    --------
    >>> path, earlier = record_once(result, participant="ann")  # doctest: +SKIP
    """
    from kit.board.recording import record_result

    return record_result(result, participant=participant, leaderboard=leaderboard, once=True)


def run(args: argparse.Namespace) -> int:
    from kit.scoring.scorer import Scorer

    competition, note = choose_competition(args.submission, args.competition, data=args.data)
    if note:
        print(f"kit score: {note}", file=sys.stderr)
    result = Scorer(competition).score(args.submission)
    for warning in result.warnings:
        print(f"kit score: warning: {warning}", file=sys.stderr)
    from kit.board.recording import NotRecorded

    logged = earlier = refused = None
    if args.log:
        participant, note = choose_participant(result, args.participant)
        if note:
            print(f"kit score: {note}", file=sys.stderr)
        try:
            logged, earlier = record_once(result, participant=participant, leaderboard=args.leaderboard)
        except NotRecorded as exc:  # closed or revoked: the score is still printed, the standings stay final
            refused = f"not logged: {exc}"
    if args.json:
        out = result.to_dict(private=args.private)
        if args.log:
            out["logged"] = earlier is None and refused is None
        print(json.dumps(out))
        if refused:
            print(f"kit score: {refused}", file=sys.stderr)
        return 0
    print(result.format(private=args.private))
    if refused:
        print(f"kit score: {refused}", file=sys.stderr)
    if earlier is not None:
        when = earlier["submitted_at"][:16].replace("T", " ")
        print(f"Already scored for {earlier['participant']} on {when} UTC as {printable(earlier['file_name'])}; "
              "not logged again (see `kit leaderboard`).")
    elif logged is not None:
        print(f"Logged to {logged}; see `kit leaderboard`.")
    return 0
