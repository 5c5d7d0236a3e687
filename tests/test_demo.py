import subprocess
import sys

import pytest
from conftest import structure_spectra

from kit.demo import check_models
from kit.errors import UserError
from kit.spectra import save_spectra


def test_check_models():
    assert check_models("mean, gbm") == ("mean", "gbm")
    with pytest.raises(UserError, match="unknown model 'svm'"):
        check_models("mean,svm")
    with pytest.raises(UserError, match="comma-separated"):
        check_models(" , ")


def test_demo_runs_the_whole_pipeline_and_prints_the_leaderboard(tmp_path):
    save_spectra(structure_spectra(per_molecule=4), tmp_path / "lib.mgf")
    args = [sys.executable, "-m", "kit", "demo", "--library", "lib.mgf", "--models", "mean"]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for step in ("1/4 prepare", "2/4 train mean", "3/4 predict and score mean", "4/4 leaderboard"):
        assert step in proc.stdout
    assert "demo-mean" in proc.stdout  # the leaderboard row
    assert (tmp_path / "leaderboard" / "lib.html").is_file()
    assert len(list((tmp_path / "submissions" / "lib").glob("*_mean.csv"))) == 1
    # A second run reuses the competition and adds a row.
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "using the existing" in proc.stdout
    assert len((tmp_path / "leaderboard" / "lib.csv").read_text().strip().splitlines()) == 3  # header + 2 rows
