"""bench/bench_siamese_variants.py: variants of the siamese, one change at a time, scored on held-out molecules."""
import json

import pytest

from conftest import load_bench_script

pytest.importorskip("kit.models.siamese")


@pytest.fixture(scope="module")
def bench():
    return load_bench_script("bench_siamese_variants")


@pytest.mark.parametrize("text, name, options", [
    ("base", "base", {"pairs_per_epoch": 20000, "precursor_encoding": 0, "same_molecule_share": None,
                      "head_units": (), "calibrate": False}),
    ("mass16", "mass16", {"pairs_per_epoch": 20000, "precursor_encoding": 16, "same_molecule_share": None,
                          "head_units": (), "calibrate": False}),
    ("head", "head", {"pairs_per_epoch": 20000, "precursor_encoding": 16, "same_molecule_share": None,
                      "head_units": (32, 32), "calibrate": False}),
    ("pairs50k+head+calibrated", "pairs50k+head+calibrated",
     {"pairs_per_epoch": 50000, "precursor_encoding": 16, "same_molecule_share": None, "head_units": (32, 32),
      "calibrate": True}),
    ("mine:epochs=2;dropout=0.3", "mine", {"epochs": "2", "dropout": "0.3"}),
    ("gbm", "gbm", {}),
])
def test_parse_variant(bench, text, name, options):
    parsed = bench.parse_variant(text)
    assert parsed[0] == name and parsed[1] == options


def test_unknown_variant_is_refused(bench):
    with pytest.raises(SystemExit, match="unknown variant"):
        bench.parse_variant("nonsense")


def test_every_named_variant_has_valid_siamese_parameters(bench):
    from kit.models.siamese import SiameseModel
    from kit.models.training import model_params

    for name in bench.VARIANTS:
        _, options, about = bench.parse_variant(name)
        SiameseModel(**model_params(SiameseModel, options))._check_params()
        assert about, name


@pytest.mark.slow
def test_variants_train_score_and_tabulate(bench, tiny, tmp_path, capsys):
    out = tmp_path / "variants.jsonl"
    argv = ["--competition", str(tiny / "data" / "tiny"), "--out", str(out), "--pairs-per-bin", "10",
            "--variants", "base:epochs=1;pairs_per_epoch=256;hidden_units=16;embedding_dim=8,"
                          "mass:epochs=1;pairs_per_epoch=256;hidden_units=16;embedding_dim=8;precursor_encoding=4"]
    assert bench.main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["variant"] for r in rows] == ["base", "mass"]
    for row in rows:
        assert 0 < row["val_rmse"] < 1 and row["epochs"] == 1 and row["embed_spectra_per_s"] > 0
        assert set(row["per_bin"]) >= {"0.9-1.0"} and row["pairs"] > 0
    capsys.readouterr()
    assert bench.main(["--markdown", "--out", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| variant |") and len(table) >= 4 and "| mass |" in table[-1]
    assert "+0.0%" in table[2]
    assert {r["validation"] for r in rows} == {"scored"}


@pytest.mark.slow
def test_own_validation_keeps_the_scored_molecules_out_of_the_fit(bench, tiny, tmp_path, monkeypatch):
    from kit.models.siamese import SiameseModel

    seen = []
    fit = SiameseModel.fit

    def spy(self, spectra, validation_spectra=None):
        seen.append(validation_spectra)
        return fit(self, spectra, validation_spectra)

    monkeypatch.setattr(SiameseModel, "fit", spy)
    out = tmp_path / "own.jsonl"
    argv = ["--competition", str(tiny / "data" / "tiny"), "--out", str(out), "--pairs-per-bin", "10", "--own-validation",
            "--variants", "cal:epochs=1;pairs_per_epoch=256;hidden_units=16;embedding_dim=8;validation_fraction=0.3"]
    assert bench.main(argv) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    # The model held out its own validation molecules: fit never got the scored spectra.
    assert seen == [None] and row["validation"] == "own" and 0 < row["val_rmse"] < 1


def test_markdown_lists_the_bins_where_a_variant_is_above_the_gbm(bench):
    def row(name, per_bin):
        return {"variant": name, "about": name, "val_rmse": 0.2, "val_binned_rmse": 0.2,
                "per_bin": dict(zip(["0.4-0.5", "0.5-0.6", "0.9-1.0"], per_bin)), "same_molecule_rmse": 0.1,
                "different_molecule_rmse": 0.2, "best_epoch": 1, "epochs": 1, "train_s": 1.0, "train_cpu_s": 1.0}

    table = bench.markdown([row("base", [0.2, 0.1, 0.3]), row("gbm", [0.1, 0.1, 0.1]), row("tied", [0.1, 0.1, 0.1])])
    lines = {line.split(" | ")[0]: line for line in table.splitlines()[2:]}
    assert "| 2: 0.4-0.5, 0.9-1.0 |" in lines["| base"]
    assert "| 0 |" in lines["| tied"] and "| - |" in lines["| gbm"]
