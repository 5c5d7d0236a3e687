"""Time to load a saved siamese: ``kit.models.load`` on the folder ``model.save`` writes.

A siamese folder holds its manifest and the network's weights (``model.weights.h5``);
loading rebuilds the network from the manifest's checked parameters, checks the weights
file's dataset shapes against it, then reads the weights. In the same process the
script also loads the folder an earlier kit wrote (``model.keras``, whose weights file
is extracted and read the same way), as the peer of the ratio. Run it on an older
checkout as well to compare with the loader that deserialised ``model.keras``'s config:
the script only uses what both have (``model.save`` and ``kit.models.load``).

Speed does not depend on the weights, so the networks are built untrained at the sizes
named by ``--size``: ``v1`` (the default siamese, 5.3 million weights) or ``2x``
(ms2deepscore 2.x's single 10,000-unit layer and 500-wide embedding, 104 million).

Usage::

    python bench/bench_siamese_load.py [--size v1|2x] [--repeats 5]
"""
import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

SIZES = {"v1": {}, "2x": {"hidden_units": (10_000,), "embedding_dim": 500}}


def untrained_saved(folder, params):
    """Save a default-binning siamese with untrained weights, marked fitted; return the folder."""
    from kit.data import binning as mz_binning
    from kit.models import siamese

    model = siamese.SiameseModel(**params)
    model.embedding_network_ = model._new_network(mz_binning.n_bins(model.bin_width, model.mz_range))
    model.head_ = model._new_head()
    model.siamese_ = siamese.build_siamese(model.embedding_network_, model.head_)
    model.history_, model.best_epoch_, model.best_val_rmse_ = {}, 0, None
    model.n_train_spectra_ = model.n_validation_spectra_ = 0
    model.calibrate, model.calibration_ = False, None
    model.fitted_ = True
    return model.save(folder)


def as_earlier_save(folder, target):
    """``folder`` as a kit that saved ``model.keras`` wrote it (None where the kit writes that already)."""
    import kit.models

    if (folder / "model.keras").exists():
        return None
    shutil.copytree(folder, target)
    kit.models.load(folder).siamese_.save(target / "model.keras")
    for name in ("model.weights.h5",):
        (target / name).unlink()
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["file"] = "model.keras"
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def best_load(folder, repeats):
    """Best wall-clock seconds of ``kit.models.load(folder)`` over ``repeats``."""
    import kit.models

    kit.models.load(folder)  # warm: TensorFlow's first graph and imports
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        kit.models.load(folder)
        best = min(best, time.perf_counter() - started)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="v1")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = untrained_saved(Path(scratch) / "saved", SIZES[args.size])
        files = sorted(p.name for p in folder.iterdir())
        size = sum(p.stat().st_size for p in folder.iterdir())
        seconds = best_load(folder, args.repeats)
        print(f"{args.size}: load of the folder model.save writes {files} ({size / 1e6:.1f} MB): {seconds:.3f} s")
        earlier = as_earlier_save(folder, Path(scratch) / "earlier")
        if earlier is not None:
            peer = best_load(earlier, args.repeats)
            print(f"{args.size}: load of an earlier save's model.keras: {peer:.3f} s; "
                  f"ratio model.weights.h5 / model.keras = {seconds / peer:.2f}")


if __name__ == "__main__":
    main()
