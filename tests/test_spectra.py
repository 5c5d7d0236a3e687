import gzip
import shutil

import numpy as np
import pytest
from conftest import make_spectrum, structure_spectra

from kit.errors import UserError
from kit.spectra import CleaningReport, clean_spectra, load_spectra, save_spectra, spectrum_format


def write_library(path, spectra):
    """Write spectra in the format the file name asks for (gzip when it ends in .gz)."""
    from matchms.exporting import save_as_json, save_as_mgf, save_as_msp

    plain = path.with_suffix("") if path.suffix == ".gz" else path
    fmt = spectrum_format(plain)
    if fmt == "mzml":
        write_mzml(plain, spectra)
    else:
        {"mgf": save_as_mgf, "msp": save_as_msp, "json": save_as_json}[fmt](spectra, str(plain))
    if path.suffix == ".gz":
        with open(plain, "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        plain.unlink()
    return path


def write_mzml(path, spectra):
    from psims.mzml.writer import MzMLWriter

    with MzMLWriter(open(path, "wb"), close=True) as out:
        out.controlled_vocabularies()
        with out.run(id="run"):
            with out.spectrum_list(count=len(spectra)):
                for i, s in enumerate(spectra):
                    out.write_spectrum(
                        s.peaks.mz, s.peaks.intensities, id=f"scan={i + 1}",
                        params=["MS2 spectrum", {"ms level": 2}, "centroid spectrum", "positive scan"],
                        precursor_information={"mz": s.get("precursor_mz"), "charge": 1},
                    )


@pytest.mark.parametrize("name", ["lib.mgf", "lib.mgf.gz", "lib.msp", "lib.msp.gz", "lib.json", "lib.json.gz", "lib.mzML", "lib.mzml.gz"])
def test_every_format_loads_plain_and_gzip(tmp_path, name):
    spectra = structure_spectra(per_molecule=1)[:6]
    path = write_library(tmp_path / name, spectra)
    loaded = load_spectra(path)
    assert len(loaded) == 6
    np.testing.assert_allclose(loaded[0].peaks.mz, spectra[0].peaks.mz, rtol=1e-6)
    assert loaded[0].peaks.intensities.max() == pytest.approx(1.0)  # normalised


@pytest.mark.parametrize(
    "name, expected",
    [("a.mgf", "mgf"), ("A.MGF.GZ", "mgf"), ("x.y.msp", "msp"), ("run.mzML", "mzml"), ("lib.json.gz", "json")],
)
def test_spectrum_format(name, expected):
    assert spectrum_format(name) == expected


@pytest.mark.parametrize("name", ["lib.csv", "lib", "lib.gz", "lib.mgf.zip"])
def test_unknown_format_is_a_user_error(name):
    with pytest.raises(UserError, match="unknown spectra format"):
        spectrum_format(name)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_spectra(tmp_path / "nope.mgf")
    (tmp_path / "dir.mgf").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        load_spectra(tmp_path / "dir.mgf")


def test_corrupt_gzip_is_a_user_error(tmp_path):
    path = write_library(tmp_path / "lib.mgf.gz", structure_spectra(per_molecule=1)[:3])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="corrupt gzip"):
        load_spectra(path)
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(UserError, match="corrupt gzip"):
        load_spectra(path)


def test_cleaning_reports_what_each_step_dropped():
    good = make_spectrum([50, 60, 70, 80, 90], [1, 2, 3, 4, 5], precursor_mz=100.0, ionmode="positive")
    few_peaks = make_spectrum([50, 60], [1, 2], precursor_mz=100.0, ionmode="positive")
    no_precursor = make_spectrum([50, 60, 70, 80, 90], [1, 2, 3, 4, 5], ionmode="positive")
    out_of_range = make_spectrum([5, 6, 7, 50, 1500, 2000], [1, 1, 1, 1, 1, 1], precursor_mz=100.0, ionmode="positive")
    report = CleaningReport(source="test")
    kept = clean_spectra([good, few_peaks, no_precursor, out_of_range], report=report)
    assert len(kept) == 1 and report.read == 4 and report.kept == 1
    assert report.dropped == {"require_minimum_number_of_peaks": 2, "require_precursor_mz": 1}
    assert kept[0].peaks.intensities.max() == 1.0
    assert "dropped 2 by require_minimum_number_of_peaks" in "\n".join(report.lines())


@pytest.mark.parametrize("ionmode, kept", [("both", 2), ("positive", 1), ("negative", 1)])
def test_ionmode_filter(tmp_path, ionmode, kept):
    pos = make_spectrum([50, 60, 70, 80, 90], [1, 2, 3, 4, 5], precursor_mz=100.0, ionmode="positive", spectrum_id="p")
    neg = make_spectrum([50, 60, 70, 80, 90], [1, 2, 3, 4, 5], precursor_mz=100.0, ionmode="negative", spectrum_id="n")
    path = save_spectra([pos, neg], tmp_path / "lib.mgf")
    assert len(load_spectra(path, ionmode=ionmode)) == kept


def test_save_is_atomic_and_round_trips(tmp_path):
    spectra = structure_spectra(per_molecule=1)[:4]
    path = save_spectra(spectra, tmp_path / "out.mgf")
    again = load_spectra(path, clean=False)
    assert [s.get("spectrum_id") for s in again] == [s.get("spectrum_id") for s in spectra]
    assert [p.name for p in tmp_path.iterdir()] == ["out.mgf"]
    save_spectra(spectra[:1], path)  # overwrite, not append
    assert len(load_spectra(path, clean=False)) == 1
    with pytest.raises(UserError, match="expected a .mgf"):
        save_spectra(spectra, tmp_path / "out.msp")
