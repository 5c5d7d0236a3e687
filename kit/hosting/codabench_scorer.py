"""The Codabench scoring program: score the participant's CSV, write ``scores.json``.

Codabench's compute worker runs ``metadata.yaml``'s command, ``python3 scoring.py $input
$output``, in the program folder ``/app/program`` of its scoring image, with ``$input``
replaced by ``/app/input`` (reference data in ``ref/``, the participant's unzipped
submission in ``res/``) and ``$output`` by ``/app/output`` (for ``scores.json``). That
image has NumPy but not the kit, so :func:`kit.hosting.codabench.scoring_program_source`
writes one ``scoring.py`` holding the kit modules this one imports (:mod:`kit.errors`,
:mod:`kit.data.tanimoto_bins`, :mod:`kit.scoring.metrics`, :mod:`kit.safetext`,
:mod:`kit.scoring.reader`) and this module, with the ``from kit...`` lines dropped: the
program reads files with the kit's one reader, and so the same rules, values and messages,
as ``kit score``, and scores them with the same metric code.

Reference data of one task (written by ``kit export codabench``):

- ``solution.csv``: ``id,similarity,Usage``, the rows of that task's Usage, in the order
  of the competition's ``private/solution.csv``;
- ``expected_ids.csv``: ``id``, every id of the competition in that same order (a valid
  submission has one row for each of them, whichever Usage the task scores).
"""
import csv
import json
import math
import os
import stat
import sys
from pathlib import Path

import numpy as np

from kit.data.tanimoto_bins import BIN_LABELS
from kit.errors import UserError
from kit.safetext import printable
from kit.scoring.metrics import diagnostics, shown_scores
from kit.scoring.reader import read_submission

SOLUTION_NAME = "solution.csv"
EXPECTED_IDS_NAME = "expected_ids.csv"
#: The file Codabench's compute worker writes beside the participant's unzipped files.
WORKER_FILE = "metadata"
DEFAULT_INPUT = "/app/input"
DEFAULT_OUTPUT = "/app/output"
SCORES_NAME = "scores.json"
#: The command of ``metadata.yaml``; the worker replaces ``$input`` and ``$output``.
COMMAND = "python3 scoring.py $input $output"
#: A submission is one CSV file; an archive of thousands of files is refused early.
MAX_FILES = 1000
#: ... and one nested thousands of folders deep (os.walk recursed once per level before Python 3.12).
MAX_DEPTH = 16


def leaderboard_columns():
    """``(key, title, sorting)`` of each leaderboard column, the primary one first.

    The keys are those of ``scores.json``; Codabench allows at most 36 characters for a
    key and for a title.

    Examples
    --------
    >>> leaderboard_columns()[0]
    ('rmse', 'RMSE', 'asc')
    >>> leaderboard_columns()[4]
    ('rmse_00_01', 'RMSE 0.0-0.1', 'asc')
    """
    columns = [("rmse", "RMSE", "asc"), ("binned_rmse", "Binned RMSE", "asc"), ("mae", "MAE", "asc"),
               ("pearson", "Pearson r", "desc")]
    for label in BIN_LABELS:
        low, high = label.split("-")
        columns.append((f"rmse_{low.replace('.', '')}_{high.replace('.', '')}", f"RMSE {label}", "asc"))
    return columns


def scores_for(details):
    """The ``scores.json`` object from one Usage's diagnostics.

    Values that do not exist (a bin without rows, Pearson r of constant predictions) are
    left out: Codabench stores every score as a number. The others are rounded to
    :data:`~kit.scoring.metrics.SHOWN_DECIMALS` places, as ``kit score`` and Kaggle show them.

    Examples
    --------
    >>> scores = scores_for(diagnostics([0.05, 0.95], [0.15, 0.95]))
    >>> scores["rmse"], "rmse_05_06" in scores
    (0.07071, False)
    """
    values = {"rmse": details["rmse"], "binned_rmse": details["binned_rmse"], "mae": details["mae"],
              "pearson": details["pearson"]}
    for (key, _, _), label in zip(leaderboard_columns()[4:], BIN_LABELS):
        values[key] = details["per_bin_rmse"][label]
    return shown_scores({key: value for key, value in values.items() if value is not None and math.isfinite(value)})


def find_submission(folder):
    """The one CSV file of the participant's unzipped submission (searched below ``folder``).

    Only folders and regular files are accepted: a link (to a file or a folder), a pipe
    or a device anywhere in the submission stops it, unread, so that no message ever
    quotes another file (the reference solution lies next door).

    Raises
    ------
    UserError
        When there is no CSV file, more than one, or something that is not a plain file.
    """
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        raise UserError(f"no submission folder at {folder}: expected the participant's unzipped submission")
    found, seen = [], 0
    for root, dirs, files in os.walk(folder):
        if len(Path(root).relative_to(folder).parts) > MAX_DEPTH:
            raise UserError(f"{folder}: folders nested more than {MAX_DEPTH} deep: expected a zip holding one CSV file")
        for name in dirs + files:
            _check_member(folder, Path(root) / name)
        # Archive tools add __MACOSX/ and dot files beside the real ones.
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__MACOSX")))
        for name in sorted(files):
            if name == WORKER_FILE and Path(root) == folder:
                continue  # the compute worker's, not the participant's
            seen += 1
            if seen > MAX_FILES:
                raise UserError(f"{folder}: more than {MAX_FILES} files: expected a zip holding one CSV file")
            if name.lower().endswith(".csv") and not name.startswith("."):
                found.append(Path(root) / name)
    if not found:
        raise UserError(
            f"no CSV file in the submission: expected a zip holding one 'id,similarity' CSV file "
            f"(for example: zip submission.zip submission.csv), found {seen} other file(s)"
        )
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(folder)) for p in found[:5])
        raise UserError(f"{len(found)} CSV files in the submission: expected exactly one, found {names}")
    return found[0]


def _check_member(folder, path):
    """An error unless ``path`` (inside the submission) is a folder or a regular file."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise UserError(f"cannot read the submission: {exc.strerror or exc}") from None
    if stat.S_ISLNK(mode):
        kind = "a link"
    elif stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return
    else:
        kind = "not a regular file"
    raise UserError(f"{path.relative_to(folder)!s} in the submission is {kind}: expected a zip holding one "
                    "plain CSV file")


def read_reference(folder):
    """``(expected_ids, solution_ids, truth, usage)`` from one task's reference data."""
    folder = Path(folder)
    expected = _read_columns(folder / EXPECTED_IDS_NAME, ["id"])[0]
    ids, truth, usage = _read_columns(folder / SOLUTION_NAME, ["id", "similarity", "Usage"])
    try:
        expected = np.array([int(x) for x in expected], dtype=np.int64)
        ids = np.array([int(x) for x in ids], dtype=np.int64)
        truth = np.array([float(x) for x in truth], dtype=np.float64)
    except (ValueError, OverflowError):
        raise UserError(f"{folder}: the reference data holds a value that is not a number") from None
    usages = sorted(set(usage))
    if (ids.size == 0 or len(usages) != 1 or not np.isfinite(truth).all()
            or np.unique(expected).size != expected.size or not np.isin(ids, expected).all()):
        raise UserError(f"{folder}: damaged reference data: expected one Usage, finite similarities and known ids")
    return expected, ids, truth, usages[0]


def score_folder(input_dir=DEFAULT_INPUT, output_dir=DEFAULT_OUTPUT):
    """Score the submission in ``input_dir/res`` against ``input_dir/ref``; write ``scores.json``.

    Returns
    -------
    dict
        The scores written (keys of :func:`leaderboard_columns`) and, under
        ``"_usage"``, the Usage scored. ``_usage`` is not written to the file.

    Raises
    ------
    UserError
        The submission breaks a rule (the message ``kit score`` gives), or a folder is
        missing.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    expected, ids, truth, usage = read_reference(input_dir / "ref")
    submission = read_submission(find_submission(input_dir / "res"), expected_ids=expected)
    aligned = submission.aligned_values()
    # The rows of this Usage, in the solution's order: the same sums as `kit score`.
    sorter = np.argsort(expected, kind="stable")
    rows = sorter[np.searchsorted(expected, ids, sorter=sorter)]
    scores = scores_for(diagnostics(truth, aligned[rows]))
    output_dir.mkdir(parents=True, exist_ok=True)
    temporary = output_dir / f".{SCORES_NAME}.tmp"
    temporary.write_text(json.dumps(scores, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(temporary, output_dir / SCORES_NAME)
    for warning in submission.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return dict(scores, _usage=usage)


def main(argv=None):
    """Command line: ``python3 scoring.py [INPUT_DIR OUTPUT_DIR]``; exit 0, or 2 with one line."""
    argv = sys.argv[1:] if argv is None else list(argv)
    program = "scoring.py"
    if len(argv) not in (0, 2):
        print(f"usage: python3 {program} [INPUT_DIR OUTPUT_DIR] (default {DEFAULT_INPUT} {DEFAULT_OUTPUT})",
              file=sys.stderr)
        return 2
    try:
        scores = score_folder(*argv)
    except UserError as exc:
        print(f"{program}: error: {printable(' '.join(str(exc).split()))}", file=sys.stderr)
        return 2
    usage = scores.pop("_usage")
    print(f"{usage} RMSE {scores['rmse']:.5f} (binned RMSE {scores['binned_rmse']:.5f})")
    return 0


def _read_columns(path, names):
    """The named columns of a small CSV file as lists of strings (header checked)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            if header[: len(names)] != names:
                raise UserError(f"{path}: expected columns {','.join(names)}, found {','.join(header)}")
            columns = [[] for _ in names]
            for record in reader:
                if not record:
                    continue
                if len(record) < len(names):
                    raise UserError(f"{path}: line {reader.line_num}: expected {len(names)} fields")
                for column, text in zip(columns, record):
                    column.append(text.strip())
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read the reference data {path}: {exc}") from None
    return columns


if __name__ == "__main__":
    sys.exit(main())
