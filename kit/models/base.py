"""What every rung of the ladder shares: the pair-model interface, pair lookup, save/load.

A model follows scikit-learn's conventions: ``__init__`` only stores keyword parameters,
``fit(train_spectra)`` validates, samples its own training pairs and returns ``self``,
fitted state ends in ``_``. ``predict(spectra, pairs)`` returns one similarity per pair.
"""
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Self

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from kit._version import __version__
from kit.constraints import Integral, Interval, validate_params
from kit.data.pairs import PairSampler
from kit.errors import UserError, first_line
from kit.fileio import atomic_dir, jsonable
from kit.models import SAVE_FORMATS, check_name
from kit.models.untrusted import check_attributes, check_number, file_inside, load_skops
from kit.safetext import printable

if TYPE_CHECKING:  # matchms for a hint only
    from matchms import Spectrum  # noqa: F401 - named in Spectra

MANIFEST = "manifest.json"
#: What ``fit`` and ``predict`` take: a list of matchms spectra.
Spectra = Sequence["Spectrum"]


def spectrum_ids(spectra):
    """``spectrum_id`` of each spectrum (a list of str).

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([100.0]), np.array([1.0]), metadata={"spectrum_id": "A1"}, metadata_harmonization=False)
    >>> spectrum_ids([s])
    ['A1']
    """
    return [str(s.get("spectrum_id")) for s in spectra]


def pair_indices(spectra, pairs):
    """Positions in ``spectra`` of each pair's two spectra.

    Parameters
    ----------
    spectra : list of matchms.Spectrum
    pairs : pandas.DataFrame with ``spectrum_id_a`` and ``spectrum_id_b``, or an (n, 2) array of ids

    Raises
    ------
    UserError
        When a pair names a spectrum id that is not among ``spectra``.
    """
    if isinstance(pairs, pd.DataFrame):
        missing = {"spectrum_id_a", "spectrum_id_b"} - set(pairs.columns)
        if missing:
            raise UserError(f"pairs need columns spectrum_id_a and spectrum_id_b; missing {', '.join(sorted(missing))}")
        a, b = pairs["spectrum_id_a"].astype(str).to_numpy(), pairs["spectrum_id_b"].astype(str).to_numpy()
    else:
        arr = np.asarray(pairs, dtype=str)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise UserError(f"pairs: expected two columns of spectrum ids, found shape {arr.shape}")
        a, b = arr[:, 0], arr[:, 1]
    index = pd.Index(spectrum_ids(spectra))
    if not index.is_unique:
        dupes = index[index.duplicated()].unique()[:3].tolist()
        raise UserError(f"spectrum ids must be unique; found repeated ids such as {', '.join(dupes)}")
    ia, ib = index.get_indexer(a), index.get_indexer(b)
    bad = np.flatnonzero((ia < 0) | (ib < 0))
    if len(bad):
        row = bad[0]
        unknown = a[row] if ia[row] < 0 else b[row]
        raise UserError(
            f"{len(bad):,} pairs name spectrum ids that are not among the {len(index):,} spectra given; "
            f"first at row {row}: {unknown!r}"
        )
    return ia, ib


def check_spectra(spectra, what="spectra"):
    """Raise :class:`UserError` for an empty list or a spectrum without peaks."""
    if spectra is None or len(spectra) == 0:
        raise UserError(f"no {what} given: expected a non-empty list of matchms Spectrum objects")
    for row, spectrum in enumerate(spectra):
        if not hasattr(spectrum, "peaks"):
            raise TypeError(f"{what}[{row}] is a {type(spectrum).__name__}: expected a matchms Spectrum")
        if len(spectrum.peaks.mz) == 0:
            raise UserError(
                f"{what}: spectrum {spectrum.get('spectrum_id')!r} (row {row}) has no peaks left after cleaning; "
                "expected at least one peak in m/z 10-1000"
            )


#: What a rung's ``seed`` may be.
SEED = Interval(Integral, 0, None)


def training_pairs(spectra, n_pairs, rng, what="training spectra"):
    """Bin-balanced spectrum pairs of ``spectra`` (which carry structures) and their Tanimoto.

    Returns
    -------
    idx_a, idx_b : int arrays of positions in ``spectra``
    similarity : float64 array

    Raises
    ------
    UserError
        When the spectra offer no pair at all (one molecule with a single spectrum).

    Examples
    --------
    >>> idx_a, idx_b, y = training_pairs(train_spectra, 1000, np.random.default_rng(0))   # doctest: +SKIP
    >>> len(y)                                                                             # doctest: +SKIP
    1000
    """
    idx_a, idx_b, similarity = PairSampler.from_spectra(spectra).sample(n_pairs, rng)
    if len(idx_a) == 0:
        raise UserError(
            f"no pairs can be drawn from the {len(spectra):,} {what}: expected at least two molecules, "
            "or two spectra of one molecule"
        )
    return idx_a, idx_b, similarity


class PairModel(BaseEstimator):
    """Base class of the ladder: predicts the Tanimoto similarity of pairs of spectra.

    Subclasses set ``name``, implement ``fit`` and ``_predict_indices`` and, when their
    fitted state is not a scikit-learn object, ``_save_state``/``_load_state``.
    """

    name = None
    #: How the fitted state is saved (``skops`` or ``keras``); a manifest must agree.
    save_format = "skops"
    #: Fitted attributes and the type each must have once loaded (checked on load).
    state_types = {}
    #: What each parameter may be (:mod:`kit.constraints`), checked at the start of ``fit``.
    _parameter_constraints = {}

    def fit(self, spectra: Spectra, validation_spectra: Spectra | None = None) -> Self:  # pragma: no cover - interface
        raise NotImplementedError

    def _predict_indices(self, spectra, idx_a, idx_b):  # pragma: no cover - interface
        raise NotImplementedError

    def _check_fitted(self):
        try:
            check_is_fitted(self, "fitted_")
        except NotFittedError:
            raise UserError(f"this {self.name} model is not fitted yet: call fit(train_spectra) before predict") from None

    def predict(self, spectra: Spectra, pairs: "pd.DataFrame | np.ndarray") -> np.ndarray:
        """One similarity per pair.

        Parameters
        ----------
        spectra : list of matchms.Spectrum
            Spectra the pairs refer to (by ``spectrum_id``).
        pairs : pandas.DataFrame
            Columns ``spectrum_id_a`` and ``spectrum_id_b``.

        Returns
        -------
        numpy.ndarray of float, one per row of ``pairs``.
        """
        self._check_fitted()
        check_spectra(spectra)
        idx_a, idx_b = pair_indices(spectra, pairs)
        return np.asarray(self._predict_indices(spectra, idx_a, idx_b), dtype=float)

    # -- persistence ---------------------------------------------------------------
    def manifest(self):
        """What is written beside the saved model."""
        return {
            "model": self.name,
            "kit_version": __version__,
            # Nested parameters (the blend's siamese__epochs) by name, not the estimator holding them.
            "params": {k: jsonable(v) for k, v in self.get_params(deep=True).items()
                       if not isinstance(v, BaseEstimator)},
            "fit_seconds": getattr(self, "fit_seconds_", None),
            "validation_score": getattr(self, "validation_score_", None),
            "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        """Save into the folder ``path`` (written completely or not at all); return it."""
        self._check_fitted()
        path = Path(path)
        with atomic_dir(path, force=True) as tmp:
            manifest = self.manifest() | (extra or {})
            manifest |= self._save_state(tmp) or {}
            # Strict JSON: a NaN (a diverged epoch) is written as null, which load accepts.
            (tmp / MANIFEST).write_text(json.dumps(jsonable(manifest), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        return path

    def _save_state(self, folder):
        """Write the fitted model with skops (scikit-learn rungs); return manifest additions."""
        sio.dump(self, folder / SKOPS_FILE)
        return {"format": "skops", "file": SKOPS_FILE}

    @classmethod
    def _load_state(cls, folder, manifest):
        """Load the skops file named by the manifest, trusting only the types this rung saves."""
        return load_skops(file_inside(folder, manifest.get("file", SKOPS_FILE)), cls)

    @classmethod
    def _check_folder(cls, folder, manifest):
        """Check a saved folder in this process without running any of it: skops rungs load it (checked)."""
        cls._load_state(folder, manifest)

    def _validate_params(self):
        """The parameters checked against :attr:`_parameter_constraints` (converted); scikit-learn's manner.

        Raises
        ------
        TypeError, kit.errors.UserError
            One line naming the first parameter that is not what the rung declares.
        """
        return validate_params(self._parameter_constraints, self.get_params(deep=False))

    def check_params(self):
        """Raise TypeError or ValueError for a parameter the rung cannot use (a loaded model's, say)."""
        self._validate_params()

    def check_loaded_state(self, where):
        """Raise a UserError unless a loaded model has its fitted attributes, of the right types.

        A forged file can set any attribute to any allowed value, so the attributes must be
        exactly the rung's parameters and fitted state, the parameters must pass
        :meth:`check_params`, and each rung checks the arrays inside its estimators
        (:mod:`kit.models.untrusted`).
        """
        if getattr(self, "fitted_", False) is not True:
            raise UserError(f"{where}: the saved {self.name} model is not fitted: expected a model saved after fit")
        for attribute, kind in self.state_types.items():
            value = getattr(self, attribute, None)
            if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
                raise UserError(
                    f"{where}: the saved {self.name} model's {attribute} is a {type(value).__name__}, "
                    f"expected a {kind.__name__}"
                )
        check_attributes(self, set(self.get_params(deep=False)) | set(self.state_types) | SAVED_ALWAYS, where,
                         f"the saved {self.name} model")
        check_number(self.n_train_pairs_, "n_train_pairs_", where, 0, 1 << 40, integer=True)
        if getattr(self, "fit_seconds_", None) is not None:
            check_number(self.fit_seconds_, "fit_seconds_", where, 0.0, math.inf)
        scores = getattr(self, "validation_score_", None)
        if scores is not None and not _is_scores(scores, depth=2):
            raise UserError(f"{where}: the saved {self.name} model's validation_score_ is not the kit's diagnostics "
                            "(a small dict of numbers)")
        try:
            self.check_params()
        except (TypeError, ValueError) as exc:
            raise UserError(f"{where}: the saved {self.name} model has a bad parameter ({first_line(exc)})") from None


def _is_scores(value, depth):
    """Whether ``value`` is a dict of str -> finite number, None or (``depth`` levels down) such dicts."""
    if not isinstance(value, dict) or len(value) > 100:
        return False
    for key, item in value.items():
        if type(key) is not str:
            return False
        if item is None or type(item) is int or (type(item) is float and math.isfinite(item)):
            continue
        if depth <= 1 or not _is_scores(item, depth - 1):
            return False
    return True


SKOPS_FILE = "model.skops"
#: Attributes every fitted rung may hold beside its parameters and ``state_types``.
SAVED_ALWAYS = frozenset({"fitted_", "fit_seconds_", "validation_score_", "n_train_pairs_"})
#: Fields every manifest may have and their JSON types (``!``: required); see
#: :func:`kit.models.untrusted.check_fields`.
MANIFEST_FIELDS = {
    "model": "str!",
    "kit_version": "str!",
    "format": "str",
    "file": "str",
    "params": "dict",
    "fit_seconds": "number|null",
    "validation_score": "number|dict|null",
    "saved": "str|null",
    "competition": "str|null",
    "competition_files": "dict|null",
    "seed": "int|null",
}


def read_manifest(path):
    """The manifest of a saved model folder, checked; a :class:`UserError` when unusable.

    A model folder is untrusted input: the manifest must be a JSON object of bounded
    size whose fields have the types the kit writes, name a registered rung saved in
    that rung's format by the same major kit version, and name only files inside the
    folder (:mod:`kit.models.untrusted`).

    Examples
    --------
    >>> read_manifest("models/practice/gbm-1")["model"]   # doctest: +SKIP
    'gbm'
    """
    from kit.models.untrusted import (
        check_fields,
        file_inside,
        plain_name,
        read_json_object,
    )

    path = Path(path)
    where = printable(path)
    if not path.is_dir():
        found = "no such folder" if not path.exists() else "a file"
        raise UserError(f"{where} is not a saved model: expected a folder written by model.save or `kit train`, found {found}")
    if not (path / MANIFEST).exists() and not (path / MANIFEST).is_symlink():
        raise UserError(
            f"{where} is not a saved model: expected {printable(path / MANIFEST)} (written by model.save or `kit train`)"
        )
    manifest = read_json_object(file_inside(path, MANIFEST, "manifest"), "model manifest")
    check_fields(manifest, MANIFEST_FIELDS, where)
    major = manifest["kit_version"].split(".")[0]
    if major != __version__.split(".")[0]:
        raise UserError(
            f"{where} was saved by specsim-kit {printable(repr(manifest['kit_version']), 40)}; this is {__version__}: "
            "expected the same major version (retrain the model)"
        )
    try:
        name = check_name(manifest["model"])
    except UserError as exc:
        raise UserError(f"{where}: the manifest names an {exc}") from None
    if manifest.get("format", SAVE_FORMATS[name]) != SAVE_FORMATS[name]:
        raise UserError(
            f"{where}: manifest format {printable(repr(manifest['format']), 40)} does not match the {name} rung, "
            f"which saves {SAVE_FORMATS[name]!r}"
        )
    if manifest.get("competition") is not None:
        plain_name(manifest["competition"], "competition", where)
    files = manifest.get("competition_files") or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise UserError(f"{where}: manifest field 'competition_files' must map file names to sha256 strings")
    return manifest
