"""Sparse training of the siamese: a sparse first-layer product, a Keras model that trains on it, lazy Adam."""

import keras
import tensorflow as tf

from kit.models.siamese.layers import PrecursorMatch
from kit.models.siamese.network import _apply_rest, _split_first_dense


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


