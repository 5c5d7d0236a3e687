"""Inference speed of the siamese rung: spectra embedded per second, pairs scored per second.

Targets on a 2-core CPU: >= 2,000 spectra/s for embeddings (binning included) and
>= 1,000,000 pairs/s for scoring pairs from embeddings.

Speed does not depend on the weights, so without ``--model`` the default network
(MS2DeepScore v1 sizes) is built untrained; spectra are synthetic unless ``--spectra``
names a spectra file.

Usage::

    python bench/bench_siamese.py [--spectra FILE] [--model DIR] [--n-spectra 20000] [--n-pairs 1000000]
"""
import argparse
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
    from kit.binning import n_bins
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spectra", help="spectra file (MGF, MSP, ...); default: synthetic spectra")
    parser.add_argument("--model", help="saved siamese model folder; default: untrained default network")
    parser.add_argument("--n-spectra", type=int, default=20_000)
    parser.add_argument("--n-pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

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
