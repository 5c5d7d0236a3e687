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

The package has one module per job: :mod:`~kit.models.siamese.layers` (Keras layers),
:mod:`~kit.models.siamese.network` (the networks and scoring with them),
:mod:`~kit.models.siamese.trainer` (the sparse training step), :mod:`~kit.models.siamese.batches`
(training pairs and batches), :mod:`~kit.models.siamese.calibration`,
:mod:`~kit.models.siamese.distribute` (``tf.distribute`` strategies),
:mod:`~kit.models.siamese.persistence` (save and untrusted load) and
:mod:`~kit.models.siamese.estimator` (:class:`SiameseModel`). Importing it imports TensorFlow.

Examples
--------
>>> from kit.models.siamese import SiameseModel
>>> model = SiameseModel(epochs=20, seed=0).fit(comp.train_spectra)        # doctest: +SKIP
>>> similarity = model.predict(comp.test_spectra, comp.test_pairs)        # doctest: +SKIP
>>> vectors = model.predict_embeddings(comp.test_spectra)                 # doctest: +SKIP
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kit.thirdparty import import_tensorflow  # noqa: E402

import_tensorflow()  # first, before any module of the package imports Keras, without TensorFlow's start-up notices

from kit.models.siamese.batches import (  # noqa: E402
    ADDUCT_FEATURES,
    METADATA_FEATURES,
    PairBatches,
    augment_batch,
    augment_peaks,
    metadata_features,
)
from kit.models.siamese.calibration import (  # noqa: E402
    IDENTITY_CALIBRATION,
    apply_calibration,
    fit_calibration,
    held_out_calibration,
)
from kit.models.siamese.distribute import distribution_strategy  # noqa: E402
from kit.models.siamese.estimator import SiameseModel  # noqa: E402
from kit.models.siamese.layers import (  # noqa: E402
    MonteCarloDropout,
    PairHead,
    PrecursorMatch,
    precursor_periods,
)
from kit.models.siamese.network import (  # noqa: E402
    build_embedding_network,
    build_siamese,
    head_scores,
    normalize_rows,
    score_pairs,
)
from kit.models.siamese.trainer import LazyAdam, SparsePairTrainer, sparse_product  # noqa: E402

__all__ = [
    "SiameseModel", "build_embedding_network", "build_siamese", "MonteCarloDropout", "PrecursorMatch", "PairHead",
    "precursor_periods", "LazyAdam", "SparsePairTrainer", "sparse_product", "PairBatches", "metadata_features",
    "METADATA_FEATURES", "ADDUCT_FEATURES",
    "augment_peaks", "augment_batch", "fit_calibration", "held_out_calibration", "apply_calibration",
    "IDENTITY_CALIBRATION", "distribution_strategy", "normalize_rows", "score_pairs", "head_scores",
]
