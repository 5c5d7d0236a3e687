"""The siamese's networks (one shared embedding network, keras-io's functional siamese) and scoring pairs with them."""

import keras
import numpy as np
from sklearn.preprocessing import normalize

from kit.errors import UserError
from kit.models.siamese.layers import (
    MonteCarloDropout,
    PrecursorMatch,
    precursor_periods,
)

# Pairs scored per chunk, small enough that the gathered rows stay in cache (larger chunks
# run slower, not faster).
SCORE_CHUNK = 4096
# Pairs per call of a PairHead at inference.
HEAD_CHUNK = 65536


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
    >>> from kit.models.siamese.layers import PairHead
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



def normalize_rows(vectors):
    """Rows scaled to unit length; all-zero rows stay zero.

    Examples
    --------
    >>> normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
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
    >>> from kit.models.siamese.layers import PairHead
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


