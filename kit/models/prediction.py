"""Predicting a competition's test pairs with a saved model, into a submission file.

Examples
--------
>>> from kit.models.prediction import predict_competition
>>> path = predict_competition("models/practice-gbm")   # doctest: +SKIP
"""
from pathlib import Path


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
                        time_limit=None):
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

    Returns
    -------
    Path of the submission CSV (its ``.json`` manifest lies beside it).

    Examples
    --------
    >>> predict_competition("models/practice-gbm", "practice")   # doctest: +SKIP
    """
    import kit.models
    from kit.competition.folder import load_competition
    from kit.models.base import read_manifest
    from kit.scoring.writer import write_submission

    manifest = read_manifest(model_dir)
    comp = load_competition(competition or manifest.get("competition"), data=data)
    mismatch = training_mismatch(manifest, comp)
    if mismatch:
        echo(f"warning: {model_dir} {mismatch}")
    with kit.models.load(model_dir, untrusted=True, memory_limit=memory_limit, time_limit=time_limit) as model:
        echo(f"predicting {len(comp.test_pairs):,} pairs of {comp.name} with {model_dir}")
        predictions = model.predict(comp.test_spectra, comp.test_pairs)
    out_dir = Path(submissions) / comp.name if submissions else None
    path = write_submission(comp, predictions, model=model, out_dir=out_dir)
    echo(f"wrote {path}")
    return path
