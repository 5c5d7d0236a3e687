"""``kit train`` and ``kit predict``: fit a rung, score it on a validation split, save it.

The validation split is by molecule (no validation molecule is trained on), its pairs
are balanced over Tanimoto bins like the test pairs, and it is scored with the
competition's own metric, so the number is comparable with the leaderboard.
"""
import json
import time
from pathlib import Path

import numpy as np

from kit.errors import UserError
from kit.paths import models_dir

VALIDATION_FRACTION = 0.1
VALIDATION_PAIRS_PER_BIN = 200


def model_params(cls, options):
    """Turn ``{"learning_rate": "1e-4", ...}`` into typed parameters of ``cls``.

    Types follow each parameter's default: numbers, booleans, and comma-separated tuples.

    Examples
    --------
    >>> from kit.models.mean import MeanModel
    >>> model_params(MeanModel, {"seed": "3"})
    {'seed': 3}
    """
    defaults = cls().get_params()
    params = {}
    for key, text in options.items():
        name = key.replace("-", "_")
        if name not in defaults:
            raise UserError(
                f"model {cls.name!r} has no option --{key.replace('_', '-')}; "
                f"expected one of: {', '.join('--' + k.replace('_', '-') for k in sorted(defaults))}"
            )
        params[name] = _coerce(text, defaults[name], name)
    return params


def _coerce(text, default, name):
    if not isinstance(text, str):
        return text
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, (tuple, list)):
            items = [x for x in text.split(",") if x.strip()]
            kind = type(default[0]) if len(default) else float
            return tuple(kind(x) for x in items)
        if default is None:
            return json.loads(text)
    except (ValueError, json.JSONDecodeError):
        shown = type(default).__name__ if default is not None else "JSON value"
        raise UserError(f"option --{name.replace('_', '-')}: expected a {shown}, found {text!r}") from None
    return text


def split_for_validation(spectra, fraction, seed):
    """Training and validation spectra, split by molecule with a seed."""
    from kit.chemistry import molecules_of
    from kit.pairs import split_molecules

    kept, molecules = molecules_of(spectra)
    held_out = split_molecules(molecules.keys, fraction, np.random.default_rng(seed), option="validation fraction")
    is_val = held_out[molecules.spectrum_molecule]
    return [s for s, v in zip(kept, is_val) if not v], [s for s, v in zip(kept, is_val) if v]


def validation_pairs(spectra, pairs_per_bin, seed):
    """Bin-balanced pairs among validation spectra: a DataFrame and the true similarities."""
    import pandas as pd

    from kit.chemistry import molecules_of
    from kit.models.base import spectrum_ids
    from kit.pairs import balanced_test_pairs

    kept, molecules = molecules_of(spectra)
    pairs, similarity, _ = balanced_test_pairs(
        molecules.fingerprints(), molecules.spectra_of(), pairs_per_bin, np.random.default_rng(seed)
    )
    ids = np.array(spectrum_ids(kept), dtype=object)
    frame = pd.DataFrame({"spectrum_id_a": ids[pairs[:, 0]], "spectrum_id_b": ids[pairs[:, 1]]})
    return frame, similarity


def train_model(
    name,
    competition=None,
    seed=0,
    params=None,
    models=None,
    data=None,
    validation_fraction=VALIDATION_FRACTION,
    validation_pairs_per_bin=VALIDATION_PAIRS_PER_BIN,
    echo=print,
):
    """Fit rung ``name`` on a competition's training spectra; save it with its validation score.

    Returns
    -------
    model : PairModel
        The fitted model, with ``validation_score_`` (diagnostics on the validation pairs).
    folder : Path
        ``models/<competition>/<model>-<UTC stamp>/``.

    Examples
    --------
    >>> model, folder = train_model("gbm", "practice", seed=0)   # doctest: +SKIP
    """
    import kit.models
    from kit.competition import load_competition
    from kit.metrics import diagnostics

    cls = kit.models.get(name)
    comp = competition if hasattr(competition, "train_spectra") else load_competition(competition, data=data)
    params = {**model_params(cls, params or {}), "seed": seed} if "seed" in cls().get_params() else model_params(cls, params or {})
    train, val = split_for_validation(comp.train_spectra, validation_fraction, seed)
    echo(f"training {name} on {len(train):,} spectra ({len(val):,} held out for validation, by molecule)")
    model = cls(**params)
    start = time.perf_counter()
    model.fit(train, validation_spectra=val)
    model.fit_seconds_ = round(time.perf_counter() - start, 3)
    pairs, truth = validation_pairs(val, validation_pairs_per_bin, seed)
    model.validation_score_ = diagnostics(truth, model.predict(val, pairs))
    echo(
        f"{name}: validation RMSE {model.validation_score_['rmse']:.5f} "
        f"(binned {model.validation_score_['binned_rmse']:.5f}) on {len(pairs):,} pairs; "
        f"fitted in {model.fit_seconds_:.1f} s"
    )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = models_dir(models) / comp.name / f"{name}-{stamp}"
    extra = {"competition": comp.name, "competition_files": comp.file_hashes, "seed": seed}
    model.save(folder, extra=extra)
    history = getattr(model, "history_", None)
    if history:
        plot_history(history, folder / "training_curve.png", title=f"{name} on {comp.name}")
    echo(f"saved {folder}")
    return model, folder


def plot_history(history, path, title=None):
    """Training curve (loss per epoch, and validation loss when present) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kit.fileio import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, values in history.items():
        if "loss" in key or "rmse" in key:
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (MSE)")
    ax.set_title(title or "training curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def predict_competition(model_dir, competition=None, data=None, submissions=None, echo=print):
    """Predict a competition's test pairs with a saved model; write a submission.

    The competition defaults to the one the model was trained on.

    Returns
    -------
    Path of the submission CSV (its ``.json`` manifest lies beside it).
    """
    import kit.models
    from kit.competition import load_competition
    from kit.models.base import read_manifest
    from kit.submission import write_submission

    manifest = read_manifest(model_dir)
    model = kit.models.load(model_dir)
    comp = load_competition(competition or manifest.get("competition"), data=data)
    trained_on = manifest.get("competition_files", {})
    if trained_on and trained_on.get("train.mgf") not in (None, comp.file_hashes.get("train.mgf")):
        echo(f"warning: {model_dir} was trained on another version of {comp.name!r}'s training data")
    echo(f"predicting {len(comp.test_pairs):,} pairs of {comp.name} with {model_dir}")
    predictions = model.predict(comp.test_spectra, comp.test_pairs)
    out_dir = Path(submissions) / comp.name if submissions else None
    path = write_submission(comp, predictions, model=model, out_dir=out_dir)
    echo(f"wrote {path}")
    return path
