import gzip
import shutil

import numpy as np
import pytest

from conftest import make_spectrum, structure_spectra
from kit.data.spectra import CleaningReport, clean_spectra, load_spectra, save_spectra, spectrum_format
from kit.errors import UserError


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


@pytest.mark.parametrize(
    "name", ["lib.mgf", "lib.mgf.gz", "lib.msp", "lib.msp.gz", "lib.json", "lib.json.gz", "lib.mzML", "lib.mzml.gz"]
)
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


GOOD_PEAKS = "50 1\n60 2\n70 3\n80 4\n90 5\n"


def mgf_record(peaks=GOOD_PEAKS, pepmass="100.0", spectrum_id="x"):
    return f"BEGIN IONS\nPEPMASS={pepmass}\nIONMODE=positive\nSPECTRUM_ID={spectrum_id}\n{peaks}END IONS\n"


BAD_FILES = {
    "text peak line": ("lib.mgf", mgf_record(peaks="abc def\n" + GOOD_PEAKS)),
    "text intensity": ("lib.mgf", mgf_record(peaks="50 1\n60 x\n")),
    "one column of peaks": ("lib.mgf", mgf_record(peaks="50\n60\n70\n80\n90\n")),
    "missing END IONS at the end": ("lib.mgf", mgf_record() + mgf_record().replace("END IONS\n", "")),
    "missing END IONS in the middle": ("lib.mgf", mgf_record().replace("END IONS\n", "") + mgf_record()),
    "text precursor": ("lib.mgf", mgf_record(pepmass="abc")),
    "text charge": ("lib.mgf", mgf_record().replace("IONMODE", "CHARGE=zz\nIONMODE")),
    "binary mgf": ("lib.mgf", bytes(range(256)) * 8),
    "binary msp": ("lib.msp", bytes(range(256)) * 8),
    "msp without Num Peaks": ("lib.msp", "Name: x\nPrecursorMZ: 100\n50 1\n"),
    "msp with a broken peak": ("lib.msp", "Name: x\nNum Peaks: 2\n50 1\n60\n\n"),
    "html as msp": ("lib.msp", "<!DOCTYPE html><html><body>404 Not Found</body></html>\n"),
    "msp cut inside a record": ("lib.msp", "Name: a\nNum Peaks: 2\n50 1\n60 2\n\nName: b\nNum Peaks: 3\n50 1\n60 2\n"),
    "msp Num Peaks not a number": ("lib.msp", "Name: a\nNum Peaks: many\n50 1\n"),
    "msp text peak line": ("lib.msp", "Name: a\nNum Peaks: 2\n50 1\nabc def\n"),
    "junk mzML": ("lib.mzML", "<mzML>garbage"),
    "text as mzML": ("lib.mzML", "hello world"),
    "empty mzML": ("lib.mzML", ""),
    "binary mzML": ("lib.mzML", bytes(range(256)) * 8),
    "junk JSON": ("lib.json", "{not json"),
    "empty JSON": ("lib.json", ""),
    "JSON object, not a list": ("lib.json", '{"peaks_json": [[50, 1]]}'),
    "JSON list of numbers": ("lib.json", "[1, 2, 3]"),
    "JSON text intensity": ("lib.json", '[{"precursor_mz": 100, "peaks_json": [[50, "a"]]}]'),
    "JSON peaks not pairs": ("lib.json", '[{"precursor_mz": 100, "peaks_json": [[50, 1, 2]]}]'),
    "JSON peaks string of junk": ("lib.json", '[{"precursor_mz": 100, "peaks_json": "x"}]'),
    "binary JSON": ("lib.json", bytes(range(256)) * 8),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_file_that_does_not_parse_is_one_user_error_naming_it(tmp_path, case):
    name, content = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserError) as info:
        load_spectra(path)
    message = str(info.value)
    assert message.startswith(f"{path}: unreadable ") and "expected" in message and "\n" not in message


@pytest.mark.parametrize("name", ["lib.mgf.gz", "lib.msp.gz", "lib.json.gz", "lib.mzML.gz"])
@pytest.mark.parametrize("cut", [10, 0.5, -9])
def test_truncated_gzip_of_every_format(tmp_path, name, cut):
    path = write_library(tmp_path / name, structure_spectra(per_molecule=1)[:3])
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut) if isinstance(cut, float) else cut])
    with pytest.raises(UserError, match=f"^{path}: corrupt gzip file"):
        load_spectra(path)


@pytest.mark.parametrize("name", ["lib.mgf", "lib.msp"])
def test_an_empty_file_reads_as_no_spectra(tmp_path, name):
    (tmp_path / name).write_text("")
    assert load_spectra(tmp_path / name) == []


BROKEN_VALUES = {
    "NaN m/z": ("nan", "1"),
    "infinite m/z": ("inf", "1"),
    "negative infinite m/z": ("-inf", "1"),
    "NaN intensity": ("60", "nan"),
    "infinite intensity": ("60", "inf"),
    "negative intensity": ("60", "-2"),
}


@pytest.mark.parametrize("case", list(BROKEN_VALUES))
def test_broken_peaks_are_dropped_and_counted_in_mgf(tmp_path, case):
    mz, intensity = BROKEN_VALUES[case]
    broken = mgf_record(peaks=f"50 1\n{mz} {intensity}\n70 3\n80 4\n90 5\n", spectrum_id="broken")
    path = tmp_path / "lib.mgf"
    path.write_text(mgf_record(spectrum_id="good") + broken + mgf_record(spectrum_id="good2"))
    report = CleaningReport(source="lib")
    kept = load_spectra(path, report=report)
    assert [s.get("spectrum_id") for s in kept] == ["good", "good2"]
    assert report.read == 3 and report.kept == 2 and report.dropped == {"require_finite_values": 1}


@pytest.mark.parametrize("pepmass", ["nan", "inf", "-inf", "NaN", "Infinity"])
def test_broken_precursor_mz_is_dropped_and_counted(tmp_path, pepmass):
    path = tmp_path / "lib.mgf"
    path.write_text(mgf_record(spectrum_id="good") + mgf_record(pepmass=pepmass, spectrum_id="broken"))
    report = CleaningReport(source="lib")
    assert [s.get("spectrum_id") for s in load_spectra(path, report=report)] == ["good"]
    assert report.read == 2 and sum(report.dropped.values()) == 1


@pytest.mark.parametrize("name", ["lib.msp", "lib.json", "lib.msp.gz", "lib.json.gz", "lib.mgf.gz"])
@pytest.mark.parametrize("value", ["nan", "inf"])
@pytest.mark.parametrize("where", ["mz", "intensity", "precursor"])
def test_broken_values_are_dropped_and_counted_in_every_format(tmp_path, name, value, where):
    # matchms cannot hold a NaN m/z, so a placeholder is written and then replaced in the text.
    placeholder = {"mz": 987.654321, "intensity": 0.123456789, "precursor": 876.54321}[where]
    spectra = structure_spectra(per_molecule=1)[:4]
    broken = spectra[1]
    mz, intensities = broken.peaks.mz.copy(), broken.peaks.intensities.copy()
    if where == "mz":
        mz[-1] = placeholder
    elif where == "intensity":
        intensities[2] = placeholder
    spectra[1] = make_spectrum(
        mz, intensities, **{**broken.metadata, **({"precursor_mz": placeholder} if where == "precursor" else {})}
    )
    plain = write_library(tmp_path / name.removesuffix(".gz"), spectra)
    text = plain.read_text()
    assert str(placeholder) in text
    token = {"nan": "NaN", "inf": "Infinity"}[value] if name.startswith("lib.json") else value
    plain.write_text(text.replace(str(placeholder), token))
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(plain.read_bytes()))
    report = CleaningReport(source="lib")
    kept = load_spectra(path, report=report)
    assert len(kept) == 3 and report.read == 4
    assert report.dropped == {"require_finite_values": 1}
    for s in kept:
        assert np.isfinite(s.peaks.mz).all() and np.isfinite(s.peaks.intensities).all() and np.isfinite(s.get("precursor_mz"))


def test_require_finite_values_keeps_good_spectra():
    from kit.data.spectra import require_finite_values

    good = make_spectrum([50, 60], [1, 2], precursor_mz=100.0)
    assert require_finite_values(good) is good
    assert require_finite_values(make_spectrum([50, 60], [1, 2])) is not None  # no precursor: a later step decides
    assert require_finite_values(make_spectrum([50, 60], [1, 2], precursor_mz="abc")) is None
    assert require_finite_values(None) is None


MSP_TEXT = """Name: first
PrecursorMZ: 181.07
Ion_mode: P
Comments: "SMILES=CCO" "computed"
Num Peaks: 5
50.1 10 "frag a"
60.2 20
70.3\t30
80.4 40; 90.5 50

Name: second
PRECURSORMZ: 200.1
Num Peaks: 3
51 1e2
61 2E1
71.5 3
"""


def test_msp_reads_as_matchms_reads_it(tmp_path):
    from matchms.importing import load_from_msp

    path = tmp_path / "lib.msp"
    path.write_text(MSP_TEXT)
    ours, theirs = load_spectra(path, clean=False), list(load_from_msp(str(path)))
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.peaks.mz, b.peaks.mz)
        np.testing.assert_array_equal(a.peaks.intensities, b.peaks.intensities)
        assert a.metadata == b.metadata


def test_msp_negative_and_non_numeric_peaks_are_counted_not_misread(tmp_path):
    path = tmp_path / "lib.msp"
    good = "Name: g\nPrecursorMZ: 181.07\nIonmode: positive\nNum Peaks: 5\n50 1\n60 2\n70 3\n80 4\n90 5\n\n"
    path.write_text(good + good.replace("60 2", "60 -2") + good.replace("70 3", "nan 3") + good.replace("80 4", "80 Infinity"))
    report = CleaningReport(source="lib")
    assert len(load_spectra(path, report=report)) == 1
    assert report.read == 4 and report.dropped == {"require_finite_values": 3}


@pytest.mark.parametrize("name", ["lib.msp", "lib.msp.gz", "lib.mgf", "lib.json"])
def test_count_records_parses_every_record(tmp_path, name):
    from kit.data.spectra import count_records

    path = write_library(tmp_path / name, structure_spectra(per_molecule=1)[:7])
    assert count_records(path) == 7
    broken = tmp_path / ("broken." + name.split(".", 1)[1].removesuffix(".gz"))
    broken.write_text("Name: x\nNum Peaks: 2\n50 1\nabc\n" if "msp" in name else "BEGIN IONS\n50 1\n" if "mgf" in name else "[{")
    with pytest.raises(UserError, match=f"^{broken}: unreadable"):
        count_records(broken)


# -- several processes: the same spectra, report and errors as one ----------------------
def mixed_library_records(n=40):
    """MGF records that cleaning keeps, drops for several reasons, or drops as broken, interleaved."""
    records = []
    for i in range(n):
        kind = i % 5
        if kind == 1:
            records.append(mgf_record(spectrum_id=f"few{i}", peaks="50 1\n60 2\n"))  # too few peaks
        elif kind == 2:
            records.append(mgf_record(spectrum_id=f"nan{i}", peaks="50 1\nnan 2\n" + GOOD_PEAKS))  # broken peaks
        elif kind == 3 and i % 3:
            records.append(mgf_record(spectrum_id=f"neg{i}").replace("IONMODE=positive", "IONMODE=negative"))
        else:
            peaks = "".join(f"{50 + 10 * k + i / 7:.4f} {1 + (k * i) % 5}\n" for k in range(6))
            records.append(mgf_record(spectrum_id=f"ok{i}", peaks=peaks, pepmass=f"{200 + i}.5"))
    return records


@pytest.fixture
def small_chunks(monkeypatch):
    import kit.data.spectra

    monkeypatch.setattr(kit.data.spectra, "CHUNK_RECORDS", 3)


def loaded(path, jobs, **options):
    report = CleaningReport(source="lib")
    spectra = load_spectra(path, report=report, jobs=jobs, **options)
    return [(s.metadata_dict(), s.peaks.mz.tolist(), s.peaks.intensities.tolist()) for s in spectra], report


@pytest.mark.parametrize("name", ["lib.mgf", "lib.mgf.gz", "lib.msp"])
@pytest.mark.parametrize("ionmode", ["both", "negative"])
def test_jobs_give_the_spectra_and_report_of_one_process(tmp_path, small_chunks, name, ionmode):
    text = "".join(mixed_library_records())
    plain = tmp_path / "lib.mgf"
    plain.write_text(text)
    if name == "lib.msp":
        spectra = load_spectra(plain, clean=False)
        path = write_library(tmp_path / "lib.msp", spectra)
    elif name.endswith(".gz"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path = plain
    one, report_one = loaded(path, 1, ionmode=ionmode)
    two, report_two = loaded(path, 2, ionmode=ionmode)
    assert one and two == one
    assert report_two.as_dict() == report_one.as_dict()
    assert list(report_two.dropped) == list(report_one.dropped)  # the order ties are reported in


def test_a_file_of_one_chunk_is_cleaned_without_workers(tmp_path, monkeypatch):
    import kit.data.spectra

    path = tmp_path / "lib.mgf"
    path.write_text("".join(mixed_library_records(6)))
    monkeypatch.setattr(
        kit.data.spectra._Pool, "__enter__", lambda self: pytest.fail("a pool for one chunk") if self.workers else self
    )
    assert loaded(path, 4) == loaded(path, 1)


@pytest.mark.parametrize("case", ["text intensity", "missing END IONS in the middle", "text precursor", "text charge"])
@pytest.mark.parametrize("where", [0, 4, 9])
def test_jobs_report_a_bad_record_as_one_process_does(tmp_path, small_chunks, case, where):
    _, bad = BAD_FILES[case]
    records = mixed_library_records(12)
    records.insert(where, bad)
    path = tmp_path / "lib.mgf"
    path.write_text("".join(records))
    one, two = errors_for_jobs(path, 1, 2)
    assert one.startswith(f"{path}: unreadable mgf file") and two == one


def errors_for_jobs(path, *jobs):
    """The message of the :class:`UserError` that loading ``path`` raises, for each number of jobs."""
    messages = []
    for n in jobs:
        with pytest.raises(UserError) as info:
            load_spectra(path, jobs=n)
        messages.append(str(info.value))
    return messages


@pytest.mark.parametrize("case", ["JSON text intensity", "JSON peaks not pairs"])
def test_jobs_report_a_record_that_makes_no_spectrum_as_one_process_does(tmp_path, small_chunks, case):
    import json

    _, bad = BAD_FILES[case]
    spectra = structure_spectra(per_molecule=1)[:8]
    records = [{**s.metadata_dict(), "peaks_json": np.column_stack([s.peaks.mz, s.peaks.intensities]).tolist()} for s in spectra]
    records.insert(6, json.loads(bad)[0])
    records.insert(7, 42)  # a list item no reader takes: one process never gets this far
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(records))
    one, two = errors_for_jobs(path, 1, 2)
    assert one.startswith(f"{path}: unreadable json file (ValueError") and two == one


@pytest.mark.parametrize(
    "jobs, error",
    [
        (0, UserError),
        (-1, UserError),
        (np.int64(0), UserError),
        (1.5, TypeError),
        ("2", TypeError),
        (True, TypeError),
        (2.0, TypeError),
        ([2], TypeError),
        (float("nan"), TypeError),
    ],
)
def test_jobs_must_be_a_positive_whole_number(tmp_path, jobs, error):
    with pytest.raises(error, match=r"^jobs must be an integer >= 1, found "):
        load_spectra(tmp_path / "lib.mgf", jobs=jobs)


def test_convert_applies_to_each_cleaned_spectrum(tmp_path, small_chunks):
    path = tmp_path / "lib.mgf"
    path.write_text("".join(mixed_library_records()))
    ids = [s.get("spectrum_id") for s in load_spectra(path)]
    for jobs in (1, 2):
        assert load_spectra(path, jobs=jobs, convert=spectrum_id_of) == ids


def spectrum_id_of(spectrum):
    return spectrum.get("spectrum_id")


# -- save_records: save_spectra's bytes without a Spectrum per record --------------------
def records_of(spectra):
    return [(s.metadata_dict(), s.peaks.mz, s.peaks.intensities) for s in spectra]


WRITE_CASES = {
    "structures": lambda: structure_spectra(per_molecule=2),
    "charges, pepmass, title, fingerprint": lambda: [
        make_spectrum([50.0, 60.25], [1.0, 1e-05], charge=-2, pepmass=(301.5, None), title="t=1", spectrum_id="a"),
        make_spectrum([50.0], [0.5], charge=1, precursor_mz=99.0, fingerprint=np.array([1, 0]), spectrum_id="b"),
        make_spectrum([1e-05, 123456.789, 1e16], [1.0, 0.1, 1 / 3], charge=0, compound_name="é ü ∑", spectrum_id="c"),
    ],
    "values of every type": lambda: [
        make_spectrum(
            [10.0, 20.0],
            [2.0, 4.0],
            spectrum_id="d",
            precursor_mz=np.float64(100.1),
            ms_level=2,
            collision_energy="",
            retention_time=12.5,
            flag=True,
            ratio=np.float32(0.1),
        ),
    ],
}


@pytest.mark.parametrize("case", list(WRITE_CASES))
def test_save_records_writes_what_save_spectra_writes(tmp_path, case):
    from kit.data.spectra import save_records

    spectra = WRITE_CASES[case]()
    slow = save_spectra(spectra, tmp_path / "slow.mgf").read_bytes()
    fast = save_records(records_of(spectra), tmp_path / "fast.mgf").read_bytes()
    assert fast == slow


def test_save_records_writes_other_peak_types_as_pyteomics_does(tmp_path):
    import io

    from pyteomics import mgf

    from kit.data.spectra import mgf_record

    mz, intensities = np.array([50.1, 60.2], dtype=np.float32), np.array([1, 3])
    out = io.StringIO()
    mgf.write([{"params": {"spectrum_id": "x"}, "m/z array": mz, "intensity array": intensities}], output=out)
    assert mgf_record({"spectrum_id": "x"}, mz, intensities) == out.getvalue()


def test_save_records_is_atomic_and_refuses_other_formats(tmp_path):
    from kit.data.spectra import save_records

    spectra = structure_spectra(per_molecule=1)[:2]
    path = save_records(records_of(spectra), tmp_path / "out.mgf")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mgf"]
    save_records(records_of(spectra[:1]), path)  # overwrite, not append
    assert len(load_spectra(path, clean=False)) == 1
    with pytest.raises(UserError, match="expected a .mgf"):
        save_records([], tmp_path / "out.mgf.gz")
