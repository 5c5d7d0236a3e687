import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import structure_spectra

import kit.models
from kit.commands.train import model_options
from kit.errors import UserError
from kit.models.gbm import GBMModel
from kit.prepare import prepare_competition
from kit.spectra import save_spectra
from kit.training import model_params, plot_history, split_for_validation, train_model


def kit_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kit", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in line, line


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny competition folder (work dir with data/tiny)."""
    work = tmp_path_factory.mktemp("work")
    library = save_spectra(structure_spectra(per_molecule=4), work / "lib.mgf")
    prepare_competition(library, name="tiny", out=work / "data", test_fraction=0.25, pairs_per_bin=20, progress=False)
    return work


@pytest.mark.parametrize(
    "tokens, expected",
    [
        (["--epochs", "5"], {"epochs": "5"}),
        (["--hidden-units=500,500", "--progress", "false"], {"hidden_units": "500,500", "progress": "false"}),
        (["--early-stopping"], {"early_stopping": "true"}),
        ([], {}),
    ],
)
def test_model_options(tokens, expected):
    assert model_options(tokens) == expected


def test_model_options_rejects_a_stray_value():
    with pytest.raises(UserError, match="unexpected argument"):
        model_options(["5"])


def test_model_params_are_typed_by_defaults():
    params = model_params(GBMModel, {"n_pairs": "300", "learning_rate": "0.2", "early_stopping": "no"})
    assert params == {"n_pairs": 300, "learning_rate": 0.2, "early_stopping": False}


@pytest.mark.parametrize(
    "options, message",
    [({"epochs": "3"}, "has no option --epochs"), ({"n_pairs": "many"}, "expected a int"), ({"early_stopping": "maybe"}, "expected a bool")],
)
def test_model_params_errors(options, message):
    with pytest.raises(UserError, match=message):
        model_params(GBMModel, options)


def test_validation_split_is_by_molecule_and_seeded():
    spectra = structure_spectra(per_molecule=3)
    train, val = split_for_validation(spectra, 0.2, seed=0)
    assert len(train) + len(val) == len(spectra)
    assert not {s.get("smiles") for s in train} & {s.get("smiles") for s in val}
    again, _ = split_for_validation(spectra, 0.2, seed=0)
    assert [s.get("spectrum_id") for s in again] == [s.get("spectrum_id") for s in train]


def test_train_model_saves_a_loadable_model_with_its_validation_score(tiny, monkeypatch):
    monkeypatch.chdir(tiny)
    model, folder = train_model("gbm", "tiny", seed=0, params={"n_pairs": "300", "max_iter": "20", "progress": "false"}, echo=lambda *_: None)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert folder.parent == tiny / "models" / "tiny" and folder.name.startswith("gbm-")
    assert manifest["competition"] == "tiny" and manifest["params"]["n_pairs"] == 300
    assert 0 < manifest["validation_score"]["rmse"] < 1 and manifest["validation_score"]["rows"] > 0
    loaded = kit.models.load(folder)
    comp = kit.load_competition("tiny")
    np.testing.assert_array_equal(loaded.predict(comp.test_spectra, comp.test_pairs), model.predict(comp.test_spectra, comp.test_pairs))


def test_cli_train_predict_score_end_to_end(tiny):
    proc = kit_cli("train", "mean", "--competition", "tiny", "--n-pairs", "200", cwd=tiny)
    assert proc.returncode == 0, proc.stderr
    folder = proc.stdout.strip().splitlines()[-1].removeprefix("saved ")
    proc = kit_cli("predict", folder, cwd=tiny)
    assert proc.returncode == 0, proc.stderr
    submission = proc.stdout.strip().splitlines()[-1].removeprefix("wrote ")
    assert submission.endswith("_mean.csv")
    proc = kit_cli("score", submission, "--competition", "tiny", "--json", cwd=tiny)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert 0 < result["public"] < 1 and result["rows"] > 0
    assert (tiny / "leaderboard" / "tiny.csv").is_file()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "nope", "--competition", "tiny"], ["unknown model 'nope'", "mean, cosine, gbm, siamese"]),
        (["train", "mean", "--competition", "missing"], ["competition 'missing' not found"]),
        (["train", "mean", "--competition", "tiny", "--epochs", "3"], ["has no option --epochs"]),
        (["train", "mean", "--competition", "tiny", "--n-pairs", "x"], ["--n-pairs", "expected a int"]),
        (["predict", "not-a-model", "--competition", "tiny"], ["not a saved model"]),
        (["prepare", "--bogus"], ["unrecognized arguments: --bogus"]),
    ],
)
def test_cli_errors_are_one_line(tiny, args, fragments):
    one_line_error(kit_cli(*args, cwd=tiny), *fragments)


def test_model_from_another_major_version_is_refused(tiny, monkeypatch):
    monkeypatch.chdir(tiny)
    model = kit.models.get("mean")(n_pairs=100).fit(kit.load_competition("tiny").train_spectra)
    folder = model.save(tiny / "models" / "old-mean")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["kit_version"] = "99.0.0"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="saved by specsim-kit '99.0.0'"):
        kit.models.load(folder)


def test_plot_history_writes_a_png(tmp_path):
    path = plot_history({"loss": [0.1, 0.05, 0.04], "val_loss": [0.12, 0.08, 0.09]}, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
