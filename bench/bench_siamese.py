"""Speed of the siamese rung: inference (default), training (``--train``), a step's parts (``--profile``).

Inference targets on a 2-core CPU: >= 2,000 spectra/s for embeddings (binning included)
and >= 1,000,000 pairs/s for scoring pairs from embeddings. Speed does not depend on the
weights, so without ``--model`` the default network (MS2DeepScore v1 sizes) is built
untrained; spectra are synthetic unless ``--spectra`` names a spectra file.

Training (``--train``): the kit's default fit against a plain Keras MS2DeepScore v1
siamese (dense input, L1L2 1e-6, Adam 1e-3, batch 64, the same layer sizes) in the same
run, on the training spectra of a prepared competition: training pairs per second of
each, and the RMSE of both on the same validation pairs (molecules held out from both)
after the same number of training pairs. Target: the kit at least 4x the pairs/s, with
a validation RMSE no worse than v1's.

Small fit (``--small-fit``): a whole ``SiameseModel`` fit of ``--pairs`` training pairs
(default 25,600, one epoch; kit defaults otherwise), as ``kit train`` does it (the held-out
split first, under one molecule cache, then ``fit`` with its set-up), against plain Keras
v1's steps over as many pairs, the two run alternately ``--repeats`` times in one process:
training pairs per second (wall and CPU) of each, and their ratio. Target: at least 3.5x.

Profile (``--profile``): milliseconds per training step of each part (forward, backward,
weight penalty, Adam, batch preparation, pair sampling, Keras' loop) for the dense v1
step and the kit's sparse step, on batches of real spectra.

Usage::

    python bench/bench_siamese.py [--spectra FILE] [--model DIR] [--n-spectra 20000] [--n-pairs 1000000]
    python bench/bench_siamese.py --train [--competition massbank_positive] [--epochs 5]
    python bench/bench_siamese.py --small-fit [--competition practice] [--pairs 25600] [--repeats 3]
    python bench/bench_siamese.py --profile [--competition massbank_positive]
"""
import argparse
import contextlib
import json
import time

import numpy as np

EMBED_TARGET = 2_000
SCORE_TARGET = 1_000_000


def synthetic_spectra(n, seed=0, peaks=(5, 80)):
    """Spectra with MassBank-like peak counts, m/z 10-1000."""
    from matchms import Spectrum

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(*peaks))
        mz = np.sort(rng.uniform(10, 1000, k))
        out.append(Spectrum(mz, rng.uniform(0.01, 1.0, k), {"spectrum_id": f"B{i:06d}", "precursor_mz": float(mz[-1])},
                            metadata_harmonization=False))
    return out


def untrained_model():
    """A default-size siamese with untrained weights, marked fitted (speed only)."""
    from kit.data.binning import n_bins
    from kit.models.siamese import SiameseModel

    model = SiameseModel()
    model.embedding_network_ = model._new_network(n_bins(model.bin_width, model.mz_range))
    model.fitted_ = True
    return model


def best_of(func, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


# -- training -------------------------------------------------------------------------
def v1_siamese(input_dim, seed=0):
    """Plain Keras MS2DeepScore v1 siamese: dense input, L1L2 1e-6, Adam 1e-3 (compiled)."""
    import keras

    keras.utils.set_random_seed(seed)
    penalty = keras.regularizers.L1L2(1e-6, 1e-6)
    spectrum = keras.Input(shape=(input_dim,))
    x = keras.layers.Dense(500, activation="relu", kernel_regularizer=penalty)(spectrum)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dense(500, activation="relu", kernel_regularizer=penalty)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(0.2)(x)
    embedding = keras.layers.Dense(200, activation="relu")(x)
    network = keras.Model(spectrum, embedding)
    a, b = keras.Input(shape=(input_dim,)), keras.Input(shape=(input_dim,))
    siamese = keras.Model([a, b], keras.layers.Dot(axes=1, normalize=True)([network(a), network(b)]))
    siamese.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return network, siamese


def split_by_molecule(spectra, fraction, seed):
    """Training and validation spectra, split by molecule (as the kit's fit does)."""
    from kit.data.chemistry import molecules_of
    from kit.data.pairs import split_molecules

    kept, molecules = molecules_of(spectra)
    held = split_molecules(molecules.keys, fraction, np.random.default_rng(seed))[molecules.spectrum_molecule]
    return [s for s, h in zip(kept, held) if not h], [s for s, h in zip(kept, held) if h]


def rmse_of(vectors, pairs):
    from kit.models.siamese import normalize_rows, score_pairs

    a, b, y = pairs
    pred = score_pairs(normalize_rows(np.asarray(vectors, dtype=np.float32)), a, b)
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def train_benchmark(args):
    """The kit's default fit and plain Keras v1, same pairs budget; pairs/s and validation RMSE."""
    import os

    from kit.competition.folder import load_competition
    from kit.data import binning
    from kit.data.pairs import PairSampler
    from kit.models.base import spectrum_ids
    from kit.models.siamese import PairBatches, SiameseModel

    comp = load_competition(args.competition)
    train, val = split_by_molecule(comp.train_spectra, 0.1, args.seed)
    val_pairs = PairSampler.from_spectra(val).sample(5000, np.random.default_rng([args.seed, 99]))
    n_pairs = args.epochs * args.pairs_per_epoch
    print(f"{len(train):,} training / {len(val):,} validation spectra; {args.epochs} epochs of "
          f"{args.pairs_per_epoch:,} pairs each; load average {os.getloadavg()[0]:.1f}", flush=True)

    # Plain Keras v1: dense batches (the kit's augmentation and pairs), model.fit only is timed.
    matrix = binning.bin_spectra(train)
    network, siamese = v1_siamese(matrix.shape[1], args.seed)
    data = PairBatches(matrix, None, 64, sampler=PairSampler.from_spectra(train), n_pairs=args.pairs_per_epoch,
                       augmentation=SiameseModel()._augmentation(), seed=args.seed)
    started, cpu = time.perf_counter(), time.process_time()
    siamese.fit(data, epochs=args.epochs, verbose=0)
    v1_seconds, v1_cpu = time.perf_counter() - started, time.process_time() - cpu
    v1_rmse = rmse_of(network.predict(binning.bin_spectra(val).toarray(), batch_size=1024, verbose=0), val_pairs)
    print(f"plain Keras v1: {v1_seconds:.0f} s ({v1_cpu:.0f} CPU s), {n_pairs / v1_seconds:.0f} pairs/s, "
          f"validation RMSE {v1_rmse:.4f}", flush=True)

    # The kit's default fit, whole (binning, sampling, its own validation every epoch).
    cpu = time.process_time()
    model = SiameseModel(epochs=args.epochs, patience=args.epochs, pairs_per_epoch=args.pairs_per_epoch,
                         seed=args.seed, verbose=0).fit(train, validation_spectra=val)
    kit_cpu = time.process_time() - cpu
    # Through predict: with a head, the dot product of two embeddings is not the prediction.
    a, b, y = val_pairs
    ids = np.array(spectrum_ids(val), dtype=object)
    kit_pred = model.predict(val, np.column_stack([ids[a], ids[b]]))
    kit_rmse = float(np.sqrt(np.mean((kit_pred - y) ** 2)))
    print(
        f"kit default fit: {model.fit_seconds_:.0f} s ({kit_cpu:.0f} CPU s), "
        f"{n_pairs / model.fit_seconds_:.0f} pairs/s, validation RMSE "
        f"{kit_rmse:.4f} (kept epoch {model.best_epoch_})",
        flush=True,
    )
    result = {
        "train_spectra": len(train),
        "validation_spectra": len(val),
        "pairs": n_pairs,
        "v1_seconds": round(v1_seconds, 1),
        "v1_pairs_per_second": round(n_pairs / v1_seconds),
        "v1_val_rmse": round(v1_rmse, 4),
        "kit_seconds": round(model.fit_seconds_, 1),
        "kit_pairs_per_second": round(n_pairs / model.fit_seconds_),
        "kit_val_rmse": round(kit_rmse, 4),
        "v1_cpu_seconds": round(v1_cpu, 1),
        "kit_cpu_seconds": round(kit_cpu, 1),
        # Wall time is the target; CPU time is steadier when other jobs share the machine.
        "ratio": round(v1_seconds / model.fit_seconds_, 2),
        "cpu_ratio": round(v1_cpu / kit_cpu, 2),
        "target_ratio": 4.0,
        "load_average": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(result, indent=2))
    return result


def small_fit_benchmark(args):
    """A whole small kit fit (set-up included) against v1's steps over as many pairs, alternately."""
    import os

    from kit.competition.folder import load_competition
    from kit.data import binning, chemistry
    from kit.data.pairs import PairSampler
    from kit.models.siamese import PairBatches, SiameseModel
    from kit.models.training import HeldOut

    # An earlier kit had no molecule cache: the same command then measures it without one.
    molecule_cache = getattr(chemistry, "molecule_cache", contextlib.nullcontext)
    comp = load_competition(args.competition)
    n_pairs = int(args.pairs)
    print(f"{comp.name}: {n_pairs:,} training pairs; load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for repeat in range(args.repeats):
        # Plain Keras v1: dense batches of 64 from the kit's sampler; only model.fit is timed.
        held = HeldOut.of(comp.train_spectra, seed=args.seed)
        matrix = binning.bin_spectra(held.train)
        _, siamese = v1_siamese(matrix.shape[1], args.seed)
        data = PairBatches(
            matrix,
            None,
            64,
            sampler=PairSampler.from_spectra(held.train),
            n_pairs=n_pairs,
            augmentation=SiameseModel()._augmentation(),
            seed=args.seed,
        )
        started, cpu = time.perf_counter(), time.process_time()
        siamese.fit(data, epochs=1, verbose=0)
        v1 = (time.perf_counter() - started, time.process_time() - cpu)
        # The kit's fit as kit train runs it: split and validation pairs first (one molecule
        # cache for the whole command), then the fit, set-up included.
        with molecule_cache():
            held = HeldOut.of(comp.train_spectra, seed=args.seed)
            model = SiameseModel(epochs=1, pairs_per_epoch=n_pairs, seed=args.seed, verbose=0)
            started, cpu = time.perf_counter(), time.process_time()
            model.fit(held.train)
            kit = (time.perf_counter() - started, time.process_time() - cpu)
        row = {
            "repeat": repeat,
            "v1_seconds": round(v1[0], 2),
            "v1_cpu_seconds": round(v1[1], 2),
            "kit_seconds": round(kit[0], 2),
            "kit_cpu_seconds": round(kit[1], 2),
            "v1_pairs_per_second": round(n_pairs / v1[0]),
            "kit_pairs_per_second": round(n_pairs / kit[0]),
            "ratio": round(v1[0] / kit[0], 2),
            "cpu_ratio": round(v1[1] / kit[1], 2),
            "kit_best_val_rmse": round(model.best_val_rmse_, 5),
            "load_average": round(os.getloadavg()[0], 1),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    best = {key: max(row[key] for row in rows) for key in ("ratio", "cpu_ratio")}
    result = {
        "pairs": n_pairs,
        "repeats": rows,
        "best_ratio": best["ratio"],
        "best_cpu_ratio": best["cpu_ratio"],
        "median_ratio": float(np.median([row["ratio"] for row in rows])),
        "target_ratio": 3.5,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "repeats"}, indent=2))
    return result


# -- profile --------------------------------------------------------------------------
def best_ms(func, repeats=5, number=10):
    """Best mean milliseconds per call over ``repeats`` rounds of ``number`` calls (after a warm-up)."""
    func()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            func()
        best = min(best, (time.perf_counter() - start) / number * 1000)
    return best


def step_parts(model, optimizer, inputs, y, penalty):
    """Milliseconds of each part of one training step of ``model`` (a compiled Keras model)."""
    import tensorflow as tf

    variables = model.trainable_variables

    def data_loss():
        return tf.reduce_mean(tf.square(tf.reshape(model(inputs, training=True), [-1]) - y))

    @tf.function
    def forward():
        return data_loss()

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            loss = data_loss()
        return tape.gradient(loss, variables)

    @tf.function
    def with_penalty():
        with tf.GradientTape() as tape:
            loss = data_loss() + penalty()
        return tape.gradient(loss, variables)

    grads = gradients()

    @tf.function
    def adam():
        optimizer.apply(grads, variables)

    @tf.function
    def step():
        optimizer.apply(with_penalty(), variables)

    parts = {"forward": best_ms(forward), "forward + backward": best_ms(gradients)}
    parts["weight penalty (value + gradient)"] = best_ms(with_penalty) - parts["forward + backward"]
    parts["Adam update"] = best_ms(adam)
    parts["whole step (tf.function)"] = best_ms(step)
    parts["whole step (Keras train_on_batch)"] = best_ms(lambda: model.train_on_batch(inputs, y))
    return {k: round(v, 1) for k, v in parts.items()}


def profile_step(args):
    """Per-part milliseconds of a training step: plain Keras v1 (dense) against the kit's sparse step."""
    import os

    import tensorflow as tf

    from kit.competition.folder import load_competition
    from kit.data import binning
    from kit.data.pairs import PairSampler
    from kit.models.siamese import LazyAdam, PairBatches, SiameseModel, SparsePairTrainer, metadata_features

    spectra = load_competition(args.competition).train_spectra
    sampler = PairSampler.from_spectra(spectra)
    matrix, metadata = binning.bin_spectra(spectra), metadata_features(spectra)
    augmentation = SiameseModel()._augmentation()
    print(f"{len(spectra):,} spectra; load average {os.getloadavg()[0]:.1f}", flush=True)
    result = {}
    sampler.sample(args.pairs_per_epoch, np.random.default_rng(0))  # builds the bins cache
    start = time.perf_counter()
    sampler.sample(args.pairs_per_epoch, np.random.default_rng(1))
    result["pair sampling, ms per 64 pairs"] = round((time.perf_counter() - start) * 1000 * 64 / args.pairs_per_epoch, 1)
    dense = PairBatches(matrix, None, 64, sampler=sampler, n_pairs=6400, augmentation=augmentation, seed=0)
    result["batch preparation, dense v1 (64 pairs)"] = round(best_ms(lambda: dense[0]), 2)

    network, siamese = v1_siamese(matrix.shape[1])
    (xa, xb), y = dense[0]
    penalties = [layer.kernel_regularizer for layer in network.layers if getattr(layer, "kernel_regularizer", None)]
    kernels = [layer.kernel for layer in network.layers if getattr(layer, "kernel_regularizer", None)]
    result["v1 (dense, L1L2, Adam)"] = step_parts(
        siamese,
        siamese.optimizer,
        [tf.constant(xa), tf.constant(xb)],
        tf.constant(y),
        lambda: tf.add_n([p(k) for p, k in zip(penalties, kernels)]),
    )

    model = SiameseModel()
    for batch in (64, model.batch_size):
        sparse = PairBatches(
            matrix, metadata, batch, sampler=sampler, n_pairs=10 * batch, augmentation=augmentation, seed=0, sparse=True
        )
        result[f"batch preparation, sparse kit ({batch} pairs)"] = round(best_ms(lambda sparse=sparse: sparse[0]), 2)
        net = model._new_network(matrix.shape[1], penalize_first=False)
        trainer = SparsePairTrainer(net, model.weight_penalty, model._new_head())
        trainer.compile(optimizer=LazyAdam(model.learning_rate), loss="mse", jit_compile=False)
        entries, y = sparse[0]
        inputs = tuple(tf.constant(x) for x in entries)
        trainer(inputs)  # builds the head, whose weights the optimizer must know
        trainer.optimizer.build(trainer.trainable_variables)
        # The penalties the last call added (the gathered rows of the first kernel, dense2's kernel).
        result[f"kit, {batch} pairs (sparse first layer, lazy Adam, penalty on rows gathered)"] = step_parts(
            trainer, trainer.optimizer, inputs, tf.constant(y), lambda trainer=trainer: tf.add_n(trainer.losses)
        )
    print(json.dumps(result, indent=2))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="training: the kit's default fit against plain Keras v1")
    parser.add_argument(
        "--small-fit", action="store_true", help="a whole small kit fit (set-up included) against v1's steps, alternately"
    )
    parser.add_argument("--pairs", type=int, default=25_600, help="training pairs of --small-fit")
    parser.add_argument("--profile", action="store_true", help="milliseconds per part of a training step")
    parser.add_argument("--competition", default="massbank_positive", help="prepared competition (name or folder)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of --pairs-per-epoch pairs for --train")
    parser.add_argument("--pairs-per-epoch", type=int, help="training pairs per epoch (default: the siamese's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spectra", help="spectra file (MGF, MSP, ...); default: synthetic spectra")
    parser.add_argument("--model", help="saved siamese model folder; default: untrained default network")
    parser.add_argument("--n-spectra", type=int, default=20_000)
    parser.add_argument("--n-pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.pairs_per_epoch is None and (args.train or args.profile):
        from kit.models.siamese import SiameseModel

        args.pairs_per_epoch = SiameseModel().pairs_per_epoch
    if args.small_fit:
        return small_fit_benchmark(args)
    if args.train:
        return train_benchmark(args)
    if args.profile:
        return profile_step(args)

    import kit.models
    from kit.models.siamese import score_pairs

    if args.spectra:
        spectra = kit.load_spectra(args.spectra)[: args.n_spectra]
    else:
        spectra = synthetic_spectra(args.n_spectra)
    model = kit.models.load(args.model) if args.model else untrained_model()
    model.predict_embeddings(spectra[:2048])  # builds the graph once

    embed_s, vectors = best_of(lambda: model.predict_embeddings(spectra), args.repeats)
    rng = np.random.default_rng(0)
    idx_a = rng.integers(0, len(spectra), args.n_pairs)
    idx_b = rng.integers(0, len(spectra), args.n_pairs)
    score_s, _ = best_of(lambda: score_pairs(vectors, idx_a, idx_b), args.repeats)

    ids = np.array([s.get("spectrum_id") for s in spectra], dtype=object)
    import pandas as pd

    pairs = pd.DataFrame({"spectrum_id_a": ids[idx_a[:100_000]], "spectrum_id_b": ids[idx_b[:100_000]]})
    predict_s, _ = best_of(lambda: model.predict(spectra, pairs), 1)

    result = {
        "spectra": len(spectra),
        "embedding_dim": int(vectors.shape[1]),
        "embed_seconds": round(embed_s, 3),
        "spectra_per_second": round(len(spectra) / embed_s),
        "embed_target_ratio": round(len(spectra) / embed_s / EMBED_TARGET, 2),
        "pairs": args.n_pairs,
        "score_seconds": round(score_s, 4),
        "pairs_per_second": round(args.n_pairs / score_s),
        "score_target_ratio": round(args.n_pairs / score_s / SCORE_TARGET, 2),
        "predict_100k_pairs_seconds": round(predict_s, 3),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
