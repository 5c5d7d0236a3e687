"""bench/bench_scale.py: the k-fold library is reproducible and keeps each molecule's structure."""
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from conftest import load_bench_script, structure_spectra


@pytest.fixture(scope="module")
def bench():
    return load_bench_script("bench_scale")


@pytest.fixture
def source(tmp_path):
    from kit.data.spectra import save_spectra

    return save_spectra(structure_spectra(["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"], per_molecule=2), tmp_path / "tiny.mgf")


def build(bench, source, out, scale=3, seed=0):
    path = Path(out) / "lib.mgf.gz"
    count = bench.write_library(bench.read_sources([source]), path, scale, seed)
    return path, count


def test_same_seed_same_bytes_other_seed_other_peaks(bench, source, tmp_path):
    first, count = build(bench, source, tmp_path / "a")
    second, _ = build(bench, source, tmp_path / "b")
    other, _ = build(bench, source, tmp_path / "c", seed=1)
    assert count == 18

    def digest(path):
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert digest(first) == digest(second)
    assert gzip.decompress(first.read_bytes()) != gzip.decompress(other.read_bytes())


@pytest.mark.parametrize("scale", [1, 3])
def test_copies_keep_the_molecule_and_get_new_ids(bench, source, tmp_path, scale):
    original = bench.read_sources([source])
    path, count = build(bench, source, tmp_path, scale=scale)
    built = bench.read_sources([path])
    assert count == len(built) == scale * len(original)
    ids = [s.get("spectrum_id") for s in built]
    assert len(set(ids)) == len(ids)
    for k, spectrum in enumerate(built):
        first = original[k % len(original)]
        for field in ("smiles", "inchikey", "precursor_mz", "ionmode", "compound_name"):
            assert spectrum.get(field) == first.get(field)
        assert len(spectrum.peaks.mz) == len(first.peaks.mz)
        assert np.all(np.diff(spectrum.peaks.mz) >= 0)
        jitter = np.abs(spectrum.peaks.mz - first.peaks.mz)
        if k < len(original):  # copy 0 is the library itself (written to 5 decimals)
            assert ids[k] == first.get("spectrum_id")
            assert jitter.max() < 1e-5
        else:
            assert ids[k] == f"{first.get('spectrum_id')}_copy{k // len(original)}"
            assert 0 < jitter.max() < 0.05


def test_the_kit_reads_the_built_library(bench, source, tmp_path):
    from kit.data.chemistry import molecules_of
    from kit.data.spectra import load_spectra

    path, _ = build(bench, source, tmp_path)
    kept, molecules = molecules_of(load_spectra(path))
    assert len(kept) == 18 and len(molecules) == 3
