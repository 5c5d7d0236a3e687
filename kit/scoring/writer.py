"""Writing a submission: ``submissions/<competition>/<UTC stamp>_<model>.csv`` and its manifest.

The manifest (``.json`` beside the CSV, read by ``kit score``) records what produced the
predictions: model name and parameters, seed, validation score, training time, kit
version, git commit and the sha256 of the competition files. Predictions are checked
before anything is written, and both files are written to a temporary name then renamed.
"""
import hashlib
import json
import platform
import re
import subprocess
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from kit._version import __version__
from kit.competition.folder import Competition, as_competition
from kit.errors import SubmissionError
from kit.fileio import ensure_writable_dir, jsonable, write_text_atomic
from kit.paths import StrPath, submissions_dir
from kit.scoring.reader import MAX_ABS_VALUE, VALUE_RANGE


def write_submission(
    competition: Competition | StrPath, predictions: ArrayLike | pd.DataFrame, model: Any = None, *,
    participant: str | None = None, out_dir: StrPath | None = None, seed: int | None = None,
    validation_score: float | dict | None = None, fit_seconds: float | None = None, data: StrPath | None = None,
    now: datetime | None = None, beside: dict | None = None,
) -> Path:
    """Write predictions as a submission file with its manifest.

    Parameters
    ----------
    competition : Competition, str or Path
        The competition (object, folder or name under ``data/``).
    predictions : array-like or DataFrame
        One similarity per row of ``competition.test_pairs`` in that order, or a
        DataFrame with ``id`` and ``similarity`` columns (any order).
    model : model object, str or None
        A kit model (its ``name``, ``get_params()``, ``seed``, ``fit_seconds_`` and
        ``validation_score_`` go into the manifest), or just a name.
    participant : str, optional
        Recorded in the manifest; ``kit score`` uses it for the leaderboard.
    out_dir : str or Path, optional
        Folder for the files (default ``submissions/<competition>``).
    seed, validation_score, fit_seconds : optional
        Override what the model object reports.
    data : str or Path, optional
        Folder holding named competitions.
    now : datetime, optional
        Time for the file name (default: now, UTC).
    beside : dict, optional
        Files that go with the predictions, ``{key: (suffix, column, values, info)}``:
        each is ``<stem><suffix>`` with columns ``id`` and ``column`` (one value per row
        of ``test_pairs.csv``, in its order), described in the manifest under ``key`` by
        ``info`` plus its file name and sha256. Written after the manifest and before
        the CSV, so a submission that exists has them beside it.

    Returns
    -------
    Path
        The CSV file written.

    Raises
    ------
    kit.SubmissionError
        Wrong number of predictions, ids that do not match, NaN or infinite values;
        nothing is written then.

    Examples
    --------
    >>> comp = kit.load_competition("practice")               # doctest: +SKIP
    >>> path = write_submission(comp, pred, model=model)      # doctest: +SKIP
    >>> path.name                                             # doctest: +SKIP
    '20250102T101112Z_gbm.csv'
    """
    comp = as_competition(competition, data)
    ids = comp.test_pairs["id"].to_numpy(dtype=np.int64)
    values = _aligned_predictions(predictions, ids)
    info = describe_model(model)
    if seed is not None:
        info["seed"] = seed
    if validation_score is not None:
        info["validation_score"] = jsonable(validation_score)
    if fit_seconds is not None:
        info["training_seconds"] = float(fit_seconds)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    folder = ensure_writable_dir(Path(out_dir) if out_dir else submissions_dir() / _slug(comp.name))
    csv_path = _free_name(folder, f"{now:%Y%m%dT%H%M%SZ}_{_slug(info['model']['name'])}",
                          [suffix for suffix, *_ in (beside or {}).values()])
    text = _csv_text(ids, values)
    manifest = {
        "file": csv_path.name,
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "created": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "competition": comp.name,
        "competition_files": comp.file_hashes,
        "rows": int(ids.size),
        "participant": participant,
        **info,
        "kit_version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
    }
    companions = {}
    for key, (suffix, column, extra, about) in (beside or {}).items():
        extra_path = csv_path.with_suffix(suffix)
        companions[extra_path] = _csv_text(ids, _aligned_values(extra, ids, column), column)
        manifest[key] = {**jsonable(about), "file": extra_path.name,
                         "sha256": hashlib.sha256(companions[extra_path].encode("utf-8")).hexdigest()}
    # Manifest first: whoever finds the CSV finds its description beside it.
    write_text_atomic(csv_path.with_suffix(".json"), json.dumps(manifest, indent=2, allow_nan=False) + "\n")
    for extra_path, extra_text in companions.items():
        write_text_atomic(extra_path, extra_text)
    write_text_atomic(csv_path, text)
    return csv_path


def _aligned_predictions(predictions, ids):
    """Predictions as a float array in the order of ``ids``; a SubmissionError when unusable."""
    n = ids.size
    if hasattr(predictions, "columns"):
        if not {"id", "similarity"} <= set(predictions.columns):
            raise SubmissionError(
                f"predictions: expected a DataFrame with columns id and similarity, "
                f"found {', '.join(map(str, predictions.columns))}"
            )
        given = predictions["id"].to_numpy()
        values = _as_floats(predictions["similarity"].to_numpy())
        if given.size != n or len(set(given.tolist())) != n or set(given.tolist()) != set(ids.tolist()):
            raise SubmissionError(
                f"predictions: expected one row per id of test_pairs.csv ({n:,} ids), "
                f"found {given.size:,} rows with {len(set(given.tolist())):,} distinct ids, not the same set"
            )
        position = {int(i): k for k, i in enumerate(given.tolist())}
        values = values[[position[int(i)] for i in ids]]
    else:
        values = _as_floats(predictions)
        if values.ndim != 1 and values.size == n:
            values = values.ravel()
        if values.ndim != 1 or values.size != n:
            raise SubmissionError(
                f"predictions: expected {n:,} values (one per row of test_pairs.csv), found shape {values.shape}"
            )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        shown = ", ".join(f"row {i} (id {ids[i]}): {values[i]}" for i in bad[:5])
        raise SubmissionError(f"predictions: expected finite numbers, found {bad.size:,} NaN or infinite: {shown}")
    # The scorer refuses these (their squared error overflows); refuse them before writing.
    huge = np.flatnonzero(np.abs(values) > MAX_ABS_VALUE)
    if huge.size:
        shown = ", ".join(f"row {i} (id {ids[i]}): {values[i]!r}" for i in huge[:5])
        raise SubmissionError(
            f"predictions: expected similarities in {VALUE_RANGE} "
            f"(Tanimoto lies in [0, 1]), found {huge.size:,} beyond: {shown}"
        )
    outside = int(((values < 0) | (values > 1)).sum())
    if outside:
        warnings.warn(f"{outside:,} predictions are outside [0, 1]; written as they are", UserWarning, stacklevel=3)
    return values


def _as_floats(values):
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SubmissionError("predictions: expected numbers, found values that are not numeric") from None


def _aligned_values(values, ids, column):
    """A companion file's values: finite floats, one per id; a SubmissionError otherwise."""
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SubmissionError(f"{column}: expected numbers, found values that are not numeric") from None
    if values.shape != ids.shape or not np.isfinite(values).all():
        raise SubmissionError(f"{column}: expected {ids.size:,} finite numbers (one per row of test_pairs.csv), "
                              f"found shape {values.shape} with {int((~np.isfinite(values)).sum()):,} not finite")
    return values


def _csv_text(ids, values, column="similarity"):
    """The CSV, each value with Python's shortest round-trip repr: no precision lost."""
    lines = [f"id,{column}"]
    lines += [f"{i},{v!r}" for i, v in zip(ids.tolist(), values.tolist())]
    return "\n".join(lines) + "\n"


def describe_model(model):
    """The manifest's description of a model object, a name or None.

    Examples
    --------
    >>> describe_model("ridge")["model"]
    {'name': 'ridge', 'class': None, 'params': {}}
    """
    if model is None or isinstance(model, str):
        return {"model": {"name": model or "model", "class": None, "params": {}}, "seed": None,
                "validation_score": None, "training_seconds": None}
    try:
        params = model.get_params() if hasattr(model, "get_params") else {}
    except Exception:  # noqa: BLE001 - a third-party get_params must not stop the write
        params = {}
    params = {str(k): jsonable(v) for k, v in dict(params).items()}
    cls = type(model)
    return {
        "model": {
            "name": str(getattr(model, "name", None) or cls.__name__),
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "params": params,
        },
        "seed": jsonable(params.get("seed", getattr(model, "seed", None))),
        "validation_score": jsonable(getattr(model, "validation_score_", None)),
        "training_seconds": jsonable(getattr(model, "fit_seconds_", None)),
    }


def git_commit(folder=None):
    """The commit checked out in ``folder`` (default: the working folder), or None.

    ``+dirty`` is appended when tracked files have uncommitted changes.
    """
    folder = str(folder or Path.cwd())
    try:
        commit = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit or None


def _slug(name):
    """A file-name-safe model name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip(".-_")[:40]
    return slug or "model"


def _free_name(folder, stem, suffixes=()):
    """``stem.csv`` in ``folder``, or ``stem-2.csv`` ... when it, its manifest or a file beside it is taken.

    Files beside it (``suffixes``) count: another model's name may make a submission of one
    second named as this one's ``.std.csv``.
    """
    for k in range(1, 10_000):
        candidate = folder / (f"{stem}.csv" if k == 1 else f"{stem}-{k}.csv")
        if not any(candidate.with_suffix(suffix).exists() for suffix in (".csv", ".json", *suffixes)):
            return candidate
    raise SubmissionError(f"{folder}: too many submissions named {stem}*")

