"""``kit prepare``'s flags agree with the other commands: ``--data`` is the folder holding competitions."""
import pytest
from conftest import structure_spectra

import kit.prepare
from kit.cli import main


@pytest.fixture
def prepare_calls(calls_to):
    """The arguments `kit prepare` passes to prepare_competition, without preparing."""
    return calls_to(kit.prepare, "prepare_competition")


@pytest.mark.parametrize(
    "argv, data",
    [([], None), (["--data", "here"], "here"), (["--out", "there"], "there"), (["--data=d2"], "d2")],
)
def test_data_names_the_folder_and_out_is_its_old_name(prepare_calls, argv, data):
    assert main(["prepare", *argv]) == 0
    assert prepare_calls[-1]["out"] == data


def test_help_shows_data_not_out(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    out = capsys.readouterr().out
    assert "--data DIR" in out and "--out" not in out


@pytest.mark.parametrize("command", ["prepare", "train", "predict", "score", "leaderboard", "demo"])
def test_every_command_that_reads_competitions_takes_data(command, capsys):
    try:
        assert main([command, "--help"]) == 0
    except SystemExit as exc:  # argparse's own --help
        assert exc.code == 0
    assert "--data DIR" in capsys.readouterr().out


def test_prepare_writes_under_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from kit.spectra import save_spectra

    save_spectra(structure_spectra(per_molecule=3), tmp_path / "lib.mgf")
    assert main(["prepare", "--library", "lib.mgf", "--data", "comps", "--pairs-per-bin", "5", "--quiet"]) == 0
    assert (tmp_path / "comps" / "lib" / "competition.json").is_file() and not (tmp_path / "data").exists()
