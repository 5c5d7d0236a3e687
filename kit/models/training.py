"""``kit train``: fit a rung, score it on held-out molecules, save it.

Kaggle's first lesson is "trust your local validation", so the score ``kit train`` reports
is measured on molecules that no step of the fit uses: a three-way split by molecule.
``kit train`` first holds out ``validation_fraction`` of the training molecules for the
score alone; the rung is fitted on the rest, and whatever the rung itself holds out (the
siamese's early stopping and calibration, the blend's booster) comes out of that rest.
The saved model is the one scored (it is not refit on all training molecules), so the
number describes the very model a submission comes from.

The validation pairs are drawn like the test pairs (balanced over the Tanimoto bins)
and their RMSE is weighted bin by bin to the test pairs' published bin counts
(``competition.json``), so a bin that is scarce among the test pairs counts as little in
validation. Its standard error comes from a bootstrap over the validation molecules.
"""
import inspect
import json
import re
import time
import warnings
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path

import numpy as np

from kit.errors import UserError
from kit.paths import models_dir

# Twice the test set's share of molecules: the score's standard error shrinks with the
# square root of the molecules it is measured on, and the rungs still train on 80%.
VALIDATION_FRACTION = 0.2
VALIDATION_PAIRS_PER_BIN = 500
# Bootstrap resamples of the validation molecules behind the score's standard error.
BOOTSTRAP_ROUNDS = 200


def model_params(cls, options, others=()):
    """Turn ``{"learning_rate": "1e-4", ...}`` into typed parameters of ``cls``.

    Types follow each parameter's default: numbers, booleans, and comma-separated tuples;
    ``none`` where the docstring allows None. An unknown name is refused with the closest
    known ones. A nested parameter is named as scikit-learn's ``get_params(deep=True)``
    names it (``siamese__epochs``); the older spelling ``siamese_epochs`` still works,
    with a one-line warning naming the new one.

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
    defaults = cls().get_params()  # deep, as scikit-learn's default: nested names too
    params = {}
    for key, text in options.items():
        name = _renamed(str(key).replace("-", "_"), defaults)
        if any(k.startswith(f"{name}__") for k in defaults):
            raise UserError(f"option {option_flag(name)} holds a model, which takes no value on the command line: "
                            f"expected its options as {option_flag(name)}__NAME VALUE; "
                            f"see `kit train {cls.name} --help`")
        if name not in defaults:
            flag = option_flag(name)
            known = sorted({option_flag(k) for k in [*defaults, *others] if not any(
                d.startswith(f"{k}__") for d in defaults)})
            close = get_close_matches(flag.lower(), known, n=2, cutoff=0.75)
            hint = f" (did you mean {' or '.join(close)}?)" if close else f"; expected one of: {', '.join(known)}"
            raise UserError(f"model {cls.name!r} has no option {flag}{hint}; see `kit train {cls.name} --help`")
        if name in params:
            raise UserError(f"option {option_flag(name)} is given twice: expected each model option once")
        params[name] = _coerce(text, defaults[name], name, allow_none=_allows_none(cls, name, defaults[name]))
    return params


def option_flag(name):
    """The command-line option of a parameter: ``n_pairs`` is ``--n-pairs``, ``siamese__epochs`` ``--siamese__epochs``.

    Examples
    --------
    >>> option_flag("siamese__hidden_units")
    '--siamese__hidden-units'
    """
    return "--" + "__".join(part.replace("_", "-") for part in name.split("__"))


def _renamed(name, defaults):
    """``name``, or the nested name that an older spelling (``siamese_epochs``) stands for, with a warning."""
    outer, _, inner = name.partition("_")
    nested = f"{outer}__{inner}"
    if name in defaults or not inner or inner.startswith("_") or nested not in defaults:
        return name
    # Not warnings.warn: that shows the calling line of source too, and this is one line.
    warnings.warn_explicit(f"option {option_flag(name)} is deprecated: use {option_flag(nested)}", FutureWarning,
                           "kit", 0)
    return nested


def _allows_none(cls, name, default):
    """Whether the docstring of ``cls`` (for ``outer__inner``, of the nested estimator) allows None for ``name``."""
    outer, _, inner = name.partition("__")
    if not inner:
        return "None" in parameter_docs(cls).get(name, ("", ""))[0]
    # Setting a nested parameter makes the nested estimator where the default is None (the blend's siamese).
    nested = cls().set_params(**{name: default}).get_params(deep=False)[outer]
    return _allows_none(type(nested), inner, default)


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
        raise UserError(f"option {option_flag(name)}: expected {shown}, found {text!r}") from None
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
    they are typed on the command line. A parameter that holds another rung (its type a
    ``...Model``, the blend's ``siamese``) is offered as that rung's options, nested:
    ``--siamese__NAME VALUE``.

    Examples
    --------
    >>> from kit.models.mean import MeanModel
    >>> rung_options(MeanModel, skip=["seed"])
    [('--n-pairs', 'N', 'Training pairs drawn (bin-balanced, by molecule). (default: 20000)')]
    """
    defaults = cls().get_params()
    docs = parameter_docs(cls)
    names = [n for n in inspect.signature(cls.__init__).parameters if n in defaults and n not in skip]
    options = []
    for name in names:
        default = defaults[name]
        kind, meaning = docs.get(name, ("", ""))
        kind = kind.split(", default")[0].strip()
        meaning = _plain(meaning) or name.replace("_", " ")
        if re.fullmatch(r"\w+Model( or None)?", kind):
            options.append((f"--{name}__NAME", "VALUE", meaning))
            continue
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
    from kit.data.chemistry import molecules_of
    from kit.data.pairs import split_molecules

    kept, molecules = molecules_of(spectra)
    held_out = split_molecules(molecules.keys, fraction, np.random.default_rng(seed), option="validation fraction")
    is_val = held_out[molecules.spectrum_molecule]
    return [s for s, v in zip(kept, is_val) if not v], [s for s, v in zip(kept, is_val) if v]


def validation_pairs(spectra, pairs_per_bin, seed):
    """Bin-balanced pairs among validation spectra: a DataFrame and the true similarities."""
    frame, similarity, _ = validation_set(spectra, pairs_per_bin, seed)
    return frame, similarity


def validation_set(spectra, pairs_per_bin, seed):
    """Bin-balanced pairs among validation spectra, drawn as ``kit prepare`` draws test pairs.

    Returns
    -------
    pairs : pandas.DataFrame
        Columns ``spectrum_id_a`` and ``spectrum_id_b``.
    similarity : numpy.ndarray
        The true Tanimoto score of each pair.
    pair_molecules : (n, 2) int array
        Each pair's two molecules (0 .. molecules - 1), for the bootstrap.

    Examples
    --------
    >>> pairs, truth, molecules = validation_set(val_spectra, 500, seed=0)   # doctest: +SKIP
    """
    import pandas as pd

    from kit.data.chemistry import molecules_of
    from kit.data.pairs import balanced_test_pairs
    from kit.models.base import spectrum_ids

    kept, molecules = molecules_of(spectra)
    pairs, similarity, _ = balanced_test_pairs(
        molecules.fingerprints(), molecules.spectra_of(), pairs_per_bin, np.random.default_rng(seed)
    )
    ids = np.array(spectrum_ids(kept), dtype=object)
    frame = pd.DataFrame({"spectrum_id_a": ids[pairs[:, 0]], "spectrum_id_b": ids[pairs[:, 1]]})
    return frame, similarity, np.asarray(molecules.spectrum_molecule)[pairs].reshape(-1, 2)


def competition_bin_shares(competition):
    """Share of each Tanimoto bin among a competition's test pairs (``competition.json``), or None.

    The counts are public (``pairs.per_bin``); a competition without them, or with counts
    that are not ten non-negative numbers with a positive sum, gets None (no weighting).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> comp = SimpleNamespace(metadata={"pairs": {"per_bin": [3, 1, 0, 0, 0, 0, 0, 0, 0, 0]}})
    >>> competition_bin_shares(comp).tolist()[:3]
    [0.75, 0.25, 0.0]
    >>> competition_bin_shares(SimpleNamespace(metadata={"pairs": {"per_bin": ["x"]}})) is None
    True
    """
    from kit.data.tanimoto_bins import N_BINS

    metadata = getattr(competition, "metadata", None)
    pairs = metadata.get("pairs") if isinstance(metadata, dict) else None
    counts = pairs.get("per_bin") if isinstance(pairs, dict) else None
    if not isinstance(counts, list) or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in counts):
        return None
    counts = np.asarray(counts, dtype=float)
    with np.errstate(over="ignore"):
        total = counts.sum()
    if counts.shape != (N_BINS,) or (counts < 0).any() or not np.isfinite(total) or total <= 0:
        return None
    return counts / total


def weighted_rmse(truth, predicted, bin_shares=None, weights=None):
    """RMSE with each Tanimoto bin's mean squared error weighted by ``bin_shares``.

    ``weights`` (one row per resample, one column per pair) weigh the pairs within each
    bin; several rows give one RMSE each. Bins without pairs drop out and the shares of
    the others are scaled up. Without ``bin_shares`` the bins weigh as many as their pairs
    (the plain RMSE).

    Parameters
    ----------
    truth, predicted : array-like of float
    bin_shares : array-like of 10 floats, optional
    weights : (r, n) array-like, optional

    Returns
    -------
    float, or an array of ``r`` floats with ``weights``.

    Examples
    --------
    >>> truth, guess = [0.05, 0.06, 0.95], [0.05, 0.06, 0.55]
    >>> round(weighted_rmse(truth, guess), 4)
    0.2309
    >>> round(weighted_rmse(truth, guess, bin_shares=[0.5] + [0] * 8 + [0.5]), 4)
    0.2828
    """
    from kit.data.tanimoto_bins import N_BINS, bin_index

    truth, predicted = np.asarray(truth, dtype=float), np.asarray(predicted, dtype=float)
    single = weights is None
    weights = np.ones((1, truth.size)) if single else np.atleast_2d(np.asarray(weights, dtype=float))
    onehot = np.zeros((truth.size, N_BINS))
    onehot[np.arange(truth.size), bin_index(truth)] = 1.0
    sums = (weights * (truth - predicted) ** 2) @ onehot
    counts = weights @ onehot
    if bin_shares is None:
        rmse = np.sqrt(sums.sum(axis=1) / np.maximum(counts.sum(axis=1), 1e-300))
    else:
        shares = np.where(counts > 0, np.asarray(bin_shares, dtype=float)[None, :], 0.0)
        mse = np.where(counts > 0, sums / np.maximum(counts, 1e-300), 0.0)
        rmse = np.sqrt((shares * mse).sum(axis=1) / np.maximum(shares.sum(axis=1), 1e-300))
    return float(rmse[0]) if single else rmse


def bootstrap_molecules(pair_molecules, n_molecules, rounds, rng):
    """Weights of pairs in ``rounds`` bootstrap resamples of the molecules: an ``(rounds, n)`` array.

    Molecules are drawn with replacement; a pair counts once for each way its two
    molecules were drawn (``count_a x count_b``), as a pair set built on the resampled
    molecules would hold it. Pairs of one molecule are correlated, so resampling molecules
    rather than pairs gives an honest error bar.

    Examples
    --------
    >>> w = bootstrap_molecules(np.array([[0, 1], [1, 1]]), 2, 3, np.random.default_rng(0))
    >>> w.shape
    (3, 2)
    """
    counts = rng.multinomial(n_molecules, np.full(n_molecules, 1.0 / n_molecules), size=rounds).astype(float)
    pair_molecules = np.asarray(pair_molecules, dtype=np.int64).reshape(-1, 2)
    return counts[:, pair_molecules[:, 0]] * counts[:, pair_molecules[:, 1]]


def validation_score(truth, predicted, pair_molecules, bin_shares=None, rounds=BOOTSTRAP_ROUNDS, seed=0):
    """Every diagnostic of the validation pairs, the weighted RMSE and its bootstrap standard error.

    Returns
    -------
    dict
        :func:`kit.scoring.metrics.diagnostics` with ``rmse`` weighted to ``bin_shares``
        (:func:`weighted_rmse`), plus ``pairs_rmse`` (the plain RMSE of the pairs),
        ``rmse_se`` (standard deviation of the weighted RMSE over ``rounds`` bootstrap
        resamples of the molecules), ``molecules`` and ``bin_weights`` (each bin's weight,
        or None for the plain RMSE).

    Examples
    --------
    >>> score = validation_score([0.1, 0.9, 0.5], [0.2, 0.8, 0.5], [[0, 1], [1, 2], [0, 2]], rounds=20)
    >>> round(score["rmse"], 4), score["molecules"], score["rmse_se"] > 0
    (0.0816, 3, True)
    """
    from kit.data.tanimoto_bins import BIN_LABELS
    from kit.scoring.metrics import diagnostics

    score = diagnostics(truth, predicted)
    # The molecules the pairs are made of, numbered 0 .. n - 1.
    used, pair_molecules = np.unique(np.asarray(pair_molecules, dtype=np.int64), return_inverse=True)
    n_molecules = len(used)
    weights = bootstrap_molecules(pair_molecules.reshape(-1, 2), n_molecules, int(rounds), np.random.default_rng(seed))
    resampled = weighted_rmse(truth, predicted, bin_shares, weights)
    # Numbers only (and None): a saved model's scores are checked as such when it is loaded.
    return score | {
        "rmse": weighted_rmse(truth, predicted, bin_shares),
        "pairs_rmse": score["rmse"],
        "rmse_se": float(np.std(resampled, ddof=1)) if len(resampled) > 1 else None,
        "molecules": n_molecules,
        "bin_weights": None if bin_shares is None else dict(zip(BIN_LABELS, map(float, bin_shares))),
    }


@dataclass(frozen=True)
class HeldOut:
    """The three-way split of ``kit train``: spectra to fit on, and the scoring molecules' pairs.

    Attributes
    ----------
    train, validation : list of matchms.Spectrum
        Spectra of the molecules a rung may fit on, and of those it is scored on.
    pairs, truth, pair_molecules :
        The validation pairs, as :func:`validation_set` returns them.
    """

    train: list
    validation: list
    pairs: object
    truth: np.ndarray
    pair_molecules: np.ndarray

    @classmethod
    def of(cls, spectra, fraction=VALIDATION_FRACTION, pairs_per_bin=VALIDATION_PAIRS_PER_BIN, seed=0):
        """Split ``spectra`` by molecule and draw the validation pairs (every rung of one seed shares them).

        Examples
        --------
        >>> held_out = HeldOut.of(comp.train_spectra, seed=0)   # doctest: +SKIP
        """
        train, validation = split_for_validation(spectra, fraction, seed)
        return cls(train, validation, *validation_set(validation, pairs_per_bin, seed))


#: The parameters that make a rung read ion mode and adduct (the gbm's features, the siamese's
#: inputs, the blend's siamese): off by default, on for a competition of cross-mode pairs.
CROSS_MODE_SWITCHES = ("cross_mode", "use_adducts", "siamese__use_adducts")


def cross_mode_switches(model, competition):
    """The switches to turn on for ``model`` on ``competition``: those left at ``None`` when its pairs cross ion modes.

    A competition prepared with ``--pair-types`` holding ``cross`` (competition.json's
    ``options.pair_types``) asks the rungs to compare spectra across modes; any other
    competition, the practice one included even where its library has both modes, keeps the
    features and inputs the rungs always had.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from kit.models.gbm import GBMModel
    >>> cross = SimpleNamespace(metadata={"options": {"pair_types": ["positive-positive", "cross"]}})
    >>> cross_mode_switches(GBMModel(), cross), cross_mode_switches(GBMModel(cross_mode=False), cross)
    ({'cross_mode': True}, {})
    >>> cross_mode_switches(GBMModel(), SimpleNamespace(metadata={"options": {}}))
    {}
    """
    types = (getattr(competition, "metadata", None) or {}).get("options", {}).get("pair_types") or ()
    if "cross" not in types:
        return {}
    params = model.get_params(deep=True)
    return {name: True for name in CROSS_MODE_SWITCHES if name in params and params[name] is None}


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
    held_out=None,
):
    """Fit rung ``name`` on a competition's training spectra; save it with its validation score.

    ``validation_fraction`` of the training molecules is held out for the score only
    (the rung's fit, its early stopping and calibration included, never sees them); the
    saved model is the one scored, not refit on every training molecule.

    ``held_out`` (a :class:`HeldOut` of this competition's training spectra, this seed
    and these fractions) skips the split and the pairs, which every rung of one seed
    shares: ``kit demo`` makes them once.

    Returns
    -------
    model : PairModel
        The fitted model, with ``validation_score_`` (:func:`validation_score` on the
        held-out molecules).
    folder : Path
        ``models/<competition>/<model>-<UTC stamp>/``.

    Examples
    --------
    >>> model, folder = train_model("gbm", "practice", seed=0)   # doctest: +SKIP
    """
    import kit.models
    from kit.competition.folder import load_competition
    from kit.data.chemistry import molecule_cache

    cls = kit.models.get(name)
    params = model_params(cls, params or {}) | ({"seed": seed} if "seed" in cls().get_params() else {})
    # set_params, as nested parameters (the blend's siamese__epochs) are no arguments of __init__.
    model = cls().set_params(**params)
    try:
        model.check_params()  # every value, before any spectrum is read
    except TypeError as exc:  # a value of the wrong kind, e.g. JSON typed for an option whose default is None
        raise UserError(str(exc)) from None
    comp = competition if hasattr(competition, "train_spectra") else load_competition(competition, data=data)
    model.set_params(**cross_mode_switches(model, comp))
    # The split, the rung's own split and the blend's two inner rungs all need the same
    # molecules' InChIKeys and fingerprints: one cache computes each once (inside `kit demo`,
    # the demo's cache, for every rung).
    with molecule_cache():
        if held_out is None:
            held_out = HeldOut.of(comp.train_spectra, validation_fraction, validation_pairs_per_bin, seed)
        train, val = held_out.train, held_out.validation
        pairs, truth, pair_molecules = held_out.pairs, held_out.truth, held_out.pair_molecules
        echo(f"training {name} on {len(train):,} spectra; {len(val):,} spectra of "
             f"{len(np.unique(pair_molecules)):,} other molecules are held out for the validation score only")
        start = time.perf_counter()
        # No validation spectra: what the rung holds out for itself comes from `train`.
        model.fit(train)
    model.fit_seconds_ = round(time.perf_counter() - start, 3)
    model.validation_score_ = validation_score(truth, model.predict(val, pairs), pair_molecules,
                                               competition_bin_shares(comp), seed=seed)
    echo(describe_score(name, model.validation_score_) + f"; fitted in {model.fit_seconds_:.1f} s")
    echo(f"{name}: the saved model is the one scored (trained without the held-out molecules, not refit)")
    if getattr(model, "best_val_rmse_", None) is not None:
        # Keras's per-epoch val_rmse: the rung's own early-stopping molecules, not those scored above.
        echo(f"{name}: early-stopping pairs RMSE {model.best_val_rmse_:.5f} (Keras's val_rmse on the rung's own "
             f"early-stopping molecules, epoch {model.best_epoch_} kept)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = models_dir(models) / comp.name / f"{name}-{stamp}"
    extra = {"competition": comp.name, "competition_files": comp.file_hashes, "seed": seed,
             "validation_fraction": float(validation_fraction), "refit": False}
    # Where the model went: a multi-worker siamese's non-chief saves to a temporary folder.
    folder = model.save(folder, extra=extra)
    history = getattr(model, "history_", None)
    if history:
        curve = plot_history(history, folder / "training_curve.png", title=f"{name} on {comp.name}")
        echo(f"training curve: {curve}")
    echo(f"saved {folder}")
    return model, folder


def describe_score(name, score):
    """One line: a rung's validation RMSE with its standard error, where it was measured.

    Examples
    --------
    >>> describe_score("gbm", {"rmse": 0.18, "rmse_se": 0.004, "binned_rmse": 0.2, "rows": 4000,
    ...                        "molecules": 360, "bin_weights": {"0.0-0.1": 0.1}})
    'gbm: held-out validation RMSE 0.18000 +- 0.00400 (binned 0.20000) on 4,000 pairs of 360 molecules,
    bins weighted as the test pairs'
    """
    se = score.get("rmse_se")
    error = f" +- {se:.5f}" if se is not None else ""
    weighting = ", bins weighted as the test pairs" if score.get("bin_weights") else ""
    return (f"{name}: held-out validation RMSE {score['rmse']:.5f}{error} (binned {score['binned_rmse']:.5f}) "
            f"on {score['rows']:,} pairs of {score['molecules']:,} molecules{weighting}")


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
