"""Train a tiny siamese under a tf.distribute strategy in a process of its own.

Used by tests/test_siamese_distribute.py: logical CPU devices and multi-worker collectives
must be set up before TensorFlow starts, which the test process cannot do.

    python tests/siamese_distribute_run.py mirrored OUT
    TF_CONFIG=... python tests/siamese_distribute_run.py multiworker OUT

Writes OUT/model (the saved model, chief only), OUT/pred.npy (its predictions on the
test pairs) and OUT/info.json (replicas, chief, saved path, history).
"""
import json
import sys
from pathlib import Path

N_LOGICAL_CPUS = 2


def main(mode, out):
    import tensorflow as tf

    if mode == "mirrored":
        # Before anything else touches TensorFlow's devices.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * N_LOGICAL_CPUS)
    sys.path.insert(0, str(Path(__file__).parent))
    from kit.models.siamese import SiameseModel
    from test_models_siamese import TINY, make_spectra, random_pairs

    spectra = make_spectra()
    model = SiameseModel(**{**TINY, "epochs": 1, "distribute": mode}).fit(spectra)
    pairs = random_pairs(spectra)
    out = Path(out)
    saved = model.save(out / "model")
    import numpy as np

    np.save(out / f"pred-{model.is_chief_:d}.npy", model.predict(spectra, pairs))
    info = {"n_replicas": model.n_replicas_, "chief": model.is_chief_, "saved": str(saved), "history": model.history_}
    (out / f"info-{model.is_chief_:d}.json").write_text(json.dumps(info))


if __name__ == "__main__":
    main(*sys.argv[1:3])
