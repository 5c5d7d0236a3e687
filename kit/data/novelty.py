"""A novelty split: test molecules unlike every training molecule.

A random split by molecule leaves most test molecules with a close analogue in training,
which flatters every model. Here the test molecules are whole clusters of similar molecules
(Butina clustering of the label fingerprint), chosen so that a stated share of them has a
maximum Tanimoto to every training molecule below a threshold, and each test pair is tagged
with a *novelty band*: the maximum Tanimoto to training of its less familiar molecule.

Memory stays bounded by a block of rows: similarities are computed :data:`BLOCK` rows at a
time and only the pairs above a threshold are kept (a sparse neighbour list).
"""
import numpy as np

from kit.data.chemistry import tanimoto_counts
from kit.data.pairs import BLOCK
from kit.data.tanimoto_bins import BAND_EDGES, BAND_LABELS  # noqa: F401 (BAND_LABELS re-exported)
from kit.errors import UserError

#: Defaults of ``kit prepare --split novelty``.
CLUSTER_SIMILARITY = 0.7
NOVELTY_THRESHOLD = 0.6
NOVEL_SHARE = 0.5


def _similarity_blocks(fps_a, fps_b):
    """``(start, similarity)`` of blocks of rows of ``fps_a`` against all of ``fps_b`` (float64, 0 for two empty)."""
    for start in range(0, len(fps_a), BLOCK):
        inter, union = tanimoto_counts(fps_a[start : start + BLOCK], fps_b)
        yield start, inter.astype(np.float64) / np.maximum(union, 1)


def neighbours(fps, similarity):
    """Sparse neighbour lists: for each molecule, those of Tanimoto at least ``similarity`` (itself included).

    Returns
    -------
    indptr, indices : int arrays
        Neighbours of molecule ``i`` are ``indices[indptr[i]:indptr[i + 1]]``, in index order.

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> indptr, indices = neighbours(fingerprints(["CCO", "OCC", "c1ccccc1"]), 0.7)
    >>> indptr.tolist(), indices.tolist()
    ([0, 2, 4, 5], [0, 1, 0, 1, 2])
    """
    fps = np.asarray(fps)
    counts, found = [], []
    for start, sim in _similarity_blocks(fps, fps):
        # As RDKit's Butina: a neighbour is within distance 1 - similarity.
        rows, cols = np.nonzero(1.0 - sim <= 1.0 - similarity)
        counts.append(np.bincount(rows, minlength=len(sim)))
        found.append(cols.astype(np.int64))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]) if counts else np.zeros(1, dtype=np.int64)
    return indptr.astype(np.int64), np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def butina_clusters(fps, similarity):
    """Cluster of each molecule: Butina's algorithm at Tanimoto ``similarity`` (distance ``1 - similarity``).

    The clusters of ``rdkit.ML.Cluster.Butina.ClusterData(dists, n, 1 - similarity, isDistData=True)``,
    the same centroids in the same order, from sparse neighbour lists: ClusterData builds the
    dense n x n matrix, more memory than a library of tens of thousands of molecules allows.
    Clusters are numbered in that order (largest first).

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> butina_clusters(fingerprints(["CCO", "OCC", "CCCO", "c1ccccc1"]), 0.7).tolist()
    [0, 0, 2, 1]
    """
    indptr, indices = neighbours(fps, similarity)
    n = len(indptr) - 1
    count = np.diff(indptr)
    # ClusterData's order: most neighbours first, ties by the higher index.
    order = np.lexsort((-np.arange(n), -count))
    label = np.full(n, -1, dtype=np.int64)
    cluster = 0
    for centre in order.tolist():
        if label[centre] >= 0:
            continue
        members = indices[indptr[centre] : indptr[centre + 1]] if count[centre] > 1 else np.array([centre])
        label[members[label[members] < 0]] = cluster
        cluster += 1
    return label


def max_similarity(fps_a, fps_b, exclude=None):
    """Highest Tanimoto of each row of ``fps_a`` to any row of ``fps_b`` (0 when none).

    ``exclude``: a pair of label arrays ``(of_a, of_b)``; pairs with equal labels are left out.

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> fps = fingerprints(["CCO", "CCCO", "c1ccccc1"])
    >>> max_similarity(fps[:1], fps[1:]).round(2).tolist()
    [0.6]
    """
    fps_a, fps_b = np.asarray(fps_a), np.asarray(fps_b)
    out = np.zeros(len(fps_a))
    if len(fps_b) == 0:
        return out
    for start, sim in _similarity_blocks(fps_a, fps_b):
        if exclude is not None:
            sim[exclude[0][start : start + len(sim), None] == exclude[1][None, :]] = -1.0
        out[start : start + len(sim)] = np.maximum(sim.max(axis=1), 0.0)
    return out


def novelty_bands(values):
    """Index of the novelty band (:data:`BAND_LABELS`) of each maximum similarity.

    Examples
    --------
    >>> novelty_bands([0.0, 0.39, 0.4, 0.79, 1.0]).tolist()
    [0, 0, 1, 2, 3]
    """
    return np.searchsorted(np.asarray(BAND_EDGES), np.asarray(values, dtype=float), side="right") - 1


def novelty_split(fps, test_fraction, rng, cluster_similarity=CLUSTER_SIMILARITY,
                  novelty_threshold=NOVELTY_THRESHOLD, novel_share=NOVEL_SHARE):
    """Boolean mask of test molecules: whole Butina clusters, a share of them novel.

    A test molecule is *novel* when its maximum Tanimoto to every training molecule is
    below ``novelty_threshold``. A molecule whose most similar molecule outside its own
    cluster is below that is novel whenever its cluster is test: clusters with such
    molecules are taken first (in a seeded random order) until ``novel_share`` of
    ``round(test_fraction * n)`` test molecules is reached, then other clusters, in a
    seeded random order, while they fit.

    Returns
    -------
    is_test : bool array
    familiarity : float array
        Each test molecule's maximum Tanimoto to the training molecules (0 for training ones).

    Raises
    ------
    kit.errors.UserError
        When the library cannot give two molecules on each side or the novel share.

    Examples
    --------
    >>> from kit.data.chemistry import fingerprints
    >>> fps = fingerprints(["CCO", "OCC", "CCCO", "CCCCO", "c1ccccc1", "c1ccccc1O", "CC(=O)O", "NCCN"])
    >>> is_test, familiarity = novelty_split(fps, 0.25, np.random.default_rng(0), novel_share=0.5)
    >>> int(is_test.sum()), bool((familiarity[is_test] < 0.6).mean() >= 0.5)
    (2, True)
    """
    fps = np.asarray(fps)
    n = len(fps)
    target = round(float(test_fraction) * n)
    cluster = butina_clusters(fps, cluster_similarity)
    sure = max_similarity(fps, fps, exclude=(cluster, cluster)) < novelty_threshold
    sizes = np.bincount(cluster)
    sure_in = np.bincount(cluster, weights=sure).astype(np.int64)
    taken = np.zeros(len(sizes), dtype=bool)
    count, novel = 0, 0
    wanted = int(np.ceil(float(novel_share) * target))
    order = rng.permutation(len(sizes))
    for first in (True, False):
        for c in order.tolist():
            if taken[c] or (first and (novel >= wanted or not sure_in[c])) or count + sizes[c] > target:
                continue
            taken[c] = True
            count += int(sizes[c])
            novel += int(sure_in[c])
    is_test = taken[cluster]
    if count < 2 or n - count < 2:
        raise UserError(
            f"too few molecules for a novelty split: found {n:,} molecules in {len(sizes):,} clusters and "
            f"--test-fraction {test_fraction:g} puts {count} on the test side; expected at least 2 on each side "
            "(use a larger library or raise --test-fraction)"
        )
    familiarity = np.zeros(n)
    familiarity[is_test] = max_similarity(fps[is_test], fps[~is_test])
    share = float((familiarity[is_test] < novelty_threshold).mean())
    if share < float(novel_share):
        raise UserError(
            f"the library gives no novelty split with --novel-share {novel_share:g}: at most {share:.1%} of "
            f"{count:,} test molecules have a maximum Tanimoto to training below --novelty-threshold "
            f"{novelty_threshold:g}; expected at least {float(novel_share):.1%} (lower --novel-share, raise "
            "--novelty-threshold, or use a larger, more varied library)"
        )
    return is_test, familiarity
