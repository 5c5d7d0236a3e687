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
>>> model = BlendModel(siamese_epochs=8, seed=0).fit(train_spectra)   # doctest: +SKIP
>>> model.predict(test_spectra, test_pairs)[:3]                        # doctest: +SKIP
array([0.12, 0.93, 0.41])
"""
import copy
import time

import numpy as np

from kit.errors import UserError
from kit.models.features import BIN_WIDTH, FEATURE_NAMES, TOLERANCE
from kit.models.base import (
    MANIFEST, SKOPS_FILE, PairModel, check_float, check_int, check_spectra, spectrum_ids, training_pairs,
)
from kit.models.gbm import GBMModel

#: Columns the siamese adds to the gbm's pair features, in this order.
SIAMESE_FEATURES = ["siamese_cosine", "siamese_spread"]
#: Most Monte Carlo dropout passes per prediction.
MAX_MC_SAMPLES = 1000
#: Sub-folder of a saved blend holding its siamese (saved like the siamese rung).
SIAMESE_DIR = "siamese"
#: Blend parameters handed to the siamese without their prefix.
SIAMESE_PARAMS = ("hidden_units", "embedding_dim", "dropout", "learning_rate", "epochs", "batch_size",
                  "pairs_per_epoch", "validation_pairs", "validation_fraction", "patience", "use_metadata")


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
    siamese_hidden_units : tuple of int, default (500, 500)
        The siamese's ``hidden_units``.
    siamese_embedding_dim : int, default 200
    siamese_dropout : float, default 0.2
        Also the rate of the Monte Carlo dropout passes.
    siamese_learning_rate : float, default 0.0028
    siamese_epochs : int, default 30
    siamese_batch_size : int, default 512
    siamese_pairs_per_epoch : int, default 50000
    siamese_validation_pairs : int, default 5000
    siamese_validation_fraction : float, default 0.1
        Share of part A's molecules the siamese holds out for early stopping when
        ``fit`` gets no validation spectra.
    siamese_patience : int, default 6
    siamese_use_metadata : bool, default True
        See :class:`kit.models.siamese.SiameseModel` for each ``siamese_`` parameter.
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
    >>> model = BlendModel(siamese_epochs=2, n_pairs=2000, progress=False).fit(train_spectra)   # doctest: +SKIP
    >>> set(model.siamese_molecules_) & set(model.booster_molecules_)                          # doctest: +SKIP
    set()
    """

    name = "blend"
    save_format = "skops+keras"
    state_types = {**GBMModel.state_types, "siamese_molecules_": np.ndarray, "booster_molecules_": np.ndarray}

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
        siamese_hidden_units=(500, 500),
        siamese_embedding_dim=200,
        siamese_dropout=0.2,
        siamese_learning_rate=2.8e-3,
        siamese_epochs=30,
        siamese_batch_size=512,
        siamese_pairs_per_epoch=50000,
        siamese_validation_pairs=5000,
        siamese_validation_fraction=0.1,
        siamese_patience=6,
        siamese_use_metadata=True,
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
        self.siamese_hidden_units = siamese_hidden_units
        self.siamese_embedding_dim = siamese_embedding_dim
        self.siamese_dropout = siamese_dropout
        self.siamese_learning_rate = siamese_learning_rate
        self.siamese_epochs = siamese_epochs
        self.siamese_batch_size = siamese_batch_size
        self.siamese_pairs_per_epoch = siamese_pairs_per_epoch
        self.siamese_validation_pairs = siamese_validation_pairs
        self.siamese_validation_fraction = siamese_validation_fraction
        self.siamese_patience = siamese_patience
        self.siamese_use_metadata = siamese_use_metadata
        self.seed = seed
        self.progress = progress
        self.verbose = verbose

    # -- settings ------------------------------------------------------------------
    def _check_own_params(self):
        """Refuse the blend's own bad parameters before any work; return them checked."""
        fraction = check_float(self.holdout_fraction, "holdout_fraction")
        if fraction >= 1.0:
            raise UserError(f"holdout_fraction must be below 1 (the siamese needs molecules too), got {fraction}")
        mc_samples = check_int(self.mc_samples, "mc_samples", minimum=2)
        if mc_samples > MAX_MC_SAMPLES:
            raise UserError(f"mc_samples must be at most {MAX_MC_SAMPLES:,} (each is a pass of the network), got {mc_samples:,}")
        check_int(self.seed, "seed", minimum=0)
        return fraction, mc_samples

    def siamese_params(self):
        """Parameters of the inner :class:`~kit.models.siamese.SiameseModel` (a dict).

        Examples
        --------
        >>> BlendModel(siamese_epochs=3).siamese_params()["epochs"]
        3
        """
        params = {name: getattr(self, f"siamese_{name}") for name in SIAMESE_PARAMS}
        # The booster learns what the siamese's prediction means on held-out molecules, which
        # is what the siamese's own calibration does; an isotonic map before it would only
        # flatten stretches of the feature into ties the trees cannot split.
        return params | {"seed": self.seed, "verbose": self.verbose, "calibrate": False}

    # -- training ------------------------------------------------------------------
    def fit(self, spectra, validation_spectra=None):
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
        from kit.models.siamese import SiameseModel

        start = time.perf_counter()
        fraction, mc_samples = self._check_own_params()
        n_pairs = check_int(self.n_pairs, "n_pairs")
        regressor = self._regressor(int(self.seed))
        check_spectra(spectra, "training spectra")
        split_seed, pairs_seed = np.random.SeedSequence(int(self.seed)).spawn(2)
        part_a, part_b, keys_a, keys_b = split_by_molecule(spectra, fraction, np.random.default_rng(split_seed))
        siamese = SiameseModel(**self.siamese_params()).fit(part_a, validation_spectra=validation_spectra)
        idx_a, idx_b, similarity = training_pairs(
            part_b, n_pairs, np.random.default_rng(pairs_seed), what="spectra held out from the siamese"
        )
        x = self._blend_features(siamese, part_b, idx_a, idx_b, mc_samples)
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
        import pandas as pd

        x = self.features(spectra, idx_a, idx_b)
        ids = np.asarray(spectrum_ids(spectra), dtype=object)
        pairs = pd.DataFrame({"spectrum_id_a": ids[np.asarray(idx_a)], "spectrum_id_b": ids[np.asarray(idx_b)]})
        x[SIAMESE_FEATURES[0]] = siamese.predict(spectra, pairs)
        x[SIAMESE_FEATURES[1]] = siamese.predict(spectra, pairs, return_std=True, n_passes=mc_samples)[1]
        return x

    def _predict_indices(self, spectra, idx_a, idx_b):
        _, mc_samples = self._check_own_params()
        x = self._blend_features(self.siamese_, spectra, idx_a, idx_b, mc_samples)
        return np.clip(self.regressor_.predict(x[self.feature_names_]), 0.0, 1.0)

    # -- persistence ---------------------------------------------------------------
    def _save_state(self, folder):
        """The booster with skops (without the network), the siamese in its own sub-folder."""
        import skops.io as sio

        booster = copy.copy(self)
        del booster.siamese_  # Keras objects have no place in a skops file
        sio.dump(booster, folder / SKOPS_FILE)
        self.siamese_.save(folder / SIAMESE_DIR)
        return {"format": self.save_format, "file": SKOPS_FILE}

    @classmethod
    def _load_state(cls, folder, manifest):
        """Load the booster (skops, allowed types only), then the siamese beside it (untrusted input)."""
        from kit.models.siamese import SiameseModel

        model, inner, inner_manifest = cls._load_booster(folder, manifest)
        model.siamese_ = SiameseModel._load_state(inner, inner_manifest)
        return model

    @classmethod
    def _check_folder(cls, folder, manifest):
        """The booster and the siamese's manifest, checked here; the network only in the child."""
        cls._load_booster(folder, manifest)

    @classmethod
    def _load_booster(cls, folder, manifest):
        """The blend without its siamese, the siamese's folder and its checked manifest."""
        from kit.models.base import read_manifest
        from kit.models.untrusted import file_inside, load_skops
        from kit.safetext import printable

        model = load_skops(file_inside(folder, manifest.get("file", SKOPS_FILE)), cls)
        inner = file_inside(folder, f"{SIAMESE_DIR}/{MANIFEST}", "siamese manifest").parent
        inner_manifest = read_manifest(inner)
        if inner_manifest["model"] != "siamese":  # by name: the class would import TensorFlow here
            raise UserError(
                f"{printable(inner)}: holds a {printable(repr(inner_manifest['model']), 40)} model, "
                "expected the blend's siamese"
            )
        return model, inner, inner_manifest

    def check_params(self):
        super().check_params()
        self._check_own_params()

    def check_loaded_state(self, where):
        """Also refuse features the blend does not compute, molecule records of the wrong kind, forged trees."""
        from kit.models.untrusted import MAX_MOLECULES, check_array, check_hist_gradient_boosting

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
    from kit.data.chemistry import molecules_of
    from kit.data.pairs import split_molecules

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
