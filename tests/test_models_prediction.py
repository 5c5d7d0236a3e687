"""kit.models.prediction: a saved model predicts a competition's test pairs into a submission."""
import hashlib
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from kit.errors import UserError
from kit.models.prediction import STD_SUFFIX, no_spread_message, predict_competition, training_mismatch
from kit.models.training import train_model


def test_predict_names_the_competition_the_model_was_trained_on(tiny, monkeypatch):
    monkeypatch.chdir(tiny)
    _, folder = train_model("mean", "tiny", params={"n_pairs": 100}, echo=lambda *_: None)
    other = tiny / "data" / "other"
    if not other.exists():
        shutil.copytree(tiny / "data" / "tiny", other)
        meta = json.loads((other / "competition.json").read_text())
        (other / "competition.json").write_text(json.dumps({**meta, "name": "other"}))
    said = []
    predict_competition(folder, "other", submissions=tiny / "subs", echo=said.append)
    assert said[0] == f"warning: {folder} was trained on competition 'tiny', not on 'other'"
    said.clear()
    predict_competition(folder, submissions=tiny / "subs", echo=said.append)
    assert not any("warning" in line for line in said)


@pytest.mark.parametrize(
    "manifest, expected",
    [
        ({}, None),
        ({"competition": "c", "competition_files": {"train.mgf": "h"}}, None),
        ({"competition": "c", "competition_files": None}, None),
        ({"competition": "c", "competition_files": ["x"]}, None),
        ({"competition": "d"}, "was trained on competition 'd', not on 'c'"),
        ({"competition": "c", "competition_files": {"train.mgf": "g"}}, "another version of the training data of 'c'"),
    ],
)
def testtraining_mismatch(manifest, expected):
    from types import SimpleNamespace

    got = training_mismatch(manifest, SimpleNamespace(name="c", file_hashes={"train.mgf": "h"}))
    assert got == expected or (expected and expected in got)


@pytest.mark.parametrize("option, value, match", [
    ("--memory-limit", "lots", "memory limit 'lots': expected a size such as 6GiB"),
    ("--memory-limit", "100MB", "below the 1 GiB"),
    ("--time-limit", "0", "time limit '0'"),
    ("--time-limit", "soon", "time limit 'soon'"),
])
def test_kit_predict_limits_are_checked(tmp_path, option, value, match):
    from conftest import kit_cli

    run = kit_cli("predict", tmp_path, option, value)
    assert run.returncode == 2 and match in run.stderr and run.stderr.count("\n") == 1


def test_kit_predict_runs_the_model_under_its_time_limit(tiny, monkeypatch):
    from conftest import kit_cli

    monkeypatch.chdir(tiny)
    _, folder = train_model("mean", "tiny", params={"n_pairs": 100}, echo=lambda *_: None)
    subs = tiny / "subs-limited"
    run = kit_cli("predict", folder, "--time-limit", "0.01", "--submissions", subs)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "did not finish within 0.01 seconds" in run.stderr and "Traceback" not in run.stderr
    assert not subs.exists()
    run = kit_cli("predict", folder, "--memory-limit", "2GiB", "--time-limit", "5m", "--submissions", subs)
    assert run.returncode == 0, run.stderr
    assert len(list((subs / "tiny").glob("*.csv"))) == 1


# -- kit predict --with-std: the siamese's spread beside the submission -------------------
SMALL_SIAMESE = {"hidden_units": "16", "embedding_dim": "8", "pairs_per_epoch": "128", "validation_pairs": "64",
                 "epochs": "1", "batch_size": "32", "verbose": "0", "validation_fraction": "0.25"}


@pytest.fixture(scope="module")
def tiny_siamese(tiny):
    """A small siamese trained on the tiny competition (its folder)."""
    before = os.getcwd()
    os.chdir(tiny)
    try:
        return train_model("siamese", "tiny", params=SMALL_SIAMESE, echo=lambda *_: None)[1]
    finally:
        os.chdir(before)


def test_with_std_writes_the_spread_beside_an_unchanged_submission(tiny, tiny_siamese, monkeypatch):
    from conftest import kit_cli

    monkeypatch.chdir(tiny)
    subs = tiny / "subs-std"
    plain = predict_competition(tiny_siamese, submissions=subs, echo=lambda *_: None)
    run = kit_cli("predict", tiny_siamese, "--submissions", subs, "--with-std", "--passes", "4")
    assert run.returncode == 0, run.stderr
    with_std = sorted((subs / "tiny").glob("*_siamese*.csv"))
    with_std = next(p for p in with_std if p not in (plain,) and not p.name.endswith(STD_SUFFIX))
    assert with_std.read_bytes() == plain.read_bytes()  # the submission is the same, byte for byte
    spread_file = with_std.with_suffix(STD_SUFFIX)
    spread = pd.read_csv(spread_file)
    assert list(spread.columns) == ["id", "std"]
    assert spread["id"].tolist() == pd.read_csv(plain)["id"].tolist()
    assert np.isfinite(spread["std"]).all() and (spread["std"] >= 0).all() and spread["std"].max() > 0
    manifest = json.loads(with_std.with_suffix(".json").read_text())
    assert manifest["spread"]["file"] == spread_file.name and manifest["spread"]["passes"] == 4
    assert manifest["spread"]["sha256"] == hashlib.sha256(spread_file.read_bytes()).hexdigest()
    assert "spread" not in json.loads(plain.with_suffix(".json").read_text())
    # Same seed, same spread; and kit score reads the submission as it reads any other.
    again = predict_competition(tiny_siamese, submissions=subs, echo=lambda *_: None, with_std=True, n_passes=4)
    assert again.with_suffix(STD_SUFFIX).read_bytes() == spread_file.read_bytes()
    scored = kit_cli("score", with_std, "--json", "--no-log")
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["public"] == json.loads(kit_cli("score", plain, "--json", "--no-log").stdout)["public"]


def test_the_sandbox_returns_the_spread_the_siamese_measures(tiny, tiny_siamese):
    import kit.models
    from kit.competition.folder import load_competition

    comp = load_competition(tiny / "data" / "tiny")
    trusted = kit.models.load(tiny_siamese)
    with kit.models.load(tiny_siamese, untrusted=True) as model:
        assert model.gives_std
        mean, std = model.predict(comp.test_spectra, comp.test_pairs, return_std=True, n_passes=3)
    want_mean, want_std = trusted.predict(comp.test_spectra, comp.test_pairs, return_std=True, n_passes=3)
    np.testing.assert_allclose(mean, want_mean, atol=1e-6)
    np.testing.assert_allclose(std, want_std, atol=1e-6)


@pytest.mark.parametrize("rung, params", [
    ("mean", {"n_pairs": "100"}),
    ("cosine", {}),
    ("gbm", {"n_pairs": "300", "max_iter": "10", "progress": "false"}),
])
def test_with_std_refuses_a_rung_without_a_spread_in_one_line(tiny, monkeypatch, rung, params):
    from conftest import kit_cli

    monkeypatch.chdir(tiny)
    _, folder = train_model(rung, "tiny", params=params, echo=lambda *_: None)
    subs = tiny / f"subs-{rung}"
    run = kit_cli("predict", folder, "--submissions", subs, "--with-std")
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "--with-std needs a model that measures its own spread" in run.stderr
    assert f"the {rung} model measures none" in run.stderr
    assert not subs.exists()


def test_the_blend_says_why_its_siamese_spread_is_not_its_own():
    message = no_spread_message("models/tiny/blend-1", "blend")
    assert "gradient-boosted trees" in message and "not an error bar of the blend" in message
    assert "\n" not in no_spread_message("m", "gbm\n\x1b[31mred")  # a forged name stays one printable line


def test_a_sandboxed_model_without_a_spread_refuses_return_std(saved_mean, tiny):
    import kit.models
    from kit.competition.folder import load_competition
    from kit.errors import UserError

    comp = load_competition(tiny / "data" / "tiny")
    with kit.models.load(saved_mean, untrusted=True) as model:
        assert not model.gives_std
        with pytest.raises(UserError, match="the mean model measures no spread"):
            model.predict(comp.test_spectra, comp.test_pairs, return_std=True)
        assert len(model.predict(comp.test_spectra, comp.test_pairs)) == len(comp.test_pairs)  # still usable


@pytest.fixture(scope="module")
def saved_mean(tiny):
    before = os.getcwd()
    os.chdir(tiny)
    try:
        return train_model("mean", "tiny", params={"n_pairs": "100"}, echo=lambda *_: None)[1]
    finally:
        os.chdir(before)


@pytest.mark.parametrize("passes", ["1", "0", "-3", "2.5", "3.0", "1e1", "0x10", "ten", "", " ", "nan", "inf", "1001",
                                    "10 passes", "2**3", "1\x00", "99999999999999999999999"])
def test_kit_predict_passes_is_checked_in_one_line(tmp_path, passes):
    from conftest import kit_cli

    run = kit_cli("predict", tmp_path, "--with-std", "--passes", passes)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "--passes: expected an integer in [2, 1000]" in run.stderr


@pytest.mark.parametrize("n_passes, error", [
    (1, UserError), (0, UserError), (1001, UserError), (True, TypeError), (2.0, TypeError), ("10", TypeError),
    (None, TypeError), (float("nan"), TypeError),
])
def test_predict_competition_checks_n_passes_before_loading_anything(tmp_path, n_passes, error):
    # tmp_path holds no model: a check after the load would fail on the folder instead.
    with pytest.raises(error, match="n_passes must be an integer in \\[2, 1000\\]"):
        predict_competition(tmp_path, with_std=True, n_passes=n_passes)


@pytest.mark.parametrize("std, match", [
    ("nan", "1 not finite"),
    ("inf", "1 not finite"),
    ("short", "found shape"),
    ("2d", "found shape"),
    ("text", "std: expected numbers"),
])
def test_a_bad_companion_file_leaves_nothing_written(tiny, tmp_path, std, match):
    from kit.competition.folder import load_competition
    from kit.errors import SubmissionError
    from kit.scoring.writer import write_submission

    comp = load_competition(tiny / "data" / "tiny")
    n = len(comp.test_pairs)
    values = {"nan": [0.1] * (n - 1) + [float("nan")], "inf": [float("inf")] + [0.1] * (n - 1), "short": [0.1] * (n - 1),
              "2d": [[0.1] * n] * 2, "text": ["a"] * n}[std]
    with pytest.raises(SubmissionError, match=match):
        write_submission(comp, np.full(n, 0.5), model="siamese", out_dir=tmp_path / "subs",
                         beside={"spread": (STD_SUFFIX, "std", values, {})})
    assert not list((tmp_path / "subs").glob("*"))


def test_a_spread_file_never_replaces_a_submission_of_the_same_second(tiny, tmp_path):
    from datetime import datetime, timezone

    from kit.competition.folder import load_competition
    from kit.scoring.writer import write_submission

    comp = load_competition(tiny / "data" / "tiny")
    n, now = len(comp.test_pairs), datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    # A model named "m.std" writes 20260102T030405Z_m.std.csv: where model m's spread would go.
    other = write_submission(comp, np.full(n, 0.25), model="m.std", out_dir=tmp_path, now=now)
    before = other.read_bytes()
    mine = write_submission(comp, np.full(n, 0.5), model="m", out_dir=tmp_path, now=now,
                            beside={"spread": (STD_SUFFIX, "std", np.full(n, 0.1), {})})
    assert other.read_bytes() == before and mine.with_suffix(STD_SUFFIX) != other
    assert mine.with_suffix(STD_SUFFIX).read_text().startswith("id,std\n")
