"""A library k times MassBank: how ``kit prepare`` and one siamese epoch scale with spectra.

The library is built reproducibly from the shared MassBank files (both ion modes): copy 0
is MassBank itself, copies 1 .. k-1 repeat every spectrum with seeded peak jitter (m/z
plus N(0, 0.002 Da), intensity times exp(N(0, 0.05))) under a new unique id
(``<SPECTRUM_ID>_copy<r>``). Every other field is kept, so the copies of one spectrum
name the same molecule (same SMILES, InChI, InChIKey): the number of molecules stays
that of MassBank while spectra grow k-fold. The gzipped MGF is written through
matchms's MGF writer (pyteomics), streamed copy by copy, so only 1x is held in memory.

Each measurement runs in a fresh child process (``os.wait4`` gives that child's own peak
RSS): ``kit prepare --library <lib>`` with default options, then one epoch of the siamese
(``kit.models.get("siamese")(epochs=1, pairs_per_epoch=N)``) on the prepared training
spectra, which includes loading them.

Targets: cost grows no faster than linearly in spectra; 10x prepares in under 10 minutes
and under 12 GiB on 2 cores; training memory grows with the peaks held (sparse), not
with spectra x bins.

Usage::

    .venv/bin/python bench/bench_scale.py [--scales 1,3,10] [--out bench/out/scale] [--epoch-pairs 20000]
                                          [--seed 0] [--markdown FILE] [--reuse]

Libraries, competitions, logs and one ``result_x<k>.json`` per scale go to ``--out``;
``--reuse`` takes a scale's numbers from there instead of measuring it again (a 10x run
after a 1x,3x one). Wall times move with the machine's load; CPU seconds much less.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MASSBANK = REPO.parent / "shared" / "data" / "massbank"
SOURCES = (MASSBANK / "massbank_positive.mgf.gz", MASSBANK / "massbank_negative.mgf.gz")
MZ_SD = 0.002          # Da: well inside the 0.1 Da bins, like a re-measured spectrum
INTENSITY_SD = 0.05    # log-normal factor on every intensity
PREPARE_TARGET_S = 600
PREPARE_TARGET_GIB = 12.0
GIB = 2**30


# -- the library ----------------------------------------------------------------------
def read_sources(paths):
    """Every spectrum of the given MGF files (``.gz`` allowed), metadata as written, in file order."""
    from matchms.importing import load_from_mgf

    spectra = []
    for path in paths:
        path = Path(path)
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            spectra += list(load_from_mgf(handle, metadata_harmonization=False))
    return spectra


def jitter_peaks(mz, intensities, rng, mz_sd=MZ_SD, intensity_sd=INTENSITY_SD):
    """Peaks with seeded m/z and intensity noise, sorted by m/z again.

    Examples
    --------
    >>> mz, inten = jitter_peaks(np.array([100.0, 200.0]), np.array([1.0, 0.5]), np.random.default_rng(0))
    >>> bool(np.all(np.abs(mz - [100.0, 200.0]) < 0.02)), bool(np.all(inten > 0))
    (True, True)
    """
    mz = mz + rng.normal(0.0, mz_sd, len(mz))
    intensities = intensities * np.exp(rng.normal(0.0, intensity_sd, len(intensities)))
    order = np.argsort(mz, kind="stable")
    return mz[order], intensities[order]


def library_records(spectra, scale, seed=0, mz_sd=MZ_SD, intensity_sd=INTENSITY_SD):
    """MGF records (pyteomics dicts, as matchms exports them) of the k-fold library, copy by copy.

    Copy 0 is ``spectra`` unchanged; copy ``r`` draws its jitter from
    ``default_rng([seed, r])`` in spectrum order, so any copy is reproducible alone.
    """
    for copy in range(int(scale)):
        rng = np.random.default_rng([int(seed), copy])
        for spectrum in spectra:
            params = spectrum.metadata_dict()
            mz, intensities = spectrum.peaks.mz, spectrum.peaks.intensities
            if copy:
                mz, intensities = jitter_peaks(mz, intensities, rng, mz_sd, intensity_sd)
                params["spectrum_id"] = f"{params.get('spectrum_id', 'SPEC')}_copy{copy}"
            yield {"m/z array": mz, "intensity array": intensities, "params": params}


def write_library(spectra, path, scale, seed=0, mz_sd=MZ_SD, intensity_sd=INTENSITY_SD):
    """Write the k-fold library as gzipped MGF (temporary file, then rename); return its spectra count."""
    import pyteomics.mgf as mgf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    count = 0

    def counted():
        nonlocal count
        for record in library_records(spectra, scale, seed, mz_sd, intensity_sd):
            count += 1
            yield record

    # Level 3: the file is read back once; the default level 9 would take longer to write than to prepare.
    # mtime=0 keeps the gzip header (and so the file) identical between builds.
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=3, mtime=0) as gz:
        import io

        with io.TextIOWrapper(gz, encoding="utf-8", newline="\n") as text:
            mgf.write(counted(), output=text, use_numpy=True, write_charges=False, fragment_format="%.5f %.7g")
    os.replace(tmp, path)
    return count


def build_library(sources, out, scale, seed=0):
    """``out/massbank_x<k>.mgf.gz``, built unless an identical build is already there; return (path, spectra)."""
    path = Path(out) / f"massbank_x{scale}.mgf.gz"
    recipe = {"sources": [str(Path(s).resolve()) for s in sources], "sizes": [Path(s).stat().st_size for s in sources],
              "scale": int(scale), "seed": int(seed), "mz_sd": MZ_SD, "intensity_sd": INTENSITY_SD}
    stamp = path.with_name(path.name + ".json")
    if path.is_file() and stamp.is_file():
        saved = json.loads(stamp.read_text())
        if saved.get("recipe") == recipe:
            return path, saved["spectra"]
    started = time.perf_counter()
    spectra = read_sources(sources)
    count = write_library(spectra, path, scale, seed)
    print(f"  built {path.name}: {count:,} spectra in {time.perf_counter() - started:.0f} s "
          f"({path.stat().st_size / 2**20:.0f} MiB)", flush=True)
    stamp.write_text(json.dumps({"recipe": recipe, "spectra": count}, indent=2) + "\n")
    return path, count


# -- measurements ---------------------------------------------------------------------
def measure(cmd, log):
    """Run ``cmd`` in a child process; return (exit code, wall s, peak RSS GiB, CPU s) of that child.

    CPU seconds (user + system) are steadier than wall time when other jobs share the machine.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        # wait4 reports this child's own resources (RUSAGE_CHILDREN would be the max over all children so far).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_maxrss * 1024 / GIB, usage.ru_utime + usage.ru_stime


def epoch_child(args):
    """In a child process: one siamese epoch on a prepared competition; print a JSON line."""
    started = time.perf_counter()
    import kit
    from kit.data import binning

    comp = kit.load_competition(args.competition)
    train = comp.train_spectra
    loaded = time.perf_counter() - started
    model = kit.models.get("siamese")(epochs=1, pairs_per_epoch=args.epoch_pairs, seed=args.seed, verbose=0)
    model.fit(train)
    fit = time.perf_counter() - started - loaded
    matrix = binning.bin_spectra(train)
    dense = matrix.shape[0] * matrix.shape[1] * 4
    sparse = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    print(json.dumps({"train_spectra": len(train), "load_s": round(loaded, 1), "fit_s": round(fit, 1),
                      "binned_nnz": int(matrix.nnz), "sparse_gib": sparse / GIB, "dense_gib": dense / GIB}))


def run_scale(scale, args):
    """Build the k-fold library, then measure prepare and one epoch; return a result dict."""
    out = Path(args.out)
    library, n_spectra = build_library(args.sources, out, scale, args.seed)
    data = out / "data"
    name = f"massbank_x{scale}"
    code, wall, rss, cpu = measure(
        [sys.executable, "-m", "kit", "prepare", "--library", str(library), "--out", str(data), "--name", name,
         "--seed", str(args.seed), "--force", "--quiet"], out / f"prepare_x{scale}.log")
    if code != 0:
        sys.exit(f"kit prepare failed at {scale}x (exit {code}): see {out / f'prepare_x{scale}.log'}")
    result = {"scale": scale, "spectra": n_spectra, "prepare_s": wall, "prepare_gib": rss, "prepare_cpu_s": cpu}
    summary = json.loads((data / name / "competition.json").read_text())
    result["train_spectra"] = summary["split"]["train_spectra"]
    result["molecules"] = summary["split"]["train_molecules"] + summary["split"]["test_molecules"]
    print(f"  {scale}x prepare: {wall:.0f} s ({cpu:.0f} CPU s), peak RSS {rss:.2f} GiB", flush=True)
    if args.epoch_pairs:
        log = out / f"epoch_x{scale}.log"
        code, wall, rss, cpu = measure(
            [sys.executable, str(Path(__file__).resolve()), "epoch", "--competition", str(data / name),
             "--epoch-pairs", str(args.epoch_pairs), "--seed", str(args.seed)], log)
        if code != 0:
            sys.exit(f"siamese epoch failed at {scale}x (exit {code}): see {log}")
        child = json.loads(log.read_text().strip().splitlines()[-1])
        result.update(epoch_s=wall, epoch_gib=rss, epoch_cpu_s=cpu, **{f"epoch_{k}": v for k, v in child.items()})
        print(f"  {scale}x epoch: {wall:.0f} s (load {child['load_s']:.0f} s, fit {child['fit_s']:.0f} s), "
              f"peak RSS {rss:.2f} GiB", flush=True)
    return result


def table(results, epoch_pairs):
    """Markdown table of the results, with time per spectrum and memory relative to the first scale."""
    base = results[0]

    def seconds(r, step):
        cpu = r.get(f"{step}_cpu_s")
        return f"{r[f'{step}_s']:.0f} s" + (f" ({cpu:.0f} CPU s)" if cpu is not None else "")

    def per_spectrum(r, step):
        """Wall (and CPU) seconds per spectrum relative to the first scale."""
        per = r["spectra"] / base["spectra"]
        if f"{step}_s" not in r or f"{step}_s" not in base:
            return "-"
        text = f"{r[f'{step}_s'] / base[f'{step}_s'] / per:.2f}"
        if r.get(f"{step}_cpu_s") and base.get(f"{step}_cpu_s"):
            text += f" (CPU {r[f'{step}_cpu_s'] / base[f'{step}_cpu_s'] / per:.2f})"
        return text

    lines = [
        "| scale | spectra | train spectra | prepare wall | prepare peak RSS | epoch wall (load + fit) | epoch peak RSS "
        f"| prepare s/spectrum vs {base['scale']}x | epoch s/spectrum vs {base['scale']}x | binned peaks (sparse) "
        "| dense spectra x bins | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        row = [f"{r['scale']}x", f"{r['spectra']:,}", f"{r['train_spectra']:,}", seconds(r, "prepare"),
               f"{r['prepare_gib']:.2f} GiB"]
        if "epoch_s" in r:
            row += [f"{seconds(r, 'epoch')}: {r['epoch_load_s']:.0f} + {r['epoch_fit_s']:.0f}", f"{r['epoch_gib']:.2f} GiB"]
        else:
            row += ["-", "-"]
        row += [per_spectrum(r, "prepare"), per_spectrum(r, "epoch")]
        if "epoch_binned_nnz" in r:
            row += [f"{r['epoch_binned_nnz'] / 1e6:.1f} M ({r['epoch_sparse_gib']:.2f} GiB)", f"{r['epoch_dense_gib']:.1f} GiB"]
        else:
            row += ["-", "-"]
        row.append(f"{r.get('load_average', float('nan')):.1f}")
        lines.append("| " + " | ".join(row) + " |")
    top = results[-1]
    notes = [
        "",
        f"Epoch: {epoch_pairs:,} training pairs, the siamese's defaults otherwise (its validation included).",
        f"Load: the 1-minute load average after each scale, on {os.cpu_count()} CPUs "
        "(other jobs share the machine: wall times are noisy, the ratios are the point).",
        f"Targets at {top['scale']}x: prepare under {PREPARE_TARGET_S // 60} min: wall {top['prepare_s'] / 60:.1f} min "
        f"({'met' if top['prepare_s'] < PREPARE_TARGET_S else 'MISSED'})"
        + (f", CPU {top['prepare_cpu_s'] / 60:.1f} min ({'met' if top['prepare_cpu_s'] < PREPARE_TARGET_S else 'MISSED'}; "
           "prepare cleans in one process per CPU, so on idle cores its wall time is about its CPU time over the cores)"
           if top.get("prepare_cpu_s") else "")
        + f"; under {PREPARE_TARGET_GIB:.0f} GiB: {top['prepare_gib']:.2f} GiB "
        f"({'met' if top['prepare_gib'] < PREPARE_TARGET_GIB else 'MISSED'}).",
    ]
    return "\n".join(lines + notes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("epoch", help="(internal) one siamese epoch in this process")
    child.add_argument("--competition", required=True)
    child.add_argument("--epoch-pairs", type=int, default=20000)
    child.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scales", default="1,3,10", help="comma-separated multiples of MassBank (default 1,3,10)")
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "scale"), help="libraries, competitions, logs")
    parser.add_argument("--epoch-pairs", type=int, default=20000, help="training pairs in the epoch (0: no epoch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", nargs="+", type=Path, default=list(SOURCES), help="MGF files making 1x")
    parser.add_argument("--markdown", type=Path, help="append the table to this file")
    parser.add_argument("--reuse", action="store_true",
                        help="take a scale's numbers from an earlier run in --out (same seed, pairs and sources)")
    args = parser.parse_args(argv)
    if args.command == "epoch":
        return epoch_child(args)
    try:
        scales = [int(s) for s in args.scales.split(",")]
    except ValueError:
        parser.error(f"--scales must be comma-separated whole numbers, found {args.scales!r}")
    if not scales or min(scales) < 1:
        parser.error(f"--scales must be positive, found {args.scales!r}")
    missing = [str(s) for s in args.sources if not Path(s).is_file()]
    if missing:
        sys.exit(f"library not found: {', '.join(missing)} (the MassBank files live in ../shared/data/massbank)")
    results = []
    for scale in scales:
        saved = Path(args.out) / f"result_x{scale}.json"
        settings = {"epoch_pairs": args.epoch_pairs, "seed": args.seed, "sources": [str(s) for s in args.sources]}
        if args.reuse and saved.is_file() and json.loads(saved.read_text()).get("settings") == settings:
            results.append(json.loads(saved.read_text())["result"])
            print(f"{scale}x MassBank: measured earlier, from {saved}", flush=True)
            continue
        print(f"{scale}x MassBank (load average {os.getloadavg()[0]:.1f})", flush=True)
        results.append(run_scale(scale, args))
        results[-1]["load_average"] = round(os.getloadavg()[0], 1)
        saved.write_text(json.dumps({"settings": settings, "result": results[-1]}, indent=2) + "\n")
        print(table(results, args.epoch_pairs), flush=True)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as handle:
            handle.write("\n" + table(results, args.epoch_pairs) + "\n")
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
