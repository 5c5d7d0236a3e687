"""The ``siamese`` rung's estimator, :class:`SiameseModel`: parameters, fit, predict, embeddings."""
import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Self

import keras
import numpy as np
import pandas as pd

from kit.constraints import (
    Boolean,
    Each,
    Integral,
    Interval,
    Options,
    OrNone,
    Real,
    check_param,
    validate_params,
)
from kit.data import binning
from kit.data.pairs import split_molecules
from kit.errors import UserError
from kit.models.base import PairModel, Spectra, check_spectra, pair_indices
from kit.models.siamese.batches import (
    ADDUCT_FEATURES,
    MAX_PRECURSOR_MZ,
    METADATA_FEATURES,
    PairBatches,
    _molecules,
    _sampler_of,
    _subset_sampler,
    metadata_features,
)
from kit.models.siamese.calibration import apply_calibration, held_out_calibration
from kit.models.siamese.distribute import (
    DISTRIBUTE,
    _fit_across_workers,
    _gpus,
    _multi_worker,
    distribution_strategy,
)
from kit.models.siamese.layers import (
    MAX_HEAD_LAYERS,
    MAX_HEAD_UNITS,
    MAX_PRECURSOR_FEATURES,
    PairHead,
    precursor_periods,
)
from kit.models.siamese.network import (
    _apply_rest,
    _split_first_dense,
    build_embedding_network,
    build_siamese,
    head_scores,
    normalize_rows,
    score_pairs,
)
from kit.models.siamese.persistence import SiamesePersistence
from kit.models.siamese.trainer import LazyAdam, SparsePairTrainer
from kit.progress import keras_verbosity

# Limits of the network a siamese may build, in training and on load alike: a forged
# manifest rebuilds its network from these parameters before any weight is read, so they
# bound what loading can allocate. The total weight budget holds ms2deepscore 2.x's
# (10000,) hidden layer on 9,900 bins (some 100 million weights, 400 MB).
MAX_LAYER_UNITS = 65_536
MAX_HIDDEN_LAYERS = 8
MAX_NETWORK_WEIGHTS = 150_000_000
#: Most bins a binning may give (0.001 Da over m/z 10-1000 is 990,000).
MAX_BINS = 1_000_000
#: What ``predict(..., return_std=True, n_passes=...)`` takes: two passes at least, to measure a spread.
N_PASSES = Interval(Integral, 2, None)
# Spectra embedded per forward pass at inference.
EMBED_BATCH = 1024


class SiameseModel(SiamesePersistence, PairModel):
    """MS2DeepScore-style siamese network: cosine of learned spectrum embeddings.

    Parameters
    ----------
    hidden_units : tuple of int, default (500, 500)
        Hidden blocks of the embedding network (ms2deepscore 2.x uses ``(10000,)``).
    embedding_dim : int, default 200
    dropout : float, default 0.2
    weight_penalty : float, default 1e-6
        L1 and L2 penalty on the hidden kernels (as MS2DeepScore v1); 0 turns it off.
    learning_rate : float, default 2.8e-3
        Adam's learning rate for one batch of ``batch_size`` pairs. MS2DeepScore v1 uses
        1e-3 with batches of 64; the default follows the square-root rule for batches of
        512 (1e-3 x sqrt(512 / 64)). The same rule is applied to the global batch: with
        ``R`` replicas (``distribute``) a step takes ``batch_size x R`` pairs and Adam
        runs at ``learning_rate x sqrt(R)``.
    epochs : int, default 30
        Most epochs; early stopping usually ends training sooner.
    batch_size : int, default 512
        Pairs per gradient step and replica (MS2DeepScore v1: 64). A sparse step costs about the
        rows its batch touches, which grow slower than the batch, so larger batches move
        more pairs per second.
    pairs_per_epoch : int, default 50000
        Training pairs drawn (balanced over Tanimoto bins) for each epoch.
    validation_pairs : int, default 5000
        Fixed validation pairs (balanced), drawn once.
    patience : int, default 6
        Epochs without a better validation RMSE before training stops (the best
        weights are restored).
    lr_patience : int or None, default 2
        Epochs without a better validation RMSE before the learning rate is divided by
        3 (down to 1/100 of ``learning_rate``); ``None`` keeps it constant.
    validation_fraction : float, default 0.1
        Share of training molecules held out when ``fit`` gets no validation spectra.
    bin_width : float, default 0.1
        Width of one m/z bin in Da (binning, :mod:`kit.data.binning`).
    mz_range : tuple of float, default (10.0, 1000.0)
        Lowest and highest m/z binned; peaks outside are dropped.
    intensity_power : float, default 0.5
        Power applied to each peak's intensity before binning (0.5: square roots).
    augment_removal_max : float, default 0.3
        Augmentation of training spectra (:func:`augment_peaks`; 0 turns this part
        off): the largest share of the weak peaks removed from each spectrum.
    augment_removal_intensity : float, default 0.2
        Augmentation: peaks below this intensity may be removed.
    augment_intensity : float, default 0.4
        Augmentation: every intensity is multiplied by a factor in 1 +/- this (0 turns it off).
    augment_noise_max : int, default 10
        Augmentation: at most this many noise peaks added to each spectrum (0 turns it off).
    augment_noise_intensity : float, default 0.01
        Augmentation: the highest intensity of a noise peak.
    use_metadata : bool, default True
        Also feed precursor m/z and ion mode to the embedding network (as ms2deepscore
        2.x does); ``False`` reads peaks only, as MS2DeepScore v1.
    use_adducts : bool or None, default None
        With ``use_metadata``, also feed each spectrum's adduct (a one-hot of the common
        ones) and, in place of its precursor m/z, the neutral mass the adduct gives
        (:data:`~kit.models.siamese.batches.ADDUCT_FEATURES`), so that a positive and a
        negative spectrum of one molecule have equal masses. ``None``: off, except that
        ``kit train`` turns it on for a competition of cross-mode pairs (``--pair-types``
        with ``cross``), so every other competition keeps the inputs (and predictions) it
        always had.
    precursor_encoding : int, default 16
        With ``use_metadata``, how many Fourier features of the precursor m/z (a sine and
        a cosine per period, an even number up to 256; 0 for none) tell two spectra's
        masses apart. With ``head_units`` the head reads the cosine of the mass
        difference for each of those periods (:class:`PairHead`); without, they join each
        embedding with one learned weight per period (:class:`PrecursorMatch`), so the
        cosine of two spectra gains a learned kernel of their mass difference.
    same_molecule_share : float or None, default None
        Share of the top-bin training pairs that are two spectra of one molecule (see
        :class:`kit.data.pairs.PairSampler`); ``None`` draws top-bin partners uniformly.
        Without a head, 0.9 helps the cosine learn the top bin; with one, the head
        learns it from the masses and uniform partners do better.
    head_units : tuple of int or None, default (32, 32)
        Hidden layers of a small head (:class:`PairHead`) that turns each pair's
        embedding cosine and precursor m/z difference into the similarity, so two
        spectra of one molecule (equal masses) can score 1; ``None`` (or ``()``)
        predicts the cosine itself, as MS2DeepScore. Each spectrum is embedded once
        either way.
    calibrate : bool, default True
        After training, fit a monotone map from the network's prediction to the
        Tanimoto score on the validation pairs (isotonic regression), and pass every
        prediction through it, where that map earns its place on molecules it was not
        fitted on (:func:`held_out_calibration`): fitted on one half of the validation
        molecules, it must lower the RMSE on the other half, both ways round; else the
        map is the identity. A network is surer of itself on the molecules it trained
        on than it has reason to be on new ones; the validation molecules are new to
        it, so the map pulls its predictions to what they turned out to mean there.
        Each spectrum is still embedded once. ``False`` predicts what the network
        gives, as MS2DeepScore. The map is fitted on the validation pairs, so a score
        on those same molecules is optimistic: ``kit train`` scores on molecules of
        its own.
    batchnorm_momentum : float, default 0.9
        Momentum of the BatchNormalization moving statistics, which validation and
        inference use. MS2DeepScore v1 keeps Keras' 0.99: with 8x fewer steps per epoch
        (batches of 512) those statistics lag the first epochs and validation RMSE with
        them; 0.9 lets them keep up.
    sparse_training : bool, default True
        Train on sparse batches (:class:`SparsePairTrainer`): the first layer reads only
        the bins each batch fills, and Adam (:class:`LazyAdam`) and the weight penalty
        work on those rows of the first kernel only, several times faster on a CPU.
        ``False`` trains on dense batches with Keras' Adam and the penalty on every
        weight at every step, as MS2DeepScore v1. The trained network and what it
        predicts mean the same either way.
    distribute : {"auto", "none", "mirrored", "multiworker"}, default "auto"
        How training is spread over devices (``tf.distribute``): "auto" mirrors over
        the GPUs when more than one is visible and runs on one device otherwise;
        "none" runs on one device; "mirrored" mirrors over the visible GPUs, else over
        the logical CPU devices; "multiworker" trains with the workers that the
        ``TF_CONFIG`` environment variable lists (MultiWorkerMirroredStrategy; only the
        chief saves, the other workers' ``save`` writes to a temporary folder). Under
        a strategy with several replicas, training feeds dense batches (the sparse
        batches of ``sparse_training`` cannot be split between replicas).
    mixed_precision : bool, default False
        Train in ``mixed_float16`` (float16 compute, float32 weights, loss scaling; the
        cosine and the loss stay float32), for GPUs with tensor cores. Accepted on a
        CPU with a warning (slower there). The saved network is float32 either way.
    seed : int, default 0
        Seeds weights, dropout, the validation split, pairs and augmentation.
    verbose : int or "auto", default "auto"
        Keras progress output while fitting (0 silences it); "auto" draws a bar on a
        terminal and prints one line per epoch elsewhere (a log file, a pipe).

    Attributes
    ----------
    embedding_network_ : keras.Model
    siamese_ : keras.Model
    history_ : dict of lists
        Per-epoch ``loss`` (MSE plus weight penalties), ``rmse``, ``val_loss``,
        ``val_rmse`` and, with ``lr_patience``, ``learning_rate``.
    best_val_rmse_ : float
        Validation RMSE of the restored (best) epoch, on the pairs early stopping watched.
        (``kit train`` adds ``validation_score_``: every diagnostic on its own held-out
        molecules, the same for every rung.)
    best_epoch_ : int
        1-based epoch whose weights were kept.
    calibration_ : dict or None
        With ``calibrate``: ``{"x": [...], "y": [...]}``, the increasing points of the
        isotonic map (network prediction to similarity) fitted on the validation pairs,
        between which predictions are interpolated (the identity ``{"x": [0, 1],
        "y": [0, 1]}`` where the held-out check found no gain); None without.
    calibration_gain_ : list of float or None
        With ``calibrate``: how much a map fitted on one half of the validation
        molecules lowered the RMSE on the other half, for each half
        (:func:`held_out_calibration`).
    n_replicas_ : int
        Replicas that trained together (1 without a strategy).
    metadata_features_ : list of str
        The metadata inputs the network reads (empty without ``use_metadata``).

    Examples
    --------
    >>> model = SiameseModel(epochs=5, seed=0).fit(train_spectra)              # doctest: +SKIP
    >>> model.predict(test_spectra, pairs)                                     # doctest: +SKIP
    >>> mean, std = model.predict(test_spectra, pairs, return_std=True)        # doctest: +SKIP
    """

    name = "siamese"
    save_format = "keras"
    # The binning parameters are checked by the binner (binning.binning_settings).
    _parameter_constraints = {
        "hidden_units": Each(Interval(Integral, 1, MAX_LAYER_UNITS), 1, MAX_HIDDEN_LAYERS),
        "embedding_dim": Interval(Integral, 1, MAX_LAYER_UNITS),
        "dropout": Interval(Real, 0, 0.95),
        "weight_penalty": Interval(Real, 0, 1),
        "learning_rate": Interval(Real, 0, 1, closed="right"),
        "epochs": Interval(Integral, 1, None),
        "batch_size": Interval(Integral, 1, None),
        "pairs_per_epoch": Interval(Integral, 1, None),
        "validation_pairs": Interval(Integral, 1, None),
        "patience": Interval(Integral, 0, None),
        "lr_patience": OrNone(Interval(Integral, 0, None)),
        "validation_fraction": Interval(Real, 0, 0.9),
        "augment_removal_max": Interval(Real, 0, 1),
        "augment_removal_intensity": Interval(Real, 0, 1),
        "augment_intensity": Interval(Real, 0, 1),
        "augment_noise_max": Interval(Integral, 0, None),
        "augment_noise_intensity": Interval(Real, 0, 1),
        "use_metadata": Boolean(),
        "use_adducts": OrNone(Boolean()),
        "precursor_encoding": Interval(Integral, 0, MAX_PRECURSOR_FEATURES),
        "same_molecule_share": OrNone(Interval(Real, 0, 1)),
        "head_units": OrNone(Each(Interval(Integral, 1, MAX_HEAD_UNITS), 0, MAX_HEAD_LAYERS)),
        "calibrate": Boolean(),
        "batchnorm_momentum": Interval(Real, 0, 1),
        "sparse_training": Boolean(),
        "distribute": Options(*DISTRIBUTE),
        "mixed_precision": Boolean(),
        "seed": Interval(Integral, 0, None),
        "verbose": Options("auto", 0, 1, 2),
    }

    def __init__(self, hidden_units=(500, 500), embedding_dim=200, dropout=0.2, weight_penalty=1e-6, learning_rate=2.8e-3,
                 epochs=30, batch_size=512, pairs_per_epoch=50000, validation_pairs=5000, patience=6, lr_patience=2,
                 validation_fraction=0.1,
                 bin_width=binning.BIN_WIDTH, mz_range=binning.MZ_RANGE, intensity_power=binning.INTENSITY_POWER,
                 augment_removal_max=0.3, augment_removal_intensity=0.2, augment_intensity=0.4, augment_noise_max=10,
                 augment_noise_intensity=0.01, use_metadata=True, use_adducts=None, precursor_encoding=16,
                 same_molecule_share=None, head_units=(32, 32), calibrate=True, batchnorm_momentum=0.9, sparse_training=True,
                 distribute="auto", mixed_precision=False, seed=0, verbose="auto"):
        self.hidden_units = hidden_units
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.weight_penalty = weight_penalty
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.pairs_per_epoch = pairs_per_epoch
        self.validation_pairs = validation_pairs
        self.patience = patience
        self.lr_patience = lr_patience
        self.validation_fraction = validation_fraction
        self.bin_width = bin_width
        self.mz_range = mz_range
        self.intensity_power = intensity_power
        self.augment_removal_max = augment_removal_max
        self.augment_removal_intensity = augment_removal_intensity
        self.augment_intensity = augment_intensity
        self.augment_noise_max = augment_noise_max
        self.augment_noise_intensity = augment_noise_intensity
        self.use_metadata = use_metadata
        self.use_adducts = use_adducts
        self.precursor_encoding = precursor_encoding
        self.same_molecule_share = same_molecule_share
        self.head_units = head_units
        self.calibrate = calibrate
        self.batchnorm_momentum = batchnorm_momentum
        self.sparse_training = sparse_training
        self.distribute = distribute
        self.mixed_precision = mixed_precision
        self.seed = seed
        self.verbose = verbose

    # -- settings ------------------------------------------------------------------
    def binning_settings(self):
        """The checked binning settings (a dict, as saved in the manifest)."""
        return binning.binning_settings(self.bin_width, self.mz_range, self.intensity_power)

    def _augmentation(self):
        return {
            "removal_max": float(self.augment_removal_max),
            "removal_intensity": float(self.augment_removal_intensity),
            "intensity": float(self.augment_intensity),
            "noise_max": int(self.augment_noise_max),
            "noise_intensity": float(self.augment_noise_intensity),
        }

    def _check_params(self):
        """Refuse bad parameters before any work (:data:`_parameter_constraints`, then the network's size).

        Returns ``hidden_units`` as a tuple of int.
        """
        params = validate_params(self._parameter_constraints, _one_layer_as_tuple(self.get_params(deep=False)))
        if params["precursor_encoding"] % 2:
            raise UserError(f"precursor_encoding must be an even number up to {MAX_PRECURSOR_FEATURES} (a sine and "
                            f"a cosine per period), found {params['precursor_encoding']!r}")
        units = params["hidden_units"]
        n_weights = self._n_weights(units, self._n_bins())
        if n_weights > MAX_NETWORK_WEIGHTS:
            raise UserError(f"the network would hold {n_weights:,} weights (hidden_units {list(units)}, embedding_dim "
                            f"{int(self.embedding_dim):,}, {self._n_bins():,} bins): at most {MAX_NETWORK_WEIGHTS:,} "
                            "fit the siamese rung")
        return units

    def check_params(self):
        self._check_params()

    def _n_bins(self):
        """Bins of the checked binning settings: the network's input width (at most :data:`MAX_BINS`)."""
        settings = self.binning_settings()
        lo, hi = settings["mz_range"]
        # Before n_bins: a bin width of 1e-300 would make it overflow.
        if (hi - lo) / settings["bin_width"] > MAX_BINS:
            raise UserError(f"binning: bin_width {settings['bin_width']:g} over m/z {lo:g}-{hi:g} gives more than "
                            f"{MAX_BINS:,} bins")
        return binning.n_bins(settings["bin_width"], settings["mz_range"])

    def _n_weights(self, units, n_bins):
        """Weights of the network these parameters build on ``n_bins`` bins (head and BatchNorm included)."""
        widths = [n_bins + len(self._metadata_names()), *units]
        total = sum(a * b + b + 4 * b for a, b in zip(widths, widths[1:]))
        total += units[-1] * int(self.embedding_dim) + int(self.embedding_dim)
        network_encoding, head_encoding = self._mass_encoding()
        total += network_encoding // 2
        head = [2 + head_encoding // 2, *self._head_units()]
        if len(head) > 1:
            total += sum(a * b + b for a, b in zip(head, head[1:] + [1]))
        return total

    def _head_units(self):
        """``head_units`` checked, as a tuple of int (empty for no head)."""
        units = _one_layer_as_tuple({"head_units": self.head_units})["head_units"]
        return self._parameter_constraints["head_units"].check(units, "head_units") or ()

    def _mass_encoding(self):
        """Precursor m/z features the network (PrecursorMatch) and the head each read."""
        encoding = int(self.precursor_encoding) if self.use_metadata else 0
        return (0, encoding) if self._head_units() else (encoding, 0)

    def _new_network(self, input_dim, mc_dropout=False, seed=None, penalize_first=True, dtype=None,
                     synchronized=False):
        return build_embedding_network(
            input_dim, hidden_units=self._check_params(), embedding_dim=int(self.embedding_dim),
            dropout=float(self.dropout), n_metadata=len(self._metadata_names()),
            weight_penalty=float(self.weight_penalty),
            mc_dropout=mc_dropout, seed=seed, penalize_first=penalize_first,
            batchnorm_momentum=float(self.batchnorm_momentum), dtype=dtype, synchronized=synchronized,
            precursor_encoding=self._mass_encoding()[0],
        )

    def _new_head(self):
        """The untrained :class:`PairHead`, or None without ``head_units``."""
        units = self._head_units()
        if not units:
            return None
        # float32 whatever the network's dtype policy: the head is tiny and reads masses.
        return PairHead(precursor_periods(self._mass_encoding()[1]).tolist(), units, name="pair_head",
                        dtype="float32")

    def _metadata_names(self):
        """The metadata inputs: those chosen at fit (or load) time, else those the parameters ask for."""
        if not self.use_metadata:
            return []
        chosen = getattr(self, "metadata_features_", None)
        if chosen is not None:
            return list(chosen)
        return list(ADDUCT_FEATURES if self.use_adducts else METADATA_FEATURES)

    def _choose_metadata(self, spectra):
        """Set :attr:`metadata_features_` for training on ``spectra`` (``use_adducts=None``: both ion modes?)."""
        adducts = bool(self.use_adducts)  # None: off, unless the competition's pairs cross modes (kit train)
        self.metadata_features_ = list(ADDUCT_FEATURES if adducts else METADATA_FEATURES) if self.use_metadata else []

    # -- features ------------------------------------------------------------------
    def _features(self, spectra):
        """Binned spectra (CSR) and metadata inputs (or None); empty rows are refused."""
        settings = self.binning_settings()
        matrix = binning.bin_spectra(spectra, **settings)
        binning.check_nonempty(matrix, spectra, settings)
        if not self.use_metadata:
            return matrix, None
        metadata = metadata_features(spectra, adducts=self._metadata_names() == list(ADDUCT_FEATURES))
        missing = int((metadata[:, 0] == 0).sum())
        if missing:
            warnings.warn(
                f"{missing:,} of {len(spectra):,} spectra have no precursor m/z (or one outside 0 to "
                f"{MAX_PRECURSOR_MZ:,.0f}): the metadata input uses 0 for them "
                "(use_metadata=False ignores metadata)", UserWarning, stacklevel=3,
            )
        return matrix, metadata

    # -- training ------------------------------------------------------------------
    def fit(self, spectra: Spectra, validation_spectra: Spectra | None = None) -> Self:
        """Train on spectra with structures; return ``self``.

        Parameters
        ----------
        spectra : list of matchms.Spectrum
            Training spectra with SMILES (and ideally InChIKeys).
        validation_spectra : list of matchms.Spectrum, optional
            Spectra with structures for early stopping; when omitted,
            ``validation_fraction`` of the training molecules is held out.

        Returns
        -------
        self
        """
        self._check_params()
        check_spectra(spectra, "training spectra")
        self._choose_metadata(spectra)
        started = time.perf_counter()
        # First, before other TensorFlow work: a multi-worker strategy needs it so.
        strategy, distributed, chief = distribution_strategy(self.distribute)
        n_replicas = int(strategy.num_replicas_in_sync)
        mixed = bool(self.mixed_precision)
        if mixed and not _gpus():
            warnings.warn("mixed_precision=True without a visible GPU: float16 runs slower than float32 on a CPU",
                          UserWarning, stacklevel=2)
        keras.utils.set_random_seed(int(self.seed))
        split_seed, val_seed, train_seed, calibration_seed = np.random.SeedSequence(int(self.seed)).spawn(4)
        train_part, train_sampler, val_part, val_sampler = self._split(spectra, validation_spectra, split_seed)
        train_x, train_meta = self._features(train_part)
        val_x, val_meta = self._features(val_part)
        val_pairs = val_sampler.sample(int(self.validation_pairs), np.random.default_rng(val_seed))
        if len(val_pairs[0]) == 0:
            raise UserError(
                f"no validation pairs among {len(val_part):,} validation spectra: expected molecules with at least "
                "two spectra between them (more molecules, or a larger validation_fraction)"
            )
        # Sparse batches cannot be split between replicas: a strategy gets dense ones.
        sparse = bool(self.sparse_training) and not distributed
        global_batch = int(self.batch_size) * n_replicas
        # The square-root rule, applied to the global batch.
        learning_rate = float(self.learning_rate) * math.sqrt(n_replicas)
        with strategy.scope():
            network = self._new_network(train_x.shape[1], penalize_first=not sparse,
                                        dtype="mixed_float16" if mixed else None, synchronized=distributed)
            head = self._new_head()
            siamese = build_siamese(network, head)
            trainer = SparsePairTrainer(network, float(self.weight_penalty), head) if sparse else siamese
            optimizer = (LazyAdam if sparse else keras.optimizers.Adam)(learning_rate=learning_rate)
            trainer.compile(
                optimizer=keras.optimizers.LossScaleOptimizer(optimizer) if mixed else optimizer,
                loss="mse",
                metrics=[keras.metrics.RootMeanSquaredError(name="rmse")],
                jit_compile=False,
            )
            # Adam's moments made here take milliseconds; made by the first step, inside
            # the trace of the training function, they took half a second.
            trainer.optimizer.build(trainer.trainable_variables)
        train_data = PairBatches(
            train_x, train_meta, global_batch, sampler=train_sampler, n_pairs=int(self.pairs_per_epoch),
            augmentation=self._augmentation(), seed=int(train_seed.generate_state(1)[0]), sparse=sparse,
            epochs=int(self.epochs),
        )
        val_data = PairBatches(val_x, val_meta, max(global_batch, 512), pairs=val_pairs, sparse=sparse)
        # The tf.data pipeline's pairs are already shuffled (and a tf.data dataset cannot be).
        feed = sparse or distributed
        train_feed, val_feed = (train_data.dataset(), val_data.dataset()) if feed else (train_data, val_data)
        if _multi_worker(strategy):
            _fit_across_workers(trainer, train_feed.element_spec)
        try:
            history = trainer.fit(train_feed, validation_data=val_feed, epochs=int(self.epochs),
                                  callbacks=self._callbacks(learning_rate), verbose=keras_verbosity(self.verbose),
                                  shuffle=not feed)
        finally:
            train_data.close()
        if distributed or mixed:
            # What is kept is a plain float32 network outside any strategy, so the saved
            # model loads and predicts the same anywhere.
            plain, plain_head = self._new_network(train_x.shape[1], penalize_first=not sparse), self._new_head()
            plain.set_weights([keras.ops.convert_to_numpy(w) for w in network.weights])
            siamese = build_siamese(plain, plain_head)
            if head is not None:
                plain_head.set_weights([keras.ops.convert_to_numpy(w) for w in head.weights])
            network, head = plain, plain_head
        self.history_ = {k: [float(v) for v in values] for k, values in history.history.items()}
        val_rmse = self.history_.get("val_rmse", [])
        self.best_epoch_ = int(np.argmin(val_rmse)) + 1 if val_rmse else len(self.history_.get("loss", []))
        self.best_val_rmse_ = float(min(val_rmse)) if val_rmse else None
        self.embedding_network_, self.siamese_, self.head_ = network, siamese, head
        self.calibration_, self.calibration_gain_ = None, None
        if self.calibrate:
            vectors = self._embed(val_x, val_meta, network)
            pair_molecules = val_sampler.spectrum_molecule[np.column_stack(val_pairs[:2])]
            self.calibration_, self.calibration_gain_ = held_out_calibration(
                self._network_scores(vectors, val_meta, *val_pairs[:2]), val_pairs[2], pair_molecules,
                np.random.default_rng(calibration_seed))
        self.n_train_spectra_, self.n_validation_spectra_ = len(train_part), len(val_part)
        self.n_replicas_, self.is_chief_ = n_replicas, chief
        self.fit_seconds_ = time.perf_counter() - started
        self.fitted_ = True
        return self

    def _split(self, spectra, validation_spectra, split_seed):
        """Training and validation spectra, each with a pair sampler over its molecules."""
        share = self.same_molecule_share
        if validation_spectra is not None:
            check_spectra(validation_spectra, "validation spectra")
            return (*_sampler_of(spectra, "training spectra", share),
                    *_sampler_of(validation_spectra, "validation spectra", share))
        kept, molecules = _molecules(spectra, "training spectra")
        held = split_molecules(molecules.keys, float(self.validation_fraction), np.random.default_rng(split_seed),
                               option="validation_fraction")
        fps = molecules.fingerprints()
        return (*_subset_sampler(kept, molecules, fps, ~held, share),
                *_subset_sampler(kept, molecules, fps, held, share))

    def _callbacks(self, learning_rate):
        # val_rmse leaves out the weight penalties that val_loss includes.
        callbacks = [keras.callbacks.EarlyStopping(monitor="val_rmse", mode="min", patience=int(self.patience),
                                                   restore_best_weights=True)]
        if self.lr_patience is not None:
            callbacks.append(keras.callbacks.ReduceLROnPlateau(
                monitor="val_rmse", mode="min", factor=1 / 3, patience=int(self.lr_patience),
                min_lr=learning_rate / 100, verbose=0,
            ))
        return callbacks

    # -- inference -----------------------------------------------------------------
    def _embed(self, matrix, metadata, network, batch_size=EMBED_BATCH):
        """Unit-length embeddings (float32) of binned spectra, batch by batch.

        The first layer runs as a sparse product: a spectrum fills a few dozen of the
        thousands of bins, so multiplying the CSR rows by the first kernel skips the zeros
        a dense batch would multiply. The other layers run in Keras, in inference mode.
        """
        first, rest = _split_first_dense(network)
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in first.weights[:2])
        n_bins = matrix.shape[1]
        out = np.empty((matrix.shape[0], int(network.output_shape[-1])), dtype=np.float32)
        for start in range(0, matrix.shape[0], batch_size):
            stop = min(start + batch_size, matrix.shape[0])
            hidden = np.asarray(matrix[start:stop] @ kernel[:n_bins]) + bias
            if metadata is not None:
                hidden += metadata[start:stop] @ kernel[n_bins:]
            x = np.maximum(hidden, 0.0).astype(np.float32)
            x = _apply_rest(rest, x, None if metadata is None else metadata[start:stop], training=False)
            out[start:stop] = keras.ops.convert_to_numpy(x)
        if not np.isfinite(out).all():
            raise UserError("the siamese network gives embeddings that are not finite (NaN or infinite weights?): "
                            "expected a network trained and saved by the siamese rung")
        return normalize_rows(out)

    def predict_embeddings(self, spectra, batch_size=EMBED_BATCH):
        """Unit-length embedding of each spectrum (``float32``, one row per spectrum).

        The dot product of two rows is the cosine the model compares spectra by, so a
        library search is one matrix product. Without ``head_units`` it is the predicted
        similarity before calibration (a monotone map: the ranking is the same); with
        them, :meth:`predict` passes it and the two precursor m/z through the head. A
        spectrum whose embedding is all zeros (every ReLU off) keeps a zero row and
        scores 0 against everything.

        Raises
        ------
        UserError
            Before ``fit``, or for a spectrum with no peak inside ``mz_range``.

        Examples
        --------
        >>> library = model.predict_embeddings(library_spectra)              # doctest: +SKIP
        >>> scores = model.predict_embeddings(queries) @ library.T           # doctest: +SKIP
        """
        self._check_fitted()
        check_spectra(spectra)
        matrix, metadata = self._features(spectra)
        return self._embed(matrix, metadata, self.embedding_network_, batch_size)

    def _predict_indices(self, spectra, idx_a, idx_b):
        used, (a, b) = _distinct(idx_a, idx_b)
        subset = [spectra[i] for i in used]
        matrix, metadata = self._features(subset)
        vectors = self._embed(matrix, metadata, self.embedding_network_)
        return self.score_embeddings(vectors, metadata, a, b)

    def score_embeddings(self, vectors, metadata, idx_a, idx_b):
        """Similarity of each pair of embedded spectra: the cosine, or what the head makes of it.

        Passed through the calibration map when there is one (``calibrate``).

        Parameters
        ----------
        vectors : numpy.ndarray
            One embedding per spectrum (:meth:`predict_embeddings`).
        metadata : numpy.ndarray or None
            The spectra's metadata inputs (:func:`metadata_features`; None without
            ``use_metadata``), which the head reads.
        idx_a, idx_b : numpy.ndarray of int
            Rows of the two spectra of each pair.

        Examples
        --------
        >>> vectors = model.predict_embeddings(spectra)                                  # doctest: +SKIP
        >>> model.score_embeddings(vectors, metadata_features(spectra), [0, 1], [1, 2])  # doctest: +SKIP
        """
        scores = self._network_scores(vectors, metadata, idx_a, idx_b)
        return apply_calibration(getattr(self, "calibration_", None), scores)

    def _network_scores(self, vectors, metadata, idx_a, idx_b):
        """What the network itself predicts for pairs of embedded spectra (before calibration)."""
        head = getattr(self, "head_", None)
        if head is None:
            return score_pairs(vectors, idx_a, idx_b)
        return head_scores(head, vectors, metadata, idx_a, idx_b)

    def predict(self, spectra: Spectra, pairs: "pd.DataFrame | np.ndarray", return_std: bool = False,
                n_passes: int = 10) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """One similarity per pair in [0, 1]; with ``return_std``, also its spread.

        Parameters
        ----------
        spectra, pairs
            As :meth:`kit.models.base.PairModel.predict`.
        return_std : bool, default False
            Also return the spread of ``n_passes`` Monte Carlo dropout predictions.
        n_passes : int, default 10
            Forward passes with dropout on (only with ``return_std``).

        Returns
        -------
        numpy.ndarray, or (mean, std) with ``return_std``
            Without ``return_std``: the deterministic prediction (dropout off). With it:
            the mean and standard deviation over passes with random dropout masks
            (BatchNormalization stays in inference mode). The spread is the model's own
            uncertainty: a large one flags spectra unlike the training data. It is not a
            calibrated error bar: the true Tanimoto often lies further away.

        Examples
        --------
        >>> mean, std = model.predict(comp.test_spectra, comp.test_pairs, return_std=True)  # doctest: +SKIP
        """
        if not return_std:
            return super().predict(spectra, pairs)
        n_passes = check_param(n_passes, "n_passes", N_PASSES)
        self._check_fitted()
        check_spectra(spectra)
        idx_a, idx_b = pair_indices(spectra, pairs)
        used, (a, b) = _distinct(idx_a, idx_b)
        matrix, metadata = self._features([spectra[i] for i in used])
        network = self._new_network(matrix.shape[1], mc_dropout=True, seed=int(self.seed))
        network.set_weights(self.embedding_network_.get_weights())
        total = np.zeros(len(a))
        total_sq = np.zeros(len(a))
        for _ in range(int(n_passes)):
            score = self.score_embeddings(self._embed(matrix, metadata, network), metadata, a, b).astype(np.float64)
            total += score
            total_sq += score * score
        mean = total / n_passes
        std = np.sqrt(np.maximum(total_sq / n_passes - mean * mean, 0.0))
        return mean, std

    # -- persistence ---------------------------------------------------------------
    def save(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        """Save into the folder ``path``; a multi-worker non-chief writes to a temporary folder.

        Every worker of ``distribute="multiworker"`` holds the same weights; only the
        chief's copy lands in ``path``, and the others return where theirs went.
        """
        if getattr(self, "is_chief_", True) is False:
            path = Path(tempfile.mkdtemp(prefix="kit-siamese-worker-")) / Path(path).name
        return super().save(path, extra)


def _one_layer_as_tuple(params):
    """``params`` with an int ``hidden_units`` or ``head_units`` (one layer) written as a one-item tuple."""
    return {name: (value,) if name in ("hidden_units", "head_units") and isinstance(value, (int, np.integer))
            and not isinstance(value, (bool, np.bool_)) else value for name, value in params.items()}


def _distinct(idx_a, idx_b):
    """Distinct spectra used by the pairs, and each pair's positions among them."""
    used, inverse = np.unique(np.concatenate([idx_a, idx_b]), return_inverse=True)
    return used, (inverse[: len(idx_a)], inverse[len(idx_a):])


