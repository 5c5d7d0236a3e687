import numpy as np
import pytest

from conftest import SMILES, TWINS
from kit.data.chemistry import fingerprints, tanimoto_matrix
from kit.data.pairs import (
    PairSampler,
    balanced_test_pairs,
    identity_groups,
    molecule_pairs_by_bin,
    private_rows_known_from_public,
    public_molecules,
    sample_spectrum_pairs,
    share_rows,
    split_molecules,
    split_test_pairs,
)
from kit.data.tanimoto_bins import N_BINS, bin_index
from kit.errors import UserError


@pytest.fixture(scope="module")
def fps():
    return fingerprints(SMILES)


def test_molecule_pairs_cover_every_pair_once_in_its_bin(fps):
    by_bin = molecule_pairs_by_bin(fps)
    full = tanimoto_matrix(fps)
    n = len(SMILES)
    assert sum(len(p) for p in by_bin) == n * (n - 1) // 2 + n
    for b, pairs in enumerate(by_bin):
        assert (bin_index(full[pairs[:, 0], pairs[:, 1]]) == b).all()
        assert (pairs[:, 0] <= pairs[:, 1]).all()


def test_sample_spectrum_pairs_distinct_and_capped():
    spectra_of = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5])]
    pairs = np.array([[0, 1], [0, 0], [1, 1], [1, 2]])  # (1, 1) has one spectrum: unusable
    out = sample_spectrum_pairs(pairs, spectra_of, 100, np.random.default_rng(0))
    keys = {tuple(sorted(p)) for p in out.tolist()}
    assert len(keys) == len(out) == 3 + 3 + 2  # all that exist
    assert all(a != b for a, b in out.tolist())


@pytest.mark.parametrize("k", [1, 5, 20])
def test_balanced_test_pairs(fps, k):
    spectra_of = [np.arange(3 * m, 3 * m + 3) for m in range(len(SMILES))]
    pairs, sim, per_bin = balanced_test_pairs(fps, spectra_of, k, np.random.default_rng(1))
    assert len(pairs) == sum(per_bin) and max(per_bin) <= k
    mol = pairs // 3
    np.testing.assert_array_equal(sim, tanimoto_matrix(fps)[mol[:, 0], mol[:, 1]])
    assert np.bincount(bin_index(sim), minlength=N_BINS).tolist() == per_bin


def test_split_molecules_is_seeded_and_order_free():
    keys = [f"K{i:03d}" for i in range(50)]
    a = split_molecules(keys, 0.2, np.random.default_rng(3))
    b = split_molecules(keys[::-1], 0.2, np.random.default_rng(3))[::-1]
    assert a.sum() == 10 and (a == b).all()
    assert not (a == split_molecules(keys, 0.2, np.random.default_rng(4))).all()


@pytest.mark.parametrize("n, fraction", [(3, 0.1), (4, 0.9), (10, 0.05)])
def test_split_too_few_molecules(n, fraction):
    with pytest.raises(UserError, match="too few molecules"):
        split_molecules([str(i) for i in range(n)], fraction, np.random.default_rng(0))


def test_sampler_is_balanced_seeded_and_pairs_are_real(fps):
    spectrum_molecule = np.repeat(np.arange(len(SMILES)), 2)
    sampler = PairSampler(spectrum_molecule, fps, batch=64)
    a, b, y = sampler.sample(500, np.random.default_rng(0))
    counts = np.bincount(bin_index(y), minlength=N_BINS)
    full = tanimoto_matrix(fps)
    np.testing.assert_array_equal(y, full[spectrum_molecule[a], spectrum_molecule[b]])
    assert (a != b).all()
    # Every bin this molecule set can fill gets its equal share.
    possible = np.unique(bin_index(full[np.triu_indices(len(SMILES))]))
    assert set(np.flatnonzero(counts)) == set(possible)
    assert counts[possible].min() >= 500 // N_BINS
    a2, b2, y2 = sampler.sample(500, np.random.default_rng(0))
    assert (a == a2).all() and (b == b2).all()
    a3, _, _ = sampler.sample(500, np.random.default_rng(1))
    assert not (a == a3).all()


def test_condensed_order_matches_triu_indices(fps):
    from kit.data.pairs import condensed_bins, condensed_to_pairs

    n = len(SMILES)
    rows, cols = np.triu_indices(n, 1)
    np.testing.assert_array_equal(condensed_to_pairs(np.arange(n * (n - 1) // 2), n), np.column_stack([rows, cols]))
    np.testing.assert_array_equal(condensed_bins(fps), bin_index(tanimoto_matrix(fps)[rows, cols]))


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_limited_pairs_are_a_random_subset_of_their_bin(limit):
    rng = np.random.default_rng(0)
    many = (rng.random((300, 2048)) < 0.2).astype(np.uint8)  # random bits: big low bins
    full = molecule_pairs_by_bin(many)
    limited = molecule_pairs_by_bin(many, limit=limit, rng=np.random.default_rng(1))
    for everything, some in zip(full, limited):
        assert len(some) == min(limit, len(everything))
        known = {tuple(p) for p in everything.tolist()}
        assert {tuple(p) for p in some.tolist()} <= known
        assert len({tuple(p) for p in some.tolist()}) == len(some)
    again = molecule_pairs_by_bin(many, limit=limit, rng=np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(limited, again))


def test_sampler_gives_the_same_pairs_with_and_without_the_bins_cache(fps, monkeypatch):
    import kit.data.pairs

    spectrum_molecule = np.repeat(np.arange(len(SMILES)), 2)
    cached = PairSampler(spectrum_molecule, fps, batch=8).sample(300, np.random.default_rng(3))
    monkeypatch.setattr(kit.data.pairs, "CACHE_MOLECULES", 0)
    uncached = PairSampler(spectrum_molecule, fps, batch=8).sample(300, np.random.default_rng(3))
    for x, y in zip(cached, uncached):
        np.testing.assert_array_equal(x, y)


def test_sampler_partners_are_spread_over_their_bin(fps):
    # Every molecule pair of a bin shows up when many pairs are drawn: the partner is
    # drawn uniformly among the molecules in the anchor's target bin.
    spectrum_molecule = np.repeat(np.arange(len(SMILES)), 2)
    sampler = PairSampler(spectrum_molecule, fps, batch=len(SMILES))
    a, b, _ = sampler.sample(20000, np.random.default_rng(0))
    drawn = set(zip(spectrum_molecule[a].tolist(), spectrum_molecule[b].tolist()))
    full = tanimoto_matrix(fps)
    low = bin_index(full) == 0
    np.fill_diagonal(low, False)
    expected = set(zip(*np.nonzero(low)))
    assert len(expected & drawn) >= 0.95 * len(expected)


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_sampler_same_molecule_share_of_the_top_bin(fps, share):
    # Pairs of isomers share their fingerprint: every top-bin anchor has both a self-pair
    # and another molecule to choose from.
    smiles = ["CCO", "OCC", "CCCO", "OCCC", "c1ccccc1", "C1=CC=CC=C1", "CC(C)O", "OC(C)C"]
    spectrum_molecule = np.repeat(np.arange(len(smiles)), 3)
    sampler = PairSampler(spectrum_molecule, fingerprints(smiles), same_molecule_share=share)
    a, b, y = sampler.sample(4000, np.random.default_rng(0))
    top = bin_index(y) == N_BINS - 1
    same = spectrum_molecule[a[top]] == spectrum_molecule[b[top]]
    assert top.sum() > 300 and (a != b).all()
    assert abs(same.mean() - share) < 0.06


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_sampler_refuses_a_share_outside_0_1(fps, share):
    with pytest.raises(ValueError, match="same_molecule_share"):
        PairSampler(np.arange(len(SMILES)), fps, same_molecule_share=share)


def _spectra_of(n, per_molecule=2):
    return [np.arange(per_molecule * m, per_molecule * m + per_molecule) for m in range(n)]


def test_identity_groups_join_identical_fingerprints_whatever_the_order():
    smiles = SMILES + TWINS
    fps = fingerprints(smiles)
    groups = identity_groups(fps)
    same = (fps[:, None, :] == fps[None, :, :]).all(axis=2)
    np.testing.assert_array_equal(groups[:, None] == groups[None, :], same)
    assert len(np.unique(groups)) == len(SMILES)  # every twin joins its parent
    order = np.random.default_rng(0).permutation(len(smiles))
    np.testing.assert_array_equal(identity_groups(fps[order]), groups[order])
    assert identity_groups(np.zeros((0, 2048), dtype=np.uint8)).tolist() == []


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.8])
def test_public_molecules_keep_identity_groups_whole_and_are_seeded(fraction):
    fps = fingerprints(SMILES + TWINS)
    groups = identity_groups(fps)
    mask = public_molecules(fps, fraction, np.random.default_rng(7))
    for g in np.unique(groups):
        assert len(set(mask[groups == g].tolist())) == 1, "an identity group is split"
    assert 0 < mask.sum() <= round(fraction * len(fps)) and (~mask).any()
    np.testing.assert_array_equal(mask, public_molecules(fps, fraction, np.random.default_rng(7)))
    draws = {tuple(public_molecules(fps, fraction, np.random.default_rng(s)).tolist()) for s in range(5)}
    assert len(draws) > 1


@pytest.mark.parametrize("smiles, fraction, side", [
    (["CCO", "CCCO", "CCCCO"], 0.1, "Public"),
    (["CCO", "CCCO", "CCCCO"], 0.9, "Private"),
    (["CCO", "CCO.Cl", "CCO.[Na+]"], 0.5, "Public"),  # one identity group cannot be split
    (["CCO"], 0.5, "Public"),
])
def test_public_molecules_refuse_an_empty_side(smiles, fraction, side):
    with pytest.raises(UserError, match=f"leaves the {side} group empty"):
        public_molecules(fingerprints(smiles), fraction, np.random.default_rng(0))


@pytest.mark.parametrize("public, private, k, fraction", [
    ([50] * 10, [50] * 10, 20, 0.3),
    ([20] * 8 + [3, 0], [20] * 8 + [9, 4], 20, 0.3),
    ([20] * 10, [1] * 10, 20, 0.3),     # Private short everywhere: Public rows left out
    ([1] * 10, [20] * 10, 20, 0.3),     # Public short everywhere: Private rows left out
    ([5, 0, 0, 0, 0, 0, 0, 0, 0, 2], [40, 2, 0, 0, 0, 0, 0, 0, 0, 9], 40, 0.5),
    ([1000] * 10, [1000] * 10, 1000, 0.05),
    ([7] * 10, [7] * 10, 7, 0.97),
])
def test_share_rows_fills_bins_within_the_fraction(public, private, k, fraction):
    pub, priv = share_rows(public, private, k, fraction)
    assert (pub >= 0).all() and (priv >= 0).all()
    assert (pub <= public).all() and (priv <= private).all() and (pub + priv <= k).all()
    rows = pub.sum() + priv.sum()
    assert rows and abs(pub.sum() / rows - fraction) <= 0.03
    full = np.minimum(np.add(public, private), k)
    if (pub + priv < full).any():
        # Rows are left out only from the side over its share, once the other gives all it has.
        assert (pub == np.minimum(public, k)).all() or (priv == np.minimum(private, k)).all()


def test_share_rows_on_random_groups():
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(1, 60))
        fraction = float(rng.uniform(0.05, 0.95))
        public = rng.integers(0, 2 * k, N_BINS) * (rng.random(N_BINS) < 0.8)
        private = rng.integers(0, 2 * k, N_BINS) * (rng.random(N_BINS) < 0.8)
        pub, priv = share_rows(public, private, k, fraction)
        assert (0 <= pub).all() and (pub <= public).all() and (0 <= priv).all() and (priv <= private).all()
        assert (pub + priv <= k).all()
        if min(pub.sum(), priv.sum()) >= 20:  # fewer rows cannot always come within 0.03
            assert abs(pub.sum() / (pub.sum() + priv.sum()) - fraction) <= 0.03


def test_share_rows_keeps_every_bin_full_and_the_share_exact_when_groups_allow():
    pub, priv = share_rows([1000] * 8 + [30, 10], [1000] * 8 + [60, 25], 100, 0.3)
    assert (pub + priv).tolist() == [100] * 8 + [90, 35]
    assert pub.sum() == round(0.3 * (pub + priv).sum())
    # A short bin takes what each group has (bin 8: Private has only 60 of 90, bin 9:
    # Public only 10 of 35); the full bins make up the difference.
    assert pub[8] == 30 and pub[9] == 10 and set(pub[:8].tolist()) <= {29, 30}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_test_pairs_never_share_a_spectrum_molecule_or_fingerprint(seed):
    smiles = SMILES + TWINS
    fps = fingerprints(smiles)
    spectra_of = _spectra_of(len(smiles), per_molecule=3)
    drawn = split_test_pairs(fps, spectra_of, 6, 0.3, np.random.default_rng(seed), np.random.default_rng(seed + 10))
    molecule = np.repeat(np.arange(len(smiles)), 3)
    groups = identity_groups(fps)
    public, private = drawn.pairs[drawn.is_public], drawn.pairs[~drawn.is_public]
    assert not set(public.ravel()) & set(private.ravel())
    assert not set(molecule[public].ravel()) & set(molecule[private].ravel())
    assert not set(groups[molecule[public]].ravel()) & set(groups[molecule[private]].ravel())
    # Each pair lies within its group of molecules, and carries its true label.
    assert drawn.public_molecules[molecule[public]].all() and not drawn.public_molecules[molecule[private]].any()
    np.testing.assert_array_equal(drawn.similarity, tanimoto_matrix(fps)[molecule[drawn.pairs[:, 0]],
                                                                          molecule[drawn.pairs[:, 1]]])
    assert abs(drawn.is_public.mean() - 0.3) <= 0.03
    np.testing.assert_array_equal(np.bincount(bin_index(drawn.similarity[drawn.is_public]), minlength=N_BINS),
                                  drawn.public_per_bin)
    assert (drawn.per_bin <= 6).all() and drawn.per_bin.sum() == len(drawn.pairs)
    assert len({tuple(sorted(p)) for p in drawn.pairs.tolist()}) == len(drawn.pairs)
    again = split_test_pairs(fps, spectra_of, 6, 0.3, np.random.default_rng(seed), np.random.default_rng(seed + 10))
    np.testing.assert_array_equal(again.pairs, drawn.pairs)
    np.testing.assert_array_equal(again.is_public, drawn.is_public)


def test_the_leak_check_finds_private_labels_that_follow_from_public_ones():
    pairs = np.array([[0, 1], [1, 2], [0, 2], [0, 3], [1, 0], [4, 5]])
    labels = [0.4, 1.0, 0.4, 0.2, 0.4, 0.7]
    public = [True, True, False, False, False, False]
    # (0, 2): spectra 1 and 2 are one by a Public 1.0; (1, 0): the same spectra as a Public pair.
    assert private_rows_known_from_public(pairs, labels, public, identity=[0, 1, 2, 3, 4, 5]) == [2, 4]
    # Spectra 3 and 1 of one molecule: (0, 3) is the Public (0, 1) again.
    assert private_rows_known_from_public(pairs, labels, public, identity=[0, 1, 2, 1, 4, 5]) == [2, 3, 4]


def test_rows_drawn_over_all_test_molecules_would_leak():
    # The check can fail on real pairs: Usage drawn row by row over all test molecules (the
    # scheme before groups) leaves Private labels that Public ones give away.
    from kit.data.chemistry import group_indices

    smiles = SMILES + TWINS
    fps = fingerprints(smiles)
    spectra_of = group_indices(np.repeat(np.arange(len(smiles)), 3), len(smiles))
    rng = np.random.default_rng(0)
    pairs, labels, _ = balanced_test_pairs(fps, spectra_of, 8, rng)
    public = np.zeros(len(pairs), dtype=bool)
    public[rng.permutation(len(pairs))[: round(0.3 * len(pairs))]] = True
    identity = identity_groups(fps)[np.repeat(np.arange(len(smiles)), 3)]
    assert len(private_rows_known_from_public(pairs, labels.tolist(), public, identity)) > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_labels_are_the_tanimoto_of_the_two_molecules(fps, seed):
    from kit.data.chemistry import tanimoto_rows

    sampler = PairSampler(np.repeat(np.arange(len(fps)), 2), fps)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(fps), 500), rng.integers(0, len(fps), 500)
    np.testing.assert_array_equal(sampler.tanimoto(a, b), tanimoto_rows(fps[a], fps[b]))
    spec_a, spec_b, similarity = sampler.sample(300, rng)
    mol_a, mol_b = sampler.spectrum_molecule[spec_a], sampler.spectrum_molecule[spec_b]
    np.testing.assert_array_equal(similarity, tanimoto_matrix(fps)[mol_a, mol_b])
