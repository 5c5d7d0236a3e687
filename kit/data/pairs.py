"""Pairs of spectra balanced over the ten Tanimoto bins, chosen by molecule.

Two uses share these functions: the test pairs of a competition (every molecule pair of
the test molecules is enumerated, then spectra are drawn) and the training pairs of the
learned models (anchors are drawn, and their partners found block by block, so memory
stays bounded by ``batch x molecules``).
"""
from dataclasses import dataclass

import numpy as np

from kit.data.chemistry import bins_from_counts, molecules_of, tanimoto_counts, tanimoto_from_counts, tanimoto_rows
from kit.data.tanimoto_bins import N_BINS
from kit.errors import UserError

# Rows of molecules compared at once when enumerating molecule pairs.
BLOCK = 1024
# A PairSampler over at most this many molecules keeps the Tanimoto bin of every molecule
# pair (one byte each: 64 MiB at the limit) instead of recomputing blocks every epoch.
CACHE_MOLECULES = 8192


def condensed_bins(fps, n_bins=N_BINS):
    """Tanimoto bin of every molecule pair ``i < j``, in condensed order.

    The order is that of ``scipy.spatial.distance.pdist``: (0, 1), (0, 2), ..., (1, 2), ...
    One byte per pair, computed block by block over the upper triangle only.

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> condensed_bins(fingerprints(["CCO", "CCCO", "c1ccccc1"])).tolist()
    [6, 0, 0]
    """
    fps = np.asarray(fps)
    n = len(fps)
    out = np.empty(n * (n - 1) // 2, dtype=np.int8)
    pos = 0
    for start in range(0, n, BLOCK):
        inter, union = tanimoto_counts(fps[start : start + BLOCK], fps[start:])
        bins = bins_from_counts(inter, union, n_bins)
        # Row-major boolean indexing keeps each row's j > i run in order: condensed order.
        upper = bins[np.triu(np.ones(bins.shape, dtype=bool), k=1)]
        out[pos : pos + len(upper)] = upper
        pos += len(upper)
    return out


def condensed_to_pairs(index, n):
    """``(i, j)`` rows of condensed pair indices (see :func:`condensed_bins`).

    Examples
    --------
    >>> condensed_to_pairs(np.array([0, 1, 2]), 3).tolist()
    [[0, 1], [0, 2], [1, 2]]
    """
    index = np.asarray(index, dtype=np.int64)
    rows = np.arange(n, dtype=np.int64)
    row_start = rows * n - rows * (rows + 1) // 2
    i = np.searchsorted(row_start, index, side="right") - 1
    return np.column_stack([i, index - row_start[i] + i + 1])


def molecule_pairs_by_bin(fps, n_bins=N_BINS, limit=None, rng=None):
    """Molecule pairs ``i < j`` of a set, grouped by Tanimoto bin.

    Each molecule is also paired with itself in the top bin: two different spectra of
    one molecule are a pair of Tanimoto 1.

    Parameters
    ----------
    fps : (n, 2048) 0/1 array
    limit : int, optional
        Keep at most this many pairs per bin, a uniform random subset (needs ``rng``).
        Large bins are then sampled without listing all their pairs.
    rng : numpy.random.Generator, optional

    Returns
    -------
    list of numpy.ndarray
        One ``(m, 2)`` int array per bin (all pairs in condensed order, self-pairs last,
        or with ``limit`` a random subset in random order).

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> by_bin = molecule_pairs_by_bin(fingerprints(["CCO", "CCCO", "c1ccccc1"]))
    >>> sum(len(p) for p in by_bin)   # 3 pairs + 3 self-pairs
    6
    """
    n = len(fps)
    condensed = condensed_bins(fps, n_bins)
    out = []
    for b in range(n_bins):
        index = _positions_in_bin(condensed, b, n if b == n_bins - 1 else 0, limit, rng)
        out.append(_pairs_of(index, condensed, n))
    return out


def _positions_in_bin(flat, b, selves, limit, rng):
    """Positions of ``flat`` in bin ``b`` (``selves`` more past its end), at most ``limit`` at random."""
    hits = flat == b
    count = int(np.count_nonzero(hits)) + selves
    if limit is None or count <= 20 * limit:
        index = np.concatenate([np.flatnonzero(hits), len(flat) + np.arange(selves)])
        if limit is not None and count > limit:
            index = rng.choice(index, size=limit, replace=False)
        return index
    return _sample_where(flat, b, selves, limit, count, rng)


def _sample_where(condensed, b, selves, k, count, rng):
    """``k`` distinct random positions of bin ``b`` (positions past the end are self-pairs)."""
    total = len(condensed) + selves
    chosen = np.empty(0, dtype=np.int64)
    while len(chosen) < k:
        draw = rng.integers(0, total, size=int(2 * (k - len(chosen)) * total / count) + 16)
        inside = draw < len(condensed)
        keep = np.where(inside, condensed[np.minimum(draw, len(condensed) - 1)] == b, True)
        # Keep the order of first appearance: the subset stays uniformly random.
        merged = np.concatenate([chosen, draw[keep]])
        _, first = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first)]
    return chosen[:k]


def _pairs_of(index, condensed, n):
    index = np.asarray(index, dtype=np.int64)
    self_pair = index >= len(condensed)
    pairs = np.empty((len(index), 2), dtype=np.int64)
    pairs[~self_pair] = condensed_to_pairs(index[~self_pair], n)
    pairs[self_pair] = (index[self_pair] - len(condensed))[:, None]
    return pairs


def sample_spectrum_pairs(molecule_pairs, spectra_of, k, rng):
    """Up to ``k`` distinct spectrum pairs drawn from the given molecule pairs.

    Molecule pairs are visited in a random order, one spectrum pair each per round, so
    that many molecules are represented before any molecule pair is used twice.

    Parameters
    ----------
    molecule_pairs : (n, 2) int array
    spectra_of : list of int arrays
        Spectrum indices of each molecule.
    k : int
    rng : numpy.random.Generator

    Returns
    -------
    (m, 2) int array of spectrum indices, ``m <= k``.
    """
    if len(molecule_pairs) == 0 or k <= 0:
        return np.empty((0, 2), dtype=np.int64)
    sizes = np.array([len(s) for s in spectra_of])
    a_mol, b_mol = molecule_pairs[:, 0], molecule_pairs[:, 1]
    same = a_mol == b_mol
    # A self-pair needs two different spectra of the molecule.
    usable = ~same | (sizes[a_mol] > 1)
    a_mol, b_mol, same = a_mol[usable], b_mol[usable], same[usable]
    if len(a_mol) == 0:
        return np.empty((0, 2), dtype=np.int64)
    available = np.where(same, sizes[a_mol] * (sizes[a_mol] - 1) // 2, sizes[a_mol] * sizes[b_mol]).sum()
    target = int(min(k, available))
    if available <= k:
        return _all_spectrum_pairs(a_mol, b_mol, spectra_of)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    flat = np.concatenate(spectra_of) if len(spectra_of) else np.empty(0, dtype=np.int64)
    chosen, seen = [], set()
    stale_rounds = 0
    while len(chosen) < target and stale_rounds < 20:
        order = rng.permutation(len(a_mol))
        ia = rng.integers(0, sizes[a_mol[order]])
        ib = rng.integers(0, sizes[b_mol[order]] - same[order])
        # For a self-pair, skip over the first spectrum so the two differ.
        ib = ib + (same[order] & (ib >= ia))
        sa = flat[offsets[a_mol[order]] + ia]
        sb = flat[offsets[b_mol[order]] + ib]
        before = len(chosen)
        for x, y in zip(sa.tolist(), sb.tolist()):
            key = (x, y) if x < y else (y, x)
            if key not in seen:
                seen.add(key)
                chosen.append((x, y))
                if len(chosen) == target:
                    break
        stale_rounds = stale_rounds + 1 if len(chosen) == before else 0
    return np.array(chosen, dtype=np.int64).reshape(-1, 2)


def _all_spectrum_pairs(a_mol, b_mol, spectra_of):
    out = []
    for a, b in zip(a_mol.tolist(), b_mol.tolist()):
        sa, sb = spectra_of[a], spectra_of[b]
        if a == b:
            i, j = np.triu_indices(len(sa), 1)
            out.append(np.column_stack([sa[i], sa[j]]))
        else:
            out.append(np.column_stack([np.repeat(sa, len(sb)), np.tile(sb, len(sa))]))
    return np.concatenate(out).astype(np.int64) if out else np.empty((0, 2), dtype=np.int64)


def balanced_test_pairs(fps, spectra_of, pairs_per_bin, rng, n_bins=N_BINS):
    """Spectrum pairs balanced over Tanimoto bins, with their exact Tanimoto.

    Returns
    -------
    pairs : (n, 2) int array of spectrum indices
    similarity : (n,) float64 Tanimoto of each pair's molecules
    per_bin : list of int, pairs found in each bin
    """
    spectrum_molecule = _spectrum_molecules(spectra_of)
    picked, per_bin = [], []
    for molecule_pairs in molecule_pairs_by_bin(fps, n_bins, limit=pairs_per_bin, rng=rng):
        pairs = sample_spectrum_pairs(molecule_pairs, spectra_of, pairs_per_bin, rng)
        picked.append(pairs)
        per_bin.append(len(pairs))
    pairs = np.concatenate(picked) if picked else np.empty((0, 2), dtype=np.int64)
    mols = spectrum_molecule[pairs]
    fps = np.asarray(fps)
    return pairs, tanimoto_rows(fps[mols[:, 0]], fps[mols[:, 1]]), per_bin


def identity_groups(fps):
    """Group index of each molecule: molecules with identical fingerprints share one.

    Two such molecules have Tanimoto 1 with each other and the same Tanimoto with any
    third: a label of one is a label of the other. Groups are numbered in the order of
    their fingerprints' bytes, so they do not depend on the molecules' order.

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> identity_groups(fingerprints(["CCO", "OCC", "c1ccccc1"])).tolist()
    [0, 0, 1]
    """
    packed = np.packbits(np.asarray(fps, dtype=np.uint8), axis=1)
    if len(packed) == 0:
        return np.empty(0, dtype=np.int64)
    _, inverse = np.unique(packed, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def public_molecules(fps, public_fraction, rng):
    """Boolean mask of the molecules in the Public group: a seeded share, whole identity groups.

    Molecules with identical fingerprints (:func:`identity_groups`) go to the same group,
    else a Public label would also be the label of a Private pair. Groups are taken in a
    random order while they fit in ``round(public_fraction * n)`` molecules.

    Raises
    ------
    kit.errors.UserError
        When a side would have no molecule.

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> fps = fingerprints(["CCO", "OCC", "CCCO", "CCCCO", "c1ccccc1", "c1ccccc1O"])
    >>> mask = public_molecules(fps, 0.5, np.random.default_rng(0))
    >>> int(mask.sum()), bool(mask[0] == mask[1])
    (3, True)
    """
    group = identity_groups(fps)
    n = len(group)
    sizes = np.bincount(group, minlength=int(group.max()) + 1 if n else 0)
    target = int(round(float(public_fraction) * n))
    taken = np.zeros(len(sizes), dtype=bool)
    count = 0
    for g in rng.permutation(len(sizes)).tolist():
        if count + sizes[g] <= target:
            taken[g] = True
            count += int(sizes[g])
            if count == target:
                break
    if count == 0 or count == n:
        side = "Public" if count == 0 else "Private"
        raise UserError(
            f"too few test molecules for a Public and a Private group: found {n:,} test molecules "
            f"({len(sizes):,} distinct fingerprints) and --public-fraction {public_fraction:g} leaves "
            f"the {side} group empty; expected at least one molecule in each (raise --test-fraction)"
        )
    return taken[group]


def share_rows(public_available, private_available, pairs_per_bin, public_fraction, tolerance=0.03):
    """Public and Private rows per bin: full bins, and ``public_fraction`` of all rows.

    Each bin gets ``min(pairs_per_bin, public + private available)`` rows. The Public rows
    are spread so that every bin's Public share is as near ``public_fraction`` as the
    groups allow while the total is ``round(public_fraction * rows)``. Where one group
    cannot give its share even so (a small library) and the share is off by more than
    ``tolerance``, rows of the other group are left out, from its fullest bins first,
    until the share is as near ``public_fraction`` as whole rows allow.

    Returns
    -------
    public, private : int arrays, rows of each Usage per bin

    Examples
    --------
    >>> pub, priv = share_rows([10, 10, 2], [10, 10, 9], 10, 0.3)
    >>> pub.tolist(), priv.tolist()   # the short last bin has 2 Public rows; the first makes up
    ([4, 3, 2], [6, 7, 8])
    """
    pub_av = np.asarray(public_available, dtype=np.int64)
    priv_av = np.asarray(private_available, dtype=np.int64)
    f = float(public_fraction)
    total = np.minimum(pub_av + priv_av, int(pairs_per_bin))
    low, high = np.maximum(total - priv_av, 0), np.minimum(pub_av, total)
    public = np.clip(np.round(f * total).astype(np.int64), low, high)
    want = int(round(f * total.sum()))
    # One row at a time, to (or from) the bin with the lowest (highest) Public share that
    # has room: a few thousand steps over ten bins at most.
    while public.sum() != want:
        up = public.sum() < want
        room = (public < high) if up else (public > low)
        if not room.any():
            break
        share = public / np.maximum(total, 1)
        pick = int(np.argmin(np.where(room, share, np.inf)) if up else np.argmax(np.where(room, share, -np.inf)))
        public[pick] += 1 if up else -1
    private = total - public
    rows = public.sum() + private.sum()
    if rows and abs(public.sum() / rows - f) > tolerance:
        if public.sum() / rows < f:
            _trim(private, private.sum() - int(round(public.sum() * (1 - f) / f)))
        else:
            _trim(public, public.sum() - int(round(private.sum() * f / (1 - f))))
    return public, private


def _trim(counts, remove):
    """Take ``remove`` from ``counts`` in place, one at a time from the largest (ties: first)."""
    for _ in range(max(0, int(remove))):
        counts[int(np.argmax(counts))] -= 1


def split_test_pairs(fps, spectra_of, pairs_per_bin, public_fraction, rng, group_rng, n_bins=N_BINS, draw=None,
                     balance=None):
    """Balanced test pairs in two independent groups: Public and Private.

    The molecules are split into a Public and a Private group (:func:`public_molecules`,
    from ``group_rng``) and every pair is drawn within one group, so no spectrum and no
    molecule is on both sides and no Private label follows from Public ones. Rows per bin
    and Usage come from :func:`share_rows`.

    Parameters
    ----------
    draw : callable, optional
        ``draw(fps, spectra_of, pairs_per_bin, rng, n_bins)`` of one group's molecules: a list of
        spectrum-pair arrays, one per cell (a bin, or a bin of one pair type:
        :func:`kit.data.pair_types.typed_cells`), each with up to ``pairs_per_bin`` rows.
        Default: one cell per bin, any two spectra (:func:`balanced_test_pairs`).
    balance : callable, optional
        ``balance(public, private)``: rows per cell of each Usage, adjusted in place after
        :func:`share_rows` (e.g. a least share of cross-mode rows).

    Returns
    -------
    GroupedPairs
        Public rows first, each Usage in cell order.

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> fps = fingerprints(["CCO", "CCCO", "CCCCO", "c1ccccc1", "c1ccccc1O", "CC(=O)O"])
    >>> spectra_of = [np.array([2 * m, 2 * m + 1]) for m in range(6)]
    >>> drawn = split_test_pairs(fps, spectra_of, 3, 0.3, np.random.default_rng(0), np.random.default_rng(1))
    >>> len(drawn.pairs) == len(drawn.similarity) == len(drawn.is_public) == int(drawn.per_bin.sum())
    True
    """
    fps = np.asarray(fps)
    mask = public_molecules(fps, public_fraction, group_rng)
    drawn = []
    for members in (np.flatnonzero(mask), np.flatnonzero(~mask)):
        if draw is None:
            pairs, _, per_bin = balanced_test_pairs(fps[members], [spectra_of[m] for m in members], pairs_per_bin,
                                                    rng, n_bins)
            bounds = np.concatenate([[0], np.cumsum(per_bin)])
            cells = [pairs[bounds[b]:bounds[b + 1]] for b in range(n_bins)]
        else:
            cells = draw(fps[members], [spectra_of[m] for m in members], pairs_per_bin, rng, n_bins)
        # A bin with every pair listed comes in a fixed order: shuffle it so any prefix is a random subset.
        drawn.append([cell[rng.permutation(len(cell))] for cell in cells])
    public, private = share_rows([len(p) for p in drawn[0]], [len(p) for p in drawn[1]], pairs_per_bin,
                                 public_fraction)
    if balance is not None:
        balance(public, private)
    parts = [p[:k] for p, k in zip(drawn[0], public)] + [p[:k] for p, k in zip(drawn[1], private)]
    pairs = np.concatenate(parts).astype(np.int64).reshape(-1, 2)
    mols = _spectrum_molecules(spectra_of)[pairs]
    is_public = np.repeat([True, False], [public.sum(), private.sum()])
    cell = np.repeat(np.tile(np.arange(len(public)), 2), np.concatenate([public, private]))
    return GroupedPairs(pairs, tanimoto_rows(fps[mols[:, 0]], fps[mols[:, 1]]), is_public,
                        public.reshape(-1, n_bins).sum(axis=0), private.reshape(-1, n_bins).sum(axis=0), mask,
                        cell, public, private)


@dataclass(frozen=True)
class GroupedPairs:
    """Test pairs of a Public and a Private group (:func:`split_test_pairs`).

    Attributes
    ----------
    pairs : (n, 2) int array of spectrum indices
    similarity : (n,) float64 Tanimoto of each pair's molecules
    is_public : (n,) bool array, the Usage of each row
    public_per_bin, private_per_bin : int arrays, rows of each Usage per bin
    public_molecules : bool array, the Public group's molecules
    cell : (n,) int array, the cell each row was drawn in (its bin, or ``type * n_bins + bin``)
    public_per_cell, private_per_cell : int arrays, rows of each Usage per cell
    """

    pairs: np.ndarray
    similarity: np.ndarray
    is_public: np.ndarray
    public_per_bin: np.ndarray
    private_per_bin: np.ndarray
    public_molecules: np.ndarray
    cell: np.ndarray = None
    public_per_cell: np.ndarray = None
    private_per_cell: np.ndarray = None

    @property
    def per_bin(self):
        """Rows per bin, both Usages."""
        return self.public_per_bin + self.private_per_bin


def private_rows_known_from_public(pairs, labels, is_public, identity):
    """Private rows whose label follows from Public labels through identity links.

    The audit of a Public/Private split. ``identity[s]`` is the identity class of
    spectrum ``s`` (its molecule's fingerprint): the most a participant can learn, e.g.
    that two spectra are of one molecule by their precursor m/z. A Public pair of label
    1.0 joins two classes. A Private pair's label is known when a Public pair joins the
    same two classes.

    Parameters
    ----------
    pairs : (n, 2) array of spectrum indices or ids
    labels : (n,) Tanimoto of each pair
    is_public : (n,) bool, the Usage of each row
    identity : mapping or sequence, spectrum -> identity class

    Returns
    -------
    list of int
        Rows (Private ones) whose label is known.

    Examples
    --------
    >>> pairs = np.array([[0, 1], [1, 2], [0, 2], [0, 3]])
    >>> private_rows_known_from_public(pairs, [0.4, 1.0, 0.4, 0.2], [True, True, False, False], [0, 1, 2, 3])
    [2]
    """
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    rows = [(a, b) for a, b in np.asarray(pairs).tolist()]
    for (a, b), label, public in zip(rows, labels, is_public):
        if public and label == 1.0:
            root_a, root_b = find(identity[a]), find(identity[b])
            if root_a != root_b:
                parent[root_a] = root_b
    classes = [frozenset((find(identity[a]), find(identity[b]))) for a, b in rows]
    known = {c for c, public in zip(classes, is_public) if public}
    return [row for row, (c, public) in enumerate(zip(classes, is_public)) if not public and c in known]


def _spectrum_molecules(spectra_of):
    """Molecule of each spectrum index named in ``spectra_of`` (-1 for others)."""
    size = max((int(s.max()) + 1 for s in spectra_of if len(s)), default=0)
    spectrum_molecule = np.full(size, -1, dtype=np.int64)
    for mol, members in enumerate(spectra_of):
        spectrum_molecule[members] = mol
    return spectrum_molecule


def split_molecules(keys, fraction, rng, option="fraction"):
    """Boolean mask of held-out molecules: a seeded share, independent of file order.

    Parameters
    ----------
    keys : sequence of str
        One key (InChIKey first block) per molecule.
    fraction : float
        Share of molecules held out.
    rng : numpy.random.Generator
    option : str
        Name of the option that set ``fraction``, for the error message.

    Examples
    --------
    >>> mask = split_molecules(list("ABCDEFGHIJ"), 0.3, np.random.default_rng(0))
    >>> int(mask.sum())
    3
    """
    n = len(keys)
    n_out = int(round(fraction * n))
    if n_out < 2 or n - n_out < 2:
        raise UserError(
            f"too few molecules for the split: found {n:,} molecules with usable structures and "
            f"{option} {fraction} puts {n_out} on the held-out side; expected at least 2 on each side"
        )
    order = np.argsort(np.asarray(keys, dtype=str), kind="stable")
    held_out = np.zeros(n, dtype=bool)
    held_out[order[rng.permutation(n)[:n_out]]] = True
    return held_out


class PairSampler:
    """Training pairs balanced over Tanimoto bins, drawn by molecule, on demand.

    Each call draws anchor molecules (a fresh permutation), gives each a target bin
    (balanced), compares the anchors with all molecules in one block of matrix products,
    and picks a random partner in the target bin; then one spectrum of each molecule.
    Memory is bounded by ``batch x molecules``; no spectra x spectra matrix is built.
    Up to :data:`CACHE_MOLECULES` molecules, the bins of all molecule pairs are computed
    once (at the first call) and kept, so later epochs skip the matrix products.

    Parameters
    ----------
    spectrum_molecule : int array
        Molecule index of each spectrum.
    fps : (n_molecules, 2048) 0/1 array
        Fingerprint of each molecule.
    batch : int
        Anchors compared per block.
    same_molecule_share : float, optional
        Share of the top-bin pairs that are two spectra of one molecule, where the anchor
        has two spectra and another molecule in the top bin to choose from. ``None``
        draws the partner uniformly among the top-bin molecules, the anchor included.
        A competition's top bin is mostly such pairs (every molecule is one self-pair
        among the molecule pairs of that bin), more than the uniform draw gives.

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> fps = fingerprints(["CCO", "CCCO", "c1ccccc1", "c1ccccc1O"])
    >>> sampler = PairSampler(np.array([0, 0, 1, 2, 3, 3]), fps)
    >>> a, b, y = sampler.sample(20, np.random.default_rng(0))
    >>> len(a) == len(b) == len(y)
    True
    """

    def __init__(self, spectrum_molecule, fps, batch=1024, n_bins=N_BINS, same_molecule_share=None):
        self.same_molecule_share = None if same_molecule_share is None else float(same_molecule_share)
        if self.same_molecule_share is not None and not 0.0 <= self.same_molecule_share <= 1.0:
            raise ValueError(f"same_molecule_share must be between 0 and 1, found {same_molecule_share!r}")
        self.spectrum_molecule = np.asarray(spectrum_molecule, dtype=np.int64)
        self.fps = np.asarray(fps, dtype=np.uint8)
        self.batch = int(batch)
        self.n_bins = int(n_bins)
        order = np.argsort(self.spectrum_molecule, kind="stable")
        self._order = order
        n_mol = len(self.fps)
        self._offsets = np.searchsorted(self.spectrum_molecule[order], np.arange(n_mol + 1))
        self._sizes = np.diff(self._offsets)
        self._bins = None
        # The labels of sampled pairs come from these: 256 bytes a molecule instead of 2,048
        # (8 bits to a byte), so a batch's intersections are a few popcounts, not int32 products.
        self._packed = np.packbits(self.fps != 0, axis=1)
        self._ones = np.bitwise_count(self._packed).sum(axis=1, dtype=np.int64)
        if len(self.spectrum_molecule) and (self.spectrum_molecule.max() >= n_mol or self.spectrum_molecule.min() < 0):
            raise ValueError("spectrum_molecule names a molecule without a fingerprint")

    @classmethod
    def from_spectra(cls, spectra, **kwargs):
        """A sampler over spectra that carry structures (SMILES, InChIKey)."""
        kept, molecules = molecules_of(spectra)
        if len(kept) != len(spectra):
            raise UserError(
                f"{len(spectra) - len(kept):,} of {len(spectra):,} training spectra have no usable structure: "
                "expected SMILES that RDKit parses in every training spectrum"
            )
        return cls(molecules.spectrum_molecule, molecules.fingerprints(), **kwargs)

    def molecule_pairs(self, n_pairs, rng):
        """``n_pairs`` molecule pairs (as two arrays), balanced over bins where possible.

        Per block of anchors and per bin, each anchor with a partner in that bin gives one
        pair (a partner drawn uniformly among them), until the bin has its share. Bins
        that no molecule pair can fill leave their share to the others.
        """
        n_mol = len(self.fps)
        left = np.bincount(np.arange(n_pairs) % self.n_bins, minlength=self.n_bins)
        found_a, found_b = [], []
        for _ in range(max(50, 4 * n_pairs // max(1, min(self.batch, n_mol)))):
            if left.sum() == 0:
                break
            anchors = rng.permutation(n_mol)[: self.batch]
            bins = self._bins_of(anchors)
            # A molecule is its own partner only when it has two spectra to pair.
            lonely = self._sizes[anchors] < 2
            bins[np.flatnonzero(lonely), anchors[lonely]] = -1
            # Each row's molecules grouped by bin (in index order), and where each bin starts:
            # a uniform partner in bin b is one random position inside b's run.
            order = np.argsort(bins, axis=1, kind="stable")
            # Molecules per (row, bin) in one pass: column 0 counts the -1 of lonely anchors.
            width = self.n_bins + 1
            cells = bins + np.arange(1, len(anchors) * width + 1, width, dtype=np.intp)[:, None]
            counts = np.bincount(cells.ravel(), minlength=len(anchors) * width).reshape(len(anchors), width)
            starts = np.cumsum(counts, axis=1) - counts
            for b in np.flatnonzero(left):
                has = np.flatnonzero(counts[:, b + 1])[: left[b]]
                if len(has) == 0:
                    continue
                pick = starts[has, b + 1] + rng.integers(0, counts[has, b + 1])
                partner = order[has, pick]
                if b == self.n_bins - 1 and self.same_molecule_share is not None:
                    partner = self._top_partners(anchors[has], partner, order[has], starts[has, b + 1],
                                                 counts[has, b + 1], rng)
                found_a.append(anchors[has])
                found_b.append(partner)
                left[b] -= len(has)
            if len(anchors) == n_mol and not counts[:, np.flatnonzero(left) + 1].any():
                break  # every molecule was an anchor: the bins still short are empty
        a = np.concatenate(found_a) if found_a else np.empty(0, dtype=np.int64)
        b = np.concatenate(found_b) if found_b else np.empty(0, dtype=np.int64)
        short = n_pairs - len(a)
        if short > 0 and len(a):
            extra = rng.integers(0, len(a), short)
            a, b = np.concatenate([a, a[extra]]), np.concatenate([b, b[extra]])
        order = rng.permutation(len(a))
        return a[order], b[order]

    def _top_partners(self, anchors, partner, order, start, count, rng):
        """Top-bin partners with ``same_molecule_share`` of self-pairs where there is a choice."""
        can_self = self._sizes[anchors] >= 2
        others = count - can_self
        want_self = rng.random(len(anchors)) < self.same_molecule_share
        self_pair = can_self & (want_self | (others == 0))
        partner = np.where(self_pair, anchors, partner)
        # The rest take another molecule of the bin: redraw those that drew themselves.
        redraw = np.flatnonzero(~self_pair & (partner == anchors))
        while len(redraw):
            pick = start[redraw] + rng.integers(0, count[redraw])
            partner[redraw] = order[redraw, pick]
            redraw = redraw[partner[redraw] == anchors[redraw]]
        return partner

    def _bins_of(self, anchors):
        """Tanimoto bins of the anchors against every molecule (a fresh int8 array)."""
        n_mol = len(self.fps)
        if n_mol > CACHE_MOLECULES:
            inter, union = tanimoto_counts(self.fps[anchors], self.fps)
            return bins_from_counts(inter, union, self.n_bins)
        if self._bins is None:
            self._bins = np.empty((n_mol, n_mol), dtype=np.int8)
            for start in range(0, n_mol, BLOCK):
                inter, union = tanimoto_counts(self.fps[start : start + BLOCK], self.fps)
                self._bins[start : start + BLOCK] = bins_from_counts(inter, union, self.n_bins)
        return self._bins[anchors]

    def spectrum_of(self, molecules, rng, avoid=None):
        """A random spectrum of each molecule, different from ``avoid`` where possible."""
        sizes = self._sizes[molecules]
        pick = rng.integers(0, np.maximum(sizes, 1))
        chosen = self._order[self._offsets[molecules] + pick]
        if avoid is not None:
            clash = (chosen == avoid) & (sizes > 1)
            pick[clash] = (pick[clash] + 1 + rng.integers(0, sizes[clash] - 1)) % sizes[clash]
            chosen[clash] = self._order[self._offsets[molecules[clash]] + pick[clash]]
        return chosen

    def sample(self, n_pairs, rng):
        """``n_pairs`` spectrum pairs and their Tanimoto labels.

        Returns
        -------
        idx_a, idx_b : int arrays of spectrum indices
        similarity : float64 array
        """
        mol_a, mol_b = self.molecule_pairs(int(n_pairs), rng)
        spec_a = self.spectrum_of(mol_a, rng)
        spec_b = self.spectrum_of(mol_b, rng, avoid=spec_a)
        return spec_a, spec_b, self.tanimoto(mol_a, mol_b)

    def tanimoto(self, mol_a, mol_b):
        """Tanimoto of each pair of molecules (float64, as :func:`kit.data.chemistry.tanimoto_rows`).

        Examples
        --------
        >>> from kit.data.chemistry import fingerprints
        >>> sampler = PairSampler(np.array([0, 1]), fingerprints(["CCO", "CCCO"]))
        >>> sampler.tanimoto(np.array([0, 0]), np.array([0, 1]))[0]
        np.float64(1.0)
        """
        inter = np.bitwise_count(self._packed[mol_a] & self._packed[mol_b]).sum(axis=1, dtype=np.int64)
        return tanimoto_from_counts(inter, self._ones[mol_a] + self._ones[mol_b] - inter)
