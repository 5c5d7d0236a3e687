"""kit.thirdparty: matchms's import warning is silenced around that import only."""
import subprocess
import sys
import warnings

from kit.thirdparty import import_matchms


def test_import_matchms_leaves_the_warning_filters_as_they_were():
    before = list(warnings.filters)
    assert import_matchms().__name__ == "matchms"
    assert warnings.filters == before


def test_reading_spectra_does_not_warn_about_hdf5plugin(tmp_path):
    path = tmp_path / "one.mgf"
    path.write_text("BEGIN IONS\nPEPMASS=200\n100 1\n101 1\n102 1\n103 1\n104 1\nEND IONS\n")
    code = (
        "import sys, warnings; warnings.simplefilter('error')\n"
        "import kit\n"
        f"assert len(kit.load_spectra({str(path)!r}, clean=False)) == 1\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
