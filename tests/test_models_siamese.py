"""The siamese rung (kit.models.siamese) on tiny data with a tiny network."""
import json

import numpy as np
import pandas as pd
import pytest
from matchms import Spectrum

import kit.models
from kit.data import binning
from kit.errors import UserError
from kit.models.untrusted import weight_shapes

siamese = pytest.importorskip("kit.models.siamese")
SiameseModel = siamese.SiameseModel
PrecursorMatch = siamese.PrecursorMatch
PairHead = siamese.PairHead

# Small real molecules; their spectra below are synthetic.
SMILES = [
    "CCO", "CCCO", "CCCCO", "CC(C)O", "c1ccccc1", "Oc1ccccc1", "Cc1ccccc1", "Nc1ccccc1", "OC(=O)c1ccccc1",
    "CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Nc1ccc(O)cc1", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "NCC(=O)O", "CC(N)C(=O)O",
    "OCC(N)C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
]
TINY = dict(hidden_units=(32,), embedding_dim=16, pairs_per_epoch=256, validation_pairs=128, epochs=2, batch_size=32,
            validation_fraction=0.25, use_metadata=True, lr_patience=1, verbose=0, seed=0)
# Without a head: the cosine of the embeddings, with the precursor m/z joined to them (PrecursorMatch).
COSINE = {"head_units": (), "precursor_encoding": 4}


def make_spectra(smiles=SMILES, per_molecule=3, seed=0, prefix="T"):
    """A few spectra per molecule: shared fragment peaks per molecule, jittered per spectrum."""
    from rdkit import Chem
    from rdkit.Chem.Descriptors import ExactMolWt

    rng = np.random.default_rng(seed)
    spectra = []
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi)
        precursor = ExactMolWt(mol) + 1.00728
        fragments = np.sort(rng.uniform(15, precursor, 12))
        weights = rng.uniform(0.05, 1.0, 12)
        for _ in range(per_molecule):
            keep = rng.random(12) < 0.8
            mz = np.append(fragments[keep] + rng.normal(0, 0.002, keep.sum()), precursor)
            intensity = np.append(weights[keep] * rng.uniform(0.7, 1.3, keep.sum()), 1.0)
            order = np.argsort(mz)
            spectra.append(Spectrum(
                mz=mz[order], intensities=intensity[order],
                metadata={"spectrum_id": f"{prefix}{len(spectra):03d}", "smiles": smi,
                          "inchikey": Chem.MolToInchiKey(mol), "precursor_mz": precursor, "ionmode": "positive"},
                metadata_harmonization=False,
            ))
    return spectra


def random_pairs(spectra, n=60, seed=1):
    ids = [s.get("spectrum_id") for s in spectra]
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"spectrum_id_a": rng.choice(ids, n), "spectrum_id_b": rng.choice(ids, n)})


@pytest.fixture(scope="module")
def spectra():
    return make_spectra()


@pytest.fixture(scope="module")
def model(spectra):
    return SiameseModel(**TINY).fit(spectra)


@pytest.fixture(scope="module")
def cosine_model(spectra):
    return SiameseModel(**TINY, **COSINE).fit(spectra)


def test_default_network_is_ms2deepscore_v1():
    net = siamese.build_embedding_network(9900)
    dense = {layer.name: layer.units for layer in net.layers if layer.__class__.__name__ == "Dense"}
    assert dense == {"dense1": 500, "dense2": 500, "embedding": 200}
    assert [layer.name for layer in net.layers if "Dropout" in layer.__class__.__name__] == ["dropout2"]
    assert net.get_layer("dropout2").rate == 0.2
    assert net.get_layer("embedding").activation.__name__ == "relu"
    # 9,900*500 + 500*500 + 500*200 weights, their biases, and 4*500 per BatchNormalization.
    assert net.count_params() == 9900 * 500 + 500 + 500 * 500 + 500 + 500 * 200 + 200 + 2 * 4 * 500
    pair = siamese.build_siamese(net)
    assert len(pair.inputs) == 2 and pair.output_shape == (None, 1)
    assert SiameseModel().get_params()["hidden_units"] == (500, 500)


@pytest.mark.parametrize("params", [
    {}, {"use_metadata": False}, {"head_units": ()}, {"head_units": (), "precursor_encoding": 0},
    {"hidden_units": (8, 4, 6), "embedding_dim": 3, "head_units": (5, 7), "precursor_encoding": 2},
    {"bin_width": 1.0, "mz_range": (0, 500), "head_units": (), "use_metadata": False},
])
def test_the_weight_count_the_limits_read_is_the_built_networks(params):
    # The budget is checked from the parameters, before anything is built: it must be exact.
    model = SiameseModel(**{"hidden_units": (16, 8), "embedding_dim": 4, **params})
    units = model._check_params()
    siamese_net = siamese.build_siamese(model._new_network(model._n_bins()), model._new_head())
    assert model._n_weights(units, model._n_bins()) == siamese_net.count_params()


def test_the_default_network_and_ms2deepscore_2_fit_the_weight_budget():
    assert SiameseModel()._check_params() == (500, 500)
    assert SiameseModel(hidden_units=(10_000,), embedding_dim=500)._check_params() == (10_000,)
    with pytest.raises(UserError, match="weights"):
        SiameseModel(hidden_units=(20_000,))._check_params()


def test_fit_records_history_and_validation_score(model, spectra):
    assert set(model.history_) >= {"loss", "val_loss", "rmse", "val_rmse"}
    assert 1 <= len(model.history_["loss"]) <= TINY["epochs"]
    assert model.best_val_rmse_ == pytest.approx(min(model.history_["val_rmse"]))
    assert model.n_train_spectra_ + model.n_validation_spectra_ == len(spectra)
    # distribute="auto" without several GPUs: one device, as without a strategy.
    assert model.n_replicas_ == 1 and model.get_params()["distribute"] == "auto"


def _rows(spectra, pairs):
    index = {s.get("spectrum_id"): i for i, s in enumerate(spectra)}
    return pairs["spectrum_id_a"].map(index).to_numpy(), pairs["spectrum_id_b"].map(index).to_numpy()


def test_without_a_head_predictions_are_dot_products_of_unit_embeddings(cosine_model, spectra):
    pairs = random_pairs(spectra)
    pred = cosine_model.predict(spectra, pairs)
    assert pred.shape == (len(pairs),) and np.isfinite(pred).all()
    assert pred.min() >= 0.0 and pred.max() <= 1.0
    vectors = cosine_model.predict_embeddings(spectra)
    # The embedding, then the precursor m/z features (PrecursorMatch).
    width = TINY["embedding_dim"] + COSINE["precursor_encoding"]
    assert vectors.dtype == np.float32 and vectors.shape == (len(spectra), width)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    a, b = _rows(spectra, pairs)
    cosines = np.clip(np.einsum("ij,ij->i", vectors[a], vectors[b]), 0, 1)
    # Through the calibration map fitted on the validation pairs (calibrate=True by default).
    np.testing.assert_allclose(pred, siamese.apply_calibration(cosine_model.calibration_, cosines), atol=1e-5)


def test_with_a_head_predictions_come_from_the_embeddings_and_the_masses(model, spectra):
    # The default siamese: plain embeddings, and the head reads their cosine and the two precursor m/z.
    assert model.get_params()["head_units"] == (32, 32) and isinstance(model.head_, PairHead)
    pairs = random_pairs(spectra)
    pred = model.predict(spectra, pairs)
    assert pred.shape == (len(pairs),) and ((0 <= pred) & (pred <= 1)).all()
    vectors = model.predict_embeddings(spectra)
    assert vectors.shape == (len(spectra), TINY["embedding_dim"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    a, b = _rows(spectra, pairs)
    metadata = siamese.metadata_features(spectra)
    head = np.clip(np.asarray(model.head_([vectors[a], vectors[b], metadata[a], metadata[b]]))[:, 0], 0, 1)
    np.testing.assert_allclose(pred, siamese.apply_calibration(model.calibration_, head), atol=1e-5)
    # The same embeddings with other masses give other similarities: the head reads them.
    shifted = metadata.copy()
    shifted[:, 0] += 0.0123
    moved = np.asarray(model.head_([vectors[a], vectors[b], metadata[a], shifted[b]]))[:, 0]
    assert np.abs(moved - np.asarray(model.head_([vectors[a], vectors[b], metadata[a], metadata[b]]))[:, 0]).max() > 0


def test_predict_accepts_an_array_of_id_pairs_and_only_the_spectra_it_needs(model, spectra):
    pairs = random_pairs(spectra, n=10)
    expected = model.predict(spectra, pairs)
    np.testing.assert_allclose(model.predict(spectra, pairs.to_numpy()), expected, atol=1e-6)


def test_monte_carlo_dropout_spread(model, spectra):
    pairs = random_pairs(spectra)
    plain = model.predict(spectra, pairs)
    mean, std = model.predict(spectra, pairs, return_std=True, n_passes=8)
    assert mean.shape == std.shape == plain.shape
    assert (std >= 0).all() and std.max() > 0
    assert np.abs(mean - plain).mean() < 0.1
    again_mean, again_std = model.predict(spectra, pairs, return_std=True, n_passes=8)
    np.testing.assert_allclose(again_mean, mean, atol=1e-6)
    np.testing.assert_allclose(again_std, std, atol=1e-6)


def test_fit_returns_self_and_same_seed_gives_same_predictions(model, spectra):
    pairs = random_pairs(spectra)
    again = SiameseModel(**TINY)
    assert again.fit(spectra) is again
    np.testing.assert_allclose(again.predict(spectra, pairs), model.predict(spectra, pairs), atol=1e-6)
    for key, values in model.history_.items():
        np.testing.assert_allclose(again.history_[key], values, rtol=1e-6)


def test_save_load_round_trip(model, spectra, tmp_path):
    pairs = random_pairs(spectra)
    path = model.save(tmp_path / "siamese")
    manifest = json.loads((path / "manifest.json").read_text())
    # Parameters and weights: no Keras config to deserialise.
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.weights.h5"]
    assert manifest["format"] == "keras" and manifest["file"] == "model.weights.h5"
    assert manifest["binning"] == {"bin_width": 0.1, "mz_range": [10.0, 1000.0], "intensity_power": 0.5}
    assert manifest["history"] == model.history_
    loaded = kit.models.load(path)
    assert isinstance(loaded, SiameseModel) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(spectra, pairs), model.predict(spectra, pairs))
    assert loaded.history_ == model.history_ and loaded.best_val_rmse_ == model.best_val_rmse_
    assert loaded.n_replicas_ == 1


@pytest.mark.parametrize("change", [{"bin_width": 0.2}, {"mz_range": [0.0, 1000.0]}, None])
def test_load_refuses_binning_that_disagrees_with_the_network(model, tmp_path, change):
    path = model.save(tmp_path / "siamese")
    manifest = json.loads((path / "manifest.json").read_text())
    if change is None:
        del manifest["binning"]
    else:
        manifest["binning"].update(change)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="binning"):
        kit.models.load(path)


def _refused_with_metadata_names(model, folder, names):
    """``model`` saved with its manifest's ``metadata_features`` replaced by ``names`` does not load."""
    path = model.save(folder / "siamese")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["metadata_features"] = names
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="metadata_features"):
        kit.models.load(path)


@pytest.mark.parametrize("names", [["precursor_mz/1000"], ["precursor_mz/1000", "ionmode", "charge"]])
def test_load_refuses_metadata_names_that_disagree_with_the_network(model, tmp_path, names):
    _refused_with_metadata_names(model, tmp_path, names)


@pytest.mark.parametrize("encoding", [8, 0])
def test_load_refuses_a_precursor_encoding_the_network_was_not_built_for(model, spectra, tmp_path, encoding):
    # The manifest's parameter must match the network: with the layer (8 features), or without it.
    if encoding == 0:
        model = SiameseModel(**{**TINY, **COSINE, "epochs": 1}).fit(spectra)
    path = model.save(tmp_path / "siamese")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["params"]["precursor_encoding"] = encoding
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="values, more than|weights but the network built from the manifest"):
        kit.models.load(path)


@pytest.mark.parametrize("periods", [[0.0], [float("nan")], siamese.precursor_periods(4).tolist()])
def test_load_refuses_a_second_precursor_match(spectra, tmp_path, periods):
    # Only the first layer's periods would be checked: a second one of period 0 made every prediction NaN.
    import keras

    model = SiameseModel(**{**TINY, **COSINE, "epochs": 1}).fit(spectra)
    network = model.embedding_network_
    extra = PrecursorMatch(periods, name="second")([network.outputs[0], network.inputs[1]])
    forged = keras.Model(network.inputs, extra, name="embedding_network")
    model.embedding_network_, model.siamese_ = forged, siamese.build_siamese(forged)
    path = model.save(tmp_path / "siamese")
    # The network is rebuilt from the parameters: the second layer's weights are values too many.
    with pytest.raises(UserError, match="declares .* values, more than"):
        kit.models.load(path)


@pytest.mark.parametrize("extra", ["head", "concatenate"])
def test_load_refuses_an_embedding_network_that_is_not_a_chain(spectra, tmp_path, extra):
    # Inference runs the layers after the first Dense one by one: a PairHead or a second
    # Concatenate there loaded, then every prediction failed inside TensorFlow.
    import keras

    model = SiameseModel(**{**TINY, "epochs": 1, "head_units": (4,)}).fit(spectra)
    network = model.embedding_network_
    x = network.outputs[0]
    if extra == "head":
        x = keras.layers.Concatenate(name="joined")([x, PairHead([], [4], name="inner_head")([x, x])])
    else:
        x = keras.layers.Dense(4, name="after")(keras.layers.Concatenate(name="twice")([x, x]))
    forged = keras.Model(network.inputs, x, name="embedding_network")
    model.embedding_network_, model.siamese_ = forged, siamese.build_siamese(forged, model.head_)
    with pytest.raises(UserError, match="values, more than"):
        kit.models.load(model.save(tmp_path / "siamese"))


@pytest.mark.parametrize("layer, weight, value, match", [
    ("precursor_match", 0, np.nan, "not finite"), ("precursor_match", 0, np.inf, "not finite"),
    ("embedding", 0, np.nan, "not finite"),
    ("normalization1", 3, -1.0, "negative moving variance"),  # the square root is NaN
])
def test_weights_that_are_not_finite_are_refused_on_load(cosine_model, tmp_path, layer, weight, value, match):
    # Forged weights once loaded, and every prediction then failed inside scikit-learn's input check.
    path = cosine_model.save(tmp_path / "siamese")
    model = kit.models.load(path)
    variable = model.embedding_network_.get_layer(layer).weights[weight]
    variable.assign(np.full(variable.shape, value, dtype=np.float32))
    model.siamese_.save_weights(path / "model.weights.h5")
    with pytest.raises(UserError, match=match):
        kit.models.load(path)


@pytest.mark.parametrize("return_std", [False, True])
def test_a_network_that_gives_values_that_are_not_finite_is_refused(cosine_model, spectra, tmp_path, return_std):
    # Finite weights that overflow float32 once multiplied.
    model = kit.models.load(cosine_model.save(tmp_path / "siamese"))
    variable = model.embedding_network_.get_layer("embedding").kernel
    variable.assign(np.full(variable.shape, 3e38, dtype=np.float32))
    loaded = kit.models.load(model.save(tmp_path / "huge"))
    with pytest.raises(UserError, match="not finite"):
        loaded.predict(spectra, random_pairs(spectra), return_std=return_std)


def test_calibration_is_the_isotonic_fit_kept_only_where_held_out_molecules_gain(spectra):
    validation = make_spectra(SMILES[:8], per_molecule=2, seed=5, prefix="V")
    params = {**TINY, "validation_pairs": 1000}
    raw = SiameseModel(**{**params, "calibrate": False}).fit(spectra, validation_spectra=validation)
    calibrated = SiameseModel(**params).fit(spectra, validation_spectra=validation)
    assert raw.calibration_ is None and raw.calibration_gain_ is None
    # Calibration comes after training: the same network, only its predictions are mapped.
    for w_raw, w_cal in zip(raw.embedding_network_.get_weights(), calibrated.embedding_network_.get_weights()):
        np.testing.assert_array_equal(w_raw, w_cal)
    # The validation pairs the fit drew, and the held-out check on them.
    from sklearn.isotonic import IsotonicRegression

    from kit.data.pairs import PairSampler

    _, val_seed, _, calibration_seed = np.random.SeedSequence(TINY["seed"]).spawn(4)
    kept, sampler = siamese.batches._sampler_of(validation, "validation spectra")
    idx_a, idx_b, truth = sampler.sample(params["validation_pairs"], np.random.default_rng(val_seed))
    assert isinstance(sampler, PairSampler)
    ids = np.array([s.get("spectrum_id") for s in kept])
    pairs = pd.DataFrame({"spectrum_id_a": ids[idx_a], "spectrum_id_b": ids[idx_b]})
    before = raw.predict(validation, pairs)
    molecules = sampler.spectrum_molecule[np.column_stack([idx_a, idx_b])]
    expected, gains = siamese.held_out_calibration(before, truth, molecules, np.random.default_rng(calibration_seed))
    np.testing.assert_allclose(calibrated.calibration_gain_, gains, atol=1e-6)
    if min(gains) > 0:  # kept: sklearn's own isotonic fit on every validation pair
        iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(before, truth)
        np.testing.assert_allclose(calibrated.calibration_["x"], iso.X_thresholds_, atol=1e-6)
        np.testing.assert_allclose(calibrated.calibration_["y"], iso.y_thresholds_, atol=1e-6)
        np.testing.assert_allclose(calibrated.predict(validation, pairs), iso.predict(before), atol=1e-6)
    else:
        assert calibrated.calibration_ == siamese.IDENTITY_CALIBRATION == expected
    after = calibrated.predict(validation, pairs)
    # On the pairs it was fitted on, the map can only lower the error, and it keeps the order.
    assert np.sqrt(np.mean((after - truth) ** 2)) <= np.sqrt(np.mean((before - truth) ** 2))
    order = np.argsort(before, kind="stable")
    assert (np.diff(after[order]) >= -1e-9).all()
    # Elsewhere too: monotone in the network's prediction, within [0, 1].
    others = random_pairs(spectra, n=200, seed=4)
    mapped, plain = calibrated.predict(spectra, others), raw.predict(spectra, others)
    assert ((0 <= mapped) & (mapped <= 1)).all()
    order = np.argsort(plain, kind="stable")
    assert (np.diff(mapped[order]) >= -1e-9).all()
    # MC dropout passes go through the map too.
    mean, std = calibrated.predict(spectra, others, return_std=True, n_passes=4)
    assert ((0 <= mean) & (mean <= 1)).all() and np.isfinite(std).all()


def _pairs_of_molecules(n_pairs, n_molecules, seed):
    rng = np.random.default_rng(seed)
    return rng, rng.integers(0, n_molecules, size=(n_pairs, 2))


def test_held_out_calibration_keeps_a_map_that_helps_new_molecules():
    rng, molecules = _pairs_of_molecules(3000, 150, 0)
    truth = rng.random(3000)
    overconfident = np.clip(0.5 + 1.6 * (truth - 0.5) + rng.normal(0, 0.05, 3000), 0, 1)
    calibration, gains = siamese.held_out_calibration(overconfident, truth, molecules, np.random.default_rng(1))
    assert min(gains) > 0.01
    assert calibration == siamese.fit_calibration(overconfident, truth)


@pytest.mark.parametrize("n_pairs, n_molecules", [(3000, 150), (150, 150), (3000, 3), (0, 0)])
def test_held_out_calibration_declines_without_a_held_out_gain(n_pairs, n_molecules):
    # Already calibrated (or too few pairs or molecules to tell): the identity, whatever the pairs say.
    rng, molecules = _pairs_of_molecules(n_pairs, max(n_molecules, 1), 2)
    predicted = rng.uniform(0.2, 0.8, n_pairs)
    truth = np.clip(predicted + rng.normal(0, 0.1, n_pairs), 0, 1)
    calibration, gains = siamese.held_out_calibration(predicted, truth, molecules.reshape(-1, 2),
                                                      np.random.default_rng(3))
    assert calibration == siamese.IDENTITY_CALIBRATION and len(gains) == 2
    assert not all(gain > 0 for gain in gains)
    np.testing.assert_allclose(siamese.apply_calibration(calibration, predicted), predicted)


def test_held_out_calibration_is_seeded():
    rng, molecules = _pairs_of_molecules(2000, 100, 4)
    truth = rng.random(2000)
    predicted = 0.5 + 0.5 * (truth - 0.5)
    runs = [siamese.held_out_calibration(predicted, truth, molecules, np.random.default_rng(7)) for _ in range(2)]
    assert runs[0] == runs[1]


def test_fit_calibration_keeps_at_most_its_limit_of_points(monkeypatch):
    rng = np.random.default_rng(0)
    predicted = np.sort(rng.random(500))
    # A rising truth: every point is its own step of the map.
    full = siamese.fit_calibration(predicted, predicted)
    assert len(full["x"]) == 500
    monkeypatch.setattr(siamese.calibration, "MAX_CALIBRATION_POINTS", 50)
    thin = siamese.fit_calibration(predicted, predicted)
    assert len(thin["x"]) == 50 and thin["x"][0] == full["x"][0] and thin["x"][-1] == full["x"][-1]
    assert set(thin["x"]) <= set(full["x"])
    np.testing.assert_allclose(siamese.apply_calibration(thin, predicted), predicted, atol=0.01)


def test_a_calibrated_siamese_round_trips_and_an_uncalibrated_manifest_loads(model, cosine_model, spectra, tmp_path):
    pairs = random_pairs(spectra)
    path = model.save(tmp_path / "calibrated")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["params"]["calibrate"] is True and manifest["calibration"] == model.calibration_
    loaded = kit.models.load(path)
    assert loaded.calibration_ == model.calibration_
    np.testing.assert_array_equal(loaded.predict(spectra, pairs), model.predict(spectra, pairs))
    # Saved before calibration existed: no parameter, no map; it predicts what the network gives.
    del manifest["params"]["calibrate"], manifest["calibration"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    old = kit.models.load(path)
    assert old.calibrate is False and old.calibration_ is None
    vectors = old.predict_embeddings(spectra)
    a, b = _rows(spectra, pairs)
    head = siamese.head_scores(old.head_, vectors, siamese.metadata_features(spectra), a, b)
    np.testing.assert_allclose(old.predict(spectra, pairs), head, atol=1e-6)


@pytest.mark.parametrize("calibrate, calibration, match", [
    (True, None, "holds no calibration map"),
    (False, {"x": [0.0, 1.0], "y": [0.0, 1.0]}, "calibrate parameter is false"),
    (True, {"x": [0.0, 1.0]}, "must be"),
    (True, {"x": [0.0, 1.0], "y": [0.0, 1.0], "code": "import os"}, "must be"),
    (True, {"x": [0.0, 1.0], "y": [0.0, 1.0], "\x1b[2J\u202e": 1}, r"\\x1b\[2J\\u202e"),
    (True, {"x": "0,1", "y": [0.0, 1.0]}, "must be"),
    (True, {"x": [], "y": []}, "same length"),
    (True, {"x": [0.0, 1.0], "y": [0.5]}, "same length"),
    (True, {"x": [0.0] * 5000, "y": [0.0] * 5000}, "same length"),
    (True, {"x": [0.0, "1"], "y": [0.0, 1.0]}, "same length"),
    (True, {"x": [0.0, True], "y": [0.0, 1.0]}, "same length"),
    (True, {"x": [0.0, None], "y": [0.0, 1.0]}, "same length"),
    (True, {"x": [0.0, 12345.678], "y": [0.0, 1.0]}, "must rise"),
    (True, {"x": [0.0, float("nan")], "y": [0.0, 1.0]}, "must rise"),
    (True, {"x": [0.0, 1.0], "y": [0.0, float("nan")]}, "must rise"),
    (True, {"x": [1.0, 0.0], "y": [0.0, 1.0]}, "must rise"),
    (True, {"x": [0.0, 1.0], "y": [1.0, 0.0]}, "must rise"),
    (True, {"x": [0.0, 1.0], "y": [0.0, 5.0]}, "must rise"),
    (True, {"x": [0.0, 1.0], "y": [-1.0, 1.0]}, "must rise"),
    (True, [0.0, 1.0], "calibration"),
    (True, "identity", "calibration"),
])
def test_load_refuses_a_forged_calibration_map(model, tmp_path, calibrate, calibration, match):
    path = model.save(tmp_path / "siamese")
    text = (path / "manifest.json").read_text()
    manifest = json.loads(text)
    manifest["params"]["calibrate"] = calibrate
    manifest["calibration"] = calibration
    # 1e400 (infinite once read) is no number json.dumps writes: a forger types it in.
    (path / "manifest.json").write_text(json.dumps(manifest).replace("12345.678", "1e400"))
    with pytest.raises(UserError, match=match):
        kit.models.load(path)


def test_precursor_match_joins_a_kernel_of_the_mass_difference():
    layer = PrecursorMatch(siamese.precursor_periods(16).tolist())
    embedding = np.array([[3.0, 4.0], [3.0, 4.0], [3.0, 4.0], [3.0, 4.0]], dtype=np.float32)
    mz = np.array([301.1410, 301.1410, 301.1610, 0.0]) / 1000
    out = np.asarray(layer([embedding, np.column_stack([mz, np.ones(4)]).astype(np.float32)]))
    assert out.shape == (4, 2 + 16)
    np.testing.assert_allclose(out[:, :2], [[0.6, 0.8]] * 4, rtol=1e-6)
    mass = out[:, 2:]
    # Equal masses: the mass parts agree exactly; with all weights 1 each has unit length.
    np.testing.assert_array_equal(mass[0], mass[1])
    np.testing.assert_allclose(mass[0] @ mass[0], 1.0, rtol=1e-5)
    # 0.02 Da apart: the shortest period (0.05 Da) turns by 0.4 of a circle.
    assert mass[0] @ mass[2] < 0.9
    assert not mass[3].any()


def test_an_untrained_head_predicts_the_cosine_and_reads_only_the_mass_difference():
    head = PairHead(siamese.precursor_periods(16).tolist(), [8, 8])
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 6)).astype(np.float32), rng.random((5, 6)).astype(np.float32)
    # Masses / 1000 that float32 holds exactly, so both 125 Da differences are exact.
    mz_a = np.array([[0.3011, 1.0], [0.3011, 1.0], [0.0, 1.0], [0.5, 1.0], [0.25, 1.0]], dtype=np.float32)
    mz_b = np.array([[0.3011, 1.0], [0.3012, 1.0], [0.3, 1.0], [0.625, 1.0], [0.375, 1.0]], dtype=np.float32)
    cosine = np.einsum("ij,ij->i", a, b) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    # The last layer starts at zero: an untrained head is the plain cosine.
    np.testing.assert_allclose(np.asarray(head([a, b, mz_a, mz_b]))[:, 0], cosine, rtol=1e-5)
    head.kernels[-1].assign(np.ones(head.kernels[-1].shape, dtype=np.float32))
    out = np.asarray(head([a, b, mz_a, mz_b]))[:, 0]
    # The mass difference, not the masses: 500 vs 625 and 250 vs 375 Da read the same,
    # and the pair whose one mass is unknown reads none.
    swapped = np.asarray(head([a[[4]], b[[4]], mz_a[[3]], mz_b[[3]]]))[:, 0]
    np.testing.assert_allclose(swapped, out[[4]], rtol=1e-5)
    assert out[0] != out[1]
    assert out[2] == pytest.approx(np.asarray(head([a[[2]], b[[2]]]))[0, 0], rel=1e-5)


def test_load_refuses_head_units_the_network_was_not_built_for(model, cosine_model, tmp_path):
    for fitted, units in ((model, []), (model, [16, 16]), (cosine_model, [32])):
        path = fitted.save(tmp_path / f"siamese{len(units)}{units[:1]}")
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["params"]["head_units"] = units
        (path / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(UserError, match="values, more than|weights but the network built"):
            kit.models.load(path)


def test_a_siamese_saved_before_heads_existed_loads_without_one(cosine_model, spectra, tmp_path):
    path = cosine_model.save(tmp_path / "siamese")
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["params"]["head_units"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    loaded = kit.models.load(path)
    assert loaded.head_ is None
    pairs = random_pairs(spectra)
    np.testing.assert_array_equal(loaded.predict(spectra, pairs), cosine_model.predict(spectra, pairs))


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("return_std", [False, True])
def test_a_head_that_gives_values_that_are_not_finite_is_refused(spectra, tmp_path, value, return_std):
    model = SiameseModel(**{**TINY, "epochs": 1, "head_units": (4,)}).fit(spectra)
    model.head_.kernels[-1].assign(np.full(model.head_.kernels[-1].shape, value, dtype=np.float32))
    # Refused on load; and a head whose finite weights overflow, when it predicts.
    with pytest.raises(UserError, match="pair_head.* not finite"):
        kit.models.load(model.save(tmp_path / "siamese"))
    for kernel in model.head_.kernels:
        kernel.assign(np.full(kernel.shape, 3e38, dtype=np.float32))
    loaded = kit.models.load(model.save(tmp_path / "siamese"))
    with pytest.raises(UserError, match="not finite"):
        loaded.predict(spectra, random_pairs(spectra), return_std=return_std)


@pytest.mark.parametrize("features", [3, -2])
def test_precursor_periods_need_an_even_count(features):
    with pytest.raises(ValueError, match="even number"):
        siamese.precursor_periods(features)


def test_load_refuses_another_major_version(model, tmp_path):
    path = model.save(tmp_path / "siamese")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["kit_version"] = "99.0.0"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="major version"):
        kit.models.load(path)


def test_predict_before_fit_is_refused(spectra):
    with pytest.raises(UserError, match="not fitted"):
        SiameseModel().predict(spectra, random_pairs(spectra))
    with pytest.raises(UserError, match="not fitted"):
        SiameseModel().predict_embeddings(spectra)


def test_unknown_spectrum_ids_are_refused(model, spectra):
    pairs = pd.DataFrame({"spectrum_id_a": ["T000"], "spectrum_id_b": ["nope"]})
    with pytest.raises(UserError, match="'nope'"):
        model.predict(spectra, pairs)


def test_spectrum_without_peaks_in_range_is_refused(model, spectra):
    far = Spectrum(np.array([1500.0, 1600.0]), np.array([1.0, 1.0]), {"spectrum_id": "far"},
                   metadata_harmonization=False)
    pairs = pd.DataFrame({"spectrum_id_a": ["T000"], "spectrum_id_b": ["far"]})
    with pytest.raises(UserError, match="'far'"):
        model.predict([*spectra, far], pairs)
    with pytest.raises(UserError, match="'far'"):
        model.predict_embeddings([far])


def test_missing_precursor_mz_warns_when_metadata_is_used(model, spectra):
    bare = [Spectrum(s.peaks.mz, s.peaks.intensities, {"spectrum_id": s.get("spectrum_id")},
                     metadata_harmonization=False) for s in spectra[:4]]
    with pytest.warns(UserWarning, match="4 of 4 spectra have no precursor m/z"):
        model.predict_embeddings(bare)


@pytest.mark.parametrize("precursor", [0.0, -300.0, np.nan, np.inf, 1e30, 1e300, "abc"])
@pytest.mark.parametrize("headed", [True, False])
def test_an_unusable_precursor_mz_counts_as_missing(model, cosine_model, spectra, precursor, headed):
    # 1e300 / 1000 overflowed the float32 input: the embeddings were infinite and predict blamed the weights.
    fitted = model if headed else cosine_model
    odd = [s.clone() for s in spectra]
    for s in odd[::2]:
        s.set("precursor_mz", precursor)
    pairs = random_pairs(spectra)
    with pytest.warns(UserWarning, match="have no precursor m/z"):
        score, std = fitted.predict(odd, pairs, return_std=True)
    assert np.isfinite(score).all() and (score >= 0).all() and (score <= 1).all() and np.isfinite(std).all()
    assert siamese.metadata_features(odd[:1])[0, 0] == 0


@pytest.mark.parametrize("n_passes, error", [(1, UserError), (0, UserError), (-3, UserError), (2.5, TypeError),
                                             (True, TypeError), ("10", TypeError), (None, TypeError)])
def test_a_spread_needs_two_passes_or_more(model, spectra, n_passes, error):
    with pytest.raises(error, match="n_passes must be an integer >= 2"):
        model.predict(spectra, random_pairs(spectra), return_std=True, n_passes=n_passes)


@pytest.mark.parametrize(
    "params, error",
    [({"hidden_units": ()}, UserError), ({"hidden_units": (0,)}, UserError), ({"epochs": 0}, UserError),
     ({"dropout": 1.5}, UserError), ({"learning_rate": -1}, UserError), ({"bin_width": 0}, UserError),
     ({"batch_size": 2.5}, TypeError), ({"validation_fraction": 0.95}, UserError), ({"lr_patience": -1}, UserError),
     ({"weight_penalty": "none"}, TypeError), ({"sparse_training": "yes"}, TypeError),
     ({"sparse_training": 1}, TypeError), ({"batchnorm_momentum": 1.5}, UserError),
     ({"batchnorm_momentum": None}, TypeError), ({"mixed_precision": "yes"}, TypeError),
     ({"mixed_precision": 1}, TypeError), ({"distribute": "gpu"}, UserError), ({"distribute": None}, UserError),
     ({"precursor_encoding": 3}, UserError), ({"precursor_encoding": -2}, UserError),
     ({"precursor_encoding": 1000}, UserError),
     ({"precursor_encoding": 2.0}, TypeError), ({"same_molecule_share": 1.5}, UserError),
     ({"same_molecule_share": "half"}, TypeError), ({"head_units": (0,)}, UserError),
     ({"head_units": ("a",)}, TypeError), ({"head_units": "32"}, TypeError), ({"head_units": (8,) * 5}, UserError),
     ({"head_units": (5000,)}, UserError), ({"head_units": (8.0,)}, TypeError),
     ({"hidden_units": (70_000,)}, UserError), ({"embedding_dim": 70_000}, UserError),
     ({"hidden_units": (65_536, 65_536)}, UserError), ({"hidden_units": (8,) * 9}, UserError),
     ({"bin_width": 1e-6}, UserError),
     ({"calibrate": "yes"}, TypeError), ({"calibrate": 1}, TypeError), ({"calibrate": None}, TypeError)],
)
def test_bad_parameters_are_refused_before_training(spectra, params, error):
    with pytest.raises(error):
        SiameseModel(**{**TINY, **params}).fit(spectra)


def test_spectra_without_structures_are_refused(spectra):
    bare = [Spectrum(s.peaks.mz, s.peaks.intensities, {"spectrum_id": s.get("spectrum_id")},
                     metadata_harmonization=False) for s in spectra]
    with pytest.raises(UserError, match="no usable structure|no spectrum with a usable structure"):
        SiameseModel(**TINY).fit(bare)


@pytest.mark.slow
@pytest.mark.parametrize(
    "params",
    [{"use_metadata": False, "lr_patience": None}, {"hidden_units": (16, 16), "dropout": 0.1, "embedding_dim": 8},
     {"bin_width": 1.0, "mz_range": (10, 1010), "intensity_power": 1.0},
     {"precursor_encoding": 8, "same_molecule_share": 0.9}, {"precursor_encoding": 8, "sparse_training": False},
     {"precursor_encoding": 8, "use_metadata": False}, {"head_units": (8,), "sparse_training": False},
     {"head_units": (8,), "use_metadata": False}, {"head_units": (8, 8), "precursor_encoding": 0}],
)
def test_options_train_predict_and_round_trip(spectra, tmp_path, params):
    validation = make_spectra(SMILES[:8], per_molecule=2, seed=5, prefix="V")
    model = SiameseModel(**{**TINY, "epochs": 1, **params}).fit(spectra, validation_spectra=validation)
    assert model.n_validation_spectra_ == len(validation)
    pairs = random_pairs(spectra)
    pred = model.predict(spectra, pairs)
    assert ((0 <= pred) & (pred <= 1)).all()
    loaded = kit.models.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(spectra, pairs), pred)


def test_training_pairs_are_redrawn_each_epoch_and_seeded(spectra):
    from kit.data.pairs import PairSampler

    sampler = PairSampler.from_spectra(spectra)
    matrix = binning.bin_spectra(spectra)

    def batches():
        return siamese.PairBatches(matrix, None, 16, sampler=sampler, n_pairs=64, augmentation={}, seed=3)

    data = batches()
    first = (data.idx_a.copy(), data.idx_b.copy())
    (xa, xb), y = data[0]
    assert xa.shape == xb.shape == (16, 9900) and xa.dtype == np.float32 and y.shape == (16,)
    data.on_epoch_end()
    data.on_epoch_begin()
    assert not (np.array_equal(data.idx_a, first[0]) and np.array_equal(data.idx_b, first[1]))
    again = batches()
    np.testing.assert_array_equal(again.idx_a, first[0])
    np.testing.assert_array_equal(again[0][0][0], xa)


def test_augmentation_removes_only_low_peaks_jitters_and_adds_faint_noise():
    import scipy.sparse as sp

    values = np.array([[1.0, 0.5, 0.1, 0.05] + [0.0] * 96] * 50, dtype=np.float32)
    matrix = sp.csr_matrix(values)
    rng = np.random.default_rng(0)
    rows = np.arange(50)
    plain = siamese.augment_batch(rows, matrix, rng, removal_max=0, intensity=0, noise_max=0)
    np.testing.assert_array_equal(plain, values)
    removed = siamese.augment_batch(rows, matrix, rng, removal_max=1.0, removal_intensity=0.2, intensity=0, noise_max=0)
    assert (removed[:, :2] == values[:, :2]).all() and (removed[:, 2:4] == 0).any()
    jittered = siamese.augment_batch(rows, matrix, rng, removal_max=0, intensity=0.4, noise_max=0)
    ratio = jittered[:, :4] / values[:, :4]
    assert ratio.min() >= 0.6 - 1e-6 and ratio.max() <= 1.4 + 1e-6 and ratio.std() > 0
    noisy = siamese.augment_batch(rows, matrix, rng, removal_max=0, intensity=0, noise_max=10, noise_intensity=0.01)
    extra = noisy[:, 4:]
    assert (extra > 0).any() and extra.max() <= 0.01 and ((extra > 0).sum(axis=1) <= 10).all()


# -- sparse training ------------------------------------------------------------------
def random_csr(n_rows=6, width=40, seed=0):
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((n_rows, width)) < 0.2, rng.uniform(0.01, 1.0, (n_rows, width)), 0.0)
    dense[:, 0] = 1.0  # every row has a peak
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("augmentation", [{}, {"noise_max": 30, "noise_intensity": 0.5}, {"removal_max": 0, "intensity": 0}])
def test_augment_peaks_are_the_dense_batch_as_entries(augmentation):
    matrix = random_csr()
    rows = np.array([0, 3, 3, 5])
    row, col, value = siamese.augment_peaks(rows, matrix, np.random.default_rng(7), **augmentation)
    dense = siamese.augment_batch(rows, matrix, np.random.default_rng(7), **augmentation)
    rebuilt = np.zeros_like(dense)
    rebuilt[row, col] = value
    np.testing.assert_array_equal(rebuilt, dense)
    key = row.astype(np.int64) * matrix.shape[1] + col
    assert (np.diff(key) > 0).all()  # sorted by row then column, each position once
    assert row.dtype == col.dtype == np.int32 and value.dtype == np.float32


def test_a_real_peak_wins_over_noise_in_its_bin():
    import scipy.sparse as sp

    matrix = sp.csr_matrix(np.ones((1, 3), dtype=np.float32))
    row, col, value = siamese.augment_peaks(np.array([0]), matrix, np.random.default_rng(0), removal_max=0,
                                            intensity=0, noise_max=50, noise_intensity=0.01)
    assert col.tolist() == [0, 1, 2] and value.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("with_metadata", [True, False])
@pytest.mark.parametrize("augmentation", [None, {}])
def test_sparse_batches_hold_the_dense_batches(spectra, with_metadata, augmentation):
    from kit.data.pairs import PairSampler

    matrix = binning.bin_spectra(spectra)
    metadata = siamese.metadata_features(spectra) if with_metadata else None
    sampler = PairSampler.from_spectra(spectra)
    kwargs = dict(sampler=sampler, n_pairs=40, augmentation=augmentation, seed=4)
    dense = siamese.PairBatches(matrix, metadata, 16, **kwargs)
    sparse = siamese.PairBatches(matrix, metadata, 16, sparse=True, **kwargs)
    for index in range(len(dense)):
        x, y = dense[index]
        (row, col, value, n_spectra), y_sparse = sparse[index]
        np.testing.assert_array_equal(y_sparse, y)
        assert n_spectra == 2 * len(y)
        rebuilt = np.zeros((n_spectra, matrix.shape[1] + (2 if with_metadata else 0)), dtype=np.float32)
        rebuilt[row, col] = value
        halves = [np.hstack([x[0], x[1]]), np.hstack([x[2], x[3]])] if with_metadata else list(x)
        np.testing.assert_array_equal(rebuilt, np.vstack(halves))


def test_sparse_dataset_redraws_pairs_every_pass(spectra):
    from kit.data.pairs import PairSampler

    matrix = binning.bin_spectra(spectra)
    data = siamese.PairBatches(matrix, None, 16, sampler=PairSampler.from_spectra(spectra), n_pairs=40,
                               augmentation={}, seed=1, sparse=True)
    passes = [[y.numpy() for _, y in data.dataset()] for _ in range(2)]
    data.close()
    assert [len(p) for p in passes] == [3, 3] and [len(y) for y in passes[0]] == [16, 16, 8]
    assert not all(np.array_equal(a, b) for a, b in zip(*passes))
    # The second pass's pairs, drawn ahead in a thread, are those of epoch 1 drawn in place.
    plain = siamese.PairBatches(matrix, None, 16, sampler=PairSampler.from_spectra(spectra), n_pairs=40,
                                augmentation={}, seed=1)
    plain.on_epoch_end()
    plain.on_epoch_begin()
    np.testing.assert_array_equal(np.concatenate(passes[1]), plain.similarity.astype(np.float32))


class CountingSampler:
    """A pair sampler that counts its draws."""

    def __init__(self, sampler):
        self.sampler, self.draws = sampler, 0

    def sample(self, n_pairs, rng):
        self.draws += 1
        return self.sampler.sample(n_pairs, rng)


@pytest.mark.parametrize("epochs, draws", [(1, 1), (2, 2), (3, 3)])
def test_no_pairs_are_drawn_ahead_past_the_last_epoch(spectra, epochs, draws):
    from kit.data.pairs import PairSampler

    sampler = CountingSampler(PairSampler.from_spectra(spectra))
    data = siamese.PairBatches(binning.bin_spectra(spectra), None, 16, sampler=sampler, n_pairs=40,
                               augmentation={}, seed=1, sparse=True, epochs=epochs)
    for _ in range(epochs):
        list(data.dataset())
    data.close()
    # One draw per epoch trained, none for an epoch after the last.
    assert sampler.draws == draws


@pytest.mark.parametrize("with_metadata", [True, False])
def test_dense_dataset_holds_the_dense_batches(spectra, with_metadata):
    matrix = binning.bin_spectra(spectra)
    metadata = siamese.metadata_features(spectra) if with_metadata else None
    rng = np.random.default_rng(0)
    pairs = (rng.integers(0, len(spectra), 40), rng.integers(0, len(spectra), 40), rng.random(40))
    data = siamese.PairBatches(matrix, metadata, 16, pairs=pairs)
    batches = list(data.dataset())
    assert len(batches) == len(data) == 3
    for index, (x, y) in enumerate(batches):
        x_plain, y_plain = data[index]
        assert len(x) == len(x_plain) == (4 if with_metadata else 2)
        for got, expected in zip(x, x_plain):
            np.testing.assert_array_equal(got.numpy(), expected)
        np.testing.assert_array_equal(y.numpy(), y_plain)


@pytest.fixture(scope="module")
def sparse_setup(spectra):
    """A tiny network, its sparse trainer and dense siamese, and one sparse batch of real spectra."""
    import keras
    import tensorflow as tf

    from kit.data.pairs import PairSampler

    # The weights (and so the size of rounding differences) must not depend on which tests ran first.
    keras.utils.set_random_seed(0)
    matrix = binning.bin_spectra(spectra)
    metadata = siamese.metadata_features(spectra)
    data = siamese.PairBatches(matrix, metadata, 8, sampler=PairSampler.from_spectra(spectra), n_pairs=8,
                               augmentation={}, seed=0, sparse=True)
    network = siamese.build_embedding_network(matrix.shape[1], hidden_units=(16, 8), embedding_dim=4, n_metadata=2,
                                              penalize_first=False, seed=0)
    entries, y = data[0]
    return network, tuple(tf.constant(x) for x in entries), y


@pytest.mark.parametrize("with_head", [False, True])
def test_sparse_trainer_predicts_what_the_saved_siamese_predicts(sparse_setup, with_head):
    network, (row, col, value, n_spectra), _ = sparse_setup
    head = None
    if with_head:
        head = PairHead(siamese.precursor_periods(8).tolist(), [8], name="pair_head")
        head.build(None)
        # A trained head, not the untrained one that passes the cosine through.
        head.kernels[-1].assign(np.linspace(-1, 1, 8, dtype=np.float32)[:, None])
    trainer = siamese.SparsePairTrainer(network, 1e-6, head)
    sparse = trainer((row, col, value, n_spectra), training=False).numpy()
    dense = np.zeros((int(n_spectra), network.inputs[0].shape[-1] + 2), dtype=np.float32)
    dense[row.numpy(), col.numpy()] = value.numpy()
    half = int(n_spectra) // 2
    expected = siamese.build_siamese(network, head).predict(
        [dense[:half, :-2], dense[:half, -2:], dense[half:, :-2], dense[half:, -2:]], verbose=0)[:, 0]
    np.testing.assert_allclose(sparse, expected, atol=1e-5)
    if with_head:
        cosine = siamese.build_siamese(network).predict(
            [dense[:half, :-2], dense[:half, -2:], dense[half:, :-2], dense[half:, -2:]], verbose=0)[:, 0]
        assert np.abs(expected - cosine).max() > 1e-3


def test_sparse_trainer_gradient_is_the_dense_gradient_on_the_rows_gathered(sparse_setup):
    import tensorflow as tf

    network, inputs, y = sparse_setup
    trainer = siamese.SparsePairTrainer(network, 0.0)
    row, col, value, n_spectra = (x.numpy() for x in inputs)
    dense = np.zeros((int(n_spectra), network.inputs[0].shape[-1] + 2), dtype=np.float32)
    dense[row, col] = value
    pair = siamese.build_siamese(network)
    kernel = network.get_layer("dense1").kernel
    half = int(n_spectra) // 2
    with tf.GradientTape(persistent=True) as tape:
        # Dropout off on both sides so both losses see the same network.
        sparse_loss = tf.reduce_mean(tf.square(trainer(inputs, training=False) - y))
        dense_pred = pair([dense[:half, :-2], dense[:half, -2:], dense[half:, :-2], dense[half:, -2:]], training=False)
        dense_loss = tf.reduce_mean(tf.square(dense_pred[:, 0] - y))
    sparse_grad = tape.gradient(sparse_loss, kernel)
    dense_grad = tape.gradient(dense_loss, kernel).numpy()
    assert isinstance(sparse_grad, tf.IndexedSlices)
    rebuilt = tf.convert_to_tensor(sparse_grad).numpy()
    np.testing.assert_allclose(rebuilt, dense_grad, rtol=1e-4, atol=1e-5)
    touched = np.unique(col)
    assert set(np.flatnonzero(np.abs(dense_grad).sum(axis=1))) <= set(touched)


def test_lazy_adam_updates_only_touched_rows_and_is_adam_on_them():
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 3)).astype(np.float32)
    grads = [rng.normal(size=(6, 3)).astype(np.float32) for _ in range(3)]
    lazy_var, adam_var = keras.Variable(start), keras.Variable(start)
    lazy, adam = siamese.LazyAdam(learning_rate=0.1), keras.optimizers.Adam(learning_rate=0.1)
    for g in grads:
        # Rows 1 and 4 touched, row 4 given as two halves (repeated indices are summed).
        sparse = tf.IndexedSlices(tf.constant(np.stack([g[1], g[4] / 2, g[4] / 2])), tf.constant([1, 4, 4]))
        lazy.apply([sparse], [lazy_var])
        masked = np.zeros_like(g)
        masked[[1, 4]] = g[[1, 4]]
        adam.apply([tf.constant(masked)], [adam_var])
    lazy_w, adam_w = lazy_var.numpy(), adam_var.numpy()
    np.testing.assert_array_equal(lazy_w[[0, 2, 3, 5]], start[[0, 2, 3, 5]])
    # Only the touched rows moved, and exactly as Adam moves them when every step touches them.
    np.testing.assert_allclose(lazy_w[[1, 4]], adam_w[[1, 4]], rtol=1e-5, atol=1e-6)
    dense_var, reference = keras.Variable(start), keras.Variable(start)
    siamese.LazyAdam(learning_rate=0.1).apply([tf.constant(grads[0])], [dense_var])
    keras.optimizers.Adam(learning_rate=0.1).apply([tf.constant(grads[0])], [reference])
    np.testing.assert_array_equal(dense_var.numpy(), reference.numpy())


def test_sparse_and_dense_training_both_give_standard_networks(spectra, tmp_path):
    dense = SiameseModel(**{**TINY, "epochs": 1, "sparse_training": False}).fit(spectra)
    assert dense.embedding_network_.get_layer("dense1").kernel_regularizer is not None
    sparse = SiameseModel(**{**TINY, "epochs": 1}).fit(spectra)
    assert sparse.embedding_network_.get_layer("dense1").kernel_regularizer is None
    assert sparse.embedding_network_.get_layer("normalization1").momentum == 0.9
    assert dense.get_params()["batchnorm_momentum"] == 0.9
    pairs = random_pairs(spectra)
    for model in (dense, sparse):
        assert set(model.history_) >= {"loss", "rmse", "val_loss", "val_rmse"}
        path = model.save(tmp_path / f"m{model.sparse_training}")
        # The network's weights alone: no optimiser state (LazyAdam's or Adam's), nothing of the trainer.
        shapes = weight_shapes(path / "model.weights.h5", model.siamese_.count_params())
        assert sum(np.prod(s) for s in shapes.values()) == model.siamese_.count_params()
        np.testing.assert_array_equal(kit.models.load(path).predict(spectra, pairs), model.predict(spectra, pairs))


@pytest.mark.parametrize("sparse_training", [True, False])
def test_mixed_precision_on_a_cpu_warns_trains_and_saves_a_float32_network(spectra, tmp_path, sparse_training):
    params = {**TINY, "epochs": 1, "mixed_precision": True, "sparse_training": sparse_training}
    with pytest.warns(UserWarning, match="without a visible GPU"):
        model = SiameseModel(**params).fit(spectra)
    assert all(np.isfinite(v).all() for v in model.history_.values())
    assert {w.dtype for w in model.embedding_network_.weights} == {"float32"}
    assert model.embedding_network_.get_layer("dense1").dtype_policy.name == "float32"
    path = model.save(tmp_path / "mixed")
    # float32 datasets only (weight_shapes refuses others), and no loss-scaling state.
    assert all("optimizer" not in p for p in weight_shapes(path / "model.weights.h5", model.siamese_.count_params()))
    pairs = random_pairs(spectra)
    np.testing.assert_array_equal(kit.models.load(path).predict(spectra, pairs), model.predict(spectra, pairs))


def test_mixed_precision_network_keeps_the_cosine_in_float32():
    network = siamese.build_embedding_network(20, hidden_units=(8,), embedding_dim=4, dtype="mixed_float16")
    assert network.get_layer("dense1").compute_dtype == "float16"
    pair = siamese.build_siamese(network)
    assert pair.get_layer("cosine").compute_dtype == "float32" and pair.output.dtype == "float32"


# --- across ion modes -------------------------------------------------------------------

PROTON = 1.007276


def make_both_modes(per_molecule=2):
    """The tiny library in both ion modes: each molecule's spectra as [M+H]+ and as [M-H]-.

    A negative spectrum's peaks are its positive twin's less two protons (fragments that lost,
    rather than gained, one), its precursor the neutral mass less a proton.
    """
    spectra = []
    for s in make_spectra(per_molecule=per_molecule):
        spectra.append(s.clone().set("adduct", "[M+H]+"))
        mz = s.peaks.mz - 2 * PROTON
        keep = mz > 12
        twin = Spectrum(mz=mz[keep], intensities=s.peaks.intensities[keep], metadata_harmonization=False,
                        metadata={**s.metadata, "spectrum_id": "N" + s.get("spectrum_id"), "ionmode": "negative",
                                  "adduct": "[M-H]-", "precursor_mz": s.get("precursor_mz") - 2 * PROTON})
        spectra.append(twin)
    return spectra


@pytest.fixture(scope="module")
def both_modes():
    return make_both_modes()


@pytest.fixture(scope="module")
def both_model(both_modes):
    return SiameseModel(**TINY, use_adducts=True).fit(both_modes)


def _cross_pairs(spectra):
    """Each positive spectrum against its negative twin: pairs of one molecule across modes."""
    positive = [s.get("spectrum_id") for s in spectra if s.get("ionmode") == "positive"]
    return pd.DataFrame({"spectrum_id_a": positive, "spectrum_id_b": ["N" + i for i in positive]})


def test_a_both_modes_library_with_the_adduct_inputs_predicts_cross_pairs(both_model, both_modes, tmp_path):
    assert both_model.metadata_features_ == list(siamese.ADDUCT_FEATURES)
    pairs = _cross_pairs(both_modes)
    predicted = both_model.predict(both_modes, pairs)
    assert predicted.shape == (len(pairs),) and np.isfinite(predicted).all()
    assert ((predicted >= 0) & (predicted <= 1)).all()
    # The network reads the wider input; saved and loaded, it predicts the same.
    assert both_model.embedding_network_.inputs[1].shape[-1] == len(siamese.ADDUCT_FEATURES)
    loaded = kit.models.load(both_model.save(tmp_path / "both"))
    assert loaded.metadata_features_ == both_model.metadata_features_
    np.testing.assert_array_equal(loaded.predict(both_modes, pairs), predicted)


def test_the_adduct_inputs_change_nothing_for_a_positive_only_library(model, spectra):
    with_adducts = [s.clone().set("adduct", "[M+H]+") for s in spectra]
    plain = SiameseModel(**TINY, use_adducts=False).fit(spectra)
    auto = SiameseModel(**TINY).fit(with_adducts)
    pairs = random_pairs(spectra)
    assert model.metadata_features_ == auto.metadata_features_ == list(siamese.METADATA_FEATURES)
    np.testing.assert_array_equal(auto.predict(with_adducts, pairs), plain.predict(spectra, pairs))
    np.testing.assert_array_equal(model.predict(spectra, pairs), plain.predict(spectra, pairs))


def test_adduct_inputs_can_be_forced_on_one_mode_and_off_on_both(spectra, both_modes):
    assert SiameseModel(**{**TINY, "epochs": 1}, use_adducts=True).fit(spectra).metadata_features_ == list(
        siamese.ADDUCT_FEATURES)
    off = SiameseModel(**{**TINY, "epochs": 1}, use_adducts=False).fit(both_modes)
    assert off.metadata_features_ == list(siamese.METADATA_FEATURES)
    # None is off: a library of both modes (the practice one) keeps its inputs unless kit train is told otherwise.
    default = SiameseModel(**{**TINY, "epochs": 1}).fit(both_modes)
    assert default.metadata_features_ == list(siamese.METADATA_FEATURES)
    assert SiameseModel(**{**TINY, "epochs": 1, "use_metadata": False}).fit(both_modes).metadata_features_ == []


def test_a_model_saved_before_adduct_inputs_loads_with_the_plain_metadata(model, spectra, tmp_path):
    path = model.save(tmp_path / "old")
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["params"]["use_adducts"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    loaded = kit.models.load(path)
    assert loaded.metadata_features_ == list(siamese.METADATA_FEATURES)
    pairs = random_pairs(spectra)
    np.testing.assert_array_equal(loaded.predict(spectra, pairs), model.predict(spectra, pairs))


@pytest.mark.parametrize("names", [
    ["neutral_mass/1000", "ionmode"],                                   # the adduct columns cut off
    list(siamese.ADDUCT_FEATURES)[:-1] + ["adduct=[M+Xe]+"],            # an adduct the kit does not encode
    list(siamese.ADDUCT_FEATURES) + ["adduct=[M+H]+"],                  # one more column than the network
])
def test_load_refuses_adduct_inputs_the_kit_does_not_build(both_model, tmp_path, names):
    _refused_with_metadata_names(both_model, tmp_path, names)


def _one(precursor=300.0, **metadata):
    return Spectrum(np.array([50.0]), np.array([1.0]), metadata={"precursor_mz": precursor, **metadata},
                    metadata_harmonization=False)


@pytest.mark.parametrize("spectrum, mass, onehot", [
    (_one(ionmode="positive", adduct="[M+H]+"), 300.0 - PROTON, "[M+H]+"),
    (_one(ionmode="negative", adduct="[M-H]-"), 300.0 + PROTON, "[M-H]-"),
    (_one(ionmode="negative", adduct="[M+HCOO]-"), 300.0 - 44.998201, "[M+FA-H]-"),  # MassBank's spelling
    (_one(ionmode="positive", adduct="[M+2H]2+"), 2 * (300.0 - PROTON), None),       # not a common adduct
    (_one(ionmode="negative", adduct="[M+H]+"), 300.0 + PROTON, "[M+H]+"),           # wrong polarity: mode wins
    (_one(ionmode="positive", adduct=None), 300.0 - PROTON, None),
    (_one(ionmode="positive", adduct=42), 300.0 - PROTON, None),
    (_one(ionmode="positive", adduct="[M+H]+\n' OR 1=1"), 300.0 - PROTON, None),
    (_one(adduct="[M+H]+"), 300.0, "[M+H]+"),                                         # no ion mode: m/z kept
    (_one(precursor=10.0, ionmode="positive", adduct="[M+3Na]3+"), 0.0, None),        # below zero: missing
    (_one(precursor=float("nan"), ionmode="positive", adduct="[M+H]+"), 0.0, "[M+H]+"),
    (_one(precursor=1e300, ionmode="positive", adduct="[M+H]+"), 0.0, "[M+H]+"),
    (_one(precursor="abc", ionmode="negative", adduct="[M-H]-"), 0.0, "[M-H]-"),
])
def test_adduct_inputs_of_odd_spectra(spectrum, mass, onehot):
    row = siamese.metadata_features([spectrum], adducts=True)[0]
    assert row[0] == pytest.approx(mass / 1000, abs=1e-6) and np.isfinite(row).all()
    hot = [name for name, value in zip(siamese.ADDUCT_FEATURES[2:], row[2:]) if value]
    assert hot == ([] if onehot is None else [f"adduct={onehot}"])
