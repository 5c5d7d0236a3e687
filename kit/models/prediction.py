"""Predicting a competition's test pairs with a saved model, into a submission file.

With ``with_std`` (``kit predict --with-std``) a model that measures its own spread
(the siamese: Monte Carlo dropout) also writes it beside the submission, in
``<submission>.std.csv`` with columns ``id,std``; the submission itself is the same,
byte for byte, as without the option.

Examples
--------
>>> from kit.models.prediction import predict_competition
>>> path = predict_competition("models/practice-gbm")   # doctest: +SKIP
"""
from pathlib import Path

import kit.models
from kit.competition.folder import load_competition
from kit.constraints import check_param
from kit.errors import UserError
from kit.models.base import read_manifest
from kit.models.sandbox import PASSES
from kit.safetext import printable
from kit.scoring.writer import write_submission

#: Suffix of the spread file beside a submission (``<stamp>_<model>.std.csv``).
STD_SUFFIX = ".std.csv"
# Why a rung has no spread, for the one line that refuses --with-std.
_NO_SPREAD = {
    "blend": "its prediction comes from gradient-boosted trees, which measure no spread; the spread of its "
             "siamese is one of their inputs, not an error bar of the blend",
}


def training_mismatch(manifest, comp):
    """What differs between a model's training data and the competition it predicts, or None.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> comp = SimpleNamespace(name="mine", file_hashes={"train.mgf": "b"})
    >>> training_mismatch({"competition": "practice", "competition_files": {"train.mgf": "a"}}, comp)
    "was trained on competition 'practice', not on 'mine'"
    >>> training_mismatch({"competition": "mine", "competition_files": {"train.mgf": "a"}}, comp)
    "was trained on another version of the training data of 'mine'"
    """
    trained_name = manifest.get("competition")
    if isinstance(trained_name, str) and trained_name != comp.name:
        return f"was trained on competition {trained_name!r}, not on {comp.name!r}"
    trained_on = manifest.get("competition_files")
    trained_hash = trained_on.get("train.mgf") if isinstance(trained_on, dict) else None
    if trained_hash not in (None, comp.file_hashes.get("train.mgf")):
        return f"was trained on another version of the training data of {comp.name!r}"
    return None


def predict_competition(model_dir, competition=None, data=None, submissions=None, echo=print, memory_limit=None,
                        time_limit=None, with_std=False, n_passes=10):
    """Predict a competition's test pairs with a saved model; write a submission.

    The competition defaults to the one the model was trained on. The model folder is
    untrusted input: it is loaded and run in a child process with no GPU, a memory limit
    and a time limit (``kit.models.load(..., untrusted=True)``).

    Parameters
    ----------
    model_dir : str or Path
        A folder written by ``model.save`` (``kit train``).
    competition : str or Path, optional
        Default: the competition named in the model's manifest.
    data, submissions : str or Path, optional
        Folders overriding ``./data`` and ``./submissions``.
    echo : callable
        Receives each progress line and warning.
    memory_limit : int, optional
        Bytes the model's process may map (default 4 GiB).
    time_limit : float, optional
        Seconds the model's process may take to load, and again to predict (default 600).
    with_std : bool, default False
        Also write the model's spread (Monte Carlo dropout of the siamese) into
        ``<submission>.std.csv`` (``id,std``), recorded under ``"spread"`` in the
        manifest. A model without a spread is refused with a :class:`UserError`.
    n_passes : int, default 10
        Forward passes with dropout on that measure the spread (2 to 1000).

    Returns
    -------
    Path of the submission CSV (its ``.json`` manifest lies beside it).

    Examples
    --------
    >>> predict_competition("models/practice-gbm", "practice")   # doctest: +SKIP
    """
    n_passes = check_param(n_passes, "n_passes", PASSES) if with_std else None
    manifest = read_manifest(model_dir)
    comp = load_competition(competition or manifest.get("competition"), data=data)
    mismatch = training_mismatch(manifest, comp)
    if mismatch:
        echo(f"warning: {model_dir} {mismatch}")
    with kit.models.load(model_dir, untrusted=True, memory_limit=memory_limit, time_limit=time_limit) as model:
        echo(f"predicting {len(comp.test_pairs):,} pairs of {comp.name} with {model_dir}")
        if with_std and not model.gives_std:
            raise UserError(no_spread_message(model_dir, model.name))
        predictions = model.predict(comp.test_spectra, comp.test_pairs)
        beside = None
        if with_std:
            echo(f"measuring the spread of each prediction over {n_passes} passes with dropout on")
            std = model.predict(comp.test_spectra, comp.test_pairs, return_std=True, n_passes=n_passes)[1]
            beside = {"spread": (STD_SUFFIX, "std", std, spread_info(model, n_passes))}
    out_dir = Path(submissions) / comp.name if submissions else None
    path = write_submission(comp, predictions, model=model, out_dir=out_dir, beside=beside)
    echo(f"wrote {path}")
    return path


def no_spread_message(model_dir, name):
    """The one line refusing ``--with-std`` for a model that measures no spread.

    Examples
    --------
    >>> no_spread_message("models/practice-gbm", "gbm").endswith("the gbm model measures none")
    True
    """
    reason = _NO_SPREAD.get(name, f"the {printable(name, 40)} model measures none")
    return (f"{printable(model_dir)}: --with-std needs a model that measures its own spread (the siamese, by Monte "
            f"Carlo dropout); {reason}")


def spread_info(model, n_passes):
    """What the manifest records of a spread: how it was measured and with which seed.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> spread_info(SimpleNamespace(get_params=lambda: {"seed": 3}), 10)["passes"]
    10
    """
    return {"column": "std", "method": "Monte Carlo dropout: standard deviation over forward passes with dropout on",
            "passes": int(n_passes), "seed": model.get_params().get("seed")}
