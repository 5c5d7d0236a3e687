import numpy as np
import pytest
from conftest import SMILES, TWINS
from rdkit import DataStructs
from rdkit.ML.Cluster import Butina

from kit.data.chemistry import fingerprints
from kit.data.novelty import (
    BAND_LABELS,
    butina_clusters,
    max_similarity,
    neighbours,
    novelty_bands,
    novelty_split,
)
from kit.errors import UserError

# Analogue series and lone molecules: clusters of several sizes.
SERIES = SMILES + TWINS + [
    "CCCCCO", "CCCCCCO", "CCCCCCCO", "CCCCCCCCO", "Oc1ccc(O)cc1", "Oc1cccc(O)c1", "Nc1ccc(O)cc1", "Cc1ccc(O)cc1",
    "CCOC(=O)C", "CCCOC(=O)C", "CCCCOC(=O)C", "OC(=O)CCCCC(=O)O", "OC(=O)CCCCCC(=O)O", "ClC(Cl)Cl", "BrCCBr",
    "C1CCNCC1", "C1CCOCC1", "c1ccncc1", "c1ccsc1", "c1ccoc1",
]


def _rdkit_tanimoto(fps):
    bits = []
    for row in fps:
        bv = DataStructs.ExplicitBitVect(len(row))
        for i in np.flatnonzero(row).tolist():
            bv.SetBit(i)
        bits.append(bv)
    return bits


@pytest.mark.parametrize("similarity", [0.3, 0.5, 0.7, 0.9])
def test_butina_clusters_are_rdkit_butina_clusters(similarity):
    fps = fingerprints(SERIES)
    bits = _rdkit_tanimoto(fps)
    dists = [1.0 - s for i in range(1, len(bits)) for s in DataStructs.BulkTanimotoSimilarity(bits[i], bits[:i])]
    expected = Butina.ClusterData(dists, len(bits), 1.0 - similarity, isDistData=True)
    label = butina_clusters(fps, similarity)
    assert [sorted(np.flatnonzero(label == k).tolist()) for k in range(len(expected))] == [sorted(c) for c in expected]
    assert label.max() == len(expected) - 1


def test_neighbours_are_the_pairs_above_the_threshold_without_a_matrix_of_all():
    fps = fingerprints(SERIES)
    indptr, indices = neighbours(fps, 0.6)
    bits = _rdkit_tanimoto(fps)
    for i in range(len(fps)):
        sims = np.array(DataStructs.BulkTanimotoSimilarity(bits[i], bits))
        assert indices[indptr[i]:indptr[i + 1]].tolist() == np.flatnonzero(1 - sims <= 0.4 + 1e-12).tolist()


def test_identical_fingerprints_share_a_cluster():
    fps = fingerprints(SERIES)
    label = butina_clusters(fps, 0.95)
    packed = np.packbits(fps, axis=1)
    for i, j in zip(*np.nonzero((packed[:, None] == packed[None]).all(axis=2))):
        assert label[i] == label[j]


def test_max_similarity_matches_rdkit_and_can_leave_out_a_group():
    fps = fingerprints(SERIES)
    bits = _rdkit_tanimoto(fps)
    expected = [max(DataStructs.BulkTanimotoSimilarity(bits[i], bits[10:])) for i in range(10)]
    assert np.allclose(max_similarity(fps[:10], fps[10:]), expected)
    groups = np.arange(len(fps)) % 3
    found = max_similarity(fps, fps, exclude=(groups, groups))
    for i in range(len(fps)):
        others = [b for b, g in zip(bits, groups) if g != groups[i]]
        assert found[i] == pytest.approx(max(DataStructs.BulkTanimotoSimilarity(bits[i], others)))
    assert max_similarity(fps[:2], fps[:0]).tolist() == [0.0, 0.0]


def test_novelty_bands_are_half_open_and_the_last_closed():
    assert novelty_bands([0.0, 0.3999, 0.4, 0.6, 0.7999, 0.8, 1.0]).tolist() == [0, 0, 1, 2, 2, 3, 3]
    assert BAND_LABELS == ("0.0-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("share, threshold", [(0.5, 0.6), (0.3, 0.4), (1.0, 0.8)])
def test_novelty_split_takes_whole_clusters_and_the_novel_share(seed, share, threshold):
    fps = fingerprints(SERIES)
    is_test, familiarity = novelty_split(fps, 0.25, np.random.default_rng(seed), cluster_similarity=0.6,
                                         novelty_threshold=threshold, novel_share=share)
    label = butina_clusters(fps, 0.6)
    for k in np.unique(label):
        assert len(set(is_test[label == k].tolist())) == 1, "a cluster is split"
    assert 2 <= is_test.sum() <= round(0.25 * len(fps))
    assert np.allclose(familiarity[is_test], max_similarity(fps[is_test], fps[~is_test]))
    assert (familiarity[is_test] < threshold).mean() >= share
    again = novelty_split(fps, 0.25, np.random.default_rng(seed), cluster_similarity=0.6,
                          novelty_threshold=threshold, novel_share=share)
    assert np.array_equal(again[0], is_test)


def test_novelty_split_beats_the_random_split_on_novelty():
    fps = fingerprints(SERIES)
    is_test, familiarity = novelty_split(fps, 0.3, np.random.default_rng(0), novel_share=0.6)
    random = np.zeros(len(fps), dtype=bool)
    random[np.random.default_rng(0).permutation(len(fps))[: is_test.sum()]] = True
    assert familiarity[is_test].mean() < max_similarity(fps[random], fps[~random]).mean()


@pytest.mark.parametrize("smiles, fraction, settings, fragment", [
    (["CCO", "CCCO", "c1ccccc1"], 0.1, {}, "too few molecules for a novelty split"),
    (["CCO", "CCCO", "c1ccccc1"], 0.9, {}, "too few molecules for a novelty split"),
    (["CCO", "OCC", "C(O)C", "CCCO", "CCCCO"], 0.5, {"cluster_similarity": 0.1}, "too few molecules"),
    (SERIES[:12], 0.3, {"novel_share": 1.0, "novelty_threshold": 0.01}, "no novelty split with --novel-share 1"),
])
def test_a_library_without_the_split_asked_for_is_one_line(smiles, fraction, settings, fragment):
    with pytest.raises(UserError, match=fragment) as caught:
        novelty_split(fingerprints(smiles), fraction, np.random.default_rng(0), **settings)
    assert "\n" not in str(caught.value)
