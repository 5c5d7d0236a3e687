"""A competition on disk (README, "A competition on disk") as a Python object.

Only ``competition.json`` is read up front; spectra and tables load on first use so that
scoring never pays for parsing spectra.
"""
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from kit.errors import UserError
from kit.paths import COMPETITION_FILE, competition_dir

TRAIN_FILE = "train.mgf"
TEST_FILE = "test.mgf"
PAIRS_FILE = "test_pairs.csv"
SAMPLE_FILE = "sample_submission.csv"
SOLUTION_FILE = "private/solution.csv"
PUBLIC_FILES = (TRAIN_FILE, TEST_FILE, PAIRS_FILE, SAMPLE_FILE)


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
    metadata: dict = field(repr=False)

    @property
    def name(self):
        return self.metadata["name"]

    @property
    def seed(self):
        return self.metadata.get("seed", 0)

    @property
    def solution_path(self):
        return self.path / SOLUTION_FILE

    @property
    def has_solution(self):
        return self.solution_path.is_file()

    @property
    def file_hashes(self):
        """sha256 of every file, as recorded when the competition was prepared."""
        return dict(self.metadata.get("files", {}))

    @cached_property
    def train_spectra(self):
        """Training spectra, with structures (a list of matchms Spectrum)."""
        from kit.spectra import load_spectra

        return load_spectra(self.path / TRAIN_FILE, clean=False)

    @cached_property
    def test_spectra(self):
        """Test spectra, structures removed (a list of matchms Spectrum)."""
        from kit.spectra import load_spectra

        return load_spectra(self.path / TEST_FILE, clean=False)

    @cached_property
    def test_pairs(self):
        """The pairs to predict: a DataFrame with ``id, spectrum_id_a, spectrum_id_b``."""
        import pandas as pd

        return pd.read_csv(self.path / PAIRS_FILE, dtype={"id": "int64", "spectrum_id_a": str, "spectrum_id_b": str})

    @cached_property
    def sample_submission(self):
        import pandas as pd

        return pd.read_csv(self.path / SAMPLE_FILE)

    def load_solution(self):
        """The teacher's answers: ``id, similarity, Usage``; a :class:`UserError` when withheld."""
        import pandas as pd

        if not self.has_solution:
            raise UserError(
                f"no answers for competition {self.name!r}: expected {self.solution_path} "
                "(the private/ folder stays with whoever prepared the competition)"
            )
        return pd.read_csv(self.solution_path, dtype={"id": "int64", "similarity": float, "Usage": str})


def load_competition(path=None, data=None):
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
