import subprocess
import sys

import pytest

import kit.commands.demo
from conftest import kit_cli, structure_spectra
from kit.cli import main
from kit.commands.demo import LADDER, best_on_validation, check_rungs, validation_report
from kit.data.spectra import save_spectra
from kit.errors import UserError


def test_check_rungs():
    assert check_rungs("mean, gbm") == ("mean", "gbm")
    with pytest.raises(UserError, match="unknown model 'svm'"):
        check_rungs("mean,svm")
    with pytest.raises(UserError, match="--rungs: expected a comma-separated"):
        check_rungs(" , ")


@pytest.fixture
def demo_calls(calls_to):
    """The arguments `kit demo` passes to run_demo, without running it."""
    return calls_to(kit.commands.demo, "run_demo")


@pytest.mark.parametrize(
    "argv, rungs",
    [([], LADDER), (["--rungs", "mean"], ("mean",)), (["--rungs", "gbm, mean"], ("gbm", "mean"))],
)
def test_demo_rungs(demo_calls, argv, rungs, capsys):
    assert main(["demo", *argv]) == 0
    assert demo_calls[-1]["rungs"] == rungs
    assert capsys.readouterr().err == ""


def test_demo_models_is_a_deprecated_name_of_rungs(demo_calls, capsys):
    assert main(["demo", "--models", "mean"]) == 0
    assert demo_calls[-1]["rungs"] == ("mean",)
    assert "--models is now --rungs" in capsys.readouterr().err
    assert main(["demo", "--models", "mean", "--rungs", "gbm"]) == 2
    assert "expected one of them, found both" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, fragment",
    [(["--rungs", ","], "--rungs: expected a comma-separated list"), (["--rungs", "mean,svm"], "unknown model 'svm'"),
     (["--rungs", ""], "--rungs: expected")],
)
def test_demo_bad_rungs_are_one_line(demo_calls, argv, fragment, capsys):
    assert main(["demo", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1 and not demo_calls


def test_demo_help_names_rungs_not_models(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "--rungs" in out and "--models" not in out and "--data DIR" in out


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_and_prints_the_leaderboard(tmp_path):
    save_spectra(structure_spectra(per_molecule=4), tmp_path / "lib.mgf")
    args = [sys.executable, "-m", "kit", "demo", "--library", "lib.mgf", "--rungs", "mean"]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for step in ("1/4 prepare", "2/4 train mean", "3/4 predict and score mean", "4/4 leaderboard"):
        assert step in proc.stdout
    assert "demo-mean" in proc.stdout  # the leaderboard row
    assert "best on validation: mean (" in proc.stdout and "its validation score" in proc.stdout
    assert (tmp_path / "leaderboard" / "lib.html").is_file()
    assert len(list((tmp_path / "submissions" / "lib").glob("*_mean.csv"))) == 1
    # A second run (in-process) reuses the competition and adds a row.
    proc = kit_cli(*args[3:], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "using the existing" in proc.stdout
    assert len((tmp_path / "leaderboard" / "lib.csv").read_text().strip().splitlines()) == 3  # header + 2 rows


ROWS = [
    {"rung": "gbm", "validation": 0.187, "se": 0.004, "private": 0.168},
    {"rung": "siamese", "validation": 0.1865, "se": None, "private": 0.1877},
    {"rung": "blend", "validation": 0.171, "se": 0.003, "private": 0.150},
]


@pytest.mark.parametrize("rows, best", [
    (ROWS, "blend"), (ROWS[:2], "siamese"), ([{**ROWS[0], "validation": None}, ROWS[1]], "siamese"),
    ([ROWS[0], {**ROWS[0], "rung": "tie"}], "gbm"), ([], None), ([{**ROWS[0], "validation": None}], None),
])
def test_best_on_validation_ignores_private(rows, best):
    picked = best_on_validation(rows)
    assert (picked and picked["rung"]) == best


def test_validation_report_says_how_far_the_pick_was_from_private():
    lines = validation_report(ROWS)
    assert len(lines) == 5 and lines[0].startswith("validation (held-out molecules) against Private")
    assert "0.18650  Private 0.18770  (+0.00120)" in lines[2]  # no error bar, no "+-"
    assert lines[-1] == ("best on validation: blend (0.17100 +- 0.00300); on Private it scored 0.15000, "
                         "0.02100 below its validation score")
    above = validation_report([{**ROWS[2], "private": 0.2}])[-1]
    assert above.endswith("0.02900 above its validation score")
    hidden = validation_report([{**ROWS[0], "private": None}])
    assert hidden[-1].endswith("Private is not at hand to compare") and "Private" not in hidden[1]
    assert validation_report([]) == []
