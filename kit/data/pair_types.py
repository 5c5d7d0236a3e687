"""Test pairs by ion mode: positive-positive, negative-negative and cross-mode pairs.

Fragments differ by polarity, so a pair of a positive-mode and a negative-mode spectrum
is a harder question than a pair of one mode. A competition of several pair types draws
each type balanced over the Tanimoto bins on its own (a *cell* is one bin of one type),
inside the Public and the Private group of molecules alike (:func:`kit.data.pairs.split_test_pairs`):
a molecule's spectra of both modes are in one group.
"""
import numpy as np

from kit.constraints import Each, Options, parse_param
from kit.data.chemistry import bins_from_counts, tanimoto_counts
from kit.data.pairs import (
    BLOCK,
    _positions_in_bin,
    _trim,
    balanced_test_pairs,
    sample_spectrum_pairs,
)
from kit.data.tanimoto_bins import CROSS, N_BINS, NEGATIVE, PAIR_TYPES, POSITIVE  # noqa: F401 (PAIR_TYPES re-exported)
from kit.errors import UserError

#: The words of ``kit prepare --pair-types`` and the pair types each asks for.
PAIR_TYPE_WORDS = {"same": (POSITIVE, NEGATIVE), "cross": (CROSS,)}
#: The least share of cross-mode rows when same-mode rows are asked for too.
MIN_CROSS_SHARE = 0.25


def parse_pair_types(value, option="--pair-types"):
    """The words of ``--pair-types`` (text ``"same,cross"`` or a list), checked; a tuple in a fixed order.

    Raises
    ------
    kit.errors.UserError
        For an unknown word, an empty item or a word given twice.

    Examples
    --------
    >>> parse_pair_types("cross,same")
    ('same', 'cross')
    >>> parse_pair_types("same,same")
    Traceback (most recent call last):
    ...
    kit.errors.UserError: --pair-types must name each pair type once, found 'same' twice in 'same,same'
    """
    constraint = Each(Options(*PAIR_TYPE_WORDS), min_length=1, max_length=None)
    if isinstance(value, str):
        words = parse_param(value, option, constraint)
    else:
        try:
            words = constraint.check(list(value) if isinstance(value, tuple) else value, option)
        except TypeError as exc:
            raise UserError(str(exc)) from None
    for word in words:
        if words.count(word) > 1:
            raise UserError(f"{option} must name each pair type once, found {word!r} twice in {value!r}")
    return tuple(word for word in PAIR_TYPE_WORDS if word in words)


def pair_types_of(words, has_positive, has_negative):
    """The pair types that ``words`` ask for and the library's ion modes allow.

    ``same`` gives the same-mode types of the modes present; ``cross`` needs both modes.

    Raises
    ------
    kit.errors.UserError
        When ``cross`` is asked for and one mode has no spectrum.

    Examples
    --------
    >>> pair_types_of(("same", "cross"), True, True)
    ('positive-positive', 'negative-negative', 'cross')
    >>> pair_types_of(("same",), True, False)
    ('positive-positive',)
    """
    if CROSS in [t for w in words for t in PAIR_TYPE_WORDS[w]] and not (has_positive and has_negative):
        missing = "negative" if has_positive else "positive"
        raise UserError(
            f"--pair-types cross needs spectra of both ion modes: found no {missing}-mode spectrum with a usable "
            f"structure; expected a library with positive and negative spectra and --ionmode both"
        )
    present = {POSITIVE: has_positive, NEGATIVE: has_negative, CROSS: True}
    return tuple(t for w in words for t in PAIR_TYPE_WORDS[w] if present[t])


def cross_molecule_pairs(fps_positive, fps_negative, limit, rng, n_bins=N_BINS):
    """Pairs ``(p, q)`` of a positive-mode and a negative-mode molecule, grouped by Tanimoto bin.

    A molecule measured in both modes is on both sides, and its pair with itself is a
    top-bin pair. The bins of all ``len(p) x len(q)`` pairs are one byte each, computed
    block by block, as :func:`kit.data.pairs.molecule_pairs_by_bin` does for one set.

    Returns
    -------
    list of (m, 2) int arrays
        Per bin: row ``p`` of ``fps_positive``, row ``q`` of ``fps_negative``; at most ``limit`` per bin.

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> fps = fingerprints(["CCO", "c1ccccc1"])
    >>> by_bin = cross_molecule_pairs(fps, fps[:1], 10, np.random.default_rng(0))
    >>> by_bin[-1].tolist(), by_bin[0].tolist()
    ([[0, 0]], [[1, 0]])
    """
    fps_positive, fps_negative = np.asarray(fps_positive), np.asarray(fps_negative)
    n_neg = len(fps_negative)
    flat = np.empty(len(fps_positive) * n_neg, dtype=np.int8)
    for start in range(0, len(fps_positive), BLOCK):
        inter, union = tanimoto_counts(fps_positive[start : start + BLOCK], fps_negative)
        flat[start * n_neg : start * n_neg + inter.size] = bins_from_counts(inter, union, n_bins).ravel()
    out = []
    for b in range(n_bins):
        index = np.asarray(_positions_in_bin(flat, b, 0, limit, rng), dtype=np.int64)
        out.append(np.column_stack([index // max(n_neg, 1), index % max(n_neg, 1)]))
    return out


def typed_cells(pair_types, spectrum_is_positive):
    """A ``draw`` for :func:`kit.data.pairs.split_test_pairs`: cells of each pair type, bin by bin.

    Parameters
    ----------
    pair_types : sequence of str
        Pair types in :data:`PAIR_TYPES` order (from :func:`pair_types_of`).
    spectrum_is_positive : bool array
        Whether each spectrum (by the indices in ``spectra_of``) is of positive mode.

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> draw = typed_cells((CROSS,), np.array([True, False, True, False]))
    >>> cells = draw(fingerprints(["CCO", "c1ccccc1"]), [np.array([0, 1]), np.array([2, 3])], 5,
    ...              np.random.default_rng(0), 10)
    >>> len(cells), len(cells[-1]), len(cells[0])   # ten bins; both molecules with themselves, then across
    (10, 2, 2)
    """
    positive = np.asarray(spectrum_is_positive, dtype=bool)

    def draw(fps, spectra_of, pairs_per_bin, rng, n_bins):
        of_mode = {True: [s[positive[s]] for s in spectra_of], False: [s[~positive[s]] for s in spectra_of]}
        cells = []
        for pair_type in pair_types:
            if pair_type == CROSS:
                cells += _cross_cells(fps, of_mode[True], of_mode[False], pairs_per_bin, rng, n_bins)
                continue
            spectra = of_mode[pair_type == POSITIVE]
            members = np.flatnonzero([len(s) > 0 for s in spectra])
            pairs, _, per_bin = balanced_test_pairs(fps[members], [spectra[m] for m in members], pairs_per_bin,
                                                    rng, n_bins)
            cells += np.split(pairs, np.cumsum(per_bin)[:-1])
        return cells

    return draw


def _cross_cells(fps, positive_of, negative_of, pairs_per_bin, rng, n_bins):
    """Per bin, up to ``pairs_per_bin`` pairs of a positive and a negative spectrum."""
    pos = np.flatnonzero([len(s) > 0 for s in positive_of])
    neg = np.flatnonzero([len(s) > 0 for s in negative_of])
    # The two sides as one list of molecules (negative ones after the positive): a pair is
    # then never a molecule with itself for sample_spectrum_pairs, and always across modes.
    sides = [positive_of[m] for m in pos] + [negative_of[m] for m in neg]
    cells = []
    for molecule_pairs in cross_molecule_pairs(fps[pos], fps[neg], pairs_per_bin, rng, n_bins):
        cells.append(sample_spectrum_pairs(molecule_pairs + [0, len(pos)], sides, pairs_per_bin, rng))
    return cells


def keep_cross_share(pair_types, n_bins=N_BINS, share=MIN_CROSS_SHARE):
    """A ``balance`` for :func:`kit.data.pairs.split_test_pairs`: at least ``share`` cross-mode rows per Usage.

    Where a library has fewer cross-mode pairs than that (few molecules in the other mode),
    same-mode rows are left out, from the fullest cells first, so that the cross-mode rows
    still weigh a quarter of each score. ``left_out`` counts them.

    Examples
    --------
    >>> balance = keep_cross_share((POSITIVE, CROSS), n_bins=2)
    >>> public, private = np.array([10, 10, 2, 2]), np.array([5, 5, 5, 5])
    >>> balance(public, private); public.tolist(), private.tolist(), balance.left_out
    ([6, 6, 2, 2], [5, 5, 5, 5], 8)
    """
    cross = np.zeros(len(pair_types) * n_bins, dtype=bool)
    if CROSS in pair_types:
        start = pair_types.index(CROSS) * n_bins
        cross[start : start + n_bins] = True

    def balance(public, private):
        if not cross.any() or cross.all():
            return
        for counts in (public, private):
            same = counts[~cross]
            _trim(same, int(same.sum()) - int(np.floor(counts[cross].sum() * (1 - share) / share)))
            balance.left_out += int(counts[~cross].sum() - same.sum())
            counts[~cross] = same

    balance.left_out = 0
    return balance
