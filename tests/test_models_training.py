import json
from types import SimpleNamespace

import numpy as np
import pytest

import kit.models
from conftest import kit_cli, kit_cli_subprocess, structure_spectra
from kit.cli import main
from kit.commands.train import model_options
from kit.data.tanimoto_bins import BIN_LABELS
from kit.errors import UserError
from kit.models.gbm import GBMModel
from kit.models.training import (
    HeldOut,
    bootstrap_molecules,
    competition_bin_shares,
    cross_mode_switches,
    describe_score,
    model_params,
    parameter_docs,
    plot_history,
    rung_options,
    split_for_validation,
    train_model,
    validation_score,
    validation_set,
    weighted_rmse,
)


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
    [
        ({"epochs": "3"}, "has no option --epochs"),
        ({"n_pairs": "many"}, "--n-pairs: expected an integer, found 'many'"),
        ({"n_pairs": "5.5"}, "expected an integer"),
        ({"n_pairs": ""}, "expected an integer"),
        ({"learning_rate": "fast"}, "--learning-rate: expected a number"),
        ({"early_stopping": "maybe"}, "expected true or false"),
        ({"n_pairs": "none"}, "expected an integer"),
        ({"max_iters": "3"}, r"did you mean --max-iter\?"),
        ({"N_PAIRS": "3"}, "did you mean --n-pairs"),
        ({"zzz": "3"}, "expected one of: --bin-width"),
    ],
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


@pytest.mark.slow
def test_train_model_saves_a_loadable_model_with_its_validation_score(tiny, monkeypatch):
    monkeypatch.chdir(tiny)
    model, folder = train_model(
        "gbm", "tiny", seed=0, params={"n_pairs": "300", "max_iter": "20", "progress": "false"}, echo=lambda *_: None
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    assert folder.parent == tiny / "models" / "tiny" and folder.name.startswith("gbm-")
    assert manifest["competition"] == "tiny" and manifest["params"]["n_pairs"] == 300
    assert 0 < manifest["validation_score"]["rmse"] < 1 and manifest["validation_score"]["rows"] > 0
    loaded = kit.models.load(folder)
    comp = kit.load_competition("tiny")
    np.testing.assert_array_equal(
        loaded.predict(comp.test_spectra, comp.test_pairs), model.predict(comp.test_spectra, comp.test_pairs)
    )


def test_rungs_of_one_command_share_their_molecules_work(tiny, monkeypatch):
    """As in `kit demo`: the second rung computes no InChIKey and no fingerprint again."""
    from kit.data import chemistry

    monkeypatch.chdir(tiny)
    fingerprinted = []
    plain = chemistry._fingerprints
    monkeypatch.setattr(chemistry, "_fingerprints", lambda smiles, rows=None: fingerprinted.extend(smiles) or plain(smiles, rows))
    params = {"n_pairs": "300", "max_iter": "20", "progress": "false"}
    comp = kit.load_competition("tiny")
    with chemistry.molecule_cache() as cache:
        held_out = HeldOut.of(comp.train_spectra, seed=0)
        first, _ = train_model("gbm", comp, seed=0, params=params, echo=lambda *_: None, held_out=held_out)
        computed = dict(cache.computed)
        assert computed["fingerprints"] > 0 and computed["inchikeys"] > 0
        second, _ = train_model("gbm", comp, seed=0, params=params, echo=lambda *_: None, held_out=held_out)
        assert dict(cache.computed) == computed
    assert len(fingerprinted) == len(set(fingerprinted)) == computed["fingerprints"]
    # Same seed, same model: the cache changes nothing but the time.
    assert first.validation_score_["rmse"] == second.validation_score_["rmse"]
    fresh, _ = train_model("gbm", comp, seed=0, params=params, echo=lambda *_: None)
    assert fresh.validation_score_["rmse"] == first.validation_score_["rmse"]


@pytest.mark.slow
def test_cli_train_predict_score_end_to_end(tiny):
    # The train and predict commands' one run each in a child process (the installed entry point).
    proc = kit_cli_subprocess("train", "mean", "--competition", "tiny", "--n-pairs", "200", cwd=tiny)
    assert proc.returncode == 0, proc.stderr
    folder = proc.stdout.strip().splitlines()[-1].removeprefix("saved ")
    proc = kit_cli_subprocess("predict", folder, cwd=tiny)
    assert proc.returncode == 0, proc.stderr
    submission = proc.stdout.strip().splitlines()[-1].removeprefix("wrote ")
    assert submission.endswith("_mean.csv")
    # The competition comes from the submission's manifest.
    proc = kit_cli("score", submission, "--json", cwd=tiny)
    assert proc.returncode == 0, proc.stderr
    assert "competition 'tiny' from" in proc.stderr
    result = json.loads(proc.stdout)
    assert 0 < result["public"] < 1 and result["rows"] > 0
    assert (tiny / "leaderboard" / "tiny.csv").is_file()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "nope", "--competition", "tiny"], ["unknown model 'nope'", "mean, cosine, gbm, siamese"]),
        (["train", "nope", "--help"], ["unknown model 'nope'"]),
        (["train"], ["expected MODEL, one of mean, cosine, gbm, siamese"]),
        (["train", "mean", "--competition", "missing"], ["competition 'missing' not found"]),
        (["train", "mean", "--competition", "tiny", "--epochs", "3"], ["has no option --epochs"]),
        (["train", "mean", "--competition", "tiny", "--n-pairs", "x"], ["--n-pairs", "expected an integer"]),
        (["train", "mean", "--competiton", "tiny"], ["no option --competiton", "did you mean --competition?"]),
        (["train", "mean", "--n-pairs", "3", "--n-pairs", "4"], ["--n-pairs is given twice"]),
        (["train", "mean", "--n-pairs", "3", "4"], ["unexpected argument '4'"]),
        (["train", "mean", "--=3"], ["--=3"]),
        (["predict", "not-a-model", "--competition", "tiny"], ["not a saved model"]),
        (["prepare", "--bogus"], ["unrecognized arguments: --bogus"]),
    ],
)
def test_cli_errors_are_one_line(tiny, args, fragments):
    done = kit_cli(*args, cwd=tiny)
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize(
    "options, fragment",
    [
        (["--epoch", "5"], "has no option --epoch"),
        (["--n-pairs", "five"], "expected an integer"),
        (["--progress", "sometimes"], "expected true or false"),
        (["--tolerance", "0.1", "--toleranse", "0.2"], "did you mean --tolerance?"),
    ],
)
def test_train_options_are_refused_before_any_data_is_read(tiny, monkeypatch, options, fragment):
    import kit.models.training

    def no_reading(*args, **kwargs):
        raise AssertionError("spectra were read before the options were checked")

    monkeypatch.setattr(kit.models.training, "split_for_validation", no_reading)
    # The missing competition would be reported only after the options.
    done = kit_cli("train", "cosine", "--competition", "missing", *options, cwd=tiny)
    assert done.returncode == 2 and fragment in done.stderr, done.stderr


def test_train_help_lists_the_rung_options_with_defaults_and_meanings(capsys):
    assert main(["train", "gbm", "--help"]) == 0
    out = capsys.readouterr().out
    assert "gbm options" in out and "--competition NAME|DIR" in out
    assert "--n-pairs N" in out and "(default: 20000)" in out and "Training pairs drawn" in out
    assert "--early-stopping true|false" in out and "10% of the training" in out
    # --seed is the command's own option: listed once.
    assert out.count("--seed S") == 2 and "--seed N" not in out  # usage line and options
    assert main(["train", "--help", "mean"]) == 0
    assert "mean options" in capsys.readouterr().out
    assert main(["train", "-h"]) == 0
    out = capsys.readouterr().out
    assert "MODEL" in out and "options (" not in out


class _Documented:
    """A model class with a numpydoc Parameters section of every shape.

    Parameters
    ----------
    size : int, default 3
        How many.
        Two lines of meaning.
    ratio, scale : float
        Shared by ``ratio`` and :func:`scale`.
    undocumented_type
    patience : int or None, default 2
    layers : tuple of int, default (4, 2)
        Layer widths; 50% of them.

    Attributes
    ----------
    size_ : int
        Not a parameter.
    """

    name = "documented"

    def __init__(self, size=3, ratio=0.5, scale=1.0, undocumented_type=True, patience=2, layers=(4, 2), seed=0, mode="auto"):
        self.size, self.ratio, self.scale, self.undocumented_type = size, ratio, scale, undocumented_type
        self.patience, self.layers, self.seed, self.mode = patience, layers, seed, mode

    def get_params(self):
        return dict(vars(self))


def test_parameter_docs_reads_every_shape_of_entry():
    docs = parameter_docs(_Documented)
    assert docs["size"] == ("int, default 3", "How many. Two lines of meaning.")
    assert docs["ratio"] == docs["scale"] == ("float", "Shared by ``ratio`` and :func:`scale`.")
    assert docs["undocumented_type"] == ("", "")
    assert "size_" not in docs and "seed" not in docs


def test_parameter_docs_prefers_the_init_docstring():
    class InitDoc(_Documented):
        def __init__(self, size=3):
            """Parameters
            ----------
            size : int
                From __init__.
            """
            super().__init__(size=size)

    assert parameter_docs(InitDoc) == {"size": ("int", "From __init__.")}


def test_parameter_docs_of_an_undocumented_class_is_empty():
    class Bare:
        def __init__(self, a=1):
            self.a = a

    assert parameter_docs(Bare) == {}


def test_rung_options_in_signature_order_with_typed_defaults():
    options = rung_options(_Documented, skip=["seed"])
    assert [flag for flag, _, _ in options] == [
        "--size",
        "--ratio",
        "--scale",
        "--undocumented-type",
        "--patience",
        "--layers",
        "--mode",
    ]
    by_flag = {flag: (metavar, text) for flag, metavar, text in options}
    assert by_flag["--size"] == ("N", "How many. Two lines of meaning. (default: 3)")
    assert by_flag["--scale"] == ("X", "Shared by ratio and scale. (default: 1.0)")
    assert by_flag["--undocumented-type"] == ("true|false", "undocumented type (default: true)")
    assert by_flag["--patience"][0] == "N|none"
    assert by_flag["--layers"] == ("A,B,...", "Layer widths; 50% of them. (default: 4,2)")


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"patience": "none"}, {"patience": None}),
        ({"patience": "NULL"}, {"patience": None}),
        ({"layers": "8, 4,2"}, {"layers": (8, 4, 2)}),
        ({"mode": "0"}, {"mode": 0}),
        ({"mode": "fast"}, {"mode": "fast"}),
        ({"size": 7}, {"size": 7}),
    ],
)
def test_model_params_types(options, expected):
    assert model_params(_Documented, options) == expected


@pytest.mark.parametrize(
    "options, message",
    [
        ({"size": "none"}, "--size: expected an integer"),
        ({"layers": ""}, "--layers: expected comma-separated integers"),
        ({"layers": "4,x"}, "--layers: expected comma-separated integers"),
        ({"sizes": "4"}, "did you mean --size?"),
    ],
)
def test_model_params_refusals(options, message):
    with pytest.raises(UserError, match=message):
        model_params(_Documented, options)


def test_model_from_another_major_version_is_refused(tiny, monkeypatch):
    monkeypatch.chdir(tiny)
    model = kit.models.get("mean")(n_pairs=100).fit(kit.load_competition("tiny").train_spectra)
    folder = model.save(tiny / "models" / "old-mean")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["kit_version"] = "99.0.0"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="saved by specsim-kit '99.0.0'"):
        kit.models.load(folder)


def test_plot_history_writes_a_png_without_touching_global_matplotlib_state(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    history = {"loss": [0.1, 0.05, 0.04], "val_loss": [0.12, 0.08, 0.09], "learning_rate": [1e-3] * 3}
    path = plot_history(history, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend
    assert plot_history({"accuracy": [1.0]}, tmp_path / "empty.png").is_file()


def test_train_model_names_its_two_validation_scores_apart(tiny, monkeypatch):
    """The held-out score of `kit train` and Keras's per-epoch val_rmse are printed under different names."""
    from kit.models.mean import MeanModel

    fit = MeanModel.fit

    def fit_with_history(self, spectra, validation_spectra=None):
        fit(self, spectra, validation_spectra=validation_spectra)
        self.history_ = {"loss": [0.05, 0.04], "val_rmse": [0.3, 0.25]}
        self.best_val_rmse_, self.best_epoch_ = 0.25, 2
        return self

    monkeypatch.setattr(MeanModel, "fit", fit_with_history)
    monkeypatch.chdir(tiny)
    lines = []
    _, folder = train_model("mean", "tiny", seed=0, params={"n_pairs": "200"}, echo=lines.append)
    text = "\n".join(lines)
    assert "mean: held-out validation RMSE 0." in text
    assert (
        "mean: early-stopping pairs RMSE 0.25000 (Keras's val_rmse on the rung's own early-stopping molecules, epoch 2 kept)"
    ) in text
    assert f"training curve: {folder / 'training_curve.png'}" in text and (folder / "training_curve.png").is_file()


# -- the honest validation score ------------------------------------------------------------
def _scored_pairs(n=600, n_molecules=60, seed=0):
    # Errors come from the molecules, as a model's do: pairs of one molecule err together.
    rng = np.random.default_rng(seed)
    truth, molecules, bias = rng.random(n), rng.integers(0, n_molecules, size=(n, 2)), rng.normal(0, 0.1, n_molecules)
    return truth, np.clip(truth + bias[molecules].sum(axis=1) + rng.normal(0, 0.05, n), 0, 1), molecules


def test_weighted_rmse_without_shares_is_the_plain_rmse():
    from sklearn.metrics import root_mean_squared_error

    truth, predicted, _ = _scored_pairs()
    assert weighted_rmse(truth, predicted) == pytest.approx(root_mean_squared_error(truth, predicted))


def test_weighted_rmse_weighs_each_bin_by_its_share_and_drops_empty_bins():
    from kit.data.tanimoto_bins import bin_index

    truth, predicted, _ = _scored_pairs()
    shares = np.arange(1.0, 11.0)
    bins = bin_index(truth)
    mse = np.array([np.mean((predicted[bins == b] - truth[bins == b]) ** 2) for b in range(10)])
    assert weighted_rmse(truth, predicted, shares) == pytest.approx(np.sqrt((shares * mse).sum() / shares.sum()))
    # Only two bins hold pairs: the other shares do not count.
    low = truth < 0.2
    two = (mse[:2] * shares[:2]).sum() / shares[:2].sum()
    assert weighted_rmse(truth[low], predicted[low], shares) == pytest.approx(np.sqrt(two))
    # A row of weights per resample: all ones is the point estimate, doubled pairs count twice.
    rows = weighted_rmse(truth, predicted, shares, np.ones((3, truth.size)))
    np.testing.assert_allclose(rows, weighted_rmse(truth, predicted, shares))
    doubled = np.ones(truth.size)
    doubled[:10] = 2
    repeated = np.concatenate([np.arange(truth.size), np.arange(10)])
    assert weighted_rmse(truth, predicted, None, doubled[None])[0] == pytest.approx(
        weighted_rmse(truth[repeated], predicted[repeated])
    )


def test_bootstrap_resamples_molecules_and_weighs_each_pair_by_its_two_molecules():
    pairs = np.array([[0, 1], [1, 2], [2, 2]])
    weights = bootstrap_molecules(pairs, 3, 500, np.random.default_rng(0))
    assert weights.shape == (500, 3) and (weights >= 0).all()
    # Drawn three molecules with replacement: a pair's weight is count_a x count_b.
    assert set(np.unique(weights)) <= {0, 1, 2, 3, 4, 9}
    assert weights[:, 0].mean() == pytest.approx(1 - 1 / 3, abs=0.1)  # E[c0 c1] = n(n-1)/n^2


def test_validation_score_reports_its_bootstrap_error_seeded():
    truth, predicted, molecules = _scored_pairs()
    score = validation_score(truth, predicted, molecules, np.full(10, 0.1), rounds=100, seed=3)
    assert score == validation_score(truth, predicted, molecules, np.full(10, 0.1), rounds=100, seed=3)
    assert score["pairs_rmse"] == pytest.approx(weighted_rmse(truth, predicted))
    assert 0 < score["rmse_se"] < 0.02 and score["molecules"] == len(np.unique(molecules))
    assert score["bin_weights"] == {label: 0.1 for label in BIN_LABELS} and score["rows"] == truth.size
    # Fewer molecules behind as many pairs: a wider error bar.
    few = validation_score(*_scored_pairs(n_molecules=6), rounds=100, seed=3)
    assert few["rmse_se"] > 1.5 * score["rmse_se"] and few["bin_weights"] is None and few["molecules"] == 6
    assert "+- " in describe_score("gbm", score) and "of 60 molecules" in describe_score("gbm", score)


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"pairs": None},
        {"pairs": {}},
        {"pairs": {"per_bin": None}},
        {"pairs": {"per_bin": [1] * 9}},
        {"pairs": {"per_bin": [1] * 11}},
        {"pairs": {"per_bin": [[1] * 10]}},
        {"pairs": {"per_bin": [0] * 10}},
        {"pairs": {"per_bin": [-1] + [1] * 9}},
        {"pairs": {"per_bin": [float("nan")] + [1] * 9}},
        {"pairs": {"per_bin": [float("inf")] + [1] * 9}},
        {"pairs": {"per_bin": ["x"] * 10}},
        {"pairs": {"per_bin": "1111111111"}},
        {"pairs": {"per_bin": {"a": 1}}},
        {"pairs": {"per_bin": [{}] * 10}},
        {"pairs": {"per_bin": [1e308] * 10}},
        {"pairs": [1] * 10},
        {"pairs": "per_bin"},
        None,
        [],
        {"pairs": {"per_bin": [True] * 10}},
        {"pairs": {"per_bin": ["1"] * 10}},
        {"pairs": {"per_bin": [None] * 10}},
    ],
)
def test_competition_bin_shares_refuse_what_is_not_ten_counts(metadata):
    from types import SimpleNamespace

    assert competition_bin_shares(SimpleNamespace(metadata=metadata)) is None


def test_competition_bin_shares_are_the_test_pairs_shares(tiny):
    comp = kit.load_competition(tiny / "data" / "tiny")
    shares = competition_bin_shares(comp)
    counts = np.asarray(comp.metadata["pairs"]["per_bin"], dtype=float)
    np.testing.assert_allclose(shares, counts / counts.sum())


def test_validation_set_pairs_name_their_molecules():
    spectra = structure_spectra(per_molecule=3)
    pairs, truth, molecules = validation_set(spectra, 20, seed=0)
    smiles = {s.get("spectrum_id"): s.get("smiles") for s in spectra}
    # Two pairs of the same two molecules share the molecules' smiles, and only those.
    key = {tuple(m): (smiles[a], smiles[b]) for m, a, b in zip(molecules.tolist(), pairs.spectrum_id_a, pairs.spectrum_id_b)}
    for m, a, b in zip(molecules.tolist(), pairs.spectrum_id_a, pairs.spectrum_id_b):
        assert key[tuple(m)] == (smiles[a], smiles[b])
    assert len(truth) == len(pairs) == len(molecules)


def test_the_fit_never_sees_the_molecules_it_is_scored_on(tiny, monkeypatch):
    """Three-way split: the rung's fit gets no validation spectra and none of the scored molecules."""
    from kit.models.mean import MeanModel

    seen, fit = {}, MeanModel.fit

    def spy(self, spectra, validation_spectra=None):
        seen["fit"], seen["validation"] = {s.get("inchikey")[:14] for s in spectra}, validation_spectra
        return fit(self, spectra, validation_spectra=validation_spectra)

    scored, predict = {}, MeanModel.predict

    def spy_predict(self, spectra, pairs):
        scored["molecules"] = {s.get("inchikey")[:14] for s in spectra}
        return predict(self, spectra, pairs)

    monkeypatch.setattr(MeanModel, "fit", spy)
    monkeypatch.setattr(MeanModel, "predict", spy_predict)
    monkeypatch.chdir(tiny)
    lines = []
    model, folder = train_model("mean", "tiny", seed=0, params={"n_pairs": "200"}, echo=lines.append)
    assert seen["validation"] is None and seen["fit"] and scored["molecules"]
    assert not seen["fit"] & scored["molecules"]
    manifest = json.loads((folder / "manifest.json").read_text())
    score = manifest["validation_score"]
    assert manifest["refit"] is False and manifest["validation_fraction"] == 0.2
    assert score["rmse_se"] > 0 and sum(score["bin_weights"].values()) == pytest.approx(1)
    assert score["molecules"] <= len(scored["molecules"]) and score["rmse"] == model.validation_score_["rmse"]
    text = "\n".join(lines)
    assert "+- " in text and "not refit" in text and "held out for the validation score only" in text


def test_a_split_made_once_scores_as_the_split_made_by_train_model(tiny, monkeypatch):
    monkeypatch.chdir(tiny)
    comp = kit.load_competition("tiny")
    quiet = {"echo": lambda *_: None, "params": {"n_pairs": "200"}}
    alone, _ = train_model("mean", comp, seed=1, **quiet)
    shared, _ = train_model("mean", comp, seed=1, held_out=HeldOut.of(comp.train_spectra, seed=1), **quiet)
    assert shared.validation_score_ == alone.validation_score_


@pytest.mark.parametrize("pair_types, expected", [
    (["positive-positive", "negative-negative", "cross"], {"cross_mode": True}),
    (["cross"], {"cross_mode": True}),
    (["positive-positive"], {}),
    (None, {}),
])
def test_only_a_competition_of_cross_mode_pairs_switches_the_rungs_to_cross_mode(pair_types, expected):
    from kit.models.siamese import SiameseModel

    options = {} if pair_types is None else {"pair_types": pair_types}
    comp = SimpleNamespace(metadata={"options": options})
    assert cross_mode_switches(GBMModel(), comp) == expected
    assert cross_mode_switches(SiameseModel(), comp) == ({"use_adducts": True} if expected else {})
    # What the learner set stays as set.
    assert cross_mode_switches(GBMModel(cross_mode=False), comp) == {}
