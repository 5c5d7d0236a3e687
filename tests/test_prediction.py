"""kit.prediction: a saved model predicts a competition's test pairs into a submission."""
import json
import shutil

import pytest

from kit.prediction import predict_competition, training_mismatch
from kit.training import train_model


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
