"""Training pairs and batches of the siamese: metadata inputs, augmentation, the Keras batch pipeline, samplers."""
import math
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import tensorflow as tf

from kit.data import binning
from kit.data.chemistry import molecules_of
from kit.data.pairs import PairSampler
from kit.errors import UserError
from kit.models.features import adduct_name, neutral_masses

# Metadata inputs (``use_metadata=True``): precursor m/z / 1000 and ion mode (+1, -1, 0).
METADATA_FEATURES = ("precursor_mz/1000", "ionmode")
#: Adducts of the adduct inputs, as matchms spells them (:func:`kit.models.features.adduct_name`):
#: the commonest of MassBank, most spectra of each mode. Another adduct gets all zeros.
COMMON_ADDUCTS = ("[M+H]+", "[M]+", "[M+Na]+", "[M+NH4]+", "[M-H2O+H]+",
                  "[M-H]-", "[M+FA-H]-", "[M+CH3COO]-", "[M-2H]-", "[M+Cl]-")
#: Metadata inputs with the adducts (``use_adducts``): the neutral mass the adduct gives in
#: place of the precursor m/z (so the head compares molecules, not ions, across modes), the
#: ion mode, and a one-hot of :data:`COMMON_ADDUCTS`.
ADDUCT_FEATURES = ("neutral_mass/1000", "ionmode", *(f"adduct={name}" for name in COMMON_ADDUCTS))
# Largest precursor m/z read (far above any small molecule); a larger one counts as missing,
# as it would overflow the network's float32 inputs (1e300 gave infinite embeddings).
MAX_PRECURSOR_MZ = 100_000.0
# Periods (Da) of the precursor m/z's Fourier features (``precursor_encoding``), spaced


def metadata_features(spectra, adducts=False):
    """Metadata inputs of each spectrum: precursor m/z / 1000 and ion mode (+1, -1, 0).

    Missing values give 0, and so do precursor m/z that are not numbers in
    ``(0, MAX_PRECURSOR_MZ]``. With ``adducts``, the columns of :data:`ADDUCT_FEATURES`:
    the neutral mass from the adduct (:func:`kit.models.features.neutral_masses`) in place of
    the precursor m/z, then the ion mode and a one-hot of the adduct.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([50.0]), np.array([1.0]), {"precursor_mz": 250.0, "ionmode": "negative"},
    ...              metadata_harmonization=False)
    >>> metadata_features([s]).tolist()
    [[0.25, -1.0]]
    >>> s = s.set("adduct", "[M-H]-")
    >>> [round(float(v), 5) for v in metadata_features([s], adducts=True)[0, [0, 1, 7]]]
    [0.25101, -1.0, 1.0]
    """
    names = ADDUCT_FEATURES if adducts else METADATA_FEATURES
    out = np.zeros((len(spectra), len(names)), dtype=np.float32)
    masses = np.zeros(len(spectra))
    for row, spectrum in enumerate(spectra):
        try:
            mz = float(spectrum.get("precursor_mz") or 0.0)
        except (TypeError, ValueError):
            mz = 0.0
        masses[row] = mz if 0 < mz <= MAX_PRECURSOR_MZ else 0.0
        out[row, 1] = {"positive": 1.0, "negative": -1.0}.get(str(spectrum.get("ionmode") or "").lower(), 0.0)
    if adducts:
        usable = np.flatnonzero(masses > 0)
        masses[usable] = neutral_masses([spectra[i] for i in usable], masses[usable])
        # A mass that an odd adduct would make zero or negative counts as missing, as above.
        masses = np.where(masses > 0, masses, 0.0)
        column = {name: 2 + k for k, name in enumerate(COMMON_ADDUCTS)}
        for row, spectrum in enumerate(spectra):
            if adduct_name(spectrum) in column:
                out[row, column[adduct_name(spectrum)]] = 1.0
    out[:, 0] = masses / 1000.0
    return out


# -- augmentation and batches ---------------------------------------------------------
def augment_peaks(rows, matrix, rng, removal_max=0.3, removal_intensity=0.2, intensity=0.4, noise_max=10,
                  noise_intensity=0.01):
    """Augmented peaks of a batch of binned spectra, as sparse entries.

    Per spectrum, as in MS2DeepScore v1: a share drawn from ``U(0, removal_max)`` of the
    peaks below ``removal_intensity`` is removed; every intensity is multiplied by
    ``U(1 - intensity, 1 + intensity)``; up to ``noise_max`` noise peaks of intensity
    ``U(0, noise_intensity)`` are added in random bins (a real peak wins over noise in its
    bin). Works on the peaks only, so a batch costs its peaks, not its bins.

    Returns
    -------
    row, column : int32 arrays
        Position of each entry in the batch (row ``i`` is ``rows[i]``), sorted by row then
        column, each position once.
    value : float32 array

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> m = sp.csr_matrix(np.array([[0, 1.0, 0.1, 0]], dtype=np.float32))
    >>> r, c, v = augment_peaks(np.array([0]), m, np.random.default_rng(0), removal_max=0, noise_max=0, intensity=0)
    >>> r.tolist(), c.tolist(), v.tolist()
    ([0, 0], [1, 2], [1.0, 0.10000000149011612])
    """
    sub = matrix[np.asarray(rows)]
    n, width = sub.shape
    row_of = np.repeat(np.arange(n), np.diff(sub.indptr))
    values, cols = sub.data.astype(np.float32), sub.indices
    keep = np.ones(len(values), dtype=bool)
    if removal_max > 0:
        share = rng.uniform(0.0, removal_max, n)
        keep = ~((values < removal_intensity) & (rng.random(len(values)) < share[row_of]))
    if intensity > 0:
        values = values * rng.uniform(1.0 - intensity, 1.0 + intensity, len(values)).astype(np.float32)
    row_of, cols, values = row_of[keep], cols[keep], values[keep]
    if noise_max > 0:
        counts = rng.integers(0, int(noise_max) + 1, n)
        total = int(counts.sum())
        noise_cols = rng.integers(0, width, total)
        noise_values = rng.uniform(0.0, noise_intensity, total).astype(np.float32)
        # Noise first, peaks after: where a position repeats, the last entry wins.
        row_of = np.concatenate([np.repeat(np.arange(n), counts), row_of])
        cols = np.concatenate([noise_cols, cols])
        values = np.concatenate([noise_values, values])
        key = row_of.astype(np.int64) * width + cols
        _, last = np.unique(key[::-1], return_index=True)
        pick = len(key) - 1 - last
        row_of, cols, values = row_of[pick], cols[pick], values[pick]
    return row_of.astype(np.int32), cols.astype(np.int32), values.astype(np.float32)


def augment_batch(rows, matrix, rng, **augmentation):
    """Dense ``float32`` batch of binned spectra, each augmented by :func:`augment_peaks`.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> m = sp.csr_matrix(np.array([[0, 1.0, 0.1, 0]], dtype=np.float32))
    >>> x = augment_batch(np.array([0]), m, np.random.default_rng(0), noise_max=0, intensity=0)
    >>> x.shape, float(x[0, 1])
    ((1, 4), 1.0)
    """
    row_of, cols, values = augment_peaks(rows, matrix, rng, **augmentation)
    out = np.zeros((len(rows), matrix.shape[1]), dtype=np.float32)
    out[row_of, cols] = values
    return out


class PairBatches(keras.utils.PyDataset):
    """Batches ``((spectrum a, spectrum b), similarity)`` for ``keras.Model.fit``.

    With a ``sampler`` the pairs are redrawn at the start of every epoch (seeded by
    ``seed`` and the epoch number) and augmented; with fixed ``pairs`` (validation) they
    are used as given, unaugmented.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        Binned spectra.
    metadata : numpy.ndarray or None
        Metadata inputs of each spectrum.
    batch_size : int
    sampler : kit.data.pairs.PairSampler, optional
    n_pairs : int, optional
        Pairs per epoch (with ``sampler``).
    pairs : (idx_a, idx_b, similarity), optional
        Fixed pairs (without ``sampler``).
    augmentation : dict, optional
        Keyword arguments of :func:`augment_peaks`; ``None`` turns augmentation off.
    seed : int
    epochs : int, optional
        Epochs the fit will run at most (with ``sampler``): no pairs are drawn ahead for
        an epoch after the last, whose draw would only take CPU from the last epoch's steps.
    sparse : bool, default False
        Give each batch as sparse entries ``(row, column, value, n_spectra)`` instead of
        dense arrays: rows ``0..n-1`` are the spectra a, rows ``n..2n-1`` the spectra b,
        and metadata inputs are the columns after the bins (the input of
        :class:`SparsePairTrainer`). The same seed gives the same values either way.
    """

    def __init__(self, matrix, metadata, batch_size, sampler=None, n_pairs=None, pairs=None, augmentation=None,
                 seed=0, sparse=False, epochs=None):
        super().__init__()
        self.matrix, self.metadata, self.batch_size = matrix, metadata, int(batch_size)
        self.sampler, self.n_pairs, self.augmentation, self.seed = sampler, n_pairs, augmentation, int(seed)
        self.sparse = bool(sparse)
        self.epochs = None if epochs is None else int(epochs)
        self.epoch = 0
        self._drawn_for = None
        self._ahead = None  # (epoch, future) of pairs drawn in the background
        self._executor = None
        if sampler is None:
            self.idx_a, self.idx_b, self.similarity = (np.asarray(p) for p in pairs)
        else:
            self._draw()

    def _draw(self, ahead=False):
        if self.sampler is None:
            return
        if self._drawn_for != self.epoch:
            if self._ahead is not None and self._ahead[0] == self.epoch:
                self.idx_a, self.idx_b, self.similarity = self._ahead[1].result()
            else:
                self.idx_a, self.idx_b, self.similarity = self._pairs(self.epoch)
            self._drawn_for = self.epoch
        # Also when this epoch's pairs were drawn already (the first epoch's, at __init__):
        # else the second epoch would wait for its pairs.
        last = self.epochs is not None and self.epoch + 1 >= self.epochs
        if ahead and not last and (self._ahead is None or self._ahead[0] <= self.epoch):
            # The next epoch's pairs are drawn in a thread while this epoch trains
            # (NumPy and TensorFlow both release the GIL in their heavy parts).

            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kit-pairs")
            self._ahead = (self.epoch + 1, self._executor.submit(self._pairs, self.epoch + 1))

    def _pairs(self, epoch):
        """The pairs of one epoch, shuffled (the same for a given seed and epoch, in any thread)."""
        rng = np.random.default_rng([self.seed, epoch])
        a, b, y = self.sampler.sample(self.n_pairs, rng)
        # The sampler groups pairs by bin; batches need a mix of them.
        order = rng.permutation(len(a))
        return a[order], b[order], y[order]

    def close(self):
        """Stop drawing pairs ahead (a draw under way finishes in its thread)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor, self._ahead = None, None

    def on_epoch_begin(self):
        self._draw()

    def on_epoch_end(self):
        if self.sampler is not None:
            self.epoch += 1

    def __len__(self):
        return math.ceil(len(self.idx_a) / self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        a, b = self.idx_a[part], self.idx_b[part]
        both = np.concatenate([a, b])
        y = self.similarity[part].astype(np.float32)
        if self.sparse:
            return self._entries(both, index), y
        if self.augmentation is None:
            rows = binning.densify(self.matrix, both)
        else:
            rows = augment_batch(both, self.matrix, self._rng(index), **self.augmentation)
        xa, xb = rows[: len(a)], rows[len(a):]
        if self.metadata is None:
            return (xa, xb), y
        return (xa, self.metadata[a], xb, self.metadata[b]), y

    def _rng(self, index):
        # One stream per (epoch, batch): the same batch looks the same whenever it is built.
        return np.random.default_rng([self.seed, self.epoch, index, 1])

    def _entries(self, spectra, index):
        if self.augmentation is None:
            sub = self.matrix[spectra]
            row = np.repeat(np.arange(len(spectra), dtype=np.int32), np.diff(sub.indptr))
            col, value = sub.indices.astype(np.int32), sub.data.astype(np.float32)
        else:
            row, col, value = augment_peaks(spectra, self.matrix, self._rng(index), **self.augmentation)
        if self.metadata is not None:
            width = self.metadata.shape[1]
            row = np.concatenate([row, np.repeat(np.arange(len(spectra), dtype=np.int32), width)])
            col = np.concatenate([col, np.tile(np.arange(width, dtype=np.int32) + self.matrix.shape[1], len(spectra))])
            value = np.concatenate([value, self.metadata[spectra].ravel()])
            # Sorted by row (then column), as a CSR matrix is built.
            order = np.argsort(row, kind="stable")
            row, col, value = row[order], col[order], value[order]
        return row, col, value.astype(np.float32), np.int32(len(spectra))

    def dataset(self):
        """The batches as a ``tf.data.Dataset``, built one batch ahead.

        Each pass over the dataset is one epoch (pairs redrawn with a sampler); the next
        batch is prepared in a ``tf.data`` thread while the current one trains, and the
        next epoch's pairs in another thread. Call :meth:`close` when done. Dense
        batches (``sparse=False``) can be split between the replicas of a
        ``tf.distribute`` strategy: each worker builds the same batches (same seed) and
        keeps its share of each.
        """
        def epoch():
            self._draw(ahead=True)
            for index in range(len(self)):
                yield self[index]
            self.on_epoch_end()

        target = tf.TensorSpec([None], tf.float32)
        if self.sparse:
            entries = tf.TensorSpec([None], tf.int32)
            signature = ((entries, entries, tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)), target)
        else:
            spectra = tf.TensorSpec([None, self.matrix.shape[1]], tf.float32)
            side = (spectra,) if self.metadata is None else (spectra, tf.TensorSpec([None, self.metadata.shape[1]],
                                                                                     tf.float32))
            signature = (side + side, target)
        data = tf.data.Dataset.from_generator(epoch, output_signature=signature)
        options = tf.data.Options()
        # A generator has no files to split between workers: each keeps its share of every batch.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        data = data.with_options(options)
        return data.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)



def _molecules(spectra, what):
    kept, molecules = molecules_of(spectra)
    if len(kept) != len(spectra):
        raise UserError(
            f"{len(spectra) - len(kept):,} of {len(spectra):,} {what} have no usable structure: "
            "expected SMILES that RDKit parses in every spectrum"
        )
    return kept, molecules


def _subset_sampler(spectra, molecules, fps, molecule_mask, same_molecule_share=None):
    """Spectra of the chosen molecules and a pair sampler over them."""
    rows = np.flatnonzero(molecule_mask[molecules.spectrum_molecule])
    local = np.cumsum(molecule_mask) - 1
    sampler = PairSampler(local[molecules.spectrum_molecule[rows]], fps[molecule_mask],
                          same_molecule_share=same_molecule_share)
    return [spectra[i] for i in rows], sampler


def _sampler_of(spectra, what, same_molecule_share=None):
    kept, molecules = _molecules(spectra, what)
    return _subset_sampler(kept, molecules, molecules.fingerprints(), np.ones(len(molecules), dtype=bool),
                           same_molecule_share)
