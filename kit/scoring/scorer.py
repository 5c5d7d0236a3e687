"""The local scorer: the leaderboard's metric on the Public and Private rows of a submission.

Scoring reads ``private/solution.csv`` and never the spectra, and imports neither
scikit-learn, TensorFlow, matchms nor the ``kaggle`` package, so ``kit score`` starts fast.
"""
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kit.competition.folder import PAIR_DETAILS_FILE, PRIVATE, PUBLIC, Competition, as_competition
from kit.data.pair_tags import BAND_LABELS, PAIR_TYPES
from kit.data.tanimoto_bins import BIN_LABELS
from kit.errors import SubmissionError, UserError, first_line
from kit.paths import StrPath
from kit.safetext import printable
from kit.scoring.metrics import Metric, diagnostics, get_metric, molecule_diagnostics, per_group_rmse, shown_scores
from kit.scoring.reader import read_regular_file, read_submission

#: Breakdowns of competitions whose pairs are tagged in ``private/pair_details.csv``:
#: diagnostic key -> (column, its values in the order shown).
BREAKDOWNS = {"per_pair_type_rmse": ("pair_type", PAIR_TYPES), "per_novelty_band_rmse": ("novelty_band", BAND_LABELS)}
#: A manifest (``kit predict`` writes a few hundred bytes) larger than this is ignored.
MAX_MANIFEST_BYTES = 256 << 10


@dataclass
class ScoreResult:
    """The score of one submission, with diagnostics for each Usage.

    Attributes
    ----------
    competition : str
        Competition name.
    path : Path
        The submission file.
    sha256 : str
        Hash of the submission's bytes.
    rows : int
        Rows in the submission.
    metric : Metric
        The competition's metric (knows its direction and decimals).
    public, private : float
        The metric on the Public and on the Private rows (``private`` is None when the
        competition has no Private rows). Print Private only when it is revealed.
    details : dict
        ``{"Public": {...}, "Private": {...}}``, each from :func:`kit.scoring.metrics.diagnostics`
        (rmse, binned_rmse, per_bin_rmse, bin_rows, mae, pearson, rows); where the
        competition records which pairs are of one molecule (``private/pair_details.csv``),
        also those of :func:`kit.scoring.metrics.molecule_diagnostics` (same_molecule_rmse,
        different_molecule_rmse, their rows, top_bin_split); where it tags pairs by ion-mode
        type or novelty band, ``per_pair_type_rmse`` and ``per_novelty_band_rmse`` (:data:`BREAKDOWNS`).
    warnings : list of str
        Problems that did not stop scoring (values outside [0, 1]).
    model, validation : str, float or None
        From the submission's ``.json`` manifest when it has one.
    """

    competition: str
    path: Path
    sha256: str
    rows: int
    metric: Metric
    public: float
    private: float
    details: dict
    warnings: list = field(default_factory=list)
    model: str = None
    validation: float = None
    manifest: dict = field(default=None, repr=False)
    #: The competition folder scored against (where its store lives); None when unknown.
    competition_dir: Path = field(default=None, repr=False)

    @property
    def per_bin_rmse(self):
        """Public per-bin RMSE: bin label -> value (None for an empty bin)."""
        return self.details[PUBLIC]["per_bin_rmse"]

    @property
    def binned_rmse(self):
        return self.details[PUBLIC]["binned_rmse"]

    @property
    def mae(self):
        return self.details[PUBLIC]["mae"]

    @property
    def pearson(self):
        return self.details[PUBLIC]["pearson"]

    def to_dict(self, private=False):
        """The ``kit score --json`` object: Public score and diagnostics, Private when asked.

        Without ``private`` every score is rounded to :data:`kit.scoring.metrics.SHOWN_DECIMALS`
        (as a leaderboard shows it: more digits would tell labels apart); with it, every
        number is at full precision.

        Examples
        --------
        >>> sorted(result.to_dict())  # doctest: +SKIP
        ['binned_rmse', 'competition', 'direction', 'file', 'mae', 'metric', 'pearson',
         'per_bin_rmse', 'public', 'public_rows', 'rows', 'sha256', 'warnings']
        """
        public = self.details[PUBLIC]
        out = {
            "competition": self.competition,
            "file": str(self.path),
            "sha256": self.sha256,
            "metric": self.metric.name,
            "direction": self.metric.direction,
            "public": self.public,
            "binned_rmse": public["binned_rmse"],
            "per_bin_rmse": public["per_bin_rmse"],
            "mae": public["mae"],
            "pearson": public["pearson"],
            "rows": self.rows,
            "public_rows": public["rows"],
            "warnings": list(self.warnings),
        }
        if "same_molecule_rmse" in public:
            for key in ("same_molecule_rmse", "different_molecule_rmse", "same_molecule_rows", "different_molecule_rows"):
                out[key] = public[key]
        out |= {key: public[key] for key in BREAKDOWNS if key in public}
        if private:
            out["private"] = self.private
            out["private_diagnostics"] = {k: v for k, v in self.details.get(PRIVATE, {}).items() if k != "bin_rows"}
            return out
        return shown_scores(out)

    def format(self, private=False):
        """A short human report: scores, then the diagnostics of each shown Usage.

        Every number has :data:`kit.scoring.metrics.SHOWN_DECIMALS` places, Pearson r included (as in
        ``--json`` and on the leaderboard pages).
        """
        metric = self.metric
        name = printable(self.path.name)  # chosen by the participant: no control characters
        lines = [f"{name} on {printable(self.competition)} ({metric.describe()}), {self.rows:,} rows"]
        usages = [PUBLIC] + ([PRIVATE] if private and PRIVATE in self.details else [])
        for usage in usages:
            d = self.details[usage]
            score = self.public if usage == PUBLIC else self.private
            lines.append(f"{usage} score: {metric.format(score)}  ({d['rows']:,} rows)")
        for usage in usages:
            d = self.details[usage]
            lines.append(
                f"  {usage}: binned RMSE {_fmt(d['binned_rmse'])}   MAE {_fmt(d['mae'])}   Pearson r {_fmt(d['pearson'])}"
            )
            if "same_molecule_rmse" in d:
                lines.append(
                    f"  {usage}, all bins: same-molecule RMSE {_fmt(d['same_molecule_rmse'])} "
                    f"({d['same_molecule_rows']:,} rows)   different-molecule RMSE "
                    f"{_fmt(d['different_molecule_rmse'])} ({d['different_molecule_rows']:,} rows)"
                )
            for key in BREAKDOWNS:
                if key in d:
                    what = "pair type" if key == "per_pair_type_rmse" else "novelty band (max. Tanimoto to training)"
                    lines.append(f"  {usage}, RMSE per {what}: "
                                 + "   ".join(f"{label} {_fmt(value)}" for label, value in d[key].items()))
        lines.append("  per-bin RMSE (bins of the true similarity):")
        header = "    bin     " + "".join(f"{u + ' (rows)':>19}" for u in usages)
        lines.append(header)
        for label in self.per_bin_rmse:
            cells = "".join(
                f"{_fmt(self.details[u]['per_bin_rmse'][label]):>11} ({self.details[u]['bin_rows'][label]:>5,})"
                for u in usages
            )
            lines.append(f"    {label}  {cells}")
        split = [u for u in usages if "top_bin_split" in self.details[u]]
        if split:
            # The top bin alone: labelled apart from the all-bins figures above, which it is not.
            for key in self.details[split[0]]["top_bin_split"]:
                half = key.removeprefix(BIN_LABELS[-1]).strip()
                lines.append(f"      {BIN_LABELS[-1]} bin, {half} only: " + "   ".join(
                    f"{u} {_fmt(self.details[u]['top_bin_split'][key])}" for u in split))
        return "\n".join(lines)


class Scorer:
    """Scores submissions against one competition's solution, read once.

    Examples
    --------
    >>> scorer = Scorer("data/practice")              # doctest: +SKIP
    >>> scorer.score("submissions/practice/a.csv").public  # doctest: +SKIP
    0.21345
    """

    def __init__(self, competition, data=None):
        self.competition = as_competition(competition, data)
        self.metric = get_metric(self.competition.metadata.get("metric", "rmse"))
        self.ids, self.truth, self.usage = load_solution_masks(self.competition)
        self.same_molecule, self.groups = _load_pair_details(self.competition, self.ids)

    @property
    def expected_rows(self):
        return int(self.ids.size)

    def score(self, path):
        """Validate ``path`` and score it; a :class:`~kit.errors.SubmissionError` if invalid.

        Whatever reading the file raises (a field past the CSV reader's limit, bytes no
        codec takes, a bug the file triggers) becomes that one-line error: a hostile file
        is refused, it never ends the program that scores it.
        """
        try:
            submission = read_submission(path, expected_ids=self.ids)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure on a hostile file refuses that file
            raise SubmissionError(f"{path}: cannot be read as a submission ({type(exc).__name__}: "
                                  f"{printable(first_line(exc))})") from None
        predicted = submission.aligned_values()
        details, scores = {}, {}
        for usage, mask in self.usage.items():
            truth, guess = self.truth[mask], predicted[mask]
            details[usage] = diagnostics(truth, guess)
            if self.same_molecule is not None:
                details[usage] |= molecule_diagnostics(truth, guess, self.same_molecule[mask])
            for key, (column, labels) in BREAKDOWNS.items():
                if column in self.groups:
                    details[usage][key] = per_group_rmse(truth, guess, self.groups[column][mask], labels)
            # The diagnostics already hold the RMSE; other metrics are computed here.
            scores[usage] = details[usage]["rmse"] if self.metric.name == "rmse" else self.metric(truth, guess)
        _check_finite_scores(submission.path, scores)
        manifest = read_manifest(submission.path, submission.sha256, warnings=submission.warnings)
        return ScoreResult(
            competition=self.competition.name,
            path=submission.path,
            sha256=submission.sha256,
            rows=submission.rows,
            metric=self.metric,
            public=scores[PUBLIC],
            private=scores.get(PRIVATE),
            details=details,
            warnings=submission.warnings,
            model=(manifest or {}).get("model", {}).get("name"),
            validation=_validation_value((manifest or {}).get("validation_score")),
            manifest=manifest,
            competition_dir=self.competition.path,
        )


def score_submission(
    path: StrPath, competition: Competition | StrPath | None = None, *, data: StrPath | None = None
) -> ScoreResult:
    """Score a submission file exactly as the leaderboard does.

    Scoring writes nothing: :func:`kit.board.recording.record_result` stores a result in
    the competition's store and rewrites the leaderboard log (``kit score`` and the
    classroom inbox do).

    Parameters
    ----------
    path : str or Path
        The submission CSV (``id,similarity``).
    competition : Competition, str or Path, optional
        The competition object, folder or name (default ``practice``). Its
        ``private/solution.csv`` must be present.
    data : str or Path, optional
        Folder holding named competitions (default ``./data``).

    Returns
    -------
    ScoreResult
        ``.public``, ``.private``, ``.per_bin_rmse``, ``.binned_rmse``, ``.mae``, ``.pearson``.

    Raises
    ------
    kit.SubmissionError
        The file breaks a rule of the submission format (a ``ValueError``).

    Examples
    --------
    >>> result = score_submission("submissions/practice/x.csv", "practice")  # doctest: +SKIP
    >>> round(result.public, 5)                                               # doctest: +SKIP
    0.21345
    >>> from kit.board.recording import record_result                          # doctest: +SKIP
    >>> record_result(result, participant="ann")                              # doctest: +SKIP
    """
    return Scorer(competition, data=data).score(path)


def read_manifest(path, sha256=None, warnings=None):
    """The ``.json`` manifest written beside a submission, or None.

    The manifest is opened as a submission is (:func:`kit.scoring.reader.read_regular_file`:
    a regular file with one name, never a link, pipe or device), read up to
    :data:`MAX_MANIFEST_BYTES` and parsed with Python's parser, which stops at its
    recursion limit (``kit predict`` nests 3 levels). A manifest that breaks any of this, is not UTF-8
    JSON or not the object ``kit predict`` writes is ignored: the submission is scored
    without it, and one line saying why is appended to ``warnings`` when given. No
    manifest is no warning; a manifest whose recorded hash differs from ``sha256``
    describes another version of the file and is ignored without one.

    Parameters
    ----------
    path : str or Path
        The submission; the manifest is the same name with ``.json``.
    sha256 : str, optional
        The submission's hash.
    warnings : list, optional
        Receives the reason a manifest is ignored.

    Examples
    --------
    >>> from pathlib import Path
    >>> _ = Path("/tmp/kit-doc-m.json").write_text("[" * 100_000)
    >>> found = []
    >>> read_manifest("/tmp/kit-doc-m.csv", warnings=found), found[0]
    (None, 'kit-doc-m.json ignored: nested too deep; scored without it')
    """
    manifest_path = Path(path).with_suffix(".json")
    if not os.path.lexists(manifest_path):
        return None
    try:
        manifest = _parse_manifest(manifest_path)
    except (SubmissionError, ValueError) as exc:
        if warnings is not None:
            warnings.append(f"{printable(manifest_path.name, 60)} ignored: {printable(first_line(exc), 200)}; "
                            "scored without it")
        return None
    if sha256 is not None and manifest.get("sha256") not in (None, sha256):
        return None
    return manifest


def _parse_manifest(path):
    """The manifest's object; a ValueError (a SubmissionError for the file itself) saying what is wrong."""
    data = read_regular_file(path, MAX_MANIFEST_BYTES, expected="the JSON manifest kit predict writes")
    if len(data) > MAX_MANIFEST_BYTES:
        raise ValueError(f"larger than {MAX_MANIFEST_BYTES:,} bytes (kit predict writes well under a kilobyte)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        manifest = json.loads(text)
    except RecursionError:
        raise ValueError("nested too deep") from None
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("model"), dict):
        raise ValueError("expected a JSON object with a model, as kit predict writes")
    return manifest


def _check_finite_scores(path, scores):
    """Refuse a score that is not finite: it would rank first or last and break the pages.

    The submission rules (values within ``kit.scoring.reader.MAX_ABS_VALUE``) keep every
    metric finite; this guards the leaderboard should a metric still overflow.
    """
    for usage, score in scores.items():
        if score is None or not math.isfinite(score):
            raise UserError(
                f"{printable(path)}: the {usage} score is {score}, not a finite number: "
                "expected similarities near [0, 1]; nothing was logged"
            )


def _validation_value(score):
    """A single number from a manifest's validation score (its rmse when it is a dict)."""
    if isinstance(score, dict):
        score = score.get("rmse")
    try:
        value = float(score)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def load_solution_masks(competition):
    """Solution ids, truths and a boolean mask per Usage; a :class:`UserError` if unusable."""
    if not competition.has_solution:
        competition.load_solution()  # raises the explanatory UserError
    path = competition.solution_path
    try:
        frame = pd.read_csv(
            path, dtype={"id": np.int64, "similarity": np.float64, "Usage": "category"}, engine="c"
        )
    except (OSError, ValueError, TypeError, OverflowError) as exc:
        raise UserError(f"{path} is not a valid solution file: {' '.join(str(exc).split())}") from None
    if list(frame.columns[:3]) != ["id", "similarity", "Usage"]:
        raise UserError(f"{path}: expected columns id,similarity,Usage, found {','.join(map(str, frame.columns))}")
    ids = frame["id"].to_numpy()
    truth = frame["similarity"].to_numpy()
    # Compare category codes, not a million strings.
    categories = [str(c) for c in frame["Usage"].cat.categories]
    codes = frame["Usage"].cat.codes.to_numpy()
    masks = {
        name: codes == categories.index(name) if name in categories else np.zeros(ids.size, dtype=bool)
        for name in (PUBLIC, PRIVATE)
    }
    other = ~(masks[PUBLIC] | masks[PRIVATE])
    if other.any() or not masks[PUBLIC].any() or not _unique(ids) or not np.isfinite(truth).all():
        raise UserError(
            f"{path}: expected unique ids, finite similarities and Usage Public or Private "
            "with at least one Public row; the solution file is damaged"
        )
    if not masks[PRIVATE].any():
        del masks[PRIVATE]
    return ids, truth, masks


def _load_pair_details(competition, ids):
    """Whether each solution row is a pair of one molecule (bool array, or None), and the row's
    tags by column (``pair_type``, ``novelty_band``: object arrays) where the file has them.

    None and no tags for competitions prepared before ``private/pair_details.csv`` existed:
    scoring then leaves those diagnostics out. A file that does not cover exactly the
    solution's ids is damaged: a :class:`UserError`.
    """
    frame = competition.load_pair_details()
    if frame is None:
        return None, {}
    index = pd.Index(frame["id"].to_numpy())
    if len(index) != ids.size or not index.is_unique or not index.isin(ids).all():
        raise UserError(
            f"{competition.path / PAIR_DETAILS_FILE}: expected one row per id of the solution file; the file is damaged"
        )
    frame = frame.set_index(index).reindex(ids)
    groups = {column: frame[column].to_numpy(dtype=object) for column in frame.columns[2:]}
    return frame["same_molecule"].to_numpy(dtype=bool), groups


def _unique(ids):
    """True when no id repeats; instant for the usual sorted ids."""
    if ids.size < 2 or bool((ids[1:] > ids[:-1]).all()):
        return True
    return bool(pd.Index(ids).is_unique)


def _fmt(value):
    return "-" if value is None else f"{value:.5f}"
