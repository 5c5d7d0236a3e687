"""``kit train``: fit a rung, score it on a validation split, save it.

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


def model_params(cls, options, others=()):
    """Turn ``{"learning_rate": "1e-4", ...}`` into typed parameters of ``cls``.

    Types follow each parameter's default: numbers, booleans, and comma-separated tuples;
    ``none`` where the docstring allows None. An unknown name is refused with the closest
    known ones.

    Parameters
    ----------
    cls : type
        A model class (scikit-learn conventions: every parameter has a default).
    options : dict
        Option name (``-`` or ``_``) -> text, or an already typed value.
    others : sequence of str
        Other option names the caller accepts, offered as suggestions for a misspelling.

    Examples
    --------
    >>> from kit.models.mean import MeanModel
    >>> model_params(MeanModel, {"seed": "3"})
    {'seed': 3}
    >>> model_params(MeanModel, {"n_pair": "3"})
    Traceback (most recent call last):
    kit.errors.UserError: model 'mean' has no option --n-pair (did you mean --n-pairs?); see `kit train mean --help`
    """
    from difflib import get_close_matches

    defaults = cls().get_params()
    docs = parameter_docs(cls)
    params = {}
    for key, text in options.items():
        name = str(key).replace("-", "_")
        if name not in defaults:
            flag = "--" + name.replace("_", "-")
            known = sorted({"--" + k.replace("_", "-") for k in [*defaults, *others]})
            close = get_close_matches(flag.lower(), known, n=2, cutoff=0.75)
            hint = f" (did you mean {' or '.join(close)}?)" if close else f"; expected one of: {', '.join(known)}"
            raise UserError(f"model {cls.name!r} has no option {flag}{hint}; see `kit train {cls.name} --help`")
        params[name] = _coerce(text, defaults[name], name, allow_none="None" in docs.get(name, ("", ""))[0])
    return params


_KINDS = {bool: "true or false", int: "an integer", float: "a number"}


def _coerce(text, default, name, allow_none=False):
    """``text`` typed like ``default``; a UserError naming the option when it does not fit."""
    if not isinstance(text, str):
        return text
    if allow_none and text.strip().lower() in ("none", "null"):
        return None
    kind = type(default)
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
            kind = type(default[0]) if len(default) else float
            items = [x for x in text.split(",") if x.strip()]
            if not items:
                raise ValueError(text)
            return tuple(kind(x) for x in items)
        if default is None:
            return json.loads(text)
        if isinstance(default, str):
            # A text default may stand for a number too (Keras's verbose="auto" or 0, 1, 2).
            try:
                return int(text)
            except ValueError:
                return text
    except (ValueError, json.JSONDecodeError):
        if isinstance(default, (tuple, list)):
            shown = f"comma-separated {_KINDS.get(kind, kind.__name__).removeprefix('an ').removeprefix('a ')}s"
        else:
            shown = _KINDS.get(kind, "a JSON value" if default is None else kind.__name__)
        raise UserError(f"option --{name.replace('_', '-')}: expected {shown}, found {text!r}") from None
    return text


def parameter_docs(cls):
    """``{name: (type, meaning)}`` from the numpydoc ``Parameters`` section of ``cls``.

    The section is read from ``cls.__init__``'s docstring when it has one, else from the
    class docstring (scikit-learn's convention). Names listed together
    (``a, b : float``) share their type and meaning.

    Examples
    --------
    >>> from kit.models.mean import MeanModel
    >>> parameter_docs(MeanModel)["n_pairs"]
    ('int, default 20000', 'Training pairs drawn (bin-balanced, by molecule).')
    """
    import inspect

    init_doc = cls.__init__.__doc__ if "__init__" in vars(cls) else None
    doc = init_doc if init_doc and "Parameters" in init_doc else cls.__doc__
    lines = inspect.cleandoc(doc or "").splitlines()
    out, names = {}, []
    inside = False
    for k, line in enumerate(lines):
        underline = k + 1 < len(lines) and set(lines[k + 1].strip()) == {"-"} and line.strip()
        if underline and not line.startswith(" "):
            inside = line.strip() == "Parameters"
            names = []
            continue
        if not inside or set(line.strip()) == {"-"} or not line.strip():
            continue
        if not line.startswith(" "):
            head, _, kind = line.partition(":")
            names = [n.strip() for n in head.split(",") if n.strip()]
            for name in names:
                out[name] = (kind.strip(), "")
        else:
            for name in names:
                kind, meaning = out[name]
                out[name] = (kind, f"{meaning} {line.strip()}".strip())
    return out


def rung_options(cls, skip=()):
    """The options of ``kit train <rung>``: a list of ``(flag, metavar, help)`` in signature order.

    Meanings come from :func:`parameter_docs`, defaults from ``cls()``, written the way
    they are typed on the command line.

    Examples
    --------
    >>> from kit.models.mean import MeanModel
    >>> rung_options(MeanModel, skip=["seed"])
    [('--n-pairs', 'N', 'Training pairs drawn (bin-balanced, by molecule). (default: 20000)')]
    """
    import inspect

    defaults = cls().get_params()
    docs = parameter_docs(cls)
    names = [n for n in inspect.signature(cls.__init__).parameters if n in defaults and n not in skip]
    options = []
    for name in names:
        default = defaults[name]
        kind, meaning = docs.get(name, ("", ""))
        kind = kind.split(", default")[0].strip()
        meaning = _plain(meaning) or name.replace("_", " ")
        metavar = _metavar(default) + ("|none" if "None" in kind and default is not None else "")
        options.append(("--" + name.replace("_", "-"), metavar, f"{meaning} (default: {_as_typed(default)})"))
    return options


def _plain(text):
    """Docstring markup as plain text: ``code`` and :role:`target` lose their marks.

    Examples
    --------
    >>> _plain("see :mod:`kit.binning`; ``None`` keeps it")
    'see kit.binning; None keeps it'
    """
    import re

    return re.sub(r"(?::\w+:)?`+([^`]*)`+", r"\1", text)


def _metavar(default):
    if isinstance(default, bool):
        return "true|false"
    if isinstance(default, int):
        return "N"
    if isinstance(default, float):
        return "X"
    if isinstance(default, (tuple, list)):
        return "A,B,..."
    return "VALUE"


def _as_typed(value):
    """A default as it would be typed on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return ",".join(_as_typed(v) for v in value)
    return str(value)


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
        f"{name}: held-out validation RMSE {model.validation_score_['rmse']:.5f} "
        f"(binned {model.validation_score_['binned_rmse']:.5f}) on {len(pairs):,} pairs; "
        f"fitted in {model.fit_seconds_:.1f} s"
    )
    if getattr(model, "best_val_rmse_", None) is not None:
        # Keras's per-epoch val_rmse: the pairs early stopping watched, drawn by the fit itself, not those scored above.
        echo(f"{name}: early-stopping pairs RMSE {model.best_val_rmse_:.5f} (Keras's val_rmse, epoch {model.best_epoch_} kept)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = models_dir(models) / comp.name / f"{name}-{stamp}"
    extra = {"competition": comp.name, "competition_files": comp.file_hashes, "seed": seed}
    # Where the model went: a multi-worker siamese's non-chief saves to a temporary folder.
    folder = model.save(folder, extra=extra)
    history = getattr(model, "history_", None)
    if history:
        curve = plot_history(history, folder / "training_curve.png", title=f"{name} on {comp.name}")
        echo(f"training curve: {curve}")
    echo(f"saved {folder}")
    return model, folder


# Keras history keys -> what they measure, for the legend of the training curve.
HISTORY_LABELS = {
    "loss": "training loss (MSE + weight penalty)",
    "val_loss": "early-stopping pairs loss (MSE + weight penalty)",
    "rmse": "training RMSE",
    "val_rmse": "early-stopping pairs RMSE",
}


def plot_history(history, path, title=None):
    """Training curve as a PNG: loss and RMSE per epoch, training and validation.

    Drawn on a :class:`matplotlib.figure.Figure`, so neither pyplot's state nor the
    matplotlib backend of the caller (a notebook, say) is touched.

    Parameters
    ----------
    history : dict of lists
        Per-epoch values, as Keras's ``History.history``; keys with ``loss`` or ``rmse``
        are drawn.
    path : str or Path
        The PNG to write (atomically).
    title : str, optional

    Examples
    --------
    >>> plot_history({"loss": [0.1, 0.05]}, "/tmp/curve.png").name  # doctest: +SKIP
    'curve.png'
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from kit.fileio import atomic_path

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for key, values in history.items():
        if "loss" in key or "rmse" in key:
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=HISTORY_LABELS.get(key, key))
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE loss / RMSE of the similarity")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title or "training curve")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)
