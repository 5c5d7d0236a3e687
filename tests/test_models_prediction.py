"""kit.models.prediction: a saved model predicts a competition's test pairs into a submission."""
import json
import shutil

import pytest

from kit.models.prediction import predict_competition, training_mismatch
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
