"""The ``siamese`` rung: an MS2DeepScore-style siamese network in Keras 3 (TensorFlow).

Each spectrum is binned (:mod:`kit.data.binning`), one shared embedding network maps it to a
vector, and the cosine of two vectors predicts the Tanimoto similarity of the two
molecules (Huber et al. 2021, J Cheminform 13:84). The reference architecture is
MS2DeepScore v1::

    binned spectrum (9,900) - Dense 500 - BatchNorm - Dense 500 - BatchNorm - Dropout 0.2
    - Dense 200 (the embedding)

with ReLU activations (the embedding too, so cosines lie in [0, 1]), MSE loss and Adam.
Predicted similarities are clipped to [0, 1].
Training pairs are balanced over the ten Tanimoto bins, redrawn every epoch and
augmented; a validation split by molecule drives early stopping. Inference embeds
every spectrum once and scores pairs by dot products of unit vectors.

Defaults go beyond v1 where they won on validation (MassBank positive mode, molecules held
out from training; ``bench/bench_siamese_variants.py``): the precursor m/z and ion mode
join the binned peaks (as in ms2deepscore 2.x); a small head (:class:`PairHead`) turns
each pair's embedding cosine and precursor m/z difference into the similarity, so that
two spectra of one molecule (most of the top Tanimoto bin, equal precursor masses) can
score 1 while each spectrum is still embedded once; 50,000 pairs an epoch; the learning
rate drops by a factor 3 when validation RMSE stalls for 2 epochs; after training, an
isotonic map fitted on the validation pairs (``calibrate``) pulls the network's
predictions, overconfident on molecules it never saw, to what they meant on new ones,
where such a map lowers the RMSE on validation molecules it was not fitted on.
Without the head,
:class:`PrecursorMatch` joins a learned kernel of the mass difference to the embedding
instead. Training runs on sparse batches of 512 pairs
(:class:`SparsePairTrainer`, :class:`LazyAdam`), several times more pairs per second on a
CPU than v1's dense batches of 64. MS2DeepScore v1 exactly is
``SiameseModel(use_metadata=False, precursor_encoding=0, same_molecule_share=None, head_units=None, calibrate=False,
pairs_per_epoch=20000, lr_patience=None, sparse_training=False, batch_size=64,
learning_rate=1e-3, batchnorm_momentum=0.99)``.

Beyond one device, training runs on TensorFlow's own engine (``distribute``):
``tf.distribute.MirroredStrategy`` over several GPUs (or logical CPUs), or
``MultiWorkerMirroredStrategy`` over the workers of ``TF_CONFIG``, fed by ``tf.data``
with dense batches split between replicas (global batch ``batch_size`` x replicas,
learning rate x sqrt(replicas)); ``mixed_precision`` trains in ``mixed_float16``. The
saved network is a plain float32 Keras model either way.

Examples
--------
>>> from kit.models.siamese import SiameseModel
>>> model = SiameseModel(epochs=20, seed=0).fit(comp.train_spectra)        # doctest: +SKIP
>>> similarity = model.predict(comp.test_spectra, comp.test_pairs)        # doctest: +SKIP
>>> vectors = model.predict_embeddings(comp.test_spectra)                 # doctest: +SKIP
"""
import math
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kit.thirdparty import import_tensorflow  # noqa: E402

import_tensorflow()  # first, without TensorFlow's start-up notices

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kit.data import binning  # noqa: E402
from kit.errors import UserError, first_line  # noqa: E402
from kit.models.base import PairModel, check_spectra, pair_indices  # noqa: E402
from kit.progress import keras_verbosity  # noqa: E402

#: The network's weights, in Keras' HDF5 format: all a saved siamese holds beside its manifest.
WEIGHTS_FILE = "model.weights.h5"
#: What earlier saves held instead: a Keras zip (``model.keras``) of ``config.json``, which
#: is never read, and the same weights file, which is.
LEGACY_FILE_SUFFIX = ".keras"
# Limits of the network a siamese may build, in training and on load alike: a forged
# manifest rebuilds its network from these parameters before any weight is read, so they
# bound what loading can allocate. The total weight budget holds ms2deepscore 2.x's
# (10000,) hidden layer on 9,900 bins (some 100 million weights, 400 MB).
MAX_LAYER_UNITS = 65_536
MAX_HIDDEN_LAYERS = 8
MAX_NETWORK_WEIGHTS = 150_000_000
#: Most bins a binning may give (0.001 Da over m/z 10-1000 is 990,000).
MAX_BINS = 1_000_000
# Spectra embedded per forward pass at inference; pairs scored per chunk, small enough
# that the gathered rows stay in cache (larger chunks run slower, not faster).
EMBED_BATCH = 1024
SCORE_CHUNK = 4096
# Pairs per call of a PairHead at inference.
HEAD_CHUNK = 65536
# Metadata inputs (``use_metadata=True``): precursor m/z / 1000 and ion mode (+1, -1, 0).
METADATA_FEATURES = ("precursor_mz/1000", "ionmode")
# Largest precursor m/z read (far above any small molecule); a larger one counts as missing,
# as it would overflow the network's float32 inputs (1e300 gave infinite embeddings).
MAX_PRECURSOR_MZ = 100_000.0
# Periods (Da) of the precursor m/z's Fourier features (``precursor_encoding``), spaced
# geometrically: the shortest tells apart masses a few hundredths of a Da apart.
PRECURSOR_PERIODS = (0.05, 1000.0)
# Most precursor m/z features (``precursor_encoding``); each adds a column to every embedding.
MAX_PRECURSOR_FEATURES = 256
# Most hidden layers, and units per layer, of a PairHead (``head_units``).
MAX_HEAD_LAYERS = 4
MAX_HEAD_UNITS = 1024
# Most points of a calibration map kept in the manifest (5,000 validation pairs give
# about 160); a larger fit keeps evenly spaced ones, so the manifest stays small.
MAX_CALIBRATION_POINTS = 4096
# Values of SiameseModel(distribute=...).
DISTRIBUTE = ("auto", "none", "mirrored", "multiworker")


# -- the networks --------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="kit")
class MonteCarloDropout(keras.layers.Dropout):
    """Dropout that stays on at inference (Monte Carlo dropout).

    Only the dropout masks are random: the rest of the network, BatchNormalization
    included, runs in inference mode.
    """

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


@keras.saving.register_keras_serializable(package="kit")
class PrecursorMatch(keras.layers.Layer):
    """Join Fourier features of the precursor m/z to a unit embedding.

    Inputs are ``[embedding, metadata]`` (metadata column 0 is precursor m/z / 1000);
    the output is ``[embedding / |embedding|, w * f(m)]`` where ``f(m)`` holds
    ``sin(2 pi m / P)`` and ``cos(2 pi m / P)`` for each period ``P`` (divided by the
    square root of their count) and ``w`` one learned weight per period. Of two outputs,
    the mass parts contribute ``sum_P w_P^2 cos(2 pi (m_a - m_b) / P) / n`` to the dot
    product: a learned kernel of the mass difference, largest when the masses are
    equal, as for two spectra of one molecule. Only ``len(periods)`` weights are
    learned, so the layer cannot learn which molecule a mass belongs to. A spectrum
    with no precursor m/z (0) gets zeros.

    Parameters
    ----------
    periods : sequence of float
        Periods in Da (see :func:`precursor_periods`).
    """

    def __init__(self, periods, **kwargs):
        super().__init__(**kwargs)
        self.periods = [float(p) for p in periods]

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(len(self.periods),), initializer="ones", name="scale")

    def call(self, inputs):
        import tensorflow as tf

        embedding, metadata = inputs
        embedding = tf.math.l2_normalize(tf.cast(embedding, tf.float32), axis=1)
        mz = tf.cast(metadata[:, 0], tf.float32) * 1000.0
        angle = (2 * math.pi) * mz[:, None] / tf.constant(self.periods, tf.float32)[None, :]
        known = tf.cast(mz > 0, tf.float32)[:, None] / math.sqrt(len(self.periods))
        scale = tf.cast(self.scale, tf.float32)
        return tf.concat([embedding, tf.sin(angle) * known * scale, tf.cos(angle) * known * scale], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][1] + 2 * len(self.periods))

    def get_config(self):
        return {**super().get_config(), "periods": self.periods}


@keras.saving.register_keras_serializable(package="kit")
class PairHead(keras.layers.Layer):
    """Turn the cosine of two embeddings, and their precursor m/z, into one similarity.

    Inputs are ``[embedding_a, embedding_b]``, or ``[embedding_a, embedding_b, metadata_a,
    metadata_b]`` (metadata column 0 is precursor m/z / 1000). The layer reads, for each
    pair, the cosine ``c`` of the two embeddings and, when both precursor m/z are known,
    ``cos(2 pi |m_a - m_b| / P)`` for each period ``P`` (a Fourier view of the mass
    difference, never of the masses themselves, so the head cannot learn which molecule a
    mass belongs to) and returns ``c + mlp(c, known, those cosines)``: a small ReLU network
    whose last layer starts at zero, so an untrained head predicts the plain cosine. Two
    spectra of one molecule share their precursor m/z; the head can lift their similarity
    to 1, which a cosine of two separate embeddings cannot reach unless the embeddings
    are identical. Each spectrum is still embedded once: the head costs a few hundred
    multiply-adds per pair.

    Parameters
    ----------
    periods : sequence of float
        Periods in Da of the mass-difference features (see :func:`precursor_periods`);
        empty to read the cosine only.
    units : sequence of int
        Width of each hidden layer.
    """

    def __init__(self, periods, units, **kwargs):
        super().__init__(**kwargs)
        # Checked here, before build() allocates: a forged config reaches this first.
        self.periods = [float(p) for p in _head_config("periods", periods, MAX_PRECURSOR_FEATURES // 2, float)]
        self.units = [int(u) for u in _head_config("units", units, MAX_HEAD_LAYERS, int)]
        if any(not 0 < u <= MAX_HEAD_UNITS for u in self.units):
            raise ValueError(f"PairHead units must each be 1 to {MAX_HEAD_UNITS:,}, found {self.units}")

    def build(self, input_shape):
        widths = [2 + len(self.periods), *self.units]
        self.kernels, self.biases = [], []
        for i, (n_in, n_out) in enumerate(zip(widths, widths[1:] + [1])):
            last = i == len(self.units)
            self.kernels.append(self.add_weight(shape=(n_in, n_out), name=f"kernel{i + 1}",
                                                initializer="zeros" if last else "glorot_uniform"))
            self.biases.append(self.add_weight(shape=(n_out,), name=f"bias{i + 1}", initializer="zeros"))

    def call(self, inputs):
        import tensorflow as tf

        a, b = (tf.math.l2_normalize(tf.cast(x, tf.float32), axis=1) for x in inputs[:2])
        cosine = tf.reduce_sum(a * b, axis=1, keepdims=True)
        features = [cosine]
        if len(inputs) > 2 and self.periods:
            # In float64: a mass difference of 50 Da is 1,000 turns of the shortest period,
            # where float32 keeps 4 digits of the angle and graph and eager rounding differ.
            mz_a, mz_b = (tf.cast(m[:, :1], tf.float64) * 1000.0 for m in inputs[2:])
            known = tf.cast((mz_a > 0) & (mz_b > 0), tf.float32)
            turns = tf.abs(mz_a - mz_b) / tf.constant(self.periods, tf.float64)[None, :]
            angle = (2 * math.pi) * (turns - tf.floor(turns))
            features += [known, tf.cast(tf.cos(angle), tf.float32) * known]
        else:
            features += [tf.zeros_like(cosine)] * (1 + len(self.periods))
        x = tf.concat(features, axis=1)
        for kernel, bias in zip(self.kernels[:-1], self.biases[:-1]):
            x = tf.nn.relu(tf.matmul(x, tf.cast(kernel, tf.float32)) + tf.cast(bias, tf.float32))
        return cosine + tf.matmul(x, tf.cast(self.kernels[-1], tf.float32)) + tf.cast(self.biases[-1], tf.float32)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        return {**super().get_config(), "periods": self.periods, "units": self.units}


def _head_config(name, values, most, kind):
    """``values`` when it is a list of at most ``most`` numbers (ints for ``kind=int``); else ValueError."""
    allowed = (int, np.integer) if kind is int else (int, float, np.integer, np.floating)
    if not isinstance(values, (list, tuple)) or len(values) > most or any(
            isinstance(v, (bool, np.bool_)) or not isinstance(v, allowed) for v in values):
        raise ValueError(f"PairHead {name} must be a list of at most {most} {kind.__name__}s, found "
                         f"{type(values).__name__} {str(values)[:80]}")
    return values


def precursor_periods(n_features):
    """Periods (Da) of ``n_features`` Fourier features of the precursor m/z (a sine and a cosine each).

    Examples
    --------
    >>> precursor_periods(4).round(2).tolist()
    [0.05, 1000.0]
    """
    n_features = int(n_features)
    if n_features < 0 or n_features % 2:
        raise ValueError(f"expected an even number of precursor features (a sine and a cosine per period), "
                         f"found {n_features}")
    return np.geomspace(*PRECURSOR_PERIODS, n_features // 2) if n_features else np.empty(0)


def _apply_rest(rest, x, metadata, training=False):
    """The layers after the first Dense, one by one; :class:`PrecursorMatch` also reads the metadata."""
    for layer in rest:
        x = layer([x, metadata]) if isinstance(layer, PrecursorMatch) else layer(x, training=training)
    return x


def build_embedding_network(input_dim, hidden_units=(500, 500), embedding_dim=200, dropout=0.2, n_metadata=0,
                            weight_penalty=1e-6, mc_dropout=False, seed=None, penalize_first=True,
                            batchnorm_momentum=0.99, dtype=None, synchronized=False, precursor_encoding=0):
    """The network shared by both sides of the siamese: one spectrum in, one vector out.

    Each hidden block is Dense (ReLU) then BatchNormalization; Dropout follows every
    block but the first, and always the last, so the default is MS2DeepScore v1's
    ``Dense 500 - BN - Dense 500 - BN - Dropout 0.2 - Dense 200``.

    Parameters
    ----------
    input_dim : int
        Number of bins.
    hidden_units : sequence of int
        Width of each hidden block.
    embedding_dim : int
        Length of the embedding (ReLU, so every component is >= 0).
    dropout : float
        Dropout rate.
    n_metadata : int
        Extra inputs joined to the bins (precursor m/z, ion mode); 0 for spectra only.
    weight_penalty : float
        L1 and L2 penalty on the hidden kernels (MS2DeepScore v1: 1e-6 each).
    mc_dropout : bool
        Keep Dropout on at inference (Monte Carlo dropout) while BatchNormalization
        stays in inference mode.
    seed : int, optional
        Seeds the dropout masks of a Monte Carlo network.
    penalize_first : bool, default True
        Give the first kernel its L1/L2 regularizer; ``False`` leaves it out, for
        :class:`SparsePairTrainer`, which penalises the rows it gathers instead.
    batchnorm_momentum : float, default 0.99
        Momentum of the BatchNormalization moving statistics (Keras' default, as in
        MS2DeepScore v1).
    dtype : str, optional
        Keras dtype policy of the layers, e.g. ``"mixed_float16"`` (float16 compute,
        float32 weights); ``None`` keeps float32.
    synchronized : bool, default False
        BatchNormalization takes its batch statistics over all replicas of a
        ``tf.distribute`` strategy (the global batch), so every worker keeps the same
        moving statistics.
    precursor_encoding : int, default 0
        With metadata, join this many Fourier features of the precursor m/z to the
        embedding (:class:`PrecursorMatch`, an even number); 0 leaves them out.

    Returns
    -------
    keras.Model named ``embedding_network``.

    Examples
    --------
    >>> net = build_embedding_network(9900)
    >>> net.output_shape, net.count_params()
    ((None, 200), 5305200)
    """
    peaks = keras.Input(shape=(int(input_dim),), name="peaks")
    inputs = [peaks]
    x = peaks
    if n_metadata:
        metadata = keras.Input(shape=(int(n_metadata),), name="metadata")
        inputs.append(metadata)
        x = keras.layers.Concatenate(name="peaks_and_metadata")([peaks, metadata])
    last = len(hidden_units) - 1
    for i, units in enumerate(hidden_units):
        penalized = weight_penalty and (i > 0 or penalize_first)
        x = keras.layers.Dense(
            int(units), activation="relu", name=f"dense{i + 1}",
            kernel_regularizer=keras.regularizers.L1L2(weight_penalty, weight_penalty) if penalized else None,
            dtype=dtype,
        )(x)
        x = keras.layers.BatchNormalization(momentum=float(batchnorm_momentum), name=f"normalization{i + 1}",
                                            synchronized=bool(synchronized), dtype=dtype)(x)
        if dropout and (i > 0 or i == last):
            layer_seed = None if seed is None else int(seed) + i
            kind = MonteCarloDropout if mc_dropout else keras.layers.Dropout
            x = kind(float(dropout), seed=layer_seed, name=f"dropout{i + 1}", dtype=dtype)(x)
    embedding = keras.layers.Dense(int(embedding_dim), activation="relu", name="embedding", dtype=dtype)(x)
    if n_metadata and precursor_encoding:
        embedding = PrecursorMatch(precursor_periods(precursor_encoding).tolist(), name="precursor_match",
                                   dtype=dtype)([embedding, metadata])
    return keras.Model(inputs if n_metadata else peaks, embedding, name="embedding_network")


def build_siamese(embedding_network, head=None):
    """Two spectra in, one similarity out: the cosine of their embeddings (one shared network).

    Parameters
    ----------
    embedding_network : keras.Model
        From :func:`build_embedding_network`.
    head : PairHead, optional
        Turns the cosine (and the two precursor m/z, when the network reads metadata)
        into the similarity; ``None`` outputs the cosine itself, as MS2DeepScore.

    Examples
    --------
    >>> siamese = build_siamese(build_embedding_network(100, hidden_units=(8,), embedding_dim=4))
    >>> [t.shape for t in siamese.inputs], siamese.output_shape
    ([(None, 100), (None, 100)], (None, 1))
    >>> build_siamese(build_embedding_network(100, hidden_units=(8,), embedding_dim=4, n_metadata=2),
    ...               PairHead([0.05, 1000.0], [8])).output_shape
    (None, 1)
    """
    sides = [[keras.Input(shape=t.shape[1:], name=f"{t.name}_{side}") for t in embedding_network.inputs]
             for side in ("a", "b")]
    embeddings = [embedding_network(inputs if len(inputs) > 1 else inputs[0]) for inputs in sides]
    if head is not None:
        metadata = [inputs[1] for inputs in sides if len(inputs) > 1]
        return keras.Model([*sides[0], *sides[1]], head([*embeddings, *metadata]), name="siamese")
    # The cosine runs in float32 whatever the network's dtype policy (mixed precision).
    cosine = keras.layers.Dot(axes=1, normalize=True, name="cosine", dtype="float32")(embeddings)
    return keras.Model([*sides[0], *sides[1]], cosine, name="siamese")


@keras.saving.register_keras_serializable(package="kit")
class LazyAdam(keras.optimizers.Adam):
    """Adam that updates only the rows a sparse gradient touches (as TF Addons' LazyAdam).

    A dense gradient gets Keras' Adam unchanged. A sparse one (``tf.IndexedSlices``, from
    a first layer that gathers the rows of the bins a batch fills) updates the moments and
    weights of those rows only, so a step costs the rows a batch touches, not the
    whole 9,900 x 500 kernel. Untouched rows keep their moments instead of decaying them:
    the usual approximation for sparse inputs (embeddings, bag-of-words models).

    Examples
    --------
    >>> trainer.compile(optimizer=LazyAdam(learning_rate=2e-3), loss="mse")        # doctest: +SKIP
    """

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        lr = tf.cast(learning_rate, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        # Repeated rows (several replicas, or a caller's gather) are summed first; rows
        # that are already distinct come back from tf.unique in the same order.
        rows, position = tf.unique(gradient.indices)
        values = tf.cast(gradient.values, dtype)
        grad = tf.cond(
            tf.equal(tf.size(rows), tf.size(gradient.indices)),
            lambda: values,
            lambda: tf.math.unsorted_segment_sum(values, position, tf.shape(rows)[0]),
        )
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        m_rows = beta_1 * _rows_of(m, rows) + (1 - beta_1) * grad
        v_rows = beta_2 * _rows_of(v, rows) + (1 - beta_2) * tf.square(grad)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign_sub(variable, tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))


def sparse_product(indices, values, dense_shape, dense):
    """Sparse matrix (entries sorted by row) times a dense matrix, differentiable in ``dense``.

    A CSR product: on a CPU it runs several times faster than
    ``tf.sparse.sparse_dense_matmul``, forward and backward. The gradient is taken for
    ``dense`` only (TensorFlow's own gradient of the CSR product also differentiates the
    sparse values, and needs static shapes to do so).

    Examples
    --------
    >>> import tensorflow as tf
    >>> sparse_product(tf.constant([[0, 1]], tf.int64), tf.constant([2.0]), tf.constant([1, 2], tf.int64),
    ...                tf.constant([[1.0], [3.0]])).numpy().tolist()
    [[6.0]]
    """
    import tensorflow as tf

    matrix = tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=indices, values=values, dense_shape=dense_shape)

    @tf.custom_gradient
    def product(dense):
        def gradient(upstream):
            # The transpose built as its own CSR matrix: a plain product is faster than
            # the transposed one.
            order = tf.argsort(indices[:, 1], stable=True)
            transposed = tf.raw_ops.SparseTensorToCSRSparseMatrix(
                indices=tf.reverse(tf.gather(indices, order), axis=[1]), values=tf.gather(values, order),
                dense_shape=tf.reverse(dense_shape, axis=[0]),
            )
            return tf.raw_ops.SparseMatrixMatMul(a=transposed, b=upstream)

        return tf.raw_ops.SparseMatrixMatMul(a=matrix, b=dense), gradient

    return product(dense)


def _rows_of(variable, rows):
    """Rows of a variable read in place (a plain ``tf.gather`` would copy it whole first)."""
    value = getattr(variable, "value", variable)
    return value.sparse_read(rows)


class SparsePairTrainer(keras.Model):
    """Trains an embedding network on sparse pair batches; only the network is kept.

    The first Dense layer reads only the bins a batch fills: the kernel rows of those bins
    are gathered and multiplied by the sparse batch, so the step skips the 9,900 x 500
    dense product and the gradient is sparse (``tf.IndexedSlices``): with
    :class:`LazyAdam` and the weight penalty taken on the rows gathered, a step costs the
    rows the batch touches. The network itself is unchanged (a plain Dense layer), so the
    model saved after training is the same siamese as with dense batches.

    Input: ``(row, column, value, n_spectra)`` from :class:`PairBatches` with
    ``sparse=True``; output: the cosine of each pair's embeddings, or what ``head``
    makes of it. Used only for training and never saved.

    Parameters
    ----------
    network : keras.Model
        Embedding network from :func:`build_embedding_network`; its first Dense layer
        should carry no kernel regularizer (the penalty is taken here instead).
    weight_penalty : float
        L1 and L2 penalty on the gathered rows of the first kernel.
    head : PairHead, optional
        The siamese's head (the same layer object, so its trained weights are the
        saved siamese's); ``None`` for the plain cosine.
    """

    def __init__(self, network, weight_penalty=0.0, head=None, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.first, self.rest = _split_first_dense(network)
        self.weight_penalty = float(weight_penalty)
        self.head = head

    def call(self, inputs, training=False):
        import tensorflow as tf

        row, column, value, n_spectra = inputs
        kernel = self.first.kernel
        bins, position = tf.unique(column)
        # Gathering from the variable itself makes its gradient sparse (IndexedSlices).
        rows = tf.gather(getattr(kernel, "value", kernel), bins)
        batch = (tf.cast(tf.stack([row, position], axis=1), tf.int64), value,
                 tf.cast(tf.stack([n_spectra, tf.shape(bins)[0]]), tf.int64))
        x = self.first.activation(sparse_product(*batch, rows) + self.first.bias)
        metadata = None
        if any(isinstance(layer, PrecursorMatch) for layer in self.rest) or (
                self.head is not None and len(self.network.inputs) > 1):
            # Its input: the first metadata column (after the bins), one entry per spectrum.
            first_column = column == self.network.inputs[0].shape[-1]
            metadata = tf.scatter_nd(tf.cast(row[first_column], tf.int32)[:, None], value[first_column],
                                     tf.reshape(n_spectra, [1]))[:, None]
        x = _apply_rest(self.rest, x, metadata, training=training)
        if training and self.weight_penalty:
            self.add_loss(self.weight_penalty * (tf.reduce_sum(tf.abs(rows)) + tf.reduce_sum(tf.square(rows))))
        half = n_spectra // 2
        if self.head is not None:
            sides = [x[:half], x[half:]] + ([] if metadata is None else [metadata[:half], metadata[half:]])
            return self.head(sides)[:, 0]
        # The cosine in float32 whatever the network's dtype policy (mixed precision).
        x = tf.math.l2_normalize(tf.cast(x, tf.float32), axis=1)
        return tf.reduce_sum(x[:half] * x[half:], axis=1)


def metadata_features(spectra):
    """Metadata inputs of each spectrum: precursor m/z / 1000 and ion mode (+1, -1, 0).

    Missing values give 0, and so do precursor m/z that are not numbers in
    ``(0, MAX_PRECURSOR_MZ]``.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([50.0]), np.array([1.0]), {"precursor_mz": 250.0, "ionmode": "negative"},
    ...              metadata_harmonization=False)
    >>> metadata_features([s]).tolist()
    [[0.25, -1.0]]
    """
    out = np.zeros((len(spectra), len(METADATA_FEATURES)), dtype=np.float32)
    for row, spectrum in enumerate(spectra):
        try:
            mz = float(spectrum.get("precursor_mz") or 0.0)
        except (TypeError, ValueError):
            mz = 0.0
        out[row, 0] = mz / 1000.0 if 0 < mz <= MAX_PRECURSOR_MZ else 0.0
        out[row, 1] = {"positive": 1.0, "negative": -1.0}.get(str(spectrum.get("ionmode") or "").lower(), 0.0)
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
    sparse : bool, default False
        Give each batch as sparse entries ``(row, column, value, n_spectra)`` instead of
        dense arrays: rows ``0..n-1`` are the spectra a, rows ``n..2n-1`` the spectra b,
        and metadata inputs are the columns after the bins (the input of
        :class:`SparsePairTrainer`). The same seed gives the same values either way.
    """

    def __init__(self, matrix, metadata, batch_size, sampler=None, n_pairs=None, pairs=None, augmentation=None,
                 seed=0, sparse=False):
        super().__init__()
        self.matrix, self.metadata, self.batch_size = matrix, metadata, int(batch_size)
        self.sampler, self.n_pairs, self.augmentation, self.seed = sampler, n_pairs, augmentation, int(seed)
        self.sparse = bool(sparse)
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
        if ahead and (self._ahead is None or self._ahead[0] <= self.epoch):
            # The next epoch's pairs are drawn in a thread while this epoch trains
            # (NumPy and TensorFlow both release the GIL in their heavy parts).
            from concurrent.futures import ThreadPoolExecutor

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
        import tensorflow as tf

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


# -- the model ------------------------------------------------------------------------
class SiameseModel(PairModel):
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

    Examples
    --------
    >>> model = SiameseModel(epochs=5, seed=0).fit(train_spectra)              # doctest: +SKIP
    >>> model.predict(test_spectra, pairs)                                     # doctest: +SKIP
    >>> mean, std = model.predict(test_spectra, pairs, return_std=True)        # doctest: +SKIP
    """

    name = "siamese"
    save_format = "keras"

    def __init__(self, hidden_units=(500, 500), embedding_dim=200, dropout=0.2, weight_penalty=1e-6, learning_rate=2.8e-3,
                 epochs=30, batch_size=512, pairs_per_epoch=50000, validation_pairs=5000, patience=6, lr_patience=2,
                 validation_fraction=0.1,
                 bin_width=binning.BIN_WIDTH, mz_range=binning.MZ_RANGE, intensity_power=binning.INTENSITY_POWER,
                 augment_removal_max=0.3, augment_removal_intensity=0.2, augment_intensity=0.4, augment_noise_max=10,
                 augment_noise_intensity=0.01, use_metadata=True, precursor_encoding=16, same_molecule_share=None,
                 head_units=(32, 32), calibrate=True, batchnorm_momentum=0.9, sparse_training=True,
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
        """Refuse bad parameters before any work; return ``hidden_units`` as a tuple of int."""
        units = _units_param("hidden_units", self.hidden_units, "(500, 500)")
        if not units:
            raise TypeError(f"hidden_units must be a tuple of ints such as (500, 500), found {self.hidden_units!r}")
        for name in ("embedding_dim", "epochs", "batch_size", "pairs_per_epoch", "validation_pairs"):
            _int_param(name, getattr(self, name))
        if len(units) > MAX_HIDDEN_LAYERS:
            raise UserError(f"hidden_units must list at most {MAX_HIDDEN_LAYERS} layers, found {len(units):,}")
        if max(*units, int(self.embedding_dim)) > MAX_LAYER_UNITS:
            raise UserError(f"hidden_units and embedding_dim must be at most {MAX_LAYER_UNITS:,} each, found "
                            f"{max(*units, int(self.embedding_dim)):,}")
        for name in ("patience", "seed", "augment_noise_max", "precursor_encoding"):
            _int_param(name, getattr(self, name), minimum=0)
        if int(self.precursor_encoding) % 2 or self.precursor_encoding > MAX_PRECURSOR_FEATURES:
            raise UserError(f"precursor_encoding must be an even number up to {MAX_PRECURSOR_FEATURES} (a sine and "
                            f"a cosine per period), found {self.precursor_encoding!r}")
        if self.same_molecule_share is not None:
            _number_param("same_molecule_share", self.same_molecule_share, 0.0, 1.0)
        self._head_units()
        if self.lr_patience is not None:
            _int_param("lr_patience", self.lr_patience, minimum=0)
        for name in ("sparse_training", "mixed_precision", "calibrate"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, found {getattr(self, name)!r}")
        if not isinstance(self.distribute, str) or self.distribute not in DISTRIBUTE:
            raise UserError(f"distribute must be one of {', '.join(DISTRIBUTE)}, found {self.distribute!r}")
        for name, low, high in (("dropout", 0.0, 0.95), ("validation_fraction", 0.0, 0.9),
                                ("augment_removal_max", 0.0, 1.0), ("augment_intensity", 0.0, 1.0),
                                ("weight_penalty", 0.0, 1.0), ("augment_removal_intensity", 0.0, 1.0),
                                ("augment_noise_intensity", 0.0, 1.0), ("batchnorm_momentum", 0.0, 1.0)):
            _number_param(name, getattr(self, name), low, high)
        if _number_param("learning_rate", self.learning_rate, 0.0, 1.0) == 0:
            raise UserError("learning_rate must be positive, found 0")
        n_weights = self._n_weights(units, self._n_bins())
        if n_weights > MAX_NETWORK_WEIGHTS:
            raise UserError(f"the network would hold {n_weights:,} weights (hidden_units {list(units)}, embedding_dim "
                            f"{int(self.embedding_dim):,}, {self._n_bins():,} bins): at most {MAX_NETWORK_WEIGHTS:,} "
                            "fit the siamese rung")
        return units

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
        units = _units_param("head_units", () if self.head_units is None else self.head_units, "(32, 32), or ()")
        if len(units) > MAX_HEAD_LAYERS:
            raise UserError(f"head_units must list at most {MAX_HEAD_LAYERS} layers, found {len(units)}")
        if any(u > MAX_HEAD_UNITS for u in units):
            raise UserError(f"each of head_units must be at most {MAX_HEAD_UNITS:,}, found {max(units):,}")
        return units

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
        return list(METADATA_FEATURES) if self.use_metadata else []

    # -- features ------------------------------------------------------------------
    def _features(self, spectra):
        """Binned spectra (CSR) and metadata inputs (or None); empty rows are refused."""
        settings = self.binning_settings()
        matrix = binning.bin_spectra(spectra, **settings)
        binning.check_nonempty(matrix, spectra, settings)
        if not self.use_metadata:
            return matrix, None
        metadata = metadata_features(spectra)
        missing = int((metadata[:, 0] == 0).sum())
        if missing:
            warnings.warn(
                f"{missing:,} of {len(spectra):,} spectra have no precursor m/z (or one outside 0 to "
                f"{MAX_PRECURSOR_MZ:,.0f}): the metadata input uses 0 for them "
                "(use_metadata=False ignores metadata)", UserWarning, stacklevel=3,
            )
        return matrix, metadata

    # -- training ------------------------------------------------------------------
    def fit(self, spectra, validation_spectra=None):
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
        train_data = PairBatches(
            train_x, train_meta, global_batch, sampler=train_sampler, n_pairs=int(self.pairs_per_epoch),
            augmentation=self._augmentation(), seed=int(train_seed.generate_state(1)[0]), sparse=sparse,
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
        from kit.data.pairs import split_molecules

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

    def predict(self, spectra, pairs, return_std=False, n_passes=10):
        """One similarity per pair in [0, 1]; with ``return_std``, also its spread.

        Parameters
        ----------
        spectra : list of matchms.Spectrum
            Spectra the pairs refer to (by ``spectrum_id``).
        pairs : pandas.DataFrame
            Columns ``spectrum_id_a`` and ``spectrum_id_b``.
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
        if isinstance(n_passes, bool) or not isinstance(n_passes, (int, np.integer)) or n_passes < 2:
            raise UserError(f"n_passes must be an int >= 2 to measure a spread, found {n_passes!r}")
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
    def save(self, path, extra=None):
        """Save into the folder ``path``; a multi-worker non-chief writes to a temporary folder.

        Every worker of ``distribute="multiworker"`` holds the same weights; only the
        chief's copy lands in ``path``, and the others return where theirs went.
        """
        if getattr(self, "is_chief_", True) is False:
            import tempfile

            path = Path(tempfile.mkdtemp(prefix="kit-siamese-worker-")) / Path(path).name
        return super().save(path, extra)

    def _save_state(self, folder):
        # Weights only: the manifest's parameters rebuild the network (_load_state). A fresh
        # siamese around the same layers, as a dense fit's siamese_ is the compiled
        # trainer, whose optimiser state Keras would save too.
        build_siamese(self.embedding_network_, self.head_).save_weights(folder / WEIGHTS_FILE)
        return {
            "format": "keras",
            "file": WEIGHTS_FILE,
            "binning": self.binning_settings(),
            "metadata_features": self._metadata_names(),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "best_val_rmse": self.best_val_rmse_,
            "n_train_spectra": self.n_train_spectra_,
            "n_validation_spectra": self.n_validation_spectra_,
            "n_replicas": getattr(self, "n_replicas_", 1),
            "calibration": getattr(self, "calibration_", None),
        }

    @classmethod
    def _load_state(cls, folder, manifest):
        """Rebuild the model from its manifest, then read the network's weights (untrusted input).

        No Keras config is read: the manifest's fields and parameters are checked (the
        parameters bound the network's size), the network is built from them with
        :func:`build_embedding_network` and :func:`build_siamese`, and only weights are
        read into it, from an HDF5 file whose every dataset must have the shape the built
        network needs (:func:`kit.models.untrusted.weight_shapes`, before a value is
        read). An earlier save's ``model.keras`` gives up its weights file alone.
        """
        import tempfile

        from kit.models.untrusted import check_fields, file_inside
        from kit.safetext import printable

        where = printable(folder)
        check_fields(manifest, _MANIFEST_FIELDS, where)
        model = cls._from_manifest(manifest, where)
        model.calibration_ = _checked_calibration(manifest.get("calibration"), model.calibrate, where)
        name = manifest.get("file", WEIGHTS_FILE)
        legacy = name.endswith(LEGACY_FILE_SUFFIX)
        if not (legacy or name.endswith(WEIGHTS_FILE)):
            raise UserError(f"{where}: manifest file {printable(repr(name), 80)} must be the network's "
                            f"{WEIGHTS_FILE} (or an earlier save's model{LEGACY_FILE_SUFFIX})")
        file = file_inside(folder, name, "network weights file")
        n_weights = model._n_weights(model._check_params(), model._n_bins())
        with tempfile.TemporaryDirectory(prefix="kit-siamese-") as scratch:
            weights = _legacy_weights(file, Path(scratch) / WEIGHTS_FILE, n_weights) if legacy else file
            model._read_weights(weights, n_weights, Path(scratch), shown=file, legacy=legacy)
        model.history_ = manifest.get("history") or {}
        model.best_epoch_ = manifest.get("best_epoch")
        model.best_val_rmse_ = manifest.get("best_val_rmse")
        if manifest.get("validation_score") is not None:
            model.validation_score_ = manifest["validation_score"]
        model.fit_seconds_ = manifest.get("fit_seconds")
        model.n_train_spectra_ = manifest.get("n_train_spectra")
        model.n_validation_spectra_ = manifest.get("n_validation_spectra")
        model.n_replicas_ = manifest.get("n_replicas") or 1
        model.fitted_ = True
        return model

    @classmethod
    def _from_manifest(cls, manifest, where):
        """An unfitted model with the manifest's parameters and binning, all checked."""
        from kit.safetext import printable

        names = cls._get_param_names()
        params = {k: v for k, v in (manifest.get("params") or {}).items() if k in names}
        for key in ("hidden_units", "mz_range", "head_units"):
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])
        # A siamese saved before heads (or calibration) existed has none.
        params.setdefault("head_units", ())
        params.setdefault("calibrate", False)
        model = cls(**params)
        metadata = manifest.get("metadata_features") or []
        expected = list(METADATA_FEATURES)
        if metadata not in ([], expected):
            raise UserError(f"{where}: manifest metadata_features must be [] or {expected}, "
                            f"found {printable(repr(metadata), 80)}")
        model.use_metadata = bool(metadata)
        history = manifest.get("history") or {}
        if not all(isinstance(v, list) and all(x is None or _is_number(x) for x in v) for v in history.values()):
            raise UserError(f"{where}: manifest history must map each metric to a list of numbers")
        try:
            model._check_params()
        except (TypeError, ValueError) as exc:  # UserError is a ValueError
            raise UserError(f"{where}: unusable parameters in the manifest ({printable(exc, 200)})") from None
        # The network reads as many bins as the parameters' binning gives; the manifest's
        # record of the binning must be the same settings.
        try:
            recorded = binning.binning_settings(**manifest["binning"])
        except (TypeError, ValueError) as exc:
            raise UserError(f"{where}: unusable binning settings {printable(repr(manifest['binning']), 120)} "
                            f"({printable(exc, 120)})") from None
        if recorded != model.binning_settings():
            raise UserError(f"{where}: manifest binning {printable(repr(recorded), 120)} disagrees with the binning "
                            f"parameters {model.binning_settings()}: expected the files saved together by the siamese "
                            "rung")
        model.bin_width, model.mz_range = recorded["bin_width"], tuple(recorded["mz_range"])
        model.intensity_power = recorded["intensity_power"]
        return model

    def _read_weights(self, file, n_weights, scratch, shown, legacy=False):
        """Build the network from the parameters and read ``file``'s weights into it, shapes checked first.

        ``shown`` names the file in messages (the ``model.keras`` an extracted file came from).
        """
        from kit.models.untrusted import weight_shapes
        from kit.safetext import printable

        where = printable(shown)
        retrain = " (saved by an earlier kit? retrain the model)" if legacy else ""
        # Metadata only, before anything is built: what the file declares is bounded by the parameters.
        try:
            found = weight_shapes(file, n_weights, "siamese weights file", unread=("optimizer",) if legacy else (),
                                  where=where)
        except UserError as exc:
            raise UserError(f"{exc}{retrain}") from None
        declared = sum(math.prod(shape) for shape in found.values())
        if declared != n_weights:
            raise UserError(f"{where}: holds {declared:,} weights but the network built from the manifest's parameters "
                            f"has {n_weights:,}: expected the files saved together by the siamese rung{retrain}")
        network, head = self._new_network(self._n_bins()), self._new_head()
        siamese = build_siamese(network, head)
        # What Keras itself writes for the network just built: the exact layout to read.
        siamese.save_weights(scratch / f"expected-{WEIGHTS_FILE}")
        expected = weight_shapes(scratch / f"expected-{WEIGHTS_FILE}", n_weights)
        for path in sorted(set(found) | set(expected)):
            if found.get(path) != expected.get(path):
                needs = "no such dataset" if path not in expected else f"shape {expected[path]}"
                has = "lacks it" if path not in found else f"has shape {found[path]}"
                raise UserError(f"{where}: dataset {printable(repr(path), 80)} {has} but the network built from the "
                                f"manifest's parameters needs {needs}{retrain}")
        try:
            siamese.load_weights(file)
        except Exception as exc:  # noqa: BLE001 - h5py and Keras raise many types for a damaged file
            raise UserError(f"{where}: not a readable siamese weights file ({type(exc).__name__}: "
                            f"{printable(first_line(exc), 120)}){retrain}") from None
        for layer in (*network.layers, *([head] if head is not None else [])):
            for weight in layer.weights:
                values = keras.ops.convert_to_numpy(weight)
                if not np.isfinite(values).all():
                    raise UserError(f"{where}: weight {printable(weight.path, 80)} holds values that are not finite "
                                    "(NaN or infinite): expected a network trained by the siamese rung")
            if isinstance(layer, keras.layers.BatchNormalization) and (
                    keras.ops.convert_to_numpy(layer.moving_variance) < 0).any():
                raise UserError(f"{where}: {printable(layer.name, 40)} has a negative moving variance: expected a "
                                "network trained by the siamese rung")
        self.embedding_network_, self.siamese_, self.head_ = network, siamese, head


def _legacy_weights(file, target, n_weights):
    """The weights file inside an earlier save's ``model.keras`` (its config is never read), copied to ``target``."""
    from kit.models.untrusted import extract_member

    # float32 weights, and an optimiser's two moments beside them when the network was
    # compiled, plus HDF5's own bookkeeping.
    return extract_member(file, WEIGHTS_FILE, target, 12 * n_weights + (32 << 20),
                          "siamese network saved by an earlier kit (retrain it if it is refused)")


#: Fields the siamese rung adds to a manifest and their JSON types (``!``: required).
_MANIFEST_FIELDS = {
    "binning": "dict!",
    "metadata_features": "list|null",
    "history": "dict|null",
    "best_epoch": "int|null",
    "best_val_rmse": "number|null",
    "n_train_spectra": "int|null",
    "n_validation_spectra": "int|null",
    "n_replicas": "int|null",
    "calibration": "dict|null",
}


def _checked_calibration(calibration, calibrate, where):
    """A manifest's calibration map (untrusted), checked as :func:`fit_calibration` writes it."""
    from kit.safetext import printable

    if not calibrate:
        if calibration is not None:
            raise UserError(f"{where}: the manifest holds a calibration map but its calibrate parameter is false: "
                            "expected the files saved together by the siamese rung")
        return None
    if calibration is None:
        raise UserError(f"{where}: the manifest's calibrate parameter is true but it holds no calibration map: "
                        "expected the files saved together by the siamese rung")
    x, y = calibration.get("x"), calibration.get("y")
    if set(calibration) != {"x", "y"} or not isinstance(x, list) or not isinstance(y, list):
        keys = ", ".join(printable(key, 40) for key in sorted(map(str, calibration))[:5])
        raise UserError(f"{where}: manifest calibration must be {{\"x\": [...], \"y\": [...]}}, found the keys "
                        f"[{keys}]")
    if not 1 <= len(x) == len(y) <= MAX_CALIBRATION_POINTS or not all(map(_is_number, x + y)):
        raise UserError(f"{where}: manifest calibration x and y must be two lists of the same length (1 to "
                        f"{MAX_CALIBRATION_POINTS:,} numbers), found {len(x):,} and {len(y):,} entries")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    # Not finite, out of [0, 1] or decreasing: not an isotonic map of similarities.
    if not (np.isfinite(x).all() and (np.diff(x) >= 0).all() and (np.diff(y) >= 0).all()
            and (y >= 0).all() and (y <= 1).all()):
        raise UserError(f"{where}: manifest calibration must rise (x and y never decreasing, y within [0, 1], "
                        "all finite): expected the map the siamese rung fits")
    return {"x": x.tolist(), "y": y.tolist()}


def fit_calibration(predicted, truth):
    """The isotonic map from predictions to true similarities, as plain lists.

    :class:`sklearn.isotonic.IsotonicRegression` fits it; its points are kept (not the
    fitted object, which only pickle could save) and :func:`apply_calibration`
    interpolates between them as the estimator's own ``predict`` does.

    Parameters
    ----------
    predicted, truth : array-like of float
        Predictions on held-out pairs and their true Tanimoto scores.

    Returns
    -------
    dict
        ``{"x": [...], "y": [...]}``: increasing predictions and what each maps to.

    Examples
    --------
    >>> fit_calibration([0.1, 0.5, 0.9, 0.95], [0.0, 0.6, 0.4, 1.0])
    {'x': [0.1, 0.5, 0.9, 0.95], 'y': [0.0, 0.5, 0.5, 1.0]}
    """
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(np.asarray(predicted, dtype=np.float64), np.asarray(truth, dtype=np.float64))
    x, y = iso.X_thresholds_, iso.y_thresholds_
    if len(x) > MAX_CALIBRATION_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, MAX_CALIBRATION_POINTS).round().astype(int))
        x, y = x[keep], y[keep]
    return {"x": x.tolist(), "y": y.tolist()}


#: The map of a siamese whose calibration showed no gain on held-out molecules.
IDENTITY_CALIBRATION = {"x": [0.0, 1.0], "y": [0.0, 1.0]}
# Fewest pairs on each side of the held-out check; with fewer, calibration is declined.
MIN_CALIBRATION_PAIRS = 100


def held_out_calibration(predicted, truth, pair_molecules, rng):
    """An isotonic map where it lowers the RMSE on molecules it was not fitted on, else the identity.

    scikit-learn warns that isotonic calibration overfits small calibration sets; a
    map that helps the pairs it was fitted on may cost on new molecules. So the
    molecules are split in two halves (``rng``); a map fitted on the pairs within one
    half is scored on the pairs within the other, both ways round. Only when both
    halves gain is the map fitted on every pair kept
    (:func:`fit_calibration`); otherwise the identity (:data:`IDENTITY_CALIBRATION`).

    Parameters
    ----------
    predicted, truth : array-like of float
        The network's predictions on validation pairs and their true Tanimoto scores.
    pair_molecules : (n, 2) int array
        The two molecules of each pair.
    rng : numpy.random.Generator

    Returns
    -------
    calibration : dict
        ``{"x": [...], "y": [...]}`` as :func:`fit_calibration` writes it.
    gains : list of two floats
        RMSE without the map minus RMSE with it, on each held-out half (NaN where a
        half has fewer than :data:`MIN_CALIBRATION_PAIRS` pairs).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> molecules = rng.integers(0, 200, size=(4000, 2))
    >>> truth = rng.random(4000)
    >>> squeezed = 0.5 + 0.5 * (truth - 0.5)   # an under-confident network
    >>> calibration, gains = held_out_calibration(squeezed, truth, molecules, rng)
    >>> calibration != IDENTITY_CALIBRATION and min(gains) > 0
    True
    >>> calibrated = rng.uniform(0.2, 0.8, 4000)   # a network already calibrated
    >>> truth = calibrated + rng.normal(0.0, 0.1, 4000)
    >>> held_out_calibration(calibrated, truth, molecules, rng)[0] == IDENTITY_CALIBRATION
    True
    """
    predicted, truth = np.asarray(predicted, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    pair_molecules = np.asarray(pair_molecules, dtype=np.int64).reshape(-1, 2)
    n_molecules = int(pair_molecules.max()) + 1 if pair_molecules.size else 0
    first = np.zeros(n_molecules, dtype=bool)
    first[rng.permutation(n_molecules)[: n_molecules // 2]] = True
    side = first[pair_molecules]
    halves = (side[:, 0] & side[:, 1], ~side[:, 0] & ~side[:, 1])
    gains = []
    for fit_on, score_on in (halves, halves[::-1]):
        if min(fit_on.sum(), score_on.sum()) < MIN_CALIBRATION_PAIRS:
            gains.append(float("nan"))
            continue
        calibration = fit_calibration(predicted[fit_on], truth[fit_on])
        before = np.sqrt(np.mean((predicted[score_on] - truth[score_on]) ** 2))
        after = np.sqrt(np.mean((apply_calibration(calibration, predicted[score_on]) - truth[score_on]) ** 2))
        gains.append(float(before - after))
    if all(gain > 0 for gain in gains):  # NaN compares false: too few pairs declines calibration
        return fit_calibration(predicted, truth), gains
    return dict(IDENTITY_CALIBRATION), gains


def apply_calibration(calibration, scores):
    """``scores`` through a map from :func:`fit_calibration`; unchanged for None.

    Linear between the map's points and flat beyond its ends, as
    ``IsotonicRegression(out_of_bounds="clip").predict``.

    Examples
    --------
    >>> apply_calibration({"x": [0.2, 0.8], "y": [0.1, 0.9]}, np.array([0.0, 0.5, 1.0]))
    array([0.1, 0.5, 0.9])
    """
    if calibration is None:
        return scores
    return np.interp(scores, calibration["x"], calibration["y"]).astype(np.asarray(scores).dtype, copy=False)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- distribution ---------------------------------------------------------------------
_MULTI_WORKER = []  # the process's one MultiWorkerMirroredStrategy, once made


def _gpus():
    import tensorflow as tf

    return tf.config.list_logical_devices("GPU")


def distribution_strategy(distribute="auto"):
    """The ``tf.distribute`` strategy for ``SiameseModel(distribute=...)``.

    Returns
    -------
    strategy : tf.distribute.Strategy
        ``MirroredStrategy`` ("mirrored", or "auto" with several GPUs),
        ``MultiWorkerMirroredStrategy`` ("multiworker", cluster from ``TF_CONFIG``) or
        the default strategy (one device).
    distributed : bool
        Whether the strategy is not the default one.
    chief : bool
        Whether this process saves (False only for a multi-worker non-chief).

    Examples
    --------
    >>> strategy, distributed, chief = distribution_strategy("none")
    >>> strategy.num_replicas_in_sync, distributed, chief
    (1, False, True)
    """
    import tensorflow as tf

    if distribute not in DISTRIBUTE:
        raise UserError(f"distribute must be one of {', '.join(DISTRIBUTE)}, found {distribute!r}")
    if distribute == "multiworker":
        return _multi_worker_strategy()
    gpus = _gpus()
    if distribute == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices), True, True
    if distribute == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in gpus]), True, True
    return tf.distribute.get_strategy(), False, True


def _multi_worker(strategy):
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _fit_across_workers(trainer, spec):
    """Let Keras' ``fit`` run under a MultiWorkerMirroredStrategy (keras-team/keras#20585).

    Keras 3 (TensorFlow backend) reduces across workers in two ways that a multi-worker
    strategy refuses: it builds the model from a first batch averaged over replicas with
    ``strategy.reduce`` (a nest, which that strategy cannot reduce), and it averages each
    step's scalar logs over replicas along an axis 0 they do not have. Here the build
    reads the dataset's element spec (the shapes and dtypes it needs) and each step's
    logs get that axis.
    """
    import tensorflow as tf

    build, train_step, test_step = trainer._maybe_symbolic_build, trainer.train_step, trainer.test_step

    def from_spec(iterator=None, data_batch=None):
        return build(data_batch=spec)

    def with_axis(logs):
        return {k: tf.reshape(v, [1]) for k, v in logs.items()}

    trainer._maybe_symbolic_build = from_spec
    trainer.train_step = lambda data: with_axis(train_step(data))
    trainer.test_step = lambda data: with_axis(test_step(data))


def _multi_worker_strategy():
    import json

    import tensorflow as tf

    text = os.environ.get("TF_CONFIG", "")
    try:
        config = json.loads(text) if text.strip() else None
    except ValueError:
        config = None
    task = config.get("task") if isinstance(config, dict) else None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not (isinstance(cluster, dict) and cluster and isinstance(task, dict)
            and task.get("type") in cluster and isinstance(task.get("index"), int)
            and all(isinstance(v, list) and v for v in cluster.values())):
        raise UserError(
            'distribute="multiworker" needs TF_CONFIG: expected JSON such as {"cluster": {"worker": '
            '["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}, found '
            f"{text[:80]!r}"
        )
    if not _MULTI_WORKER:
        try:
            _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
        except (RuntimeError, ValueError) as exc:
            raise UserError(f'distribute="multiworker" could not start ({first_line(exc)}): it must be the first '
                            "TensorFlow work of its process") from None
    chief = task["type"] == "chief" or (task["type"] == "worker" and task["index"] == 0 and "chief" not in cluster)
    return _MULTI_WORKER[0], True, chief


# -- helpers --------------------------------------------------------------------------
def _split_first_dense(network):
    """The first Dense layer of an embedding network, and the layers after it, in order.

    The network is a chain (inputs, an optional Concatenate, then one layer after
    another), so the layers after the first Dense can be applied one by one.
    """
    layers = [layer for layer in network.layers if not isinstance(layer, keras.layers.InputLayer)]
    if layers and isinstance(layers[0], keras.layers.Concatenate):
        layers = layers[1:]
    first = layers[0]
    if not isinstance(first, keras.layers.Dense) or first.activation is not keras.activations.relu:
        raise TypeError(f"expected the embedding network to start with a ReLU Dense layer, found {first.name}")
    # Only layers that read one tensor (PrecursorMatch: and the metadata) can run one by one.
    chain = (keras.layers.Dense, keras.layers.BatchNormalization, keras.layers.Dropout, PrecursorMatch)
    other = [layer for layer in layers[1:] if not isinstance(layer, chain)]
    if other:
        raise TypeError(f"expected the embedding network to be a chain of Dense, BatchNormalization, Dropout and "
                        f"PrecursorMatch layers, found {type(other[0]).__name__} {other[0].name}")
    return first, layers[1:]


def _units_param(name, value, example):
    """Layer widths: an int or a sequence of ints >= 1, as a tuple (possibly empty)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a tuple of ints such as {example}, found {value!r}")
    return tuple(_int_param(f"each of {name}", u) for u in value)


def _int_param(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, found {type(value).__name__} {value!r}")
    if value < minimum:
        raise UserError(f"{name} must be an int >= {minimum}, found {value}")
    return int(value)


def _number_param(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, found {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        raise UserError(f"{name} must be a number in [{low:g}, {high:g}], found {value!r}")
    return float(value)


def normalize_rows(vectors):
    """Rows scaled to unit length; all-zero rows stay zero.

    Examples
    --------
    >>> normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    from sklearn.preprocessing import normalize

    return normalize(vectors, norm="l2")


def score_pairs(vectors, idx_a, idx_b, chunk=SCORE_CHUNK):
    """Row-wise dot products of unit vectors, clipped to [0, 1], chunk by chunk.

    ReLU embeddings have no negative components, so their cosines are >= 0 and the clip
    only trims rounding just above 1; the precursor m/z features of
    :class:`PrecursorMatch` can be negative, and a similarity below 0 is clipped to 0.

    Examples
    --------
    >>> v = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    >>> [round(float(x), 3) for x in score_pairs(v, np.array([0, 0]), np.array([0, 1]))]
    [1.0, 0.6]
    """
    out = np.empty(len(idx_a), dtype=np.float32)
    for start in range(0, len(idx_a), chunk):
        part = slice(start, start + chunk)
        out[part] = np.einsum("ij,ij->i", vectors[idx_a[part]], vectors[idx_b[part]])
    return np.clip(out, 0.0, 1.0, out=out)


def head_scores(head, vectors, metadata, idx_a, idx_b, chunk=HEAD_CHUNK):
    """Similarities from a :class:`PairHead`, for pairs of embedded spectra, clipped to [0, 1].

    Parameters
    ----------
    head : PairHead
    vectors : numpy.ndarray
        One embedding per spectrum.
    metadata : numpy.ndarray or None
        One row of metadata inputs per spectrum (column 0: precursor m/z / 1000).
    idx_a, idx_b : numpy.ndarray of int
        Rows of the two spectra of each pair.

    Examples
    --------
    >>> head = PairHead([], [4])
    >>> v = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    >>> [round(float(x), 3) for x in head_scores(head, v, None, np.array([0, 0]), np.array([0, 1]))]
    [1.0, 0.6]
    """
    out = np.empty(len(idx_a), dtype=np.float32)
    for start in range(0, len(idx_a), chunk):
        a, b = idx_a[start:start + chunk], idx_b[start:start + chunk]
        sides = [vectors[a], vectors[b]] + ([] if metadata is None else [metadata[a], metadata[b]])
        out[start:start + len(a)] = keras.ops.convert_to_numpy(head(sides))[:, 0]
    if not np.isfinite(out).all():
        raise UserError("the siamese's head gives similarities that are not finite (NaN or infinite weights?): "
                        "expected a network trained and saved by the siamese rung")
    return np.clip(out, 0.0, 1.0, out=out)


def _distinct(idx_a, idx_b):
    """Distinct spectra used by the pairs, and each pair's positions among them."""
    used, inverse = np.unique(np.concatenate([idx_a, idx_b]), return_inverse=True)
    return used, (inverse[: len(idx_a)], inverse[len(idx_a):])


def _molecules(spectra, what):
    from kit.data.chemistry import molecules_of

    kept, molecules = molecules_of(spectra)
    if len(kept) != len(spectra):
        raise UserError(
            f"{len(spectra) - len(kept):,} of {len(spectra):,} {what} have no usable structure: "
            "expected SMILES that RDKit parses in every spectrum"
        )
    return kept, molecules


def _subset_sampler(spectra, molecules, fps, molecule_mask, same_molecule_share=None):
    """Spectra of the chosen molecules and a pair sampler over them."""
    from kit.data.pairs import PairSampler

    rows = np.flatnonzero(molecule_mask[molecules.spectrum_molecule])
    local = np.cumsum(molecule_mask) - 1
    sampler = PairSampler(local[molecules.spectrum_molecule[rows]], fps[molecule_mask],
                          same_molecule_share=same_molecule_share)
    return [spectra[i] for i in rows], sampler


def _sampler_of(spectra, what, same_molecule_share=None):
    kept, molecules = _molecules(spectra, what)
    return _subset_sampler(kept, molecules, molecules.fingerprints(), np.ones(len(molecules), dtype=bool),
                           same_molecule_share)
