import numpy as np
import pytest
from conftest import SMILES

from kit.data.chemistry import fingerprints, tanimoto_rows
from kit.data.pair_types import (CROSS, NEGATIVE, POSITIVE, cross_molecule_pairs, keep_cross_share, pair_types_of,
                                 parse_pair_types, typed_cells)
from kit.data.pairs import _spectrum_molecules, split_test_pairs
from kit.data.tanimoto_bins import N_BINS, bin_index
from kit.errors import UserError


@pytest.mark.parametrize("value, expected", [
    ("same", ("same",)), ("cross", ("cross",)), ("same,cross", ("same", "cross")), ("cross,same", ("same", "cross")),
    (" cross , same ", ("same", "cross")), (["cross"], ("cross",)), (("same", "cross"), ("same", "cross")),
])
def test_pair_type_words_are_read_in_one_order(value, expected):
    assert parse_pair_types(value) == expected


@pytest.mark.parametrize("value, fragment", [
    ("same,same", "'same' twice"), ("cross,same,cross", "'cross' twice"), ("Same", "found 'Same'"),
    ("positive-positive", "found 'positive-positive'"), ("same,", "found ''"), ("", "found ''"),
    ("same;cross", "found 'same;cross'"), ("same,cross,mixed", "found 'mixed'"), ([], "found 0 items"),
    ([1], "found 1"), ("same\ncross", "found 'same\\ncross'"), (7, "found int 7"),
])
def test_bad_pair_types_are_one_line(value, fragment):
    with pytest.raises(UserError, match="--pair-types must") as caught:
        parse_pair_types(value)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_cross_needs_both_modes_and_same_keeps_the_modes_present():
    assert pair_types_of(("same", "cross"), True, True) == (POSITIVE, NEGATIVE, CROSS)
    assert pair_types_of(("same",), False, True) == (NEGATIVE,)
    for modes, missing in (((True, False), "no negative-mode"), ((False, True), "no positive-mode")):
        with pytest.raises(UserError, match=missing):
            pair_types_of(("cross",), *modes)


def test_cross_molecule_pairs_cover_every_pair_once_in_its_bin():
    fps = fingerprints(SMILES)
    positive, negative = fps[:9], fps[5:]
    by_bin = cross_molecule_pairs(positive, negative, None, None)
    pairs = np.concatenate(by_bin)
    assert len(pairs) == len({tuple(p) for p in pairs.tolist()}) == len(positive) * len(negative)
    for b, found in enumerate(by_bin):
        assert (bin_index(tanimoto_rows(positive[found[:, 0]], negative[found[:, 1]])) == b).all()
    # A molecule measured in both modes is a top-bin pair with itself.
    assert {(m, m - 5) for m in range(5, 9)} <= {tuple(p) for p in by_bin[-1].tolist()}


def test_cross_molecule_pairs_keep_at_most_the_limit_per_bin():
    fps = fingerprints(SMILES)
    by_bin = cross_molecule_pairs(fps, fps, 3, np.random.default_rng(0))
    assert max(len(p) for p in by_bin) == 3


def _both_modes(n_molecules=len(SMILES), per_mode=2, negative_molecules=None):
    """Spectrum indices of each molecule and whether each spectrum is positive: ``per_mode`` of each mode."""
    negative_molecules = range(n_molecules) if negative_molecules is None else negative_molecules
    spectra_of, positive = [], []
    for m in range(n_molecules):
        modes = [True] * per_mode + [False] * (per_mode if m in negative_molecules else 0)
        spectra_of.append(np.arange(len(positive), len(positive) + len(modes)))
        positive += modes
    return spectra_of, np.array(positive)


@pytest.mark.parametrize("types", [(POSITIVE, NEGATIVE, CROSS), (CROSS,), (POSITIVE,), (NEGATIVE, CROSS)])
def test_typed_cells_hold_pairs_of_their_type_and_bin(types):
    fps = fingerprints(SMILES)
    spectra_of, positive = _both_modes()
    cells = typed_cells(types, positive)(fps, spectra_of, 6, np.random.default_rng(0), N_BINS)
    assert len(cells) == len(types) * N_BINS
    molecule = _spectrum_molecules(spectra_of)
    for k, cell in enumerate(cells):
        assert len(cell) <= 6
        if not len(cell):
            continue
        modes = positive[cell]
        expected = {POSITIVE: [True, True], NEGATIVE: [False, False]}.get(types[k // N_BINS])
        if expected is None:
            assert (modes[:, 0] != modes[:, 1]).all()
        else:
            assert (modes == expected).all()
        mols = molecule[cell]
        assert (bin_index(tanimoto_rows(fps[mols[:, 0]], fps[mols[:, 1]])) == k % N_BINS).all()
        assert len({tuple(sorted(p)) for p in cell.tolist()}) == len(cell)
    cross_top = cells[types.index(CROSS) * N_BINS + N_BINS - 1] if CROSS in types else []
    # The cross-mode top bin holds molecules measured in both modes, paired with themselves.
    assert not len(cross_top) or (molecule[cross_top][:, 0] == molecule[cross_top][:, 1]).any()


@pytest.mark.parametrize("public, private, types, expected_public, expected_private, left_out", [
    ([10, 10, 2, 2], [5, 5, 5, 5], (POSITIVE, CROSS), [6, 6, 2, 2], [5, 5, 5, 5], 8),
    ([4, 4, 4, 4, 4, 4], [4, 4, 4, 4, 4, 4], (POSITIVE, NEGATIVE, CROSS), [4] * 6, [4] * 6, 0),
    ([9, 0, 9, 0, 1, 1], [3, 3, 3, 3, 0, 1], (POSITIVE, NEGATIVE, CROSS), [3, 0, 3, 0, 1, 1], [0, 1, 1, 1, 0, 1], 21),
    ([9, 9], [1, 1], (CROSS,), [9, 9], [1, 1], 0),
    ([9, 9], [1, 1], (POSITIVE,), [9, 9], [1, 1], 0),
])
def test_cross_rows_are_at_least_a_quarter_of_each_usage(public, private, types, expected_public, expected_private,
                                                         left_out):
    public, private = np.array(public), np.array(private)
    balance = keep_cross_share(types, n_bins=2)
    balance(public, private)
    assert public.tolist() == expected_public and private.tolist() == expected_private
    assert balance.left_out == left_out
    if CROSS in types and len(types) > 1:
        for counts in (public, private):
            assert counts[-2:].sum() >= counts.sum() / 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_typed_split_keeps_molecules_of_both_modes_on_one_side(seed):
    fps = fingerprints(SMILES)
    spectra_of, positive = _both_modes(negative_molecules=range(0, len(SMILES), 2))
    types = (POSITIVE, NEGATIVE, CROSS)
    balance = keep_cross_share(types)
    drawn = split_test_pairs(fps, spectra_of, 5, 0.3, np.random.default_rng(seed), np.random.default_rng(seed + 9),
                             draw=typed_cells(types, positive), balance=balance)
    molecule = _spectrum_molecules(spectra_of)
    sides = [set(molecule[drawn.pairs[drawn.is_public]].ravel()), set(molecule[drawn.pairs[~drawn.is_public]].ravel())]
    assert not sides[0] & sides[1]
    kind = drawn.cell // N_BINS
    for usage in (drawn.is_public, ~drawn.is_public):
        assert (kind[usage] == 2).mean() >= 0.25
    assert np.array_equal(np.bincount(drawn.cell, minlength=3 * N_BINS), drawn.public_per_cell + drawn.private_per_cell)
    assert (drawn.per_bin == (drawn.public_per_cell + drawn.private_per_cell).reshape(3, N_BINS).sum(axis=0)).all()
