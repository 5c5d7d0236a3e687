"""``kit prepare``'s flags agree with the other commands: ``--data`` is the folder holding competitions."""
import json

import pytest

import kit.competition.prepare
from conftest import structure_spectra
from kit.cli import main


@pytest.fixture
def prepare_calls(calls_to):
    """The arguments `kit prepare` passes to prepare_competition, without preparing."""
    return calls_to(kit.competition.prepare, "prepare_competition")


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
    from kit.data.spectra import save_spectra

    save_spectra(structure_spectra(per_molecule=3), tmp_path / "lib.mgf")
    assert main(["prepare", "--library", "lib.mgf", "--data", "comps", "--pairs-per-bin", "5", "--quiet"]) == 0
    assert (tmp_path / "comps" / "lib" / "competition.json").is_file() and not (tmp_path / "data").exists()


# --- --exclude-licence ---------------------------------------------------------------------

#: Spellings of MassBank's LICENSE field, one per spectrum in turn.
LICENCES = ["CC BY", "CC BY-NC-ND", "cc-by-nc-nd 4.0", "CC BY-NC", "CC BY NC ND", "CC-BY-ND-NC 3.0", "CC BY-NC-SA"]


def _licensed_library(path):
    from kit.data.spectra import save_spectra

    spectra = structure_spectra(per_molecule=3)
    for k, spectrum in enumerate(spectra):
        spectrum.set("license", LICENCES[k % len(LICENCES)])
    save_spectra(spectra, path)
    return [LICENCES[k % len(LICENCES)] for k in range(len(spectra))]


def test_prepare_excludes_licences_and_records_what_it_dropped(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    licences = _licensed_library(tmp_path / "lib.mgf")
    argv = [
        "prepare",
        "--library",
        "lib.mgf",
        "--data",
        "comps",
        "--pairs-per-bin",
        "5",
        "--quiet",
        "--test-fraction",
        "0.3",
        "--exclude-licence",
        "CC BY-NC-ND",
        "--exclude-licence",
        "cc-by-nc-nd",
        "--exclude-license",
        "CC-BY-NC",
    ]
    assert main(argv) == 0
    nd = sum(name in {"CC BY-NC-ND", "cc-by-nc-nd 4.0", "CC BY NC ND", "CC-BY-ND-NC 3.0"} for name in licences)
    nc = licences.count("CC BY-NC")
    meta = json.loads((tmp_path / "comps" / "lib" / "competition.json").read_text())
    assert meta["options"]["exclude_licences"] == ["CC-BY-NC-ND", "CC-BY-NC"]  # one spelling, repeats merged
    assert meta["library"]["excluded_licences"] == {"CC-BY-NC-ND": nd, "CC-BY-NC": nc}
    assert meta["library"]["cleaning"]["dropped"]["licence CC-BY-NC-ND (--exclude-licence)"] == nd
    assert set(meta["library"]["licenses"]) == {"CC BY", "CC BY-NC-SA"}
    train = (tmp_path / "comps" / "lib" / "train.mgf").read_text()
    assert "NC-ND" not in train and "NC ND" not in train and "LICENSE=CC BY-NC\n" not in train
    assert f"dropped {nd:,} by licence CC-BY-NC-ND" in capsys.readouterr().out


@pytest.mark.parametrize("pattern", ["", "   ", "---", "4.0", "x" * 101, "\x1b[2J", "CC\u202eBY", "CC BY\nND"])
def test_a_licence_that_names_nothing_is_one_line_before_reading(tmp_path, monkeypatch, capsys, pattern):
    monkeypatch.chdir(tmp_path)
    assert main(["prepare", "--library", "missing.mgf", f"--exclude-licence={pattern}", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--exclude-licence" in err[0] and "\x1b" not in err[0]
    assert not (tmp_path / "data").exists()


def test_excluding_every_record_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _licensed_library(tmp_path / "lib.mgf")
    argv = ["prepare", "--library", "lib.mgf", "--data", "comps", "--quiet"]
    for pattern in ("CC-BY", "CC-BY-NC-ND", "CC-BY-NC", "CC-BY-NC-SA"):
        argv += ["--exclude-licence", pattern]
    assert main(argv) == 2
    assert "no spectra left after --exclude-licence" in capsys.readouterr().err
    assert not (tmp_path / "comps" / "lib").exists()
