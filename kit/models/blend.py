"""The blend rung: gradient boosting over the pair features and the siamese's opinion.

Kaggle's habit: when two models err in different places, a second-level model that
reads both beats each. The siamese reads each whole spectrum through one embedding; the
gbm's pair features compare two spectra peak by peak (matched peaks, neutral losses,
mass difference). The blend is the gbm rung's ``HistGradientBoostingRegressor`` on its
pair features (:mod:`kit.models.features`) plus two columns from a siamese network: its
prediction (``siamese_cosine``: the cosine of the two embeddings, through the siamese's
head by default; uncalibrated, as the trees calibrate it) and the spread of its Monte
Carlo dropout predictions (``siamese_spread``), which tells the trees when not to trust
that prediction.

No leakage: the booster must learn how far to trust the siamese on pairs the siamese
has never seen. On its own training molecules a network is over-confident, and trees
fitted there would lean on it more than test pairs warrant. So the training molecules
are split by a seed: the siamese trains on part A only, the booster's pairs come from
part B's molecules only (``holdout_fraction`` of them); ``siamese_molecules_`` and
``booster_molecules_`` record both sides, which share no molecule.

Examples
--------
>>> from kit.models.blend import BlendModel
>>> model = BlendModel(seed=0).set_params(siamese__epochs=8).fit(train_spectra)   # doctest: +SKIP
>>> model.predict(test_spectra, test_pairs)[:3]                        # doctest: +SKIP
array([0.12, 0.93, 0.41])
"""
import copy
import time
from typing import Self

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.base import clone

from kit.constraints import Integral, Interval, Options, Real
from kit.data.chemistry import molecules_of
from kit.data.pairs import split_molecules
from kit.errors import UserError
from kit.models.base import (
    MANIFEST,
    SKOPS_FILE,
    PairModel,
    Spectra,
    check_spectra,
    read_manifest,
    spectrum_ids,
    training_pairs,
)
from kit.models.features import BIN_WIDTH, FEATURE_NAMES, TOLERANCE
from kit.models.gbm import GBMModel
from kit.models.untrusted import (
    MAX_MOLECULES,
    check_array,
    check_hist_gradient_boosting,
    file_inside,
    load_skops,
)
from kit.safetext import printable

#: Columns the siamese adds to the gbm's pair features, in this order.
SIAMESE_FEATURES = ["siamese_cosine", "siamese_spread"]
#: Most Monte Carlo dropout passes per prediction.
MAX_MC_SAMPLES = 1000
#: Sub-folder of a saved blend holding its siamese (saved like the siamese rung).
SIAMESE_DIR = "siamese"
#: The siamese parameters earlier blends repeated as ``siamese_<name>`` attributes; a saved
#: blend of that time still loads (its siamese is read from its own folder).
LEGACY_SIAMESE_PARAMS = ("hidden_units", "embedding_dim", "dropout", "learning_rate", "epochs", "batch_size",
                         "pairs_per_epoch", "validation_pairs", "validation_fraction", "patience", "use_metadata")
#: What the blend sets on its siamese itself: the siamese's own values of these are not used.
SET_BY_THE_BLEND = ("seed", "verbose")


class BlendModel(GBMModel):
    """Boosted trees over the gbm's pair features and a siamese's cosine and MC-dropout spread.

    Parameters
    ----------
    holdout_fraction : float, default 0.3
        Share of the training molecules kept from the siamese; the booster's pairs
        are drawn among them only.
    mc_samples : int, default 10
        Monte Carlo dropout passes behind the ``siamese_spread`` feature (at least 2).
    n_pairs : int, default 20000
        Booster training pairs drawn (bin-balanced) among the held-out molecules.
    tolerance : float, default 0.1
        m/z tolerance (Da) of the matchms scores.
    bin_width : float, default 1.0
        Bin width (Da) of the binned-spectrum cosines.
    max_iter : int, default 500
        Most boosting iterations; early stopping usually ends sooner.
    learning_rate : float, default 0.1
        The booster's learning rate.
    max_leaf_nodes : int, default 31
    min_samples_leaf : int, default 20
    l2_regularization : float, default 0.0
    early_stopping : bool, default True
        Stop boosting when the loss on a held-out 10% of the booster's pairs has not
        improved for 20 iterations.
    siamese : SiameseModel or None, default None
        The siamese trained on part A (a copy of it; its ``seed`` and ``verbose`` are
        the blend's). None is ``SiameseModel(calibrate=False)``: the booster learns
        what the siamese's prediction means on held-out molecules, so an isotonic map
        before it would only flatten stretches of the feature into ties. Its parameters
        are nested, as scikit-learn's: ``set_params(siamese__epochs=3)``, or
        ``kit train blend --siamese__epochs 3``; each is an option of ``kit train
        siamese`` (:class:`kit.models.siamese.SiameseModel`). The dropout rate is also
        that of the Monte Carlo dropout passes.
    seed : int, default 0
        Seeds the molecule split, the siamese, the booster's pairs and the boosting.
    progress : bool, default True
        Show progress bars while computing pair features.
    verbose : int or "auto", default "auto"
        Keras progress output while the siamese trains (0 silences it).

    Attributes
    ----------
    siamese_ : kit.models.siamese.SiameseModel
        Trained on part A's molecules only.
    regressor_ : sklearn.ensemble.HistGradientBoostingRegressor
    feature_names_ : list of str
        The gbm's pair features, then :data:`SIAMESE_FEATURES`.
    siamese_molecules_, booster_molecules_ : numpy.ndarray of str
        Molecule keys (InChIKey first block) the siamese and the booster trained on;
        they share none.
    n_train_pairs_ : int
    fit_seconds_ : float

    Examples
    --------
    >>> model = BlendModel(n_pairs=2000, progress=False).set_params(siamese__epochs=2)           # doctest: +SKIP
    >>> model = model.fit(train_spectra)                                                       # doctest: +SKIP
    >>> set(model.siamese_molecules_) & set(model.booster_molecules_)                          # doctest: +SKIP
    set()
    """

    name = "blend"
    save_format = "skops+keras"
    state_types = {**GBMModel.state_types, "siamese_molecules_": np.ndarray, "booster_molecules_": np.ndarray}
    _parameter_constraints = {
        **GBMModel._parameter_constraints,
        # Below 1: the siamese needs molecules too.
        "holdout_fraction": Interval(Real, 0, 1, closed="neither"),
        # Each sample is a pass of the network.
        "mc_samples": Interval(Integral, 2, MAX_MC_SAMPLES),
        "verbose": Options("auto", 0, 1, 2),
    }

    def __init__(
        self,
        holdout_fraction=0.3,
        mc_samples=10,
        n_pairs=20000,
        tolerance=TOLERANCE,
        bin_width=BIN_WIDTH,
        max_iter=500,
        learning_rate=0.1,
        max_leaf_nodes=31,
        min_samples_leaf=20,
        l2_regularization=0.0,
        early_stopping=True,
        siamese=None,
        seed=0,
        progress=True,
        verbose="auto",
    ):
        self.holdout_fraction = holdout_fraction
        self.mc_samples = mc_samples
        self.n_pairs = n_pairs
        self.tolerance = tolerance
        self.bin_width = bin_width
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.siamese = siamese
        self.seed = seed
        self.progress = progress
        self.verbose = verbose

    # -- settings ------------------------------------------------------------------
    def _siamese_template(self):
        """The unfitted siamese the blend trains a copy of: ``siamese``, or the default one."""
        # Here, not at the top: the siamese imports TensorFlow, which the booster alone never needs.
        from kit.models.siamese import SiameseModel

        if self.siamese is None:
            return SiameseModel(calibrate=False)
        if not isinstance(self.siamese, SiameseModel):
            raise TypeError(f"siamese must be None or a kit.models.siamese.SiameseModel, found "
                            f"{type(self.siamese).__name__}")
        return self.siamese

    def get_params(self, deep=True):
        """The blend's parameters; with ``deep``, also the siamese's as ``siamese__<name>`` (scikit-learn's way).

        ``siamese__seed`` and ``siamese__verbose`` are the blend's own, which its siamese trains with.

        Examples
        --------
        >>> BlendModel().get_params()["siamese__epochs"]   # doctest: +SKIP
        30
        """
        params = super().get_params(deep=False)
        if deep:
            params |= {f"siamese__{k}": v for k, v in self.siamese_params().items()}
        return params

    def set_params(self, **params):
        """Set parameters; ``siamese__<name>`` sets the siamese's (made first when ``siamese`` is None).

        ``siamese__seed`` and ``siamese__verbose`` are refused unless they equal the blend's
        own ``seed`` and ``verbose``, which its siamese trains with.

        Examples
        --------
        >>> BlendModel().set_params(siamese__epochs=3).siamese.epochs   # doctest: +SKIP
        3
        """
        nested = {k.removeprefix("siamese__"): params.pop(k) for k in list(params) if k.startswith("siamese__")}
        super().set_params(**params)
        for name in SET_BY_THE_BLEND:
            if name in nested and nested.pop(name) != getattr(self, name):
                raise UserError(f"siamese__{name} is set by the blend: expected the blend's own {name} "
                                f"({getattr(self, name)!r}), which it passes to its siamese")
        if nested:
            self.siamese = self._siamese_template()
            self.siamese.set_params(**nested)
        return self

    def _validate_params(self):
        """The blend's parameters checked, and the siamese's where one is given (None is the default one)."""
        params = super()._validate_params()
        if self.siamese is not None:
            siamese = self._siamese_template()
            try:
                siamese._check_params()
            except (TypeError, ValueError) as exc:  # UserError is a ValueError
                # Named as it is set here: "epochs must be ..." is siamese__epochs.
                nested = str(exc).split(" ", 1)[0] in siamese.get_params(deep=False)
                raise type(exc)(f"siamese__{exc}" if nested else f"the blend's siamese: {exc}") from None
        return params

    def siamese_params(self):
        """Parameters of the inner :class:`~kit.models.siamese.SiameseModel` (a dict), as ``fit`` sets them.

        Examples
        --------
        >>> BlendModel(seed=3).set_params(siamese__epochs=2).siamese_params()["epochs"]   # doctest: +SKIP
        2
        """
        own = {name: getattr(self, name) for name in SET_BY_THE_BLEND}
        return self._siamese_template().get_params(deep=False) | own

    # -- training ------------------------------------------------------------------
    def fit(self, spectra: Spectra, validation_spectra: Spectra | None = None) -> Self:
        """Train the siamese on part A's molecules, then the booster on part B's; return self.

        Parameters
        ----------
        spectra : list of matchms.Spectrum
            Training spectra with structures.
        validation_spectra : list of matchms.Spectrum, optional
            Spectra of other molecules for the siamese's early stopping; when omitted the
            siamese holds out a share of part A itself.

        Returns
        -------
        self
        """
        start = time.perf_counter()
        params = self._validate_params()
        siamese = clone(self._siamese_template()).set_params(**{name: params[name] for name in SET_BY_THE_BLEND})
        regressor = self._regressor(params)
        check_spectra(spectra, "training spectra")
        split_seed, pairs_seed = np.random.SeedSequence(params["seed"]).spawn(2)
        part_a, part_b, keys_a, keys_b = split_by_molecule(spectra, params["holdout_fraction"],
                                                           np.random.default_rng(split_seed))
        siamese.fit(part_a, validation_spectra=validation_spectra)
        idx_a, idx_b, similarity = training_pairs(
            part_b, params["n_pairs"], np.random.default_rng(pairs_seed), what="spectra held out from the siamese"
        )
        x = self._blend_features(siamese, part_b, idx_a, idx_b, params["mc_samples"])
        self.regressor_ = regressor.fit(x, similarity)
        self.siamese_ = siamese
        self.feature_names_ = list(x.columns)
        self.siamese_molecules_, self.booster_molecules_ = keys_a, keys_b
        self.n_train_pairs_ = int(len(similarity))
        self.fitted_ = True
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _blend_features(self, siamese, spectra, idx_a, idx_b, mc_samples):
        """The gbm's pair features plus the siamese's cosine and MC-dropout spread."""
        x = self.features(spectra, idx_a, idx_b)
        ids = np.asarray(spectrum_ids(spectra), dtype=object)
        pairs = pd.DataFrame({"spectrum_id_a": ids[np.asarray(idx_a)], "spectrum_id_b": ids[np.asarray(idx_b)]})
        x[SIAMESE_FEATURES[0]] = siamese.predict(spectra, pairs)
        x[SIAMESE_FEATURES[1]] = siamese.predict(spectra, pairs, return_std=True, n_passes=mc_samples)[1]
        return x

    def _predict_indices(self, spectra, idx_a, idx_b):
        x = self._blend_features(self.siamese_, spectra, idx_a, idx_b, self._validate_params()["mc_samples"])
        return np.clip(self.regressor_.predict(x[self.feature_names_]), 0.0, 1.0)

    # -- persistence ---------------------------------------------------------------
    def _save_state(self, folder):
        """The booster with skops (without the network), the siamese in its own sub-folder."""
        booster = copy.copy(self)
        # Keras objects have no place in a skops file: the siamese's parameters are in its own manifest.
        del booster.siamese_
        booster.siamese = None
        sio.dump(booster, folder / SKOPS_FILE)
        self.siamese_.save(folder / SIAMESE_DIR)
        return {"format": self.save_format, "file": SKOPS_FILE}

    @classmethod
    def _load_state(cls, folder, manifest):
        """Load the booster (skops, allowed types only), then the siamese beside it (untrusted input)."""
        from kit.models.siamese import SiameseModel

        model, inner, inner_manifest = cls._load_booster(folder, manifest)
        model.siamese_ = SiameseModel._load_state(inner, inner_manifest)
        model.siamese = clone(model.siamese_)
        return model

    @classmethod
    def _check_folder(cls, folder, manifest):
        """The booster and the siamese's manifest, checked here; the network only in the child."""
        cls._load_booster(folder, manifest)

    @classmethod
    def _load_booster(cls, folder, manifest):
        """The blend without its siamese, the siamese's folder and its checked manifest."""
        model = load_skops(file_inside(folder, manifest.get("file", SKOPS_FILE)), cls)
        inner = file_inside(folder, f"{SIAMESE_DIR}/{MANIFEST}", "siamese manifest").parent
        inner_manifest = read_manifest(inner)
        if inner_manifest["model"] != "siamese":  # by name: the class would import TensorFlow here
            raise UserError(
                f"{printable(inner)}: holds a {printable(repr(inner_manifest['model']), 40)} model, "
                "expected the blend's siamese"
            )
        return model, inner, inner_manifest

    def check_loaded_state(self, where):
        """Also refuse features the blend does not compute, molecule records of the wrong kind, forged trees.

        A blend saved before its siamese's parameters were nested holds them as
        ``siamese_<name>`` attributes (:data:`LEGACY_SIAMESE_PARAMS`); they are dropped,
        as the siamese is read from its own folder.
        """
        if "siamese" not in vars(self):
            for name in LEGACY_SIAMESE_PARAMS:
                vars(self).pop(f"siamese_{name}", None)
            self.siamese = None
        if self.siamese is not None:
            raise UserError(f"{where}: the saved blend's siamese parameter is a {type(self.siamese).__name__}, "
                            "expected None (its siamese is saved in its own folder)")
        PairModel.check_loaded_state(self, where)
        self.check_feature_names(FEATURE_NAMES + SIAMESE_FEATURES, where)
        if self.feature_names_[-len(SIAMESE_FEATURES):] != SIAMESE_FEATURES:
            raise UserError(f"{where}: the saved blend's feature names are not the gbm's pair features and the siamese's")
        for attribute in ("siamese_molecules_", "booster_molecules_"):
            check_array(getattr(self, attribute), f"the saved blend's {attribute} (molecule keys)", where, kind="U",
                        max_size=MAX_MOLECULES)
        check_hist_gradient_boosting(self.regressor_, self.feature_names_, where)


def split_by_molecule(spectra, fraction, rng):
    """Spectra of two disjoint sets of molecules, and each set's molecule keys.

    Parameters
    ----------
    spectra : list of matchms.Spectrum
        Spectra with structures.
    fraction : float
        Share of molecules on the second side.
    rng : numpy.random.Generator

    Returns
    -------
    first, second : list of matchms.Spectrum
    first_keys, second_keys : numpy.ndarray of str
        Sorted molecule keys (InChIKey first block) of each side.

    Examples
    --------
    >>> a, b, keys_a, keys_b = split_by_molecule(train_spectra, 0.3, np.random.default_rng(0))   # doctest: +SKIP
    """
    kept, molecules = molecules_of(spectra)
    held = split_molecules(molecules.keys, fraction, rng, option="holdout_fraction")
    second = held[molecules.spectrum_molecule]
    keys = np.asarray(molecules.keys, dtype=str)
    return (
        [s for s, side in zip(kept, second) if not side],
        [s for s, side in zip(kept, second) if side],
        np.sort(keys[~held]),
        np.sort(keys[held]),
    )
