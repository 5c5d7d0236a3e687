"""The kit against its peers on one competition, side by side, in one run.

Rows (``--rows``, in this order by default):

``matchms-cosine``, ``matchms-modified-cosine``
    The classic method: matchms ``CosineGreedy`` and ``ModifiedCosineGreedy`` (tolerance
    0.1 Da) on each test pair, the raw score taken as the predicted Tanimoto (no
    calibration, no training).
``mean``, ``cosine``, ``gbm``, ``siamese``, ``blend``
    The kit's ladder, every rung: ``kit train RUNG`` then ``kit predict MODEL_DIR``, each
    in its own process in the kit's environment (TensorFlow). A rung's training seconds
    are its own fit (``fit_seconds`` of its manifest): the blend's are its whole
    ``kit train blend`` fit, the siamese it trains inside included, not the siamese row's.
    The siamese's inference is the kit's own: ``kit predict`` and the timing worker go
    through ``SiameseModel.predict`` / ``predict_embeddings``, whose first dense layer
    runs as a sparse product of the binned spectra (``SiameseModel._embed``).
``ms2deepscore``, ``ms2deepscore-metadata``, ``ms2deepscore-default``
    The published method, ms2deepscore 2.x on PyTorch, in the peers' environment
    (``make bench-env`` builds ``.venv-bench``): trained on the same training and
    validation spectra as ``kit train`` uses (the same split by molecule), with the same
    label (RDKit path fingerprints, 2048 bits) and the siamese rung's training time as its
    time budget. The first two have the siamese rung's network size (Dense 500 - 500 -
    200); the first feeds it binned peaks only (its library defaults), the second adds
    precursor m/z and ion mode, as ms2deepscore's README trains it and as the siamese rung
    does by default. The third is the second at ms2deepscore's own default size (its
    ``SettingsMS2Deepscore`` ``base_dims`` and ``embedding_dim``: (10000,) and 500 in 2.11).

Every row is scored against ``private/solution.csv`` by :func:`kit.scoring.scorer.score_submission`
(Private RMSE, binned RMSE, MAE, Pearson r, and, where the competition has
``private/pair_details.csv``, RMSE on same-molecule pairs and on pairs of different
molecules), and timed: training seconds, inference spectra/s and pairs/s (in-process,
best of up to three runs, model already loaded), peak RSS of each process
(``os.wait4``). Against each ms2deepscore row the report checks the two goals and says
which model is better per unit of training time. The script writes ``bench/RESULTS.md``
and ``bench/results_per_bin.png`` itself, after every row, so an interrupted run still
leaves the rows that finished.

TensorFlow and PyTorch never share a process (together they can crash): each row runs in
subprocesses with the interpreter of the environment it needs, so either interpreter
drives the whole run::

    .venv-bench/bin/python bench/peers.py [--library ../shared/data/massbank/massbank_positive.mgf.gz]
        [--competition DIR] [--rows matchms-cosine,...,ms2deepscore-default] [--work bench/out/peers]
        [--set siamese.epochs=30 ms2deepscore.batch_size=32 ...] [--ms2deepscore-budget SECONDS]
        [--results bench/RESULTS.md] [--plot bench/results_per_bin.png]

``peers.py worker ...`` is the entry point of those subprocesses, not meant to be typed.

Examples
--------
A quick check of the harness on a small competition (results outside ``bench/``)::

    .venv-bench/bin/python bench/peers.py --competition /tmp/data/tiny --rows mean,siamese,blend,ms2deepscore \\
        --set siamese.epochs=1 blend.siamese_epochs=1 --ms2deepscore-budget 20 \\
        --results /tmp/peers/RESULTS.md --plot /tmp/peers/per_bin.png --work /tmp/peers/work
"""
import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LIBRARY = REPO.parent / "shared" / "data" / "massbank" / "massbank_positive.mgf.gz"
KIT_VENV = REPO / ".venv"
BENCH_VENV = REPO / ".venv-bench"
TOLERANCE = 0.1
SEED = 0
MS2DS_MISSING = "ms2deepscore not installed (make bench-env)"
# The siamese rung's network, given to ms2deepscore so that both have the same size.
MS2DS_NETWORK = {"base_dims": (500, 500), "embedding_dim": 200}
# The worker's --network choices: the siamese's size, or ms2deepscore's own defaults.
MS2DS_SIZES = ("siamese", "ms2deepscore")
# The competition's label (README, "A competition on disk"), in ms2deepscore's words.
MS2DS_LABEL = {"fingerprint_type": "rdkit_binary", "fingerprint_nbits": 2048}
# Used when the siamese row does not run in the same invocation and no budget is given.
DEFAULT_MS2DS_BUDGET = 600.0
# Inference is timed up to this many times (best kept), within this many seconds.
TIMING_REPEATS = 3
TIMING_SECONDS = 60.0


@dataclass(frozen=True)
class RowSpec:
    """What one row is and where it runs."""

    name: str
    label: str
    env: str  # "kit" (TensorFlow, the kit's own .venv) or "bench" (PyTorch, .venv-bench)
    kind: str  # "rung" (kit train + kit predict) or "worker" (this script's worker)
    about: str


ROWS = {
    "matchms-cosine": RowSpec(
        "matchms-cosine", "matchms CosineGreedy (raw)", "kit", "worker",
        f"matchms CosineGreedy(tolerance={TOLERANCE}) score of each pair as the prediction; no training, no calibration"),
    "matchms-modified-cosine": RowSpec(
        "matchms-modified-cosine", "matchms ModifiedCosineGreedy (raw)", "kit", "worker",
        f"matchms ModifiedCosineGreedy(tolerance={TOLERANCE}) score of each pair as the prediction; no training, "
        "no calibration"),
    "mean": RowSpec("mean", "kit mean", "kit", "rung", "the training pairs' mean Tanimoto for every pair"),
    "cosine": RowSpec("cosine", "kit cosine", "kit", "rung",
                      "modified cosine (tolerance 0.1) calibrated to Tanimoto by isotonic regression"),
    "gbm": RowSpec("gbm", "kit gbm", "kit", "rung", "gradient boosting on pair features"),
    "siamese": RowSpec("siamese", "kit siamese", "kit", "rung",
                       "the kit's siamese network (Keras on TensorFlow) with its head over each pair's embedding "
                       "cosine and precursor m/z difference, calibrated by isotonic regression on its validation "
                       "molecules; inference as `kit predict` runs it, the first dense layer "
                       "as a sparse product of the binned spectra"),
    "blend": RowSpec("blend", "kit blend", "kit", "rung",
                     "gradient boosting over the gbm's pair features plus a siamese's prediction and Monte Carlo dropout "
                     "spread (the siamese trained inside the blend, on part of the training molecules); its training "
                     "time is its own whole fit, that siamese included"),
    "ms2deepscore": RowSpec(
        "ms2deepscore", "ms2deepscore (peaks)", "bench", "worker",
        "ms2deepscore 2.x (PyTorch) with its library defaults, binned peaks as the only input; network "
        "500-500-200, label rdkit_binary 2048 bits, the siamese row's training time as its budget"),
    "ms2deepscore-metadata": RowSpec(
        "ms2deepscore-metadata", "ms2deepscore (peaks + metadata)", "bench", "worker",
        "as ms2deepscore (peaks), plus precursor m/z / 1000 and ion mode as inputs, exactly as the training "
        "example of ms2deepscore's README; the same two inputs the siamese rung's `use_metadata` adds"),
    "ms2deepscore-default": RowSpec(
        "ms2deepscore-default", "ms2deepscore (default size, peaks + metadata)", "bench", "worker",
        "as ms2deepscore (peaks + metadata), at ms2deepscore's own default network size (the base_dims and "
        "embedding_dim of its SettingsMS2Deepscore) instead of the siamese's; same label, split and budget"),
}
MS2DS_ROWS = ("ms2deepscore", "ms2deepscore-metadata", "ms2deepscore-default")
# ms2deepscore's README trains with these extra inputs; the siamese rung's metadata
# features are the same two (precursor m/z / 1000, ion mode).
MS2DS_METADATA = [
    ["CategoricalToBinary", {"metadata_field": "ionmode", "entries_becoming_one": "positive",
                             "entries_becoming_zero": "negative"}],
    ["StandardScaler", {"metadata_field": "precursor_mz", "mean": 0, "standard_deviation": 1000}],
]
MS2DS_VARIANTS = {"ms2deepscore": {}, "ms2deepscore-metadata": {"additional_metadata": MS2DS_METADATA},
                  "ms2deepscore-default": {"additional_metadata": MS2DS_METADATA}}
# The network size of each ms2deepscore row (one of MS2DS_SIZES).
MS2DS_SIZE = {"ms2deepscore": "siamese", "ms2deepscore-metadata": "siamese", "ms2deepscore-default": "ms2deepscore"}
DEFAULT_ROWS = list(ROWS)


@dataclass
class Proc:
    """One finished subprocess: its wall time, its own peak RSS, exit code and output."""

    argv: list
    seconds: float
    peak_gib: float
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float = None  # user + system time of the process (all its threads)

    def last_line(self, stream="stdout"):
        lines = [line for line in getattr(self, stream).strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def failure(self):
        """One line saying why the process failed (its last line of stderr)."""
        tail = self.last_line("stderr") or self.last_line("stdout") or "no output"
        return f"exit code {self.returncode}: {tail[-300:]}"


@dataclass
class Row:
    """One line of the results: scores, costs and the exact commands."""

    name: str
    label: str
    status: str = "ok"  # ok, skipped, failed
    message: str = ""
    public: float = None
    private: float = None
    private_binned: float = None
    private_mae: float = None
    private_pearson: float = None
    private_same_molecule: float = None  # Private RMSE on pairs of two spectra of one molecule
    private_different_molecule: float = None  # ... and on pairs of different molecules
    per_bin: dict = None  # Private per-bin RMSE, bin label -> value
    train_seconds: float = None
    timing: dict = None  # from the inference worker (see measure_inference)
    peak_train_gib: float = None
    peak_predict_gib: float = None
    train_cpu_seconds: float = None  # CPU time of the whole training process (data loading included)
    load: tuple = None  # 1-minute load average when the row started and ended
    commands: list = field(default_factory=list)
    details: dict = field(default_factory=dict)


# -- subprocesses -----------------------------------------------------------------------
def run_process(argv, cwd, log=None, env=None):
    """Run ``argv``; return a :class:`Proc` with its OWN peak RSS (``os.wait4``).

    Output goes to temporary files (a pipe could fill and block the child); both streams
    are appended to ``log`` when given.
    """
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, text=True, stdout=out, stderr=err, env=environment)
        # wait4 reports this child's own resource use, not the largest child's so far.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        result = Proc([str(a) for a in argv], seconds, usage.ru_maxrss / 2**20, os.waitstatus_to_exitcode(status),
                      out.read(), err.read(), usage.ru_utime + usage.ru_stime)
    if log is not None:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"$ {shlex.join(result.argv)}\n{result.stdout}\n--- stderr ---\n{result.stderr}\n"
                         f"--- exit {result.returncode}, {result.seconds:.1f} s, peak {result.peak_gib:.2f} GiB ---\n\n")
    return result


def shown(argv):
    """A command line as a reader would type it: paths inside the repository, or beside it
    (``../shared``), made relative to the repository."""
    out = []
    for arg in map(str, argv):
        path = Path(arg)
        if path.is_absolute() and path.is_relative_to(REPO.parent):
            arg = os.path.relpath(path, REPO)
        out.append(arg)
    if out and out[0].endswith("python") and out[1:3] == ["-m", "kit"]:
        out = ["kit", *out[3:]]
    return shlex.join(out)


# -- timing helpers (used by the workers) -------------------------------------------------
def best_of(func, repeats=TIMING_REPEATS, budget=TIMING_SECONDS):
    """Run ``func`` up to ``repeats`` times (fewer when ``budget`` seconds are spent).

    Returns
    -------
    seconds : float
        The fastest run: on a shared machine the least disturbed one.
    result
        What the last run returned.
    runs : int
    """
    times, result, spent = [], None, 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
        spent += times[-1]
        if spent > budget:
            break
    return min(times), result, len(times)


def distinct_spectra(spectra, pairs):
    """The spectra that the pairs use, and each pair's two positions among them."""
    from kit.models.base import pair_indices

    idx_a, idx_b = pair_indices(spectra, pairs)
    used, inverse = np.unique(np.concatenate([idx_a, idx_b]), return_inverse=True)
    return [spectra[i] for i in used], inverse[: len(idx_a)], inverse[len(idx_a):]


def cosine_of_pairs(vectors, idx_a, idx_b, chunk=200_000):
    """Cosine of the embeddings of each pair (rows of ``vectors``); 0 for a zero vector."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    out = np.empty(len(idx_a), dtype=np.float32)
    for start in range(0, len(idx_a), chunk):
        stop = start + chunk
        out[start:stop] = np.einsum("ij,ij->i", unit[idx_a[start:stop]], unit[idx_b[start:stop]])
    return out


def throughput(n_spectra, n_pairs, seconds):
    """Spectra/s and pairs/s for a run of ``seconds`` (None when nothing was timed)."""
    if not seconds or seconds <= 0:
        return None, None
    return n_spectra / seconds, n_pairs / seconds


def best_timing(a, b):
    """Two timings of one model merged: the fastest of each measure, runs added up."""
    out = dict(a)
    for key, value in b.items():
        if value is None or key not in out or out[key] is None:
            out.setdefault(key, value)
        elif key.endswith("_per_s"):
            out[key] = max(out[key], value)
        elif key.endswith("_seconds"):
            out[key] = min(out[key], value)
        elif key == "runs":
            out[key] = out[key] + value
    return out


def versions(*names):
    """Installed versions of the named distributions (missing ones left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


# -- workers (run inside the environment a row needs) -------------------------------------
def worker_matchms(name, competition, out_dir):
    """Raw matchms scores of the test pairs as a submission, with inference timings."""
    from matchms.similarity import CosineGreedy, ModifiedCosineGreedy

    import kit

    comp = kit.load_competition(competition)
    similarity = (CosineGreedy if name == "matchms-cosine" else ModifiedCosineGreedy)(tolerance=TOLERANCE)
    spectra, idx_a, idx_b = distinct_spectra(comp.test_spectra, comp.test_pairs)
    # Numba compiles the scoring kernels on the first call: keep that out of the timing.
    similarity.pair(spectra[idx_a[0]], spectra[idx_b[0]])

    def predict():
        return np.array([float(similarity.pair(spectra[i], spectra[j])["score"]) for i, j in zip(idx_a, idx_b)])

    seconds, scores, runs = best_of(predict)
    path = kit.write_submission(comp, scores, model=name, out_dir=out_dir, fit_seconds=0.0)
    spectra_s, pairs_s = throughput(len(spectra), len(idx_a), seconds)
    return {
        "submission": str(path),
        "train_seconds": 0.0,
        "timing": {"predict_seconds": seconds, "spectra_per_s": spectra_s, "pairs_per_s": pairs_s, "runs": runs,
                   "n_spectra": len(spectra), "n_pairs": len(idx_a)},
        "versions": versions("matchms", "specsim-kit"),
        "settings": {"similarity": type(similarity).__name__, "tolerance": TOLERANCE},
    }


def worker_kit_timing(competition, model_dir):
    """Inference timings of a model saved by ``kit train`` (its submission comes from ``kit predict``)."""
    import kit
    import kit.models

    comp = kit.load_competition(competition)
    model = kit.models.load(model_dir)
    spectra, pairs = comp.test_spectra, comp.test_pairs
    used, idx_a, idx_b = distinct_spectra(spectra, pairs)
    model.predict(spectra, pairs.iloc[:64])  # warm-up: graph building, numba, caches
    seconds, _, runs = best_of(lambda: model.predict(spectra, pairs))
    spectra_s, pairs_s = throughput(len(used), len(idx_a), seconds)
    timing = {"predict_seconds": seconds, "spectra_per_s": spectra_s, "pairs_per_s": pairs_s, "runs": runs,
              "n_spectra": len(used), "n_pairs": len(idx_a)}
    if hasattr(model, "predict_embeddings"):
        from kit.models.siamese import metadata_features

        embed_s, vectors, _ = best_of(lambda: model.predict_embeddings(used))
        # A head also reads the two precursor m/z (read here, out of the timing).
        metadata = metadata_features(used) if model.use_metadata else None
        score_s, _, _ = best_of(lambda: model.score_embeddings(vectors, metadata, idx_a, idx_b))
        timing.update(embed_seconds=embed_s, embed_spectra_per_s=len(used) / embed_s,
                      score_seconds=score_s, score_pairs_per_s=len(idx_a) / score_s)
    return {"timing": timing,
            "versions": versions("specsim-kit", "tensorflow-cpu", "tensorflow", "keras", "matchms", "scikit-learn")}


class BudgetSpent(Exception):
    """Raised between two epochs of ms2deepscore's training when its time budget is spent."""


class BudgetedBatches:
    """ms2deepscore's training batches, with a time budget.

    ms2deepscore's ``train`` has an epoch count but no time budget. This wrapper starts
    another epoch only when it is expected to end (at the pace of the previous epoch,
    validation included) closer to the deadline than stopping now would, so the time
    spent is as near the budget as whole epochs allow. An epoch still running at the
    deadline ends there (after at least one batch): ms2deepscore then validates and
    keeps its checkpoint as after a whole epoch, so a network whose one epoch outlasts
    the budget (its default size on a CPU) still trains for the budget, not longer.
    When it stops, the best checkpoint ms2deepscore saved so far is the trained model,
    as after early stopping. ``cut_short`` counts the epochs ended at the deadline.
    """

    def __init__(self, batches, deadline):
        self.batches = batches
        self.deadline = deadline
        self.epoch_starts = []
        self.cut_short = 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        now = time.perf_counter()
        if self.epoch_starts:
            last_epoch = now - self.epoch_starts[-1]
            if now + last_epoch / 2 > self.deadline:
                raise BudgetSpent
        self.epoch_starts.append(now)
        return self._until_deadline()

    def _until_deadline(self):
        for index, batch in enumerate(self.batches):
            if index and time.perf_counter() > self.deadline:
                self.cut_short += 1
                return
            yield batch


class RecordingValidation:
    """ms2deepscore's validation loss calculator, keeping each epoch's losses.

    Training that ends on the time budget never returns ms2deepscore's history; this
    keeps it anyway.
    """

    def __init__(self, calculator):
        self.calculator = calculator
        self.history = []

    def compute_binned_validation_loss(self, model, loss_types):
        losses, binned = self.calculator.compute_binned_validation_loss(model, loss_types=loss_types)
        self.history.append({k: float(v) for k, v in losses.items()})
        return losses, binned


def ms2deepscore_settings(seed, overrides, size="siamese"):
    """ms2deepscore's settings for this benchmark: its defaults, our label and a network size.

    ``size`` is ``"siamese"`` (the siamese rung's Dense 500 - 500 - 200) or
    ``"ms2deepscore"`` (ms2deepscore's own default ``base_dims`` and ``embedding_dim``).
    Returns the settings object and the settings chosen here (the rest are its defaults).
    """
    from ms2deepscore import SettingsMS2Deepscore

    if size not in MS2DS_SIZES:
        raise ValueError(f"network size {size!r}: expected one of {', '.join(MS2DS_SIZES)}")
    network = MS2DS_NETWORK if size == "siamese" else {}
    chosen = {**network, **MS2DS_LABEL, "ionisation_mode": "positive", "random_seed": int(seed), **overrides}
    return SettingsMS2Deepscore(**chosen), chosen


def import_ms2deepscore():
    """ms2deepscore's training pieces, or None when ms2deepscore or PyTorch is not installed.

    A package that is installed but fails to import (a dependency of its own missing)
    raises: that is a broken environment to fix, not a row to skip quietly.
    """
    from importlib.util import find_spec

    if find_spec("ms2deepscore") is None or find_spec("torch") is None:
        return None
    from ms2deepscore.models.SiameseSpectralModel import SiameseSpectralModel, train
    from ms2deepscore.train_new_model import TrainingBatchGenerator, create_spectrum_pair_generator
    from ms2deepscore.validation_loss_calculation.ValidationLossCalculator import ValidationLossCalculator

    return SiameseSpectralModel, train, TrainingBatchGenerator, create_spectrum_pair_generator, ValidationLossCalculator


def spectra_per_molecule(spectra, per_molecule, seed):
    """At most ``per_molecule`` spectra of each InChIKey (first block), drawn with a seed, in input order."""
    groups = {}
    for i, spectrum in enumerate(spectra):
        groups.setdefault(str(spectrum.get("inchikey"))[:14], []).append(i)
    rng = np.random.default_rng(seed)
    keep = sorted(int(i) for members in groups.values()
                  for i in rng.choice(members, size=min(per_molecule, len(members)), replace=False))
    return [spectra[i] for i in keep]


def worker_ms2deepscore_train(competition, out_dir, budget, seed, overrides, size="siamese"):
    """Train ms2deepscore on the competition's training spectra within ``budget`` seconds.

    ``size``: the network, as :func:`ms2deepscore_settings` takes it.
    """
    parts = import_ms2deepscore()
    if parts is None:
        return {"skipped": MS2DS_MISSING}
    SiameseSpectralModel, train, TrainingBatchGenerator, create_spectrum_pair_generator, ValidationLossCalculator = parts
    import torch

    import kit
    from kit.models.training import VALIDATION_FRACTION, split_for_validation

    comp = kit.load_competition(competition)
    # The split `kit train` makes (same fraction, same seed): both networks learn from the
    # same spectra and stop early on the same validation molecules.
    train_spectra, val_spectra = split_for_validation(comp.train_spectra, VALIDATION_FRACTION, seed)
    settings, chosen = ms2deepscore_settings(seed, overrides, size)
    # ms2deepscore validates on all pairs of its validation spectra (a quadratic cost per
    # epoch); its settings document `val_spectra_per_inchikey` (default 1) for that set,
    # which 2.11 no longer applies itself.
    val_spectra = spectra_per_molecule(val_spectra, int(settings.val_spectra_per_inchikey), seed)
    torch.manual_seed(int(seed))
    # ms2deepscore writes its checkpoint and TensorBoard logs relative to the working folder.
    os.chdir(out_dir)
    checkpoint = settings.model_file_name
    started = time.perf_counter()
    deadline = started + float(budget)
    # From here on, what ms2deepscore's train_ms2ds_model does, minus the ONNX export.
    pair_generator = create_spectrum_pair_generator(train_spectra, settings=settings)
    batches = BudgetedBatches(TrainingBatchGenerator(spectrum_pair_generator=pair_generator, settings=settings),
                              deadline)
    validation = RecordingValidation(ValidationLossCalculator(val_spectra, settings=settings))
    model = SiameseSpectralModel(settings=settings)
    try:
        train(model, batches, num_epochs=settings.epochs, learning_rate=settings.learning_rate,
              validation_loss_calculator=validation, patience=settings.patience,
              loss_function=settings.loss_function, checkpoint_filename=checkpoint,
              lambda_l1=0, lambda_l2=0, progress_bar=False)
        epochs_run = len(validation.history)
        stopped_by = "early stopping" if epochs_run < settings.epochs else "epoch limit"
    except BudgetSpent:
        epochs_run = len(validation.history)
        stopped_by = "time budget"
    train_seconds = time.perf_counter() - started
    # Pair selection and the validation set-up come before the first epoch.
    setup_seconds = (batches.epoch_starts[0] - started) if batches.epoch_starts else train_seconds
    key = settings.loss_function
    val_loss = [h.get(key, math.nan) for h in validation.history]
    best = int(np.nanargmin(val_loss)) + 1 if val_loss else None
    return {
        "checkpoint": str(Path(out_dir) / checkpoint),
        "train_seconds": train_seconds,
        "budget_seconds": float(budget),
        "setup_seconds": setup_seconds,
        "epochs_run": epochs_run,
        "epochs_cut_short": batches.cut_short,
        "best_epoch": best,
        "best_val_rmse": validation.history[best - 1].get("rmse") if best else None,
        "stopped_by": stopped_by,
        "batches_per_epoch": len(batches),
        "pairs_per_epoch": len(batches) * int(settings.batch_size),
        "n_train_spectra": len(train_spectra),
        "n_validation_spectra": len(val_spectra),
        "val_spectra_per_inchikey": int(settings.val_spectra_per_inchikey),
        "history": validation.history,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in chosen.items()},
        "network": {"size": size, "base_dims": _plain(settings.base_dims), "embedding_dim": int(settings.embedding_dim)},
        "defaults_kept": {k: _plain(getattr(settings, k)) for k in
                          ("base_dims", "embedding_dim", "learning_rate", "batch_size", "dropout_rate", "epochs",
                           "patience", "loss_function", "mz_bin_width", "min_mz", "max_mz", "intensity_scaling",
                           "average_inchikey_sampling_count") if k not in chosen},
        "versions": versions("ms2deepscore", "torch", "matchms", "rdkit", "specsim-kit"),
        "threads": torch.get_num_threads(),
    }


def worker_ms2deepscore_predict(competition, out_dir, timing_only=False):
    """Predict the test pairs with the trained checkpoint (embed once, cosine per pair).

    With ``timing_only``, time it again without writing a submission.
    """
    if import_ms2deepscore() is None:
        return {"skipped": MS2DS_MISSING}
    from ms2deepscore import MS2DeepScore
    from ms2deepscore.models import load_model

    import kit

    comp = kit.load_competition(competition)
    result = json.loads((Path(out_dir) / "train.json").read_text())
    similarity = MS2DeepScore(load_model(result["checkpoint"]), progress_bar=False)
    spectra, idx_a, idx_b = distinct_spectra(comp.test_spectra, comp.test_pairs)
    similarity.get_embedding_array(spectra[:64])  # warm-up: numba compiles the binning
    parts = {}

    def predict():
        start = time.perf_counter()
        vectors = similarity.get_embedding_array(spectra)
        middle = time.perf_counter()
        scores = cosine_of_pairs(vectors, idx_a, idx_b)
        end = time.perf_counter()
        parts.setdefault("embed", []).append(middle - start)
        parts.setdefault("score", []).append(end - middle)
        return scores

    seconds, raw, runs = best_of(predict)
    spectra_s, pairs_s = throughput(len(spectra), len(idx_a), seconds)
    embed_s, score_s = min(parts["embed"]), min(parts["score"])
    timing = {"predict_seconds": seconds, "spectra_per_s": spectra_s, "pairs_per_s": pairs_s, "runs": runs,
              "n_spectra": len(spectra), "n_pairs": len(idx_a), "embed_seconds": embed_s,
              "embed_spectra_per_s": len(spectra) / embed_s, "score_seconds": score_s,
              "score_pairs_per_s": len(idx_a) / score_s}
    if timing_only:
        return {"timing": timing}
    # ms2deepscore's embeddings end in tanh, so its cosines can be negative; the kit's
    # siamese clips to [0, 1] as well, and no Tanimoto lies outside.
    clipped = int(((raw < 0) | (raw > 1)).sum())
    predictions = np.clip(raw.astype(np.float64), 0.0, 1.0)
    path = kit.write_submission(comp, predictions, model="ms2deepscore", out_dir=out_dir,
                                fit_seconds=result.get("train_seconds"))
    return {"submission": str(path), "timing": timing, "clipped_to_unit_interval": clipped}


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def worker_main(argv):
    """``peers.py worker KIND ...``: one step of one row; writes a JSON result file."""
    parser = argparse.ArgumentParser(prog="peers.py worker")
    parser.add_argument("kind", choices=["matchms-cosine", "matchms-modified-cosine", "kit-timing",
                                         "ms2deepscore-train", "ms2deepscore-predict"])
    parser.add_argument("--competition", required=True)
    parser.add_argument("--out", required=True, help="row folder (results and files land here)")
    parser.add_argument("--result", required=True, help="JSON file to write")
    parser.add_argument("--model", help="kit model folder (kit-timing)")
    parser.add_argument("--budget", type=float, default=DEFAULT_MS2DS_BUDGET)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--settings", default="{}", help="JSON object of ms2deepscore settings")
    parser.add_argument("--network", choices=MS2DS_SIZES, default="siamese",
                        help="ms2deepscore-train: the siamese's network size or ms2deepscore's own default")
    parser.add_argument("--timing-only", action="store_true", help="ms2deepscore-predict: time, write no submission")
    args = parser.parse_args(argv)
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    result_path = Path(args.result).resolve()
    competition = str(Path(args.competition).resolve())
    if args.kind.startswith("matchms"):
        result = worker_matchms(args.kind, competition, out_dir)
    elif args.kind == "kit-timing":
        result = worker_kit_timing(competition, args.model)
    elif args.kind == "ms2deepscore-train":
        result = worker_ms2deepscore_train(competition, out_dir, args.budget, args.seed, json.loads(args.settings),
                                           args.network)
    else:
        result = worker_ms2deepscore_predict(competition, out_dir, timing_only=args.timing_only)
    result_path.write_text(json.dumps(result, indent=2, default=_plain))
    return 0


# -- the driver ---------------------------------------------------------------------------
class Harness:
    """Runs rows in subprocesses with the right interpreter and scores what they write.

    Parameters
    ----------
    competition : Path
        The competition folder (with ``private/solution.csv``).
    work : Path
        Where models, submissions and per-row logs go.
    kit_python, bench_python : Path
        Interpreters of the kit's environment (TensorFlow) and of the peers' (PyTorch).
    overrides : dict
        ``{"siamese": ["--epochs", "5"], "ms2deepscore": {"batch_size": 8}}``.
    ms2deepscore_budget : float, optional
        Training seconds for ms2deepscore; default: the siamese row's training time.
    seed : int
    """

    def __init__(self, competition, work, kit_python, bench_python, overrides=None, ms2deepscore_budget=None,
                 seed=SEED):
        self.competition = Path(competition).resolve()
        self.work = Path(work).resolve()
        self.kit_python = Path(kit_python)
        self.bench_python = Path(bench_python)
        self.overrides = overrides or {}
        self.ms2deepscore_budget = ms2deepscore_budget
        self.seed = seed
        self.rows = []

    def folder(self, name):
        path = self.work / "rows" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def python(self, spec):
        """The interpreter of the environment a row needs."""
        return self.bench_python if spec.env == "bench" else self.kit_python

    def worker(self, python, kind, row, result_name, *extra, record=True):
        """Run this script's worker ``kind`` for ``row``; return (Proc, its JSON result or None).

        ``record`` adds the command to the row's commands (repeats of a timing leave it out).
        """
        folder = self.folder(row.name)
        result_path = folder / result_name
        result_path.unlink(missing_ok=True)
        argv = [python, Path(__file__).resolve(), "worker", kind, "--competition", self.competition,
                "--out", folder, "--result", result_path, "--seed", self.seed, *extra]
        proc = run_process(argv, cwd=folder, log=folder / "log.txt")
        if record:
            row.commands.append(shown(argv))
        if proc.returncode != 0 or not result_path.is_file():
            return proc, None
        return proc, json.loads(result_path.read_text())

    def run(self, name):
        """Run the row ``name``, score it, and keep it; never raises for a failing row."""
        spec = ROWS[name]
        row = Row(name=name, label=spec.label)
        row.load = (os.getloadavg()[0], None)
        try:
            if spec.kind == "rung":
                self._rung(spec, row)
            elif name in MS2DS_ROWS:
                self._ms2deepscore(spec, row)
            else:
                self._matchms(spec, row)
            if row.status == "ok":
                self._score(row)
        except Exception as exc:  # a failed row is reported in the table; the others still run
            row.status, row.message = "failed", f"{type(exc).__name__}: {exc}"
        row.load = (row.load[0], os.getloadavg()[0])
        if row.timing and row.timing.get("embed_spectra_per_s"):
            row.details["embed_rounds"] = [row.timing["embed_spectra_per_s"]]
        self.rows.append(row)
        return row

    def retime(self, rounds):
        """Time the embedding models again, interleaved, so that each sees the same machine load.

        Other jobs on a shared machine change its speed from minute to minute; a row timed
        right after its training may meet another load than the next one. ``rounds``
        more timings of each (order reversed every other round) keep the best of all.
        """
        contenders = [r for r in self.rows if r.status == "ok" and r.timing and r.timing.get("embed_spectra_per_s")]
        if len(contenders) < 2:
            return
        for k in range(rounds):
            for row in contenders if k % 2 else contenders[::-1]:
                name = f"timing-round{k + 2}.json"
                if row.name in MS2DS_ROWS:
                    proc, result = self.worker(self.bench_python, "ms2deepscore-predict", row, name, "--timing-only",
                                               record=False)
                else:
                    proc, result = self.worker(self.kit_python, "kit-timing", row, name, "--model",
                                               row.details["model_dir"], record=False)
                if result is None:
                    row.details.setdefault("retime_failures", []).append(proc.failure())
                    continue
                row.timing = best_timing(row.timing, result["timing"])
                row.details["embed_rounds"].append(result["timing"]["embed_spectra_per_s"])

    def _fail(self, row, what, proc):
        row.status, row.message = "failed", f"{what} failed ({proc.failure()})"

    def _matchms(self, spec, row):
        proc, result = self.worker(self.python(spec), spec.name, row, "predict.json")
        if result is None:
            return self._fail(row, "scoring pairs", proc)
        row.train_seconds, row.timing = result["train_seconds"], result["timing"]
        row.peak_predict_gib = proc.peak_gib
        row.details.update(submission=result["submission"], versions=result["versions"], settings=result["settings"])

    def _rung(self, spec, row):
        extra = list(self.overrides.get(spec.name, []))
        folder = self.folder(spec.name)
        train = [self.kit_python, "-m", "kit", "train", spec.name, "--competition", self.competition,
                 "--seed", self.seed, "--models", self.work / "models", *extra]
        proc = run_process(train, cwd=self.work, log=folder / "log.txt")
        row.commands.append(shown(train))
        if proc.returncode != 0:
            return self._fail(row, "kit train", proc)
        model_dir = proc.last_line().removeprefix("saved ").strip()
        manifest = json.loads((Path(model_dir) / "manifest.json").read_text())
        row.train_seconds, row.peak_train_gib = manifest.get("fit_seconds"), proc.peak_gib
        row.train_cpu_seconds = proc.cpu_seconds
        row.details.update(model_dir=model_dir, train_wall_seconds=proc.seconds,
                           validation=manifest.get("validation_score"), params=manifest.get("params"),
                           best_epoch=manifest.get("best_epoch"),
                           epochs_run=len((manifest.get("history") or {}).get("loss", [])) or None)
        predict = [self.kit_python, "-m", "kit", "predict", model_dir, "--competition", self.competition,
                   "--submissions", self.work / "submissions"]
        proc = run_process(predict, cwd=self.work, log=folder / "log.txt")
        row.commands.append(shown(predict))
        if proc.returncode != 0:
            return self._fail(row, "kit predict", proc)
        row.peak_predict_gib = proc.peak_gib
        row.details.update(submission=proc.last_line().removeprefix("wrote ").strip(), predict_wall_seconds=proc.seconds)
        proc, result = self.worker(self.kit_python, "kit-timing", row, "timing.json", "--model", model_dir)
        if result is None:
            return self._fail(row, "timing inference", proc)
        row.timing = result["timing"]
        row.details.update(versions=result["versions"])

    def budget(self):
        """ms2deepscore's training seconds: given, else this run's siamese training time."""
        if self.ms2deepscore_budget is not None:
            return float(self.ms2deepscore_budget), "given with --ms2deepscore-budget"
        siamese = next((r for r in self.rows if r.name == "siamese" and r.train_seconds), None)
        if siamese is not None:
            return float(siamese.train_seconds), "the siamese row's training time (fit_seconds of its manifest)"
        return DEFAULT_MS2DS_BUDGET, "default (no siamese row in this run)"

    def _ms2deepscore(self, spec, row):
        if not self.python(spec).is_file():
            row.status, row.message = "skipped", MS2DS_MISSING
            return
        budget, source = self.budget()
        settings = json.dumps({**MS2DS_VARIANTS[spec.name], **self.overrides.get(spec.name, {})})
        proc, result = self.worker(self.python(spec), "ms2deepscore-train", row, "train.json",
                                   "--budget", f"{budget:.1f}", "--settings", settings, "--network", MS2DS_SIZE[spec.name])
        if result is None:
            return self._fail(row, "ms2deepscore training", proc)
        if result.get("skipped"):
            row.status, row.message = "skipped", result["skipped"]
            return
        row.train_seconds, row.peak_train_gib = result["train_seconds"], proc.peak_gib
        row.train_cpu_seconds = proc.cpu_seconds
        row.details.update({k: v for k, v in result.items() if k != "checkpoint"}, budget_source=source,
                           train_wall_seconds=proc.seconds)
        version = result["versions"].get("ms2deepscore")
        if version:
            row.label = spec.label.replace("ms2deepscore", f"ms2deepscore {version}", 1)
        proc, result = self.worker(self.python(spec), "ms2deepscore-predict", row, "predict.json")
        if result is None:
            return self._fail(row, "ms2deepscore prediction", proc)
        row.timing, row.peak_predict_gib = result["timing"], proc.peak_gib
        row.details.update(submission=result["submission"], clipped_to_unit_interval=result["clipped_to_unit_interval"])

    def _score(self, row):
        from kit.scoring.scorer import score_submission

        result = score_submission(row.details["submission"], self.competition)
        private = result.details.get("Private") or result.details["Public"]
        row.public, row.private = result.public, result.private
        row.private_binned, row.private_mae, row.private_pearson = private["binned_rmse"], private["mae"], private["pearson"]
        row.per_bin = private["per_bin_rmse"]
        # Absent (None) for a competition prepared before private/pair_details.csv existed.
        row.private_same_molecule = private.get("same_molecule_rmse")
        row.private_different_molecule = private.get("different_molecule_rmse")
        if "same_molecule_rows" in private:
            row.details.update(same_molecule_rows=private["same_molecule_rows"],
                               different_molecule_rows=private["different_molecule_rows"])


# -- results --------------------------------------------------------------------------------
def _num(value, digits=5):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _count(value):
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def cores_busy(row):
    """CPU time of a row's training process over its wall time (None when not measured)."""
    wall = (row.details or {}).get("train_wall_seconds")
    if not row.train_cpu_seconds or not wall:
        return None
    return row.train_cpu_seconds / wall


def _molecule_rows(rows):
    """``"; N of the M Private pairs are of one molecule"`` from the first scored row that knows it."""
    for r in rows:
        d = r.details or {}
        if d.get("same_molecule_rows") is not None:
            total = d["same_molecule_rows"] + d["different_molecule_rows"]
            return f"; {d['same_molecule_rows']:,} of the {total:,} Private pairs are of one molecule"
    return ""


def _epochs(row):
    """``", 7 epochs"``, or ``", 1 epoch within its 300 s budget"`` for an ms2deepscore row."""
    d = row.details or {}
    if d.get("epochs_run") is None:
        return ""
    n = d["epochs_run"]
    budget = f" within its {d['budget_seconds']:.0f} s budget" if d.get("budget_seconds") else ""
    return f", {n} epoch{'' if n == 1 else 's'}{budget}"


def training_time_line(ours, peer, baseline=None):
    """Which of the siamese and an ms2deepscore row is better per unit of training time.

    The one at or below the other's Private RMSE in no more training time is better.
    When each wins one of the two, the RMSE gained below ``baseline`` (the mean rung)
    per training minute decides; without a baseline the line states the trade-off.

    Examples
    --------
    >>> ours = Row("siamese", "kit siamese", private=0.17, train_seconds=300.0)
    >>> peer = Row("ms2deepscore", "ms2deepscore", private=0.19, train_seconds=310.0)
    >>> "the siamese is better" in training_time_line(ours, peer)
    True
    """
    said = (f"- Per unit of training time vs {peer.label}: Private RMSE {ours.private:.5f} in "
            f"{ours.train_seconds:,.0f} s{_epochs(ours)} (siamese) vs {peer.private:.5f} in "
            f"{peer.train_seconds:,.0f} s{_epochs(peer)}: ")
    if ours.private <= peer.private and ours.train_seconds <= peer.train_seconds:
        return said + "**the siamese is better**, as low an RMSE or lower in no more time."
    if peer.private <= ours.private and peer.train_seconds <= ours.train_seconds:
        return said + f"**{peer.label} is better**, as low an RMSE or lower in no more time."
    lower, faster = (ours, peer) if ours.private < peer.private else (peer, ours)
    trade = (f"{'the siamese' if lower is ours else lower.label} reaches the lower RMSE but trains "
             f"{lower.train_seconds / faster.train_seconds:.2f}x as long")
    if baseline is None or baseline.status != "ok" or baseline.private is None:
        return said + trade + " (run the mean row to weigh RMSE against time)."

    def gain(row):
        return (baseline.private - row.private) / (row.train_seconds / 60)

    better = ours if gain(ours) >= gain(peer) else peer
    return (said + trade + f"; Private RMSE below the mean rung's ({baseline.private:.5f}) per training minute: "
            f"{gain(ours):.5f} (siamese) vs {gain(peer):.5f}, so **"
            f"{'the siamese' if better is ours else peer.label} is better per unit of training time**.")


def goal_lines(rows):
    """The two goals, checked on this run's numbers against each ms2deepscore row.

    Each goal line says met or NOT met, with the numbers that decide it; a third line per
    row says which is better per unit of training time (:func:`training_time_line`).
    """
    by_name = {r.name: r for r in rows}
    ours = by_name.get("siamese")
    rivals = [by_name[n] for n in MS2DS_ROWS if n in by_name]
    lines = []
    if ours is None or ours.status != "ok":
        why = "not run" if ours is None else f"{ours.status} ({ours.message})"
        return [f"- Goals not evaluated: siamese: {why}."]
    if not rivals:
        return ["- Goals not evaluated: ms2deepscore: not run."]
    for peer in rivals:
        if peer.status != "ok":
            lines.append(f"- Goals not evaluated against {peer.label}: {peer.status} ({peer.message}).")
            continue
        met = ours.private <= peer.private
        lines.append(
            f"- Goal 1 vs {peer.label}, siamese Private RMSE at or below it at equal training time: "
            f"**{'met' if met else 'NOT met'}**. Private RMSE {ours.private:.5f} (siamese) vs {peer.private:.5f}, "
            f"{'-' if met else '+'}{abs(ours.private - peer.private):.5f}; "
            f"training {ours.train_seconds:.0f} s vs {peer.train_seconds:.0f} s "
            f"(budget {peer.details.get('budget_seconds', 0):.0f} s, stopped by "
            f"{peer.details.get('stopped_by', '?')} after {peer.details.get('epochs_run', '?')} epoch(s)).")
        ours_busy, peer_busy = cores_busy(ours), cores_busy(peer)
        if ours_busy and peer_busy and peer_busy < 0.8 * ours_busy:
            lines.append(
                f"  - Caveat: other jobs shared the machine while {peer.label} trained ({peer_busy:.2f} cores busy "
                f"vs {ours_busy:.2f} for the siamese), so its budget bought fewer epochs than on a quiet machine.")
        elif ours_busy and peer_busy and ours_busy < 0.8 * peer_busy:
            lines.append(
                f"  - Caveat: other jobs shared the machine while the siamese trained ({ours_busy:.2f} cores busy "
                f"vs {peer_busy:.2f} for {peer.label}).")
        a = (ours.timing or {}).get("embed_spectra_per_s")
        b = (peer.timing or {}).get("embed_spectra_per_s")
        if a and b:
            ratio = a / b
            e2e = ((ours.timing or {}).get("spectra_per_s") or 0) / ((peer.timing or {}).get("spectra_per_s") or math.inf)
            lines.append(
                f"- Goal 2 vs {peer.label}, siamese inference at least 2x its spectra/s: "
                f"**{'met' if ratio >= 2 else 'NOT met'}**. Embedding {a:,.0f} vs {b:,.0f} spectra/s = {ratio:.2f}x "
                f"(end to end, pairs scored too: {e2e:.2f}x).")
        else:
            lines.append(f"- Goal 2 vs {peer.label} not evaluated: an embedding throughput is missing.")
        lines.append(training_time_line(ours, peer, by_name.get("mean")))
    return lines


def render_markdown(rows, meta, plot_name):
    """The whole RESULTS.md text."""
    out = ["# specsim-kit against its peers", "",
           "Written by `bench/peers.py` (never edited by hand). Regenerate with:", "",
           "```", meta["command"], "```", ""]
    comp = meta["competition"]
    out += [f"Competition `{comp['name']}` ({comp['how']}): {comp['train_spectra']:,} training spectra "
            f"({comp['train_molecules']:,} molecules), {comp['test_spectra']:,} test spectra "
            f"({comp['test_molecules']:,} molecules), {comp['pairs']:,} test pairs balanced over 10 Tanimoto bins, "
            f"{comp['public_rows']:,} Public / {comp['private_rows']:,} Private. "
            f"Every trained row learns from the same {meta.get('n_train', '?')} spectra (the split `kit train` makes, "
            f"10% of training molecules held out for validation, seed {meta['seed']}).", "",
            f"Machine: {meta['machine']}. Run {meta['started']} to {meta.get('finished', '(unfinished)')}. "
            "The machine is shared with other jobs (the 1-minute load average is in the second table): absolute "
            "times move between runs; compare rows within one run.", ""]
    if meta.get("status"):
        out += [f"**{meta['status']}**", ""]
    out += ["## Scores", "",
            "*same-molecule* and *different-molecule*: Private RMSE on the pairs of two spectra of one molecule "
            "and on the pairs of different molecules (`private/pair_details.csv`, as `kit score --json` reports "
            "them; `-` for a competition without that file)" + _molecule_rows(rows) + ".", "",
            "| row | Public RMSE | Private RMSE | Private binned RMSE | Private same-molecule RMSE | "
            "Private different-molecule RMSE | Private MAE | Private Pearson r | status |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        status = r.status if r.status == "ok" else f"{r.status}: {r.message}"
        out.append(f"| {r.label} | {_num(r.public)} | {_num(r.private)} | {_num(r.private_binned)} | "
                   f"{_num(r.private_same_molecule)} | {_num(r.private_different_molecule)} | "
                   f"{_num(r.private_mae)} | {_num(r.private_pearson, 4)} | {status} |")
    out += ["", *goal_lines(rows), "", "## Costs", "",
            "Inference is timed in-process on the test spectra and pairs, model loaded, best of up to 3 runs. "
            "*spectra/s* and *pairs/s*: everything from spectra to one prediction per pair, divided by the "
            "distinct spectra and by the pairs. *embed spectra/s*: the embedding step alone (binning included) "
            "of the embedding models; *score pairs/s*: similarities from embeddings (cosines, through the siamese's "
            "head where it has one). *training s* is the wall time of "
            "fitting; *train CPU s* the CPU time (all threads) of the whole training process, data loading "
            "included, which other jobs on the machine disturb less; *cores busy* that CPU time over the "
            "process's wall time: the networks train on both cores, so a value well under the other network's "
            "means other jobs took cores while it trained. Peak RSS is each process's own. The siamese is timed "
            "as `kit predict` runs it: its first dense layer is a sparse product of the binned spectra."
            + (f" The embedding models are timed {meta['timing_rounds']} more times after all rows, interleaved "
               "(order reversed every other round) so that each meets the same machine load; their columns keep "
               "the best of all rounds (each round's embed spectra/s is listed under Rows)."
               if meta.get("timing_rounds") else ""), "",
            "| row | training s | train CPU s | cores busy | predict s | spectra/s | pairs/s | embed spectra/s | "
            "score pairs/s | peak RSS train GiB | peak RSS predict GiB | load avg (start, end) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r.timing or {}
        load = "-" if not r.load or r.load[1] is None else f"{r.load[0]:.1f}, {r.load[1]:.1f}"
        train = "-" if r.train_seconds is None else ("0 (none)" if r.train_seconds == 0 else f"{r.train_seconds:,.0f}")
        cpu = "-" if r.train_cpu_seconds is None else f"{r.train_cpu_seconds:,.0f}"
        busy = _num(cores_busy(r), 2)
        out.append(
            f"| {r.label} | {train} | {cpu} | {busy} | {_num(t.get('predict_seconds'), 2)} | {_count(t.get('spectra_per_s'))} | "
            f"{_count(t.get('pairs_per_s'))} | {_count(t.get('embed_spectra_per_s'))} | "
            f"{_count(t.get('score_pairs_per_s'))} | {_num(r.peak_train_gib, 2)} | "
            f"{_num(r.peak_predict_gib, 2)} | {load} |"
        )
    scored = [r for r in rows if r.per_bin]
    if scored:
        labels = list(scored[0].per_bin)
        out += [
            "",
            "## Private RMSE per Tanimoto bin",
            "",
            f"![Private RMSE per bin]({plot_name})",
            "",
            "| row | " + " | ".join(labels) + " |",
            "|---|" + "---|" * len(labels),
        ]
        for r in scored:
            out.append(f"| {r.label} | " + " | ".join(_num(r.per_bin.get(b), 3) for b in labels) + " |")
    out += ["", "## Rows", ""]
    for r in rows:
        out.append(f"- **{r.label}**: {ROWS[r.name].about}.{_row_note(r)}")
        for command in r.commands:
            out.append(f"  - `{command}`")
    out += ["", "## Versions", ""]
    seen = {}
    for r in rows:
        seen.update((r.details or {}).get("versions") or {})
    out.append(", ".join(f"{k} {v}" for k, v in sorted(seen.items())) or "-")
    out.append("")
    return "\n".join(out)


def _row_note(row):
    d = row.details or {}
    notes = []
    if row.name in MS2DS_ROWS and row.status == "ok":
        notes.append(
            f" Settings: {json.dumps(d.get('settings'))}; ms2deepscore defaults kept: {json.dumps(d.get('defaults_kept'))}."
            f" Network: base_dims {(d.get('network') or {}).get('base_dims')}, embedding "
            f"{(d.get('network') or {}).get('embedding_dim')}."
            f" Budget {d.get('budget_seconds', 0):.0f} s ({d.get('budget_source')}); trained {row.train_seconds:.0f} s, "
            f"of which {d.get('setup_seconds', 0):.0f} s before the first epoch (fingerprints, pair selection, "
            f"numba compilation); {d.get('epochs_run')} epoch(s) of {d.get('pairs_per_epoch'):,} pairs, "
            f"stopped by {d.get('stopped_by')}; validation on {d.get('n_validation_spectra'):,} spectra (at most "
            f"{d.get('val_spectra_per_inchikey')} per validation molecule: ms2deepscore's val_spectra_per_inchikey); "
            f"best epoch {d.get('best_epoch')} (validation RMSE {_num(d.get('best_val_rmse'))}) restored from its "
            f"checkpoint. Test cosines clipped to [0, 1] as the siamese rung does: {d.get('clipped_to_unit_interval')} "
            f"of {(row.timing or {}).get('n_pairs', 0):,} pairs were outside."
        )
    elif row.name == "siamese" and row.status == "ok":
        notes.append(
            f" Parameters: {json.dumps(d.get('params'))}; {d.get('epochs_run')} epochs, best epoch {d.get('best_epoch')}."
        )
    elif row.name == "blend" and row.status == "ok":
        notes.append(f" Parameters: {json.dumps(d.get('params'))}.")
    validation = d.get("validation")
    if isinstance(validation, dict):
        validation = validation.get("rmse")
    if isinstance(validation, (int, float)):
        notes.append(f" Validation RMSE {_num(float(validation))}.")
    if len(d.get("embed_rounds") or []) > 1:
        notes.append(" Embed spectra/s per timing round: " + ", ".join(f"{v:,.0f}" for v in d["embed_rounds"]) + ".")
    if d.get("retime_failures"):
        notes.append(f" Timing rounds that failed: {'; '.join(d['retime_failures'])}.")
    return "".join(notes)


def plot_per_bin(rows, path):
    """Private RMSE per Tanimoto bin, one line per scored row, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in rows if r.per_bin]
    fig, ax = plt.subplots(figsize=(9, 5))
    for r in scored:
        labels = list(r.per_bin)
        values = [np.nan if r.per_bin[b] is None else r.per_bin[b] for b in labels]
        style = "-" if r.name in ("siamese", "blend") or r.name in MS2DS_ROWS else "--"
        ax.plot(range(len(labels)), values, style, marker="o", label=f"{r.label} ({_num(r.private)})")
    if scored:
        labels = list(scored[0].per_bin)
        ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_xlabel("true Tanimoto bin")
    ax.set_ylabel("Private RMSE")
    ax.set_title("Private RMSE per Tanimoto bin (legend: overall Private RMSE)")
    ax.grid(alpha=0.3)
    if scored:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_results(rows, meta, results, plot, work):
    """RESULTS.md, the per-bin plot, and a JSON copy of every number under ``work``."""
    results, plot = Path(results), Path(plot)
    plot_per_bin(rows, plot)
    try:
        plot_name = os.path.relpath(plot, results.parent)
    except ValueError:
        plot_name = str(plot)
    results.parent.mkdir(parents=True, exist_ok=True)
    tmp = results.with_name(results.name + ".tmp")
    tmp.write_text(render_markdown(rows, meta, plot_name), encoding="utf-8")
    os.replace(tmp, results)
    (Path(work) / "results.json").write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2, default=_plain)
    )


def competition_summary(folder, how):
    from kit.competition.folder import load_competition

    meta = load_competition(folder).metadata
    split = meta.get("split", {})
    pairs = meta.get("pairs", {})
    return {
        "name": meta.get("name", Path(folder).name),
        "how": how,
        "train_spectra": split.get("train_spectra", 0),
        "test_spectra": split.get("test_spectra", 0),
        "train_molecules": split.get("train_molecules", 0),
        "test_molecules": split.get("test_molecules", 0),
        "pairs": pairs.get("total", 0),
        "public_rows": meta.get("public_rows", 0),
        "private_rows": meta.get("private_rows", 0),
    }


def machine():
    import kit

    return (
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
        f"specsim-kit {kit.__version__}, 1-minute load average {os.getloadavg()[0]:.1f} at the start"
    )


def overrides(items):
    """``["siamese.epochs=30", "ms2deepscore.batch_size=8"]`` -> kit options and ms2deepscore settings."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        model, _, option = key.partition(".")
        if not sep or not option or model not in ROWS:
            raise SystemExit(f"--set {item!r}: expected ROW.OPTION=VALUE with ROW one of {', '.join(ROWS)}")
        if model in MS2DS_ROWS:
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = value
            out.setdefault(model, {})[option] = parsed
        else:
            out.setdefault(model, []).extend([f"--{option.replace('_', '-')}", value])
    return out


def default_python(venv):
    path = venv / "bin" / "python"
    return path if path.is_file() else None


def prepare(library, work, kit_python, log):
    """The competition ``kit prepare --library LIBRARY`` makes (default options), reused when present."""
    name = Path(library).name.split(".")[0]
    folder = Path(work) / "data" / name
    command = [kit_python, "-m", "kit", "prepare", "--library", Path(library).resolve(), "--data", folder.parent, "--quiet"]
    if not (folder / "competition.json").is_file():
        proc = run_process(command, cwd=work, log=log)
        if proc.returncode != 0:
            raise SystemExit(f"kit prepare failed: {proc.failure()}")
        print(f"prepared {name} in {proc.seconds:.0f} s", file=sys.stderr)
    return folder, shown(command)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["worker"]:
        return worker_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, default=DEFAULT_LIBRARY)
    parser.add_argument("--competition", type=Path, help="an existing competition folder (default: prepare --library)")
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS), help=f"comma-separated, from: {', '.join(ROWS)}")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "peers")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="ROW.OPTION=VALUE",
        help="kit train options (siamese.epochs=30) or ms2deepscore settings (ms2deepscore.batch_size=8)",
    )
    parser.add_argument(
        "--ms2deepscore-budget",
        type=float,
        metavar="SECONDS",
        help="ms2deepscore's training time (default: the siamese row's, else 600)",
    )
    parser.add_argument(
        "--kit-python",
        type=Path,
        default=default_python(KIT_VENV) or Path(sys.executable),
        help="interpreter of the kit's environment (default .venv/bin/python)",
    )
    parser.add_argument(
        "--bench-python",
        type=Path,
        default=default_python(BENCH_VENV) or BENCH_VENV / "bin" / "python",
        help="interpreter of the peers' environment (default .venv-bench/bin/python)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--timing-rounds",
        type=int,
        default=2,
        metavar="N",
        help="after all rows, time the embedding models N more times, interleaved (default 2)",
    )
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "RESULTS.md")
    parser.add_argument("--plot", type=Path, default=REPO / "bench" / "results_per_bin.png")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="only write --results and --plot again from the results.json of an earlier run",
    )
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(args.render.read_text())
        rows = [Row(**{**r, "load": tuple(r["load"]) if r.get("load") else None}) for r in saved["rows"]]
        write_results(rows, saved["meta"], args.results, args.plot, args.render.parent)
        print(f"wrote {args.results} and {args.plot}", file=sys.stderr)
        return 0
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {', '.join(unknown)}: expected some of {', '.join(ROWS)}")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.competition:
        competition, how = args.competition.resolve(), f"`{shown([args.competition.resolve()])}`"
    else:
        competition, how = prepare(args.library, work, args.kit_python, work / "prepare.log")
        how = f"`{how}`, default options"
    harness = Harness(
        competition,
        work,
        args.kit_python,
        args.bench_python,
        overrides=overrides(args.set),
        ms2deepscore_budget=args.ms2deepscore_budget,
        seed=args.seed,
    )
    meta = {
        "command": shown([Path(sys.executable), Path(__file__).resolve(), *argv]),
        "competition": competition_summary(competition, how),
        "machine": machine(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seed": args.seed,
        "status": f"Unfinished: {len(rows)} rows planned, 0 done.",
    }
    try:
        from kit.competition.folder import load_competition
        from kit.models.training import VALIDATION_FRACTION, split_for_validation

        train, _ = split_for_validation(load_competition(competition).train_spectra, VALIDATION_FRACTION, args.seed)
        meta["n_train"] = f"{len(train):,}"
    except Exception:  # only a sentence of the report depends on it
        pass
    for done, name in enumerate(rows, start=1):
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
        row = harness.run(name)
        state = f"Private {row.private:.5f}" if row.status == "ok" and row.private is not None else f"{row.status}: {row.message}"
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {state}", file=sys.stderr, flush=True)
        meta["status"] = f"Unfinished: {len(rows)} rows planned, {done} done" + (
            "; interleaved inference timings still to come." if done == len(rows) else "."
        )
        write_results(harness.rows, meta, args.results, args.plot, work)
    print(
        f"[{time.strftime('%H:%M:%S')}] timing the embedding models again, {args.timing_rounds} interleaved round(s) ...",
        file=sys.stderr,
        flush=True,
    )
    harness.retime(args.timing_rounds)
    meta["timing_rounds"] = args.timing_rounds
    meta["status"] = ""
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write_results(harness.rows, meta, args.results, args.plot, work)
    print(f"wrote {args.results} and {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
