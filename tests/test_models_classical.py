"""The classical rungs of the ladder: mean, cosine, gbm."""
import json

import numpy as np
import pytest
from sklearn.base import clone

import kit.models
from conftest import make_spectrum
from kit.errors import UserError
from kit.models.mean import training_pairs
from model_builders import all_pairs, pairs_frame, simulated_split

RUNGS = ["mean", "cosine", "gbm"]
# Small enough that each rung fits in about a second on the fixture spectra.
SMALL = {
    "mean": {"n_pairs": 300},
    "cosine": {"n_pairs": 300, "progress": False},
    "gbm": {"n_pairs": 300, "max_iter": 30, "progress": False},
}


def small(name, **params):
    return kit.models.get(name)(**(SMALL[name] | params))


@pytest.fixture(scope="module")
def data():
    """Spectra with structures (training) and the same spectra as test pairs."""
    from conftest import structure_spectra

    spectra = structure_spectra()
    return spectra, all_pairs(spectra, limit=400)


@pytest.fixture(scope="module", params=RUNGS)
def fitted(request, data):
    spectra, _ = data
    return small(request.param, seed=0).fit(spectra)


def test_registry_names_match_classes():
    for name in RUNGS:
        cls = kit.models.get(name)
        assert cls.name == name


def test_unknown_model_name_lists_known_ones():
    with pytest.raises(UserError, match="mean.*cosine.*gbm"):
        kit.models.get("nope")


def test_fit_sets_state_and_predicts_in_range(fitted, data):
    spectra, pairs = data
    assert fitted.fitted_ is True and fitted.fit_seconds_ > 0
    assert fitted.n_train_pairs_ == 300
    assert not hasattr(fitted, "validation_score_")  # set by kit train, which holds out molecules
    pred = fitted.predict(spectra, pairs)
    assert pred.shape == (len(pairs),) and pred.dtype == float
    assert np.isfinite(pred).all() and (pred >= 0).all() and (pred <= 1).all()


@pytest.mark.parametrize("name", RUNGS)
def test_fit_returns_self(name, data):
    model = small(name)
    assert model.fit(data[0]) is model


def test_same_seed_same_predictions(fitted, data):
    spectra, pairs = data
    again = clone(fitted).fit(spectra)
    assert np.array_equal(again.predict(spectra, pairs), fitted.predict(spectra, pairs))


def test_prediction_ignores_pair_order(fitted, data):
    spectra, pairs = data
    swapped = pairs.rename(columns={"spectrum_id_a": "spectrum_id_b", "spectrum_id_b": "spectrum_id_a"})
    assert np.array_equal(fitted.predict(spectra, swapped), fitted.predict(spectra, pairs))


def test_save_load_round_trip(fitted, data, tmp_path):
    spectra, pairs = data
    path = fitted.save(tmp_path / fitted.name)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["model"] == fitted.name
    assert manifest["params"] == {k: v for k, v in fitted.get_params().items()}
    loaded = kit.models.load(path)
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == fitted.get_params()
    assert np.array_equal(loaded.predict(spectra, pairs), fitted.predict(spectra, pairs))


def test_get_params_round_trip(fitted):
    params = fitted.get_params()
    assert type(fitted)(**params).get_params() == params
    fresh = clone(fitted)
    assert fresh.get_params() == params and not hasattr(fresh, "fitted_")


@pytest.mark.parametrize("name", RUNGS)
def test_predict_before_fit_is_a_user_error(name, data):
    spectra, pairs = data
    with pytest.raises(UserError, match="not fitted"):
        small(name).predict(spectra, pairs)


def test_unknown_spectrum_id_is_a_user_error(fitted, data):
    spectra, pairs = data
    bad = pairs.copy()
    bad.loc[3, "spectrum_id_b"] = "no-such-spectrum"
    with pytest.raises(UserError, match="no-such-spectrum"):
        fitted.predict(spectra, bad)


def test_spectrum_without_peaks_is_a_user_error(fitted, data):
    spectra, pairs = data
    empty = make_spectrum([], [], spectrum_id=spectra[0].get("spectrum_id"), precursor_mz=100.0,
                          smiles=spectra[0].get("smiles"))
    with pytest.raises(UserError, match="no peaks"):
        fitted.predict([empty] + spectra[1:], pairs)
    with pytest.raises(UserError, match="no peaks"):
        clone(fitted).fit([empty] + spectra[1:])


@pytest.mark.parametrize("name", RUNGS)
@pytest.mark.parametrize("params, error", [({"n_pairs": 0}, UserError), ({"n_pairs": "many"}, TypeError),
                                           ({"seed": -1}, UserError), ({"seed": 1.5}, TypeError)])
def test_bad_parameters(name, params, error, data):
    with pytest.raises(error, match=next(iter(params))):
        small(name, **params).fit(data[0])


def test_no_training_spectra_is_a_user_error():
    with pytest.raises(UserError, match="no training spectra"):
        small("mean").fit([])


def test_validation_spectra_do_not_change_a_classical_fit(data):
    spectra, pairs = data
    plain = small("gbm").fit(spectra[:30])
    with_validation = small("gbm").fit(spectra[:30], validation_spectra=spectra[30:])
    np.testing.assert_array_equal(plain.predict(spectra, pairs), with_validation.predict(spectra, pairs))


@pytest.mark.parametrize("name", ["cosine", "gbm"])
def test_missing_precursor_at_predict_is_a_user_error(name, data):
    spectra, pairs = data
    fitted = small(name).fit(spectra)
    broken = make_spectrum([50.0, 60.0], [1.0, 0.5], spectrum_id=spectra[0].get("spectrum_id"))
    with pytest.raises(UserError, match="precursor_mz"):
        fitted.predict([broken] + spectra[1:], pairs)


def test_cosine_calibration_is_monotone(data):
    model = small("cosine", n_pairs=600).fit(data[0])
    curve = model.calibrate(np.linspace(-0.5, 1.5, 201))
    assert (np.diff(curve) >= 0).all()
    assert curve.min() >= 0 and curve.max() <= 1
    # Identical spectra are the same molecule: the top of the curve is high.
    assert curve[-1] > curve[0]


@pytest.mark.slow
def test_models_beat_the_mean_on_held_out_molecules():
    train, test = (list(part) for part in simulated_split())
    idx_a, idx_b, truth = training_pairs(test, 600, np.random.default_rng(1))
    pairs = pairs_frame(test, idx_a, idx_b)

    def rmse(model):
        return float(np.sqrt(np.mean((model.fit(train).predict(test, pairs) - truth) ** 2)))

    mean = rmse(small("mean", n_pairs=2000))
    cosine = rmse(small("cosine", n_pairs=2000))
    gbm = rmse(small("gbm", n_pairs=2000, max_iter=200))
    assert gbm < 0.9 * mean, (gbm, cosine, mean)
    assert cosine < mean, (gbm, cosine, mean)
