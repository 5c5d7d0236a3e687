"""Keras layers of the siamese: Monte Carlo dropout, the precursor m/z match and the pair head."""
import math

import keras
import numpy as np
import tensorflow as tf

# geometrically: the shortest tells apart masses a few hundredths of a Da apart.
PRECURSOR_PERIODS = (0.05, 1000.0)
# Most precursor m/z features (``precursor_encoding``); each adds a column to every embedding.
MAX_PRECURSOR_FEATURES = 256
# Most hidden layers, and units per layer, of a PairHead (``head_units``).
MAX_HEAD_LAYERS = 4
MAX_HEAD_UNITS = 1024
# Most points of a calibration map kept in the manifest (5,000 validation pairs give


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


