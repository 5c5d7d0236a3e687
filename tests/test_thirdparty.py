"""kit.thirdparty: matchms's import warning is silenced around that import only."""
import os
import subprocess
import sys
import warnings

import pytest

from kit.thirdparty import TENSORFLOW_NOTICES, import_matchms, quiet_import, without_lines


def test_import_matchms_leaves_the_warning_filters_as_they_were():
    before = list(warnings.filters)
    assert import_matchms().__name__ == "matchms"
    assert warnings.filters == before


@pytest.mark.parametrize("name", ["matchms", "pyteomics.mgf", "pyteomics.mzml"])
def test_quiet_import_returns_the_module_and_leaves_the_warning_filters_as_they_were(name):
    before = list(warnings.filters)
    assert quiet_import(name).__name__ == name
    assert warnings.filters == before


def test_importing_the_spectra_module_does_not_warn_about_hdf5plugin():
    code = "import warnings; warnings.simplefilter('error'); import kit.data.spectra, kit.data.simulate"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


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


@pytest.mark.parametrize("notice", TENSORFLOW_NOTICES)
def test_known_notices_written_to_the_descriptor_are_held_back_and_the_rest_passes(capfd, notice):
    with without_lines(TENSORFLOW_NOTICES):
        os.write(2, f"I0000 port.cc:153] {notice} (details)\n".encode())   # as a C++ library writes
        os.write(2, b"E0000 something real failed\n")
        os.write(2, f"W0000 {notice[:12]} but not the notice\n".encode())
        os.write(2, b"no newline at the end")
    err = capfd.readouterr().err
    assert notice not in err
    assert err == f"E0000 something real failed\nW0000 {notice[:12]} but not the notice\nno newline at the end"


def test_an_exception_inside_restores_standard_error(capfd):
    with pytest.raises(ImportError):
        with without_lines(["quiet"]):
            os.write(2, b"quiet\nloud\n")
            raise ImportError("no such module")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "loud\nafter\n"


@pytest.mark.slow
def test_importing_the_siamese_rung_prints_no_tensorflow_notice():
    pytest.importorskip("tensorflow")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", "import kit.models.siamese"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
