"""Distribution strategies (``tf.distribute``) for training the siamese over several devices or workers."""
import json
import os

import tensorflow as tf

from kit.constraints import Options, check_param
from kit.errors import UserError, first_line

# Values of SiameseModel(distribute=...).
DISTRIBUTE = ("auto", "none", "mirrored", "multiworker")


# -- distribution ---------------------------------------------------------------------
_MULTI_WORKER = []  # the process's one MultiWorkerMirroredStrategy, once made


def _gpus():
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
    check_param(distribute, "distribute", Options(*DISTRIBUTE))
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
    build, train_step, test_step = trainer._maybe_symbolic_build, trainer.train_step, trainer.test_step

    def from_spec(iterator=None, data_batch=None):
        return build(data_batch=spec)

    def with_axis(logs):
        return {k: tf.reshape(v, [1]) for k, v in logs.items()}

    trainer._maybe_symbolic_build = from_spec
    trainer.train_step = lambda data: with_axis(train_step(data))
    trainer.test_step = lambda data: with_axis(test_step(data))


def _multi_worker_strategy():


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


