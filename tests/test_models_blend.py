"""The blend rung (kit.models.blend) on tiny data: a tiny siamese, a few boosting rounds."""
import json
import os
import shutil

import numpy as np
import pytest

import kit.models
from conftest import structure_spectra
from kit.cli import main
from kit.errors import UserError
from model_builders import all_pairs

pytest.importorskip("kit.models.siamese")
from kit.models.blend import SIAMESE_DIR, SIAMESE_FEATURES, BlendModel, split_by_molecule  # noqa: E402

TINY = dict(
    holdout_fraction=0.4, mc_samples=3, n_pairs=300, max_iter=20,
    siamese__hidden_units=(32,), siamese__embedding_dim=16, siamese__epochs=2, siamese__batch_size=32,
    siamese__pairs_per_epoch=256, siamese__validation_pairs=128, siamese__validation_fraction=0.3,
    progress=False, verbose=0, seed=0,
)


def tiny(**changes):
    """A tiny blend: its siamese's parameters are nested (siamese__epochs), so set with set_params."""
    return BlendModel().set_params(**(TINY | changes))


@pytest.fixture(scope="module")
def spectra():
    return structure_spectra()


@pytest.fixture(scope="module")
def pairs(spectra):
    return all_pairs(spectra, limit=80)


@pytest.fixture(scope="module")
def model(spectra):
    return tiny().fit(spectra)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return model.save(tmp_path_factory.mktemp("blend") / "model")


def test_registered_as_the_last_rung():
    assert kit.models.get("blend") is BlendModel
    assert kit.models.available()[-1] == "blend"


def test_fit_returns_self_with_the_gbm_features_and_the_siamese_columns(model):
    from kit.models.features import FEATURE_NAMES

    assert model.fitted_ is True
    assert model.feature_names_ == FEATURE_NAMES + SIAMESE_FEATURES
    assert model.regressor_.n_features_in_ == len(model.feature_names_)
    assert model.n_train_pairs_ > 0 and model.fit_seconds_ > 0


def test_no_leakage_the_siamese_and_the_booster_share_no_molecule(model, spectra):
    from kit.data.chemistry import molecules_of

    siamese, booster = set(model.siamese_molecules_), set(model.booster_molecules_)
    assert siamese and booster and not siamese & booster
    assert siamese | booster == set(molecules_of(spectra)[1].keys)
    assert len(booster) == round(0.4 * 20)
    # The siamese saw part A only (its own validation split included).
    assert model.siamese_.n_train_spectra_ + model.siamese_.n_validation_spectra_ == 3 * len(siamese)


def test_split_is_seeded_and_by_molecule(spectra):
    first = split_by_molecule(spectra, 0.3, np.random.default_rng(1))
    again = split_by_molecule(spectra, 0.3, np.random.default_rng(1))
    other = split_by_molecule(spectra, 0.3, np.random.default_rng(2))
    assert [s.get("spectrum_id") for s in first[1]] == [s.get("spectrum_id") for s in again[1]]
    assert list(first[3]) != list(other[3])
    assert len(first[0]) + len(first[1]) == len(spectra)


def test_siamese_parameters_pass_through(model):
    params = model.siamese_.get_params()
    assert params["epochs"] == 2 and params["hidden_units"] == (32,) and params["embedding_dim"] == 16
    assert params["seed"] == 0 and params["validation_fraction"] == 0.3
    # The trees calibrate the siamese's prediction themselves: it reaches them uncalibrated.
    assert params["calibrate"] is False and model.siamese_.calibration_ is None
    assert set(BlendModel().get_params()) >= {"siamese__epochs", "holdout_fraction", "mc_samples", "max_iter", "seed"}
    shallow = BlendModel().get_params(deep=False)
    assert "siamese" in shallow and "siamese__epochs" not in shallow


def test_predictions_in_range_and_symmetric(model, spectra, pairs):
    predicted = model.predict(spectra, pairs)
    assert predicted.shape == (len(pairs),) and ((predicted >= 0) & (predicted <= 1)).all()
    swapped = pairs.rename(columns={"spectrum_id_a": "spectrum_id_b", "spectrum_id_b": "spectrum_id_a"})
    np.testing.assert_allclose(model.predict(spectra, swapped), predicted, atol=1e-6)


def test_save_load_round_trip_gives_identical_predictions(model, saved, spectra, pairs):
    loaded = kit.models.load(saved)
    assert type(loaded) is BlendModel and type(loaded.siamese_).__name__ == "SiameseModel"
    np.testing.assert_array_equal(loaded.predict(spectra, pairs), model.predict(spectra, pairs))
    np.testing.assert_array_equal(loaded.siamese_molecules_, model.siamese_molecules_)
    np.testing.assert_array_equal(loaded.booster_molecules_, model.booster_molecules_)
    # The siamese parameter holds an estimator (compared by its parameters, not by identity).
    assert {k: v for k, v in loaded.get_params().items() if k != "siamese"} == {
        k: v for k, v in model.get_params().items() if k != "siamese"}
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["model"] == "blend" and manifest["format"] == "skops+keras"
    assert sorted(p.name for p in (saved / SIAMESE_DIR).iterdir()) == ["manifest.json", "model.weights.h5"]


def test_saved_skops_types_are_the_pinned_ones(saved):
    import skops.io as sio

    from kit.models import untrusted

    assert set(sio.get_untrusted_types(file=saved / "model.skops")) == set(untrusted.SKOPS_TYPES["blend"])


def copy_of(saved, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(saved, folder)
    return folder


def test_load_refuses_a_missing_siamese(saved, tmp_path):
    folder = copy_of(saved, tmp_path)
    shutil.rmtree(folder / SIAMESE_DIR)
    with pytest.raises(UserError, match="siamese manifest"):
        kit.models.load(folder)


def test_load_refuses_another_rung_in_the_siamese_folder(saved, tmp_path):
    folder = copy_of(saved, tmp_path)
    manifest = json.loads((folder / SIAMESE_DIR / "manifest.json").read_text())
    (folder / SIAMESE_DIR / "manifest.json").write_text(json.dumps(manifest | {"model": "gbm", "format": "skops"}))
    with pytest.raises(UserError, match="expected the blend's siamese"):
        kit.models.load(folder)


def test_load_refuses_a_siamese_folder_leading_outside(saved, tmp_path):
    folder = copy_of(saved, tmp_path)
    outside = tmp_path / "elsewhere"
    shutil.move(folder / SIAMESE_DIR, outside)
    os.symlink(outside, folder / SIAMESE_DIR)
    with pytest.raises(UserError, match="outside the model folder"):
        kit.models.load(folder)


def test_load_refuses_forged_feature_names(model, tmp_path):
    forged = tiny()
    forged.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    forged.feature_names_ = list(model.feature_names_[:-2]) + ["siamese_spread", "siamese_cosine"]
    folder = forged.save(tmp_path / "forged")
    with pytest.raises(UserError, match="feature names"):
        kit.models.load(folder)


def test_predict_before_fit_is_refused(spectra, pairs):
    with pytest.raises(UserError, match="not fitted"):
        BlendModel().predict(spectra, pairs)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"holdout_fraction": 0.0}, UserError, "holdout_fraction"),
        ({"holdout_fraction": 1.0}, UserError, r"holdout_fraction must be a number in \(0, 1\)"),
        ({"holdout_fraction": 1.5}, UserError, r"holdout_fraction must be a number in \(0, 1\)"),
        ({"holdout_fraction": float("nan")}, UserError, "holdout_fraction"),
        ({"holdout_fraction": "0.3"}, TypeError, "holdout_fraction"),
        ({"holdout_fraction": True}, TypeError, "holdout_fraction"),
        ({"holdout_fraction": 0.01}, UserError, "too few molecules"),
        ({"holdout_fraction": 0.99}, UserError, "too few molecules"),
        ({"mc_samples": 1}, UserError, "mc_samples"),
        ({"mc_samples": 2.5}, TypeError, "mc_samples"),
        ({"mc_samples": None}, TypeError, "mc_samples"),
        ({"n_pairs": 0}, UserError, "n_pairs"),
        ({"seed": -1}, UserError, "seed"),
        ({"max_iter": 0}, UserError, "max_iter"),
        ({"learning_rate": -0.1}, UserError, "learning_rate"),
    ],
)
def test_bad_parameters_are_refused_before_any_training(spectra, params, error, match, monkeypatch):
    import kit.models.siamese

    trained = []
    monkeypatch.setattr(kit.models.siamese.SiameseModel, "fit", lambda *args, **kwargs: trained.append(args))
    with pytest.raises(error, match=match):
        tiny(**params).fit(spectra)
    assert trained == []


def test_bad_siamese_parameters_are_the_siamese_errors(spectra):
    with pytest.raises(UserError, match="dropout"):
        tiny(siamese__dropout=2.0).fit(spectra)


def test_nested_parameters_round_trip_the_scikit_learn_way():
    from sklearn.base import clone

    from kit.models.siamese import SiameseModel

    blend = BlendModel(seed=4, verbose=0).set_params(siamese__epochs=3, siamese__hidden_units=(16,))
    assert isinstance(blend.siamese, SiameseModel) and blend.siamese.calibrate is False
    params = blend.get_params()
    assert params["siamese__epochs"] == 3 and params["siamese__seed"] == 4 and params["siamese__verbose"] == 0
    again = BlendModel().set_params(**{k: v for k, v in params.items() if k != "siamese"})
    assert {k: v for k, v in again.get_params().items() if k != "siamese"} == {
        k: v for k, v in params.items() if k != "siamese"}
    copy = clone(blend)
    assert copy.siamese is not blend.siamese and copy.get_params()["siamese__epochs"] == 3
    # Setting a nested parameter leaves the default of another blend alone.
    assert BlendModel().get_params()["siamese__epochs"] == 30


@pytest.mark.parametrize("params, match", [
    ({"siamese__seed": 5}, "siamese__seed is set by the blend"),
    ({"siamese__verbose": 2}, "siamese__verbose is set by the blend"),
])
def test_the_blends_own_settings_are_refused_as_nested_ones(params, match):
    with pytest.raises(UserError, match=match):
        BlendModel().set_params(**params)


@pytest.mark.parametrize("siamese", ["siamese", 3, {"epochs": 3}, BlendModel()])
def test_a_siamese_that_is_not_a_siamese_model_is_refused(spectra, siamese):
    with pytest.raises(TypeError, match="siamese must be None or a kit.models.siamese.SiameseModel"):
        BlendModel(siamese=siamese).fit(spectra)


def test_a_blend_saved_with_flat_siamese_parameters_still_loads(model, saved, spectra, pairs, tmp_path):
    import skops.io as sio

    from kit.models.blend import LEGACY_SIAMESE_PARAMS

    folder = copy_of(saved, tmp_path)
    booster = sio.load(folder / "model.skops", trusted=sio.get_untrusted_types(file=folder / "model.skops"))
    del booster.siamese
    for name in LEGACY_SIAMESE_PARAMS:  # as blends saved them before the parameters were nested
        setattr(booster, f"siamese_{name}", getattr(model.siamese_, name))
    sio.dump(booster, folder / "model.skops")
    loaded = kit.models.load(folder)
    assert not any(k.startswith("siamese_") and not k.endswith("_") for k in vars(loaded))
    assert loaded.get_params()["siamese__epochs"] == 2
    np.testing.assert_array_equal(loaded.predict(spectra, pairs), model.predict(spectra, pairs))


def test_flat_siamese_parameters_beside_the_nested_one_are_refused(saved, tmp_path):
    import skops.io as sio

    folder = copy_of(saved, tmp_path)
    booster = sio.load(folder / "model.skops", trusted=sio.get_untrusted_types(file=folder / "model.skops"))
    booster.siamese_epochs = 2  # an old attribute in a new file: not what either version saves
    sio.dump(booster, folder / "model.skops")
    with pytest.raises(UserError, match="attributes the kit never saves"):
        kit.models.load(folder)


def test_a_forged_siamese_parameter_in_the_booster_is_refused(saved, tmp_path):
    import skops.io as sio

    folder = copy_of(saved, tmp_path)
    booster = sio.load(folder / "model.skops", trusted=sio.get_untrusted_types(file=folder / "model.skops"))
    booster.siamese = "elsewhere"
    sio.dump(booster, folder / "model.skops")
    with pytest.raises(UserError, match="siamese parameter is a str"):
        kit.models.load(folder)


def test_no_training_spectra_is_refused():
    with pytest.raises(UserError, match="no training spectra"):
        tiny().fit([])


def test_train_help_lists_the_blend_options(capsys):
    assert main(["train", "blend", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--holdout-fraction", "--mc-samples", "--siamese__NAME", "--max-iter"):
        assert flag in out


@pytest.mark.slow
def test_kit_train_and_predict_blend(tmp_path, monkeypatch):
    from kit.competition.prepare import prepare_competition
    from kit.data.spectra import save_spectra
    from kit.models.prediction import predict_competition

    monkeypatch.chdir(tmp_path)
    library = save_spectra(structure_spectra(per_molecule=4), tmp_path / "lib.mgf")
    prepare_competition(library, name="tiny", out=tmp_path / "data", test_fraction=0.25, pairs_per_bin=20, progress=False)
    options = ["--holdout-fraction", "0.4", "--mc-samples", "3", "--n-pairs", "300", "--max-iter", "20",
               "--siamese__hidden-units", "32", "--siamese__embedding_dim", "16", "--siamese__epochs", "1",
               "--siamese__pairs-per-epoch", "256", "--siamese__validation-pairs", "64",
               # kit train holds out its scoring molecules first: the siamese's own share must reach two.
               "--siamese__validation-fraction", "0.4", "--progress", "false",
               "--verbose", "0"]
    assert main(["train", "blend", "--competition", "tiny", *options]) == 0
    (folder,) = (tmp_path / "models" / "tiny").iterdir()
    assert json.loads((folder / "manifest.json").read_text())["params"]["siamese__epochs"] == 1
    submission = predict_competition(folder, "tiny", data=tmp_path / "data", submissions=tmp_path / "subs", echo=lambda *_: None)
    assert submission.is_file()
