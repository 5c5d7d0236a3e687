"""A competition on disk (README, "A competition on disk") as a Python object.

Only ``competition.json`` is read up front; spectra and tables load on first use so that
scoring never pays for parsing spectra.

``competition.json`` is handed out and holds only what participants need; the seed, the
library's sha256, every hash of a private file and the map from neutral test ids to the
library's ids live in ``private/``, which stays with whoever prepared the competition.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.data.tanimoto_bins import BAND_LABELS, PAIR_TYPES
from kit.errors import UserError
from kit.paths import COMPETITION_FILE, StrPath, competition_dir
from kit.safetext import from_spreadsheet_cell

TRAIN_FILE = "train.mgf"
TEST_FILE = "test.mgf"
PAIRS_FILE = "test_pairs.csv"
SAMPLE_FILE = "sample_submission.csv"
SOLUTION_FILE = "private/solution.csv"
TEST_IDS_FILE = "private/test_ids.csv"
MANIFEST_FILE = "private/manifest.json"
#: Which test pairs are two spectra of one molecule (``id,same_molecule``): scoring's
#: same-molecule diagnostic. Competitions prepared before it have none.
PAIR_DETAILS_FILE = "private/pair_details.csv"
PRIVATE_DIR = "private"
#: The ``Usage`` of a row of ``private/solution.csv``: shown during the competition, or at its end.
PUBLIC = "Public"
PRIVATE = "Private"
#: Valid submissions a participant may make per UTC day when competition.json does not say
#: (``max_daily_submissions``); the one default of every mode (inbox, server, hosted pages).
DEFAULT_DAILY_LIMIT = 5
PUBLIC_FILES = (TRAIN_FILE, TEST_FILE, PAIRS_FILE, SAMPLE_FILE)
PRIVATE_FILES = (SOLUTION_FILE, TEST_IDS_FILE)

if TYPE_CHECKING:  # for the annotations only: both load on first use (see _read_csv)
    import pandas as pd
    from matchms import Spectrum


@dataclass
class Competition:
    """A prepared competition folder.

    Attributes
    ----------
    path : Path
        The competition folder.
    metadata : dict
        The contents of ``competition.json``.
    """

    path: Path
    metadata: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def seed(self) -> int | None:
        """The seed ``kit prepare`` used: from the private manifest, else None.

        Competitions prepared before the seed moved to ``private/`` recorded it in
        ``competition.json``; it is read from there when no private manifest exists.
        """
        manifest = self.private_manifest
        if "seed" in manifest:
            return manifest["seed"]
        return self.metadata.get("seed")

    @cached_property
    def private_manifest(self) -> dict[str, Any]:
        """``private/manifest.json`` (seed, library sha256, hashes of every file), or ``{}`` when withheld."""
        path = self.path / MANIFEST_FILE
        if not path.is_file():
            return {}
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path} is not a readable private manifest: {exc}") from None
        if not isinstance(manifest, dict):
            raise UserError(f"{path}: expected a JSON object, found {type(manifest).__name__}")
        return manifest

    @property
    def solution_path(self) -> Path:
        return self.path / SOLUTION_FILE

    @property
    def has_solution(self) -> bool:
        return self.solution_path.is_file()

    @property
    def file_hashes(self) -> dict[str, str]:
        """sha256 of the public files, as recorded in ``competition.json``.

        Hashes of private files are left out even where an older ``competition.json``
        still lists them: they travel into submission and model manifests.
        """
        files = self.metadata.get("files")
        if not isinstance(files, dict):
            return {}
        return {name: digest for name, digest in files.items() if not str(name).startswith(PRIVATE_DIR + "/")}

    @property
    def private_file_hashes(self) -> dict[str, str]:
        """sha256 of every file, public and private, from the private manifest (``{}`` when withheld)."""
        files = self.private_manifest.get("files")
        return dict(files) if isinstance(files, dict) else {}

    @cached_property
    def train_spectra(self) -> list[Spectrum]:
        """Training spectra, with structures (a list of matchms Spectrum)."""
        return _load_spectra(self.path / TRAIN_FILE)

    @cached_property
    def test_spectra(self) -> list[Spectrum]:
        """Test spectra, structures removed (a list of matchms Spectrum)."""
        return _load_spectra(self.path / TEST_FILE)

    @cached_property
    def test_pairs(self) -> pd.DataFrame:
        """The pairs to predict: a DataFrame with ``id, spectrum_id_a, spectrum_id_b``."""
        return _read_csv(self.path / PAIRS_FILE, dtype={"id": "int64", "spectrum_id_a": str, "spectrum_id_b": str})

    @cached_property
    def sample_submission(self) -> pd.DataFrame:
        return _read_csv(self.path / SAMPLE_FILE)

    def load_solution(self) -> pd.DataFrame:
        """The teacher's answers: ``id, similarity, Usage``; a :class:`UserError` when withheld."""
        if not self.has_solution:
            raise UserError(
                f"no answers for competition {self.name!r}: expected {self.solution_path} "
                "(the private/ folder stays with whoever prepared the competition)"
            )
        return _read_csv(self.solution_path, dtype={"id": "int64", "similarity": float, "Usage": str})


    def load_pair_details(self) -> pd.DataFrame | None:
        """``id, same_molecule`` of each test pair (and ``pair_type``, ``novelty_band`` where the
        competition has them), or None when the competition has no such file.

        Competitions prepared before the file existed (or whose ``private/`` is withheld)
        have none; scoring then leaves the same-molecule diagnostic out.

        Raises
        ------
        UserError
            When the file exists but is damaged.
        """
        path = self.path / PAIR_DETAILS_FILE
        if not path.is_file():
            return None
        try:
            frame = _read_csv(path, dtype={"id": "int64", "same_molecule": "int64"})
        except (OSError, ValueError, TypeError, OverflowError) as exc:
            raise UserError(f"{path} is not a valid pair details file: {' '.join(str(exc).split())}") from None
        if list(frame.columns[:2]) != ["id", "same_molecule"] or not frame["same_molecule"].isin([0, 1]).all():
            raise UserError(f"{path}: expected columns id,same_molecule with values 0 or 1; the file is damaged")
        # Competitions of pair types or a novelty split tag each pair (kit.data.pair_types, kit.data.novelty).
        allowed = {"pair_type": PAIR_TYPES, "novelty_band": BAND_LABELS}
        for column in frame.columns[2:]:
            if column not in allowed or frame.columns.tolist().count(column) > 1 \
                    or not frame[column].isin(allowed[column]).all():
                raise UserError(f"{path}: expected optional columns pair_type ({', '.join(PAIR_TYPES)}) and "
                                f"novelty_band ({', '.join(BAND_LABELS)}), found {column!r}; the file is damaged")
        return frame

    def load_test_ids(self) -> pd.DataFrame:
        """The teacher's map from neutral test ids to the library's: ``spectrum_id, source_spectrum_id``.

        A :class:`UserError` when ``private/`` is withheld.
        """
        path = self.path / TEST_IDS_FILE
        if not path.is_file():
            raise UserError(
                f"no test id map for competition {self.name!r}: expected {path} "
                "(the private/ folder stays with whoever prepared the competition)"
            )
        frame = _read_csv(path, dtype=str, keep_default_na=False)
        frame["source_spectrum_id"] = frame["source_spectrum_id"].map(from_spreadsheet_cell)
        return frame


def load_competition(path: StrPath | None = None, data: StrPath | None = None) -> Competition:
    """Open a prepared competition by folder or by name under ``data/``.

    Parameters
    ----------
    path : str or Path, optional
        A competition folder, or a name under ``data/`` (default ``practice``).
    data : str or Path, optional
        The folder holding named competitions (default ``./data``).

    Examples
    --------
    >>> comp = load_competition("data/practice")       # doctest: +SKIP
    >>> comp.test_pairs.columns.tolist()                # doctest: +SKIP
    ['id', 'spectrum_id_a', 'spectrum_id_b']
    """
    folder = competition_dir(path, data=data)
    meta_path = folder / COMPETITION_FILE
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{meta_path} is not a readable competition description: {exc}") from None
    if not isinstance(metadata, dict) or "name" not in metadata:
        raise UserError(f"{meta_path}: expected a JSON object with a 'name', found something else")
    return Competition(path=folder, metadata=metadata)


def as_competition(competition: Competition | StrPath | None = None, data: StrPath | None = None) -> Competition:
    """A :class:`Competition`: returned as is, or opened by :func:`load_competition`.

    For functions that take a competition object, folder or name alike.

    Examples
    --------
    >>> comp = as_competition("practice")      # doctest: +SKIP
    >>> as_competition(comp) is comp           # doctest: +SKIP
    True
    """
    if isinstance(competition, Competition):
        return competition
    return load_competition(competition, data=data)


# Every command's parser imports this module (for its constants), and `kit score` reads no
# spectra: pandas and matchms (through kit.data.spectra) load when a table or spectra are read.
def _read_csv(path: Path, **options: Any) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(path, **options)


def _load_spectra(path: Path) -> list[Spectrum]:
    from kit.data.spectra import load_spectra

    return load_spectra(path, clean=False)
