"""Which changes make the siamese rung stronger: one change at a time, chosen on validation.

Every variant is :class:`~kit.models.siamese.SiameseModel` with the defaults it had before
these changes (:data:`BASE`) and the parameters the variant names changed, trained with
the same seed on the same training spectra (the split ``kit train`` makes: 10% of the
training molecules held out, seed 0) and scored on the same bin-balanced pairs of the
held-out molecules. Test spectra and
Private scores are never read: the choice of the default is made on these numbers only.

For each variant: validation RMSE, binned RMSE, RMSE per Tanimoto bin, RMSE on pairs of
two spectra of one molecule and on pairs of different molecules, the epochs trained, the
training wall and CPU seconds, and the embedding speed (spectra/s, binning included) on
the held-out spectra. Rows are appended to ``--out`` (JSON lines) as each variant ends,
so an interrupted run keeps the variants that finished; ``--markdown`` prints the table.

Usage::

    .venv/bin/python bench/bench_siamese_variants.py --competition DIR [--variants base,pairs50k,...]
        [--out bench/out/variants.jsonl] [--pairs-per-bin 500] [--seed 0] [--own-validation]
    .venv/bin/python bench/bench_siamese_variants.py --markdown [--out bench/out/variants.jsonl]

A variant is a name from :data:`VARIANTS` or ``name:param=value;param=value`` (values as
on the command line of ``kit train siamese``, changes from today's defaults).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "out" / "siamese_variants.jsonl"

# The siamese's defaults before these changes; every variant is this plus its own changes.
BASE = {"pairs_per_epoch": 20_000, "precursor_encoding": 0, "same_molecule_share": None, "head_units": (),
        "calibrate": False}
PAIRS50K = {"pairs_per_epoch": 50_000}
MASS16 = {"precursor_encoding": 16}
SAME90 = {"same_molecule_share": 0.9}
WIDE1000 = {"hidden_units": (1000, 500)}
HEAD = {"head_units": (32, 32), "precursor_encoding": 16}
PATIENCE10 = {"patience": 10, "epochs": 60, "lr_patience": 3}
# name -> (parameters changed from BASE, what the change is)
VARIANTS = {
    "base": ({}, "the defaults before these changes"),
    "v1": ({"batch_size": 64, "learning_rate": 1e-3, "batchnorm_momentum": 0.99, "use_metadata": False},
           "MS2DeepScore v1: batches of 64, Adam 1e-3, no metadata"),
    "pairs50k": (PAIRS50K, "2.5x the pairs per epoch"),
    "wide1000": (WIDE1000, "first layer of 1000 units"),
    "emb400": ({"embedding_dim": 400}, "embedding of 400"),
    "patience10": (PATIENCE10, "longer training: patience 10, up to 60 epochs"),
    "dropout01": ({"dropout": 0.1}, "dropout 0.1"),
    "same90": (SAME90, "top-bin pairs: 90% two spectra of one molecule"),
    "mass16": (MASS16, "a learned kernel of the precursor m/z difference joined to the embedding "
                       "(16 Fourier features, PrecursorMatch)"),
    "pairs50k+mass16": ({**PAIRS50K, **MASS16}, "pairs50k and mass16"),
    "pairs50k+mass16+patience10": ({**PAIRS50K, **MASS16, **PATIENCE10}, "pairs50k, mass16 and patience10"),
    "pairs50k+mass16+dropout035": ({**PAIRS50K, **MASS16, "dropout": 0.35}, "pairs50k, mass16 and dropout 0.35"),
    "pairs50k+mass16+same90": ({**PAIRS50K, **MASS16, **SAME90}, "pairs50k, mass16 and same90"),
    "head": (HEAD, "a head (PairHead, 32-32) over the embedding cosine and the precursor m/z difference "
                   "(16 Fourier features)"),
    "pairs50k+same90+head": ({**PAIRS50K, **SAME90, **HEAD}, "pairs50k, same90 and head"),
    "pairs50k+head": ({**PAIRS50K, **HEAD}, "pairs50k and head"),
    "pairs50k+head+same50": ({**PAIRS50K, **HEAD, "same_molecule_share": 0.5}, "pairs50k, head and same50 (half "
                                                                                 "the top bin's pairs of one molecule)"),
    "pairs50k+head+dropout035": ({**PAIRS50K, **HEAD, "dropout": 0.35}, "pairs50k, head and dropout 0.35"),
    "pairs50k+head64": ({**PAIRS50K, **HEAD, "head_units": (64,)}, "pairs50k and a head of one 64-unit layer"),
    "pairs100k+head": ({**HEAD, "pairs_per_epoch": 100_000}, "100,000 pairs an epoch and head"),
    "pairs50k+wide1000+head": ({**PAIRS50K, **WIDE1000, **HEAD}, "pairs50k, wide1000 and head"),
    "pairs50k+head+calibrated": ({**PAIRS50K, **HEAD, "calibrate": True},
                                 "pairs50k, head and calibrated: an isotonic map fitted on the validation pairs "
                                 "(the new defaults)"),
    "pairs50k+emb400+head": ({**PAIRS50K, **HEAD, "embedding_dim": 400}, "pairs50k, emb400 and head"),
    "pairs50k+wide1000+mass16": ({**PAIRS50K, **WIDE1000, **MASS16}, "pairs50k, wide1000 and mass16"),
}
# Not a siamese: the gbm rung on the same split and pairs, the reference the siamese must beat.
REFERENCE = "gbm"


def parse_variant(text):
    """``name`` (from :data:`VARIANTS`) or ``name:param=value;param=value``."""
    if text == REFERENCE:
        return text, {}, "reference: the gbm rung (not a siamese)"
    if ":" not in text:
        if text not in VARIANTS:
            raise SystemExit(f"unknown variant {text!r}; known: {', '.join(VARIANTS)} or name:param=value;...")
        return text, {**BASE, **VARIANTS[text][0]}, VARIANTS[text][1]
    name, _, spec = text.partition(":")
    options = dict(item.split("=", 1) for item in spec.split(";") if item)
    return name, options, spec


def load_split(competition, seed, pairs_per_bin):
    """Training and held-out spectra, the held-out pairs, their truth and same-molecule flags."""
    from kit.competition.folder import load_competition
    from kit.data.chemistry import molecules_of
    from kit.models.training import VALIDATION_FRACTION, split_for_validation, validation_pairs

    comp = load_competition(competition)
    train, val = split_for_validation(comp.train_spectra, VALIDATION_FRACTION, seed)
    pairs, truth = validation_pairs(val, pairs_per_bin, seed)
    _, molecules = molecules_of(val)
    index = {s.get("spectrum_id"): i for i, s in enumerate(val)}
    mol_a = molecules.spectrum_molecule[[index[i] for i in pairs["spectrum_id_a"]]]
    mol_b = molecules.spectrum_molecule[[index[i] for i in pairs["spectrum_id_b"]]]
    return comp, train, val, pairs, truth, mol_a == mol_b


def run_variant(name, options, about, train, val, pairs, truth, same, seed, own_validation=False):
    """Fit one variant and measure it; a dict (one row of the table).

    With ``own_validation`` the model holds out its own validation molecules from
    ``train`` (early stopping, calibration), so the scored molecules are new to every
    step of its fit; otherwise it watches the scored molecules, as ``kit train`` does.
    """
    import kit.models
    from kit.models.siamese import SiameseModel
    from kit.models.training import model_params
    from kit.scoring.metrics import diagnostics, molecule_diagnostics

    if name == REFERENCE:
        model = kit.models.get(REFERENCE)(seed=seed)
    else:
        model = SiameseModel(**{**model_params(SiameseModel, options), "seed": seed, "verbose": 0})
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(train) if own_validation else model.fit(train, validation_spectra=val)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    predicted = model.predict(val, pairs)
    start = time.perf_counter()
    if hasattr(model, "predict_embeddings"):
        model.predict_embeddings(val)
    embed_s = time.perf_counter() - start
    scores = diagnostics(truth, predicted)
    split = molecule_diagnostics(truth, predicted, same)
    return {
        "variant": name,
        "about": about,
        "params": {k: _plain(v) for k, v in options.items()},
        "val_rmse": scores["rmse"],
        "val_binned_rmse": scores["binned_rmse"],
        "per_bin": scores["per_bin_rmse"],
        "same_molecule_rmse": split["same_molecule_rmse"],
        "different_molecule_rmse": split["different_molecule_rmse"],
        "epochs": len(getattr(model, "history_", {}).get("loss", [])),
        "best_epoch": getattr(model, "best_epoch_", 0),
        "train_s": round(wall, 1),
        "train_cpu_s": round(cpu, 1),
        "embed_spectra_per_s": round(len(val) / embed_s) if name != REFERENCE else None,
        "load": round(os.getloadavg()[0], 1),
        "pairs": int(len(pairs)),
        "seed": seed,
        "validation": "own" if own_validation else "scored",
    }


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def markdown(rows):
    """The table of variants (validation only), in the order they ran.

    Embedding speed stays in the JSON rows: a few thousand held-out spectra, timed once
    on a shared machine, say little (``bench/peers.py`` times it properly).
    """
    head = (
        "| variant | change | val RMSE | vs base | binned | 0.9-1.0 | same mol. | diff. mol. | bins above gbm | "
        "epochs | train s (CPU s) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    base = next((r["val_rmse"] for r in rows if r["variant"] == "base"), None)
    reference = next((r["per_bin"] for r in rows if r["variant"] == REFERENCE), None)

    def above(per_bin):
        """Tanimoto bins where the variant's RMSE is above the gbm's."""
        if reference is None:
            return "-"
        worse = [b for b, value in per_bin.items() if b in reference and value > reference[b]]
        return f"{len(worse)}: {', '.join(worse)}" if worse else "0"

    def num(value, digits=3):
        return "-" if value is None else f"{value:.{digits}f}"

    for r in rows:
        delta = f"{100 * (r['val_rmse'] / base - 1):+.1f}%" if base else "-"
        lines.append(
            f"| {r['variant']} | {r['about']} | {r['val_rmse']:.4f} | {delta} | {num(r['val_binned_rmse'], 4)} | "
            f"{num(r['per_bin']['0.9-1.0'])} | {num(r['same_molecule_rmse'])} | {num(r['different_molecule_rmse'])} | "
            f"{'-' if r['variant'] == REFERENCE else above(r['per_bin'])} | "
            f"{r['best_epoch']}/{r['epochs']} | {r['train_s']:.0f} ({r['train_cpu_s']:.0f}) |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--competition", help="prepared competition folder (or name)")
    parser.add_argument("--variants", default="base", help="comma-separated variants (see VARIANTS)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON lines, one per finished variant")
    parser.add_argument("--pairs-per-bin", type=int, default=500, help="held-out pairs per Tanimoto bin")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--own-validation",
        action="store_true",
        help="each model holds out its own validation molecules from the training spectra "
        "(early stopping and calibration never see the scored ones)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table of --out and stop")
    args = parser.parse_args(argv)
    if args.markdown:
        rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
        print(markdown(rows))
        return 0
    if not args.competition:
        parser.error("--competition is required")
    variants = [parse_variant(v) for v in args.variants.split(",") if v]
    comp, train, val, pairs, truth, same = load_split(args.competition, args.seed, args.pairs_per_bin)
    print(
        f"{comp.name}: {len(train):,} training spectra, {len(val):,} held out, {len(pairs):,} held-out pairs "
        f"({int(same.sum()):,} of one molecule)",
        flush=True,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name, options, about in variants:
        row = run_variant(name, options, about, train, val, pairs, truth, same, args.seed, args.own_validation)
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(
            f"{name}: val RMSE {row['val_rmse']:.4f} (top bin {row['per_bin']['0.9-1.0']:.3f}, same molecule "
            f"{row['same_molecule_rmse']:.3f}), {row['best_epoch']}/{row['epochs']} epochs, {row['train_s']:.0f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
